"""Event search at city scale on PostgreSQL (issue 12 item 6): p95 ≤ 200 ms for one operator over
10 million events, p95 ≤ 300 ms with 50 operators searching at once.

Creates a database `lanterne_scale_<random>` on the server at $LANTERNE_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/postgres, as the tests), runs the migrations, then loads
`--events` events with COPY (the migrated indexes are dropped for the load and rebuilt from their
own definitions, then VACUUM ANALYZE): about 4,000 cameras, a few busy and many quiet (Zipf), 1 to
4 zones each, the 8 types in unequal shares with the object classes each type sees, start times
over 30 days with fewer at night, 1 % evaluation replays, and a decision history on 10 % of the
alerts (acknowledged, then confirmed or dismissed for most), `events.state` agreeing with it.

Then, for each search of a fixed mix (no filter, each filter alone, combinations, a time window,
the next page by cursor, most confident first), it times `search_events` (page + capped count,
newest first) `--runs` times, and the code path before migration 0011 (latest step found among all
decisions, exact count, OFFSET) once per search under a statement timeout; it prints each
search's plan in one line. Last, through a real `lanterne serve` (as `api_load.py`), one operator
and then `--clients` operators send `--requests` searches each from the same mix, every one
audited as in production, each operator pausing `--think` seconds on average between searches
(reading the answer; 0: back to back). The database is dropped at the end.

    .venv/bin/python benchmarks/search_scale.py [--events 10000000] [--runs 20] [--clients 50]
        [--requests 20] [--think 2] [--old-timeout 20] [--keep] [--database NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from psycopg import sql
from sqlalchemy import Engine, Select, event, func, select

from _accounts import cleared_operator  # same folder: run as a script
from api_load import PASSWORD, pct, server
from lanterne.accountability.alerts import AlertState
from lanterne.accountability.precision import latest_state, newest_step
from lanterne.accountability.search import (
    COLUMNS,
    EventFilters,
    Sort,
    search_events,
    search_statements,
)
from lanterne.core.types import EventType
from lanterne.store import Store
from lanterne.store.tables import EventRecord

PG_ADMIN = os.environ.get("LANTERNE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
GOAL_ONE_MS, GOAL_MANY_MS = 200.0, 300.0
CAMERAS = [f"cam-{i:04d}" for i in range(4000)]
ZONES = ["entrance", "crossing", "platform", "square"]
DAYS = 30
NOW = datetime(2026, 6, 1, tzinfo=UTC)
TYPES: dict[str, tuple[float, list[str | None]]] = {
    # share of events, object classes a detection of this type carries
    "zone_intrusion": (0.40, ["person", "person", "person", "car", "bicycle"]),
    "wrong_way": (0.20, ["person", "car", "bicycle", "motorcycle"]),
    "crowd_density": (0.12, [None]),
    "crowd_movement": (0.08, [None]),
    "abandoned_object": (0.10, ["suitcase", "backpack", "handbag"]),
    "person_down": (0.06, ["person"]),
    "fire": (0.03, [None]),
    "weapon": (0.01, ["person"]),
}


@contextmanager
def database(keep: bool, existing: str | None) -> Iterator[str]:
    name = existing or f"lanterne_scale_{secrets.token_hex(4)}"
    if existing is None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = PG_ADMIN.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _rows(first: int, n: int) -> Iterator[tuple[str, str]]:
    """(events line, alert_states lines) in COPY text format for events `first` to `first + n - 1`."""
    rng = random.Random(first)
    types = list(TYPES)
    weights = [TYPES[t][0] for t in types]
    # Zipf over cameras: a station concourse raises far more alerts than a quiet street.
    cam_weights = [1 / (i + 1) ** 0.8 for i in range(len(CAMERAS))]
    cams = rng.choices(CAMERAS, cam_weights, k=n)
    kinds = rng.choices(types, weights, k=n)
    span = DAYS * 86400
    for i in range(n):
        cam, kind = cams[i], kinds[i]
        c = int(cam[4:])  # camera c watches 1 + c % 4 zones
        zone = ZONES[(c + rng.randrange(1 + c % 4)) % 4]
        while True:  # fewer events at night: keep a night draw one time in three
            offset = rng.uniform(0, span)
            hour = (offset / 3600) % 24
            if 6 <= hour < 23 or rng.random() < 1 / 3:
                break
        start = NOW - timedelta(seconds=offset)
        length = rng.uniform(1, 60)
        oc = rng.choice(TYPES[kind][1])
        mode = "evaluation" if rng.random() < 0.01 else "alerts"
        g = first + i
        eid = f"ev-{g:08d}"
        steps: list[tuple[str, str, str]] = []
        if mode == "alerts" and rng.random() < 0.10:
            steps.append(("acknowledged", r"\N", r"\N"))
            r = rng.random()
            if r < 0.35:
                steps.append(("confirmed", r"\N", rng.choice(["none", "monitoring", "field_request"])))
            elif r < 0.85:
                steps.append(("dismissed", rng.choice(["reflection_or_light", "street_furniture"]), r"\N"))
        state = steps[-1][0] if steps else r"\N"
        ts = start.isoformat()
        ev = (
            f"{eid}\t{kind}\t{cam}\t{zone}\t{ts}\t{(start + timedelta(seconds=length)).isoformat()}\t"
            f"0\t{length:.3f}\t{rng.uniform(0.3, 0.99):.4f}\t0.1\t0.1\t0.3\t0.4\t{oc or chr(92) + 'N'}\t"
            f"f\t\t\t{mode}\t{ts}\t{state}\n"
        )
        st = ""
        for k, (s, reason, follow) in enumerate(steps):
            when = (start + timedelta(minutes=2 + k)).isoformat()
            st += f"{2 * g + k + 1}\t{eid}\t{s}\tu-bench\t{when}\t{reason}\t\\N\t{follow}\n"
        yield ev, st


EVENT_COLUMNS = (
    "id, type, camera, zone, start_ts, end_ts, start_offset, end_offset, confidence, x0, y0, x1, y1, "
    "object_class, ongoing, model_hash, config_hash, mode, created_at, state"
)
STEP_COLUMNS = "id, event_id, state, user_id, ts, reason, reason_text, follow_up"


def load(dsn: str, n: int) -> float:
    """COPY `n` events and their decisions; the tables' indexes are dropped for the load and
    rebuilt from their own definitions (what the migrations wrote) afterwards."""
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        defs = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('events', 'alert_states') "
            "AND indexname NOT LIKE '%pkey'"
        ).fetchall()
        for name, _ in defs:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        chunk = 200_000
        with conn.cursor() as cur:
            for part in range(0, n, chunk):
                ev_buf, st_buf = io.StringIO(), io.StringIO()
                for ev, st in _rows(part, min(chunk, n - part)):
                    ev_buf.write(ev)
                    st_buf.write(st)
                with cur.copy(f"COPY events ({EVENT_COLUMNS}) FROM STDIN") as cp:
                    cp.write(ev_buf.getvalue())
                with cur.copy(f"COPY alert_states ({STEP_COLUMNS}) FROM STDIN") as cp:
                    cp.write(st_buf.getvalue())
                print(
                    f"\r  loaded {part + min(chunk, n - part):,} events", end="", file=sys.stderr, flush=True
                )
            print(file=sys.stderr)
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('alert_states', 'id'), max(id)) FROM alert_states"
            )
            conn.execute("SET maintenance_work_mem = '1GB'")
            for _, ddl in defs:
                conn.execute(ddl)
            conn.execute("VACUUM ANALYZE events")
            conn.execute("VACUUM ANALYZE alert_states")
    return time.perf_counter() - t0


@dataclass(frozen=True)
class Case:
    name: str
    filters: EventFilters
    sort: Sort = Sort.START_DESC
    next_page: bool = False


def cases() -> list[Case]:
    day = NOW - timedelta(days=3)
    busy, quiet = CAMERAS[3], CAMERAS[2500]
    return [
        Case("no filter", EventFilters()),
        Case("camera (busy)", EventFilters(camera=busy)),
        Case("camera (quiet)", EventFilters(camera=quiet)),
        Case("zone", EventFilters(zone="platform")),
        Case("type (fire)", EventFilters(type=EventType.FIRE)),
        Case("object class (suitcase)", EventFilters(object_class="suitcase")),
        Case("state new", EventFilters(state=AlertState.NEW)),
        Case("state confirmed", EventFilters(state=AlertState.CONFIRMED)),
        Case("time window (2 h)", EventFilters(since=day, until=day + timedelta(hours=2))),
        Case("camera + type", EventFilters(camera=busy, type=EventType.ZONE_INTRUSION)),
        Case(
            "type + class + state",
            EventFilters(
                type=EventType.ABANDONED_OBJECT, object_class="backpack", state=AlertState.DISMISSED
            ),
        ),
        Case(
            "zone + state + 1 day",
            EventFilters(
                zone="entrance", state=AlertState.ACKNOWLEDGED, since=day, until=day + timedelta(days=1)
            ),
        ),
        Case(
            "camera + state + class",
            EventFilters(camera=busy, state=AlertState.CONFIRMED, object_class="car"),
        ),
        Case("next page (cursor)", EventFilters(type=EventType.WRONG_WAY), next_page=True),
        Case("most confident, fire", EventFilters(type=EventType.FIRE), sort=Sort.CONFIDENCE),
    ]


def _params(c: Case) -> dict[str, str]:
    f = c.filters
    out = {
        "from": f.since.isoformat() if f.since else None,
        "to": f.until.isoformat() if f.until else None,
        "camera": f.camera,
        "zone": f.zone,
        "type": str(f.type) if f.type else None,
        "object_class": f.object_class,
        "state": str(f.state) if f.state else None,
        "sort": str(c.sort),
    }
    return {k: v for k, v in out.items() if v is not None}


def old_search(engine: Engine, f: EventFilters, sort: Sort) -> int:
    """The search as it was before migration 0011 (`git show 1551b0c:src/lanterne/accountability/
    search.py`): the state from every event's newest step among all decisions, an exact count,
    then the page's states; returns the count."""
    conds: list[Any] = []
    for col, value in (
        (EventRecord.camera, f.camera),
        (EventRecord.zone, f.zone),
        (EventRecord.type, str(f.type) if f.type else None),
        (EventRecord.object_class, f.object_class),
    ):
        if value is not None:
            conds.append(col == value)
    if f.since is not None:
        conds.append(EventRecord.start_ts >= f.since)
    if f.until is not None:
        conds.append(EventRecord.start_ts < f.until)
    q: Select[Any] = select(*COLUMNS[:-1]).select_from(EventRecord)
    if f.state is not None:
        s, on = latest_state()
        q = q.outerjoin(s, on)
        conds.append(s.state.is_(None) if f.state is AlertState.NEW else s.state == str(f.state))
    q = q.where(*conds)
    order = (
        (EventRecord.confidence.desc(), EventRecord.start_ts.desc(), EventRecord.id)
        if sort is Sort.CONFIDENCE
        else (EventRecord.start_ts.desc(), EventRecord.id)
    )
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
        rows = conn.execute(q.order_by(*order).limit(50)).all()
        step, newest = newest_step()
        ids = [r.id for r in rows]
        if ids:
            conn.execute(select(step.event_id, step.state).where(step.event_id.in_(ids), newest)).all()
    return total


def timed_ms(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def plan_summary(engine: Engine, stmt: Select[Any]) -> str:
    """The plan's nodes in one line, each with the index it reads: enough to see that nothing
    scans the whole table."""
    compiled = stmt.compile(dialect=engine.dialect)
    with engine.connect() as conn:
        lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)]
    nodes = []
    for line in lines:
        m = re.search(r"(?:->\s+)?([A-Z][A-Za-z ]+?(?: using \S+)?(?: on \S+)?)\s+\(cost", line)
        if m:
            nodes.append(m.group(1).replace(" on events", "").replace("Index Only Scan", "IOS"))
    return " > ".join(nodes)


def measure_direct(engine: Engine, runs: int, old_timeout_s: float) -> tuple[list[float], list[float]]:
    print(
        f"\n{'search':<24} {'count':>7} {'p50 ms':>7} {'p95 ms':>7} {'before 0011':>12}  plan (page | count)"
    )
    everything: list[float] = []
    olds: list[float] = []
    for c in cases():
        after = None
        if c.next_page:
            after = search_events(engine, ["*"], c.filters, sort=c.sort).next_cursor
        times = []
        found = None
        for _ in range(runs):
            ms, found = timed_ms(
                lambda c=c, after=after: search_events(engine, ["*"], c.filters, sort=c.sort, after=after)
            )
            times.append(ms)
        everything += times
        assert found is not None
        # "~": the count ran out of its time budget and this is the planner's estimate.
        count = ("~" if found.total_estimated else "") + f"{found.total:,}"
        count += "" if found.total_exact or found.total_estimated else "+"
        page, counter = search_statements(["*"], c.filters, sort=c.sort, after=after)
        plans = f"{plan_summary(engine, page)} | {plan_summary(engine, counter)}"
        old = "-"
        if old_timeout_s > 0 and not c.next_page:
            with _statement_timeout(engine, old_timeout_s):
                try:
                    ms, _ = timed_ms(lambda c=c: old_search(engine, c.filters, c.sort))
                    old = f"{ms:,.0f}"
                    olds.append(ms)
                except Exception as exc:  # the timeout, reported as such
                    if "statement timeout" not in str(exc) and "canceling" not in str(exc):
                        raise
                    old = f"> {old_timeout_s * 1000:,.0f}"
                    olds.append(old_timeout_s * 1000)
        print(
            f"{c.name:<24} {count:>7} {statistics.median(times):>7.1f} {pct(times, 95):>7.1f} {old:>12}  {plans}"
        )
    return everything, olds


@contextmanager
def _statement_timeout(engine: Engine, seconds: float) -> Iterator[None]:
    # Every pooled connection gets the timeout, since the old search opens its own.
    engine.dispose()

    def on_connect(dbapi_conn: Any, _: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET statement_timeout = {int(seconds * 1000)}")

    event.listen(engine, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(engine, "connect", on_connect)
        engine.dispose()


def operator_accounts(store: Store, n: int) -> list[tuple[str, str]]:
    """(login, recovery code) of `n` operators who may see every camera, as the console requires;
    named afresh on each run, so that a database kept by an earlier run (`--database`) takes them."""
    run = secrets.token_hex(3)
    logins = [f"op-{run}-{i:03d}" for i in range(n)]
    return [(login, cleared_operator(store, login, PASSWORD)[0]) for login in logins]


async def login(base: str, login: str, code: str) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        r = await http.post("/api/login", json={"login": login, "password": PASSWORD, "code": code})
        if r.status_code != 200:
            raise SystemExit(f"login {login}: {r.status_code} {r.text[:300]}")
        cookies = http.cookies
    return httpx.AsyncClient(base_url=base, timeout=60, cookies=cookies)


async def operators(
    base: str, accounts: list[tuple[str, str]], requests: int, think: float = 0.0
) -> tuple[list[float], list[str], float, int]:
    """Latencies, errors, wall time, and how many answers gave an estimated count (its budget
    ran out: under load, the sign that counting competes for the cores)."""
    mix = cases()
    sessions = [await login(base, who, code) for who, code in accounts]
    times: list[float] = []
    errors: list[str] = []
    estimated = 0

    async def one(http: httpx.AsyncClient, n: int) -> None:
        nonlocal estimated
        rng = random.Random(n)
        for _ in range(requests):
            if think:  # an operator reads the answer before the next search (random, mean `think`)
                await asyncio.sleep(rng.uniform(0, 2 * think))
            c = rng.choice(mix)
            params = {"purpose": "scale benchmark", **_params(c)}
            if c.next_page:
                first = await http.get("/api/events", params=params)
                params["after"] = first.json()["next"]
            t0 = time.perf_counter()
            r = await http.get("/api/events", params=params)
            _ = r.content
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:200]}")
            elif r.json()["total_estimated"]:
                estimated += 1

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(one(http, n) for n, http in enumerate(sessions)))
    finally:
        for http in sessions:
            await http.aclose()
    return times, errors, time.perf_counter() - t0, estimated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=20, help="timed runs of each search, one operator")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20, help="searches per client")
    ap.add_argument(
        "--think",
        type=float,
        default=2.0,
        help="mean pause of each of the --clients operators between searches, s, as api_load.py "
        "(0: back to back, which measures the server's capacity rather than an operator's wait)",
    )
    ap.add_argument("--old-timeout", type=float, default=20.0, help="s per search before 0011 (0: skip)")
    ap.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    ap.add_argument(
        "--database",
        "--reuse",
        help="measure an existing database loaded by --keep (no load; migrated to the current head "
        "first, which builds any new index); dropped after unless --keep",
    )
    args = ap.parse_args()
    print(f"{args.events:,} events, {len(CAMERAS):,} cameras, {DAYS} days; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as d, database(args.keep, args.database) as dsn:
        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        store = Store.open(url)
        loaded = 0.0 if args.database else load(dsn, args.events)
        with psycopg.connect(dsn) as conn:
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('events'))").fetchone()
            steps = conn.execute("SELECT count(*) FROM alert_states").fetchone()
        print(
            f"loaded in {loaded:.0f} s; events table with its indexes {size[0] if size else '?'}, "
            f"{steps[0] if steps else 0:,} decision steps"
        )
        one, olds = measure_direct(store.engine, args.runs, args.old_timeout)
        print(
            f"one operator, every search above: p95 {pct(one, 95):.1f} ms (goal {GOAL_ONE_MS:.0f} ms)"
            + (f"; before 0011: p95 {pct(olds, 95):,.0f} ms" if olds else "")
        )

        config = {
            "site": "Search at scale",
            "store": {"url": url},
            "audit": {"key_path": str(Path(d) / "audit.key")},
            "cameras": [
                {
                    "id": CAMERAS[0],
                    "name": CAMERAS[0],
                    "source": "cam.mp4",
                    "location": {"lat": 48.85, "lon": 2.35},
                    "zones": [
                        {
                            "id": "z1",
                            "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]],
                            "events": {"zone_intrusion": {}},
                        }
                    ],
                }
            ],
        }
        path = Path(d) / "site.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        accounts = operator_accounts(store, args.clients + 1)
        store.close()
        with server(path) as base:
            single, errors1, _, est1 = asyncio.run(operators(base, accounts[:1], args.runs * 5))
            many, errors, wall, est = asyncio.run(operators(base, accounts[1:], args.requests, args.think))
        errors += errors1
        print(
            f"HTTP, one operator:  n {len(single)}, p50 {statistics.median(single):.0f} ms, "
            f"p95 {pct(single, 95):.0f} ms (goal {GOAL_ONE_MS:.0f} ms); {est1} counts estimated"
        )
        print(
            f"HTTP, {args.clients} operators (think {args.think} s): n {len(many)}, p50 {statistics.median(many):.0f} ms, "
            f"p95 {pct(many, 95):.0f} ms, max {max(many):.0f} ms in {wall:.0f} s "
            f"(goal {GOAL_MANY_MS:.0f} ms); every search audited; {est} counts estimated"
        )
        if errors:
            print(f"{len(errors)} non-200 answers, first: {errors[0]}")


if __name__ == "__main__":
    main()
