"""How long the automatic review of the audit log (LG-06) takes over 100,000 records on PostgreSQL.

Creates a database `lanterne_review_<random>` on the server at $LANTERNE_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/postgres, as the tests), runs the migrations, and creates a
site's accounts as the console does (160 operators and supervisors, each habilitated and trained;
a few habilitations lapsed ten days ago; three auditors). Then it writes `--records` audit records
over 30 days as a hash chain continuing the log's (bulk inserts of what `AuditLog.append` would
write, with the same hashes, so `lanterne audit verify` would pass): each agent works five shifts
a week of eight hours (morning, afternoon or night) and logs in, opens alert snapshots, changes
alert states, plays clips and stretches of recordings, searches events, watches a camera live,
now and then exports, mistypes a password or is refused a camera. Planted in the last day: one
bulk export, a burst of failed logins, a search over the whole site, a removal of privacy
protection left open, one stretch replayed by five agents, a supervisor's views at night.

Then it times `review` over the last hour (what the hourly chore does: it also reads the 28 days
of footage accesses the daily rule compares with), over the whole 30 days, and the same 30 days
again (every finding already stored), and prints the findings per rule. The database is dropped
at the end.

    .venv/bin/python benchmarks/log_review.py [--records 100000] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from argon2 import PasswordHasher
from psycopg import sql
from sqlalchemy import func, insert, select

import lanterne.accountability.accounts
from lanterne.accountability.accounts import create_account
from lanterne.accountability.habilitation import habilitate, train
from lanterne.accountability.log_review import review
from lanterne.audit import Action, AuditLog
from lanterne.audit.log import canonical_json, record_hash
from lanterne.config.schema import ReviewSettings
from lanterne.store import Store
from lanterne.store.tables import AuditRecord

PG_ADMIN = os.environ.get("LANTERNE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 30
CAMERAS = [f"cam-{i:02d}" for i in range(60)]
SHIFTS = {"morning": 6, "afternoon": 14, "night": 22}
"""Start hour (UTC) of each eight-hour shift."""
SETTINGS = ReviewSettings(time_zone="UTC", shift_hours={"supervisor": "06:00-22:00"})


@contextmanager
def database(keep: bool) -> Iterator[str]:
    name = f"lanterne_review_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


Agent = tuple[str, str, str, list[str]]
"""An agent's id, role, shift and camera scope."""


def accounts(store: Store, audit: AuditLog, rng: random.Random) -> list[Agent]:
    """The agents, created, habilitated and trained as the console needs."""
    lanterne.accountability.accounts.HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)  # type: ignore[misc]
    start = NOW - timedelta(days=DAYS + 30)
    agents = []
    for i in range(160):
        role = "supervisor" if i < 12 else "operator"
        scope = (
            ["*"] if role == "supervisor" or i % 3 == 0 else sorted(rng.sample(CAMERAS, rng.randint(4, 15)))
        )
        a = create_account(
            store.engine, audit, f"agent-{i:03d}", role, scope, "a long bench password", "bench", now=start
        )
        # Three habilitations lapse ten days before the end: their holders keep working.
        lapsed = i in (20, 21, 22)
        designated = NOW - timedelta(days=375) if lapsed else start
        habilitate(
            store.engine,
            audit,
            user=a.id,
            authority="chef de service",
            designated_on=designated,
            cameras=scope,
            recorded_by="bench",
            now=start,
        )
        train(
            store.engine, audit, user=a.id, course="RGPD", completed_on=start, recorded_by="bench", now=start
        )
        # Supervisors work days (their configured hours are 06:00-22:00), operators any shift.
        shift = rng.choice(["morning", "afternoon"] if role == "supervisor" else list(SHIFTS))
        agents.append((a.id, role, shift, scope))
    for i in range(3):
        create_account(
            store.engine, audit, f"dpo-{i}", "auditor", ["*"], "a long bench password", "bench", now=start
        )
    return agents


Record = dict[str, Any]


def _rec(ts: datetime, user: str, action: Action, **fields: Any) -> Record:
    return {"ts": ts, "user_id": user, "action": str(action), **fields}


def _range(rng: random.Random, ts: datetime, minutes: float) -> tuple[datetime, datetime]:
    start = ts - timedelta(hours=rng.uniform(0.2, 48))
    return start, start + timedelta(minutes=minutes)


def shift_records(rng: random.Random, user: str, scope: list[str], start: datetime) -> list[Record]:
    """One agent's eight hours: what the console records of it (its cameras only: the console
    refuses the others)."""
    out: list[Record] = []
    cameras = CAMERAS if scope == ["*"] else scope

    def at() -> datetime:
        return start + timedelta(seconds=rng.uniform(0, 8 * 3600))

    out.append(
        _rec(
            start + timedelta(minutes=rng.uniform(0, 5)),
            user,
            Action.LOGIN,
            object_type="account",
            object_id=user,
        )
    )
    for _ in range(rng.randint(8, 22)):
        alert = f"ev-{rng.randrange(10**8):08d}"
        out.append(_rec(at(), user, Action.VIEW_SNAPSHOT, object_type="alert", object_id=alert))
        out.append(
            _rec(at(), user, Action.SEARCH, object_type="alert", object_id=alert, details={"alert": alert})
        )
    for _ in range(rng.randint(3, 8)):
        out.append(
            _rec(
                at(),
                user,
                Action.ALERT_STATE,
                object_type="alert",
                object_id=f"ev-{rng.randrange(10**8):08d}",
                details={"state": "acknowledged"},
            )
        )
    for _ in range(rng.randint(0, 3)):
        cam, ts = rng.choice(cameras), at()
        a, b = _range(rng, ts, 1)
        out.append(_rec(ts, user, Action.VIEW_CLIP, object_type="alert", object_id=f"ev-{rng.randrange(10**8):08d}", purpose="check the alert",
                        details={"recording": {"camera": cam, "from": a.isoformat(), "to": b.isoformat(), "segments": [1, 2]}}))  # fmt: skip
    for _ in range(rng.randint(0, 2)):
        cam, ts = rng.choice(cameras), at()
        a, b = _range(rng, ts, rng.uniform(1, 20))
        out.append(_rec(ts, user, Action.SEARCH, object_type="recording", object_id=cam, time_from=a - timedelta(hours=1), time_to=b, purpose="incident",
                        details={"camera": cam, "from": a.isoformat(), "to": b.isoformat()}))  # fmt: skip
        out.append(_rec(ts + timedelta(seconds=20), user, Action.VIEW_RECORDING, object_type="recording", object_id=cam, time_from=a, time_to=b, purpose="incident",
                        details={"recording": {"camera": cam, "from": a.isoformat(), "to": b.isoformat(), "segments": [3, 4, 5]}, "fps": 5.0}))  # fmt: skip
    for _ in range(rng.randint(0, 3)):
        ts = at()
        out.append(_rec(ts, user, Action.SEARCH, object_type="events", time_from=ts - timedelta(hours=rng.choice([1, 2, 8])), time_to=ts, purpose="follow-up",
                        details={"camera": rng.choice(cameras), "page": 1, "page_size": 50, "sort": "start"}))  # fmt: skip
    if rng.random() < 0.5:
        cam, ts = rng.choice(cameras), at()
        out.append(_rec(ts, user, Action.VIEW_LIVE, object_type="camera", object_id=cam, time_from=ts, purpose="patrol support", details={"live": "start", "view": 1, "kind": "anonymised"}))  # fmt: skip
        out.append(_rec(ts + timedelta(minutes=4), user, Action.VIEW_LIVE, object_type="camera", object_id=cam, time_from=ts, time_to=ts + timedelta(minutes=4), purpose="patrol support",
                        details={"live": "end", "view": 1, "kind": "anonymised", "reason": "closed", "seconds": 240.0}))  # fmt: skip
    if rng.random() < 0.08:
        cam, ts = rng.choice(cameras), at()
        a, b = _range(rng, ts, 3)
        out.append(_rec(ts, user, Action.EXPORT, object_type="recording", object_id=secrets.token_hex(6), time_from=a, time_to=b, purpose="requisition", recipient="OPJ",
                        details={"camera": cam, "segments": [7, 8], "sha256": "0" * 64, "file": "x.mp4"}))  # fmt: skip
    if rng.random() < 0.05:
        out.append(_rec(start, user, Action.LOGIN_FAILED, object_type="account", object_id=user, details={"reason": "bad_password", "locked": False}))  # fmt: skip
    if rng.random() < 0.05:
        out.append(_rec(at(), user, Action.ACCESS_DENIED, object_type="camera", object_id=rng.choice(CAMERAS), details={"denied": "video", "role": "operator", "path": "/api/x"}))  # fmt: skip
    return out


def planted(agents: list[Agent]) -> list[Record]:
    """What the review must find, in the last day."""
    day = NOW - timedelta(hours=20)
    bulk, sup = agents[42][0], agents[0][0]  # both see every camera
    out = []
    for i in range(25):  # a bulk export: 25 in 8 minutes
        ts = day + timedelta(seconds=19 * i)
        out.append(_rec(ts, bulk, Action.EXPORT, object_type="recording", object_id=f"bulk-{i}", time_from=ts - timedelta(days=1), time_to=ts - timedelta(days=1, minutes=-2),
                        purpose="requisition", recipient="OPJ", details={"camera": "cam-03"}))  # fmt: skip
    for i in range(8):  # someone guessing logins
        out.append(_rec(day + timedelta(hours=1, seconds=30 * i), "unknown", Action.LOGIN_FAILED, details={"reason": "unknown_login", "locked": i >= 4}))  # fmt: skip
    out.append(_rec(day + timedelta(hours=2), sup, Action.SEARCH, object_type="events", purpose="statistics", details={"page": 1, "sort": "start"}))  # fmt: skip
    out.append(_rec(NOW - timedelta(hours=5), agents[50][0], Action.PRIVACY_REMOVED, object_type="camera", object_id="cam-07", time_from=NOW - timedelta(hours=6),
                    time_to=NOW - timedelta(hours=5, minutes=30), purpose="requisition", details={"reference": "PV 114", "permission": 1}))  # fmt: skip
    a = NOW - timedelta(days=2)
    for i in range(5):  # one stretch replayed by five
        ts = day + timedelta(hours=3, minutes=7 * i)
        out.append(_rec(ts, agents[60 + 3 * i][0], Action.VIEW_RECORDING, object_type="recording", object_id="cam-11", time_from=a, time_to=a + timedelta(minutes=10), purpose="curiosity",
                        details={"recording": {"camera": "cam-11", "from": a.isoformat(), "to": (a + timedelta(minutes=10)).isoformat(), "segments": [9]}}))  # fmt: skip
    for i in range(3):  # a supervisor's views at night
        out.append(_rec(NOW - timedelta(hours=22, minutes=10 * i), sup, Action.VIEW_SNAPSHOT, object_type="alert", object_id=f"night-{i}"))  # fmt: skip
    return out


def synthetic(agents: list[Agent], n: int, rng: random.Random) -> list[Record]:
    records: list[Record] = []
    for user, _role, shift, scope in agents:
        off = rng.sample(range(7), 2)
        for d in range(DAYS):
            if (d % 7) in off:
                continue
            start = NOW - timedelta(days=DAYS - d) + timedelta(hours=SHIFTS[shift])
            records += [r for r in shift_records(rng, user, scope, start) if r["ts"] < NOW]
    if len(records) > n:
        records = rng.sample(records, n)
    return records


def write_chain(store: Store, records: list[Record]) -> int:
    """Insert `records` in time order as the continuation of the log's chain."""
    records.sort(key=lambda r: r["ts"])
    table = AuditRecord.__table__
    with store.engine.begin() as conn:
        row = conn.execute(select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).one()
    seq, prev = row.seq, row.hash
    batch: list[Record] = []
    for r in records:
        seq += 1
        fields = {
            "user_id": r["user_id"],
            "action": r["action"],
            "object_type": r.get("object_type"),
            "object_id": r.get("object_id"),
            "time_from": r.get("time_from"),
            "time_to": r.get("time_to"),
            "purpose": r.get("purpose"),
            "recipient": r.get("recipient"),
            "details": canonical_json(r.get("details", {})),
        }
        h = record_hash(prev, seq=seq, ts=r["ts"], **fields)
        batch.append({"seq": seq, "ts": r["ts"], "prev_hash": prev, "hash": h, **fields})
        prev = h
        if len(batch) == 5000:
            with store.engine.begin() as conn:
                conn.execute(insert(table), batch)
            batch = []
    if batch:
        with store.engine.begin() as conn:
            conn.execute(insert(table), batch)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE audit_records")
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def timed(store: Store, audit: AuditLog, since: datetime, until: datetime) -> tuple[float, list[Any]]:
    t = time.perf_counter()
    found = review(store, audit, SETTINGS, since, until, now=NOW)
    return time.perf_counter() - t, found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--keep", action="store_true", help="Keep the database (its name is printed).")
    args = p.parse_args()
    rng = random.Random(7)
    with database(args.keep) as url:
        store = Store.open(url)
        clock_at = [NOW - timedelta(days=DAYS + 30)]
        audit = AuditLog(store.engine, clock=lambda: clock_at[0])
        t = time.perf_counter()
        agents = accounts(store, audit, rng)
        found_planted = planted(agents)
        total = write_chain(store, synthetic(agents, args.records - len(found_planted), rng) + found_planted)
        print(
            f"{total} audit records over {DAYS} days, {len(agents)} agents ({time.perf_counter() - t:.0f} s to write)"
        )
        clock_at[0] = NOW
        hour, hour_found = timed(store, audit, NOW - timedelta(hours=1), NOW)
        month, month_found = timed(store, audit, NOW - timedelta(days=DAYS), NOW)
        again, again_found = timed(store, audit, NOW - timedelta(days=DAYS), NOW)
        assert [f.id for f in again_found] == [f.id for f in month_found], (
            "a second run must store nothing new"
        )
        print(
            f"review of the last hour (reads 28 days of footage accesses): {hour:.2f} s, {len(hour_found)} findings"
        )
        print(f"review of {DAYS} days: {month:.2f} s, {len(month_found)} findings")
        print(f"the same {DAYS} days again (all stored already): {again:.2f} s")
        for rule, n in sorted(Counter(f.rule for f in month_found).items()):
            print(f"  {rule:<20} {n}")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
