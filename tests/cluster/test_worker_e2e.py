"""`lanterne worker` ×2 and `lanterne ingest` as real processes on a real nats-server and the
local PostgreSQL, four paced file cameras of the PETS clip: `kill -9` of one worker and its
cameras are analysed by the other within 10 s, every event the stream acknowledged is in the
store exactly once, and the events the dead worker left ongoing are closed with their audit
record (issue 12, item 1)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import nats.errors
import pytest
import yaml
from psycopg import sql
from sqlalchemy import select

from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.cameras import camera_health
from lanterne.accountability.transparency import export
from lanterne.cluster import STREAM, EventMessage, shard_of
from lanterne.config import load_config
from lanterne.core.types import EventType
from lanterne.runtime.site import open_site
from lanterne.store.tables import AuditRecord, EventRecord, EvidenceRecord
from lanterne.video.recording import KeyRing, verify
from tests.support.console import masks_checked
from tests.support.nats import NatsServer
from tests.support.postgres import PG_ADMIN_DSN, admin_connection
from tests.support.video import VIDEO

LANTERNE = str(Path(sys.executable).with_name("lanterne"))
SHARDS = 4
TTL = 4.0
WHOLE_FRAME = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
LINE = re.compile(
    r"^(\S+ \S+) INFO lanterne\.runtime\.worker: worker (\S+): camera (\S+) (started|stopped|analysing)"
)


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"lanterne_worker_e2e_{secrets.token_hex(4)}"
    with admin_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def one_camera_per_shard() -> list[str]:
    """Four camera ids in four different shards: each of two workers then holds exactly two."""
    chosen: dict[int, str] = {}
    for i in range(100):
        chosen.setdefault(shard_of(f"cam-{i}", SHARDS), f"cam-{i}")
    assert len(chosen) == SHARDS
    return sorted(chosen.values())


def prepare(tmp: Path, db_url: str, cameras: list[str]) -> Path:
    cam = {
        "source": str(VIDEO / "vtest.avi"),
        "location": {"lat": 51.44, "lon": -0.94},
        "fps": 2,
        "record": "continuous",
        "zones": [{"id": "all", "polygon": WHOLE_FRAME, "events": {"zone_intrusion": {"min_seconds": 1}}}],
    }
    site = tmp / "site.yml"
    data = {
        "mode": "alerts",
        "store": {"url": db_url, "evidence_dir": str(tmp / "shared" / "evidence")},
        "recording": {"dir": str(tmp / "shared" / "recordings"), "key_file": str(tmp / "keys.json")},
        "cluster": {"shards": SHARDS, "lease_ttl_seconds": TTL},
        "cameras": [{**cam, "id": c} for c in cameras],
    }
    site.write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = load_config(site)
    now = datetime.now(UTC)
    with open_site(cfg) as opened:
        Authorisations(opened.store.engine, opened.audit, cfg.legal_end_date).add(
            "AP-CITY-1",
            legal_basis="Loi 2023-380 art. 10",
            authority="Préfecture (test)",
            valid_from=now - timedelta(hours=1),
            valid_until=now + timedelta(days=1),
            cameras=cameras,
            event_types=[EventType.ZONE_INTRUSION],
            user_id="tester",
        )
        export(cfg, opened.store.engine, tmp / "public", "tester", now)
        masks_checked(cfg, opened.audit)
    return site


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([LANTERNE, *args], stdout=out, stderr=subprocess.STDOUT)


RUNNING: dict[str, subprocess.Popen[bytes]] = {}
"""The processes that must stay up while a test waits: one that exits fails the wait at once."""


def wait_for(what: str, condition: Callable[[], object], seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while True:
        gone = [name for name, p in RUNNING.items() if p.poll() is not None]
        assert not gone, f"{what}: {', '.join(gone)} exited (see its log below)"
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.2)


def lines(logs: dict[str, Path]) -> list[tuple[datetime, str, str, str]]:
    """(time, worker, camera, what) from the workers' logs, in time order."""
    out = []
    for path in logs.values():
        for line in path.read_text(errors="replace").splitlines():
            m = LINE.match(line)
            if m:
                out.append((datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f"), m[2], m[3], m[4]))
    return sorted(out)


def owners(logs: dict[str, Path]) -> dict[str, str]:
    """Which worker analyses each camera now: it started it, saw a frame, and has not stopped it."""
    state: dict[str, tuple[str, bool]] = {}
    for _, worker, camera, what in lines(logs):
        if what == "started":
            state[camera] = (worker, False)
        elif what == "analysing" and state.get(camera, ("", False))[0] == worker:
            state[camera] = (worker, True)
        elif what == "stopped" and state.get(camera, ("", False))[0] == worker:
            del state[camera]
    return {c: w for c, (w, analysing) in state.items() if analysing}


def stream_messages(url: str) -> list[EventMessage]:
    async def read() -> list[EventMessage]:
        nc = await nats.connect(url)
        try:
            sub = await nc.jetstream().pull_subscribe("lanterne.events.>", stream=STREAM)
            out: list[EventMessage] = []
            while True:
                try:
                    batch = await sub.fetch(200, timeout=1.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    return out
                out += [EventMessage.from_bytes(m.data) for m in batch]
        finally:
            await nc.close()

    return asyncio.run(read())


def consumer_done(url: str) -> bool:
    async def info() -> bool:
        nc = await nats.connect(url)
        try:
            c = await nc.jetstream().consumer_info(STREAM, "store")
            return c.num_pending == 0 and c.num_ack_pending == 0
        finally:
            await nc.close()

    return asyncio.run(info())


def stop(proc: subprocess.Popen[bytes], seconds: float = 60.0) -> int:
    # A worker's stop joins its threads and writes the evidence still queued before it exits:
    # 30 s was exceeded once on the 2-core machine with the whole suite beside it (its log ended
    # at the leases' release); a slow evidence drain is now logged by the runner ("the evidence still queued took …").
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=seconds)


@pytest.mark.slow
def test_kill_9_of_a_worker_moves_its_cameras_and_loses_no_event(
    nats_server: NatsServer, pg_url: str, tmp_path: Path
) -> None:
    cameras = one_camera_per_shard()
    site = prepare(tmp_path, pg_url, cameras)
    cfg = load_config(site)
    url = nats_server.url
    logs = {w: tmp_path / f"{w}.log" for w in ("wA", "wB")}
    procs = RUNNING
    procs.clear()
    try:
        procs["ingest"] = spawn(["ingest", "--config", str(site), "--nats", url], tmp_path / "ingest.log")
        wait_for("the ingester", lambda: "ingest: reading" in (tmp_path / "ingest.log").read_text(), 30)
        for w, log in logs.items():
            args = ["worker", "--config", str(site), "--nats", url, "--id", w]
            procs[w] = spawn([*args, "--shards", str(SHARDS), "--ttl", str(TTL)], log)

        site_store = open_site(cfg)
        engine = site_store.store.engine

        def settled() -> dict[str, str] | None:
            now = owners(logs)
            split = sorted(now.values()) == ["wA", "wA", "wB", "wB"]
            return now if split else None

        wait_for("two cameras analysed on each worker", settled, 60)

        def ongoing_on_one_worker() -> tuple[str, list[str]] | None:
            now = owners(logs)
            with engine.connect() as conn:
                rows = conn.execute(
                    select(EventRecord.id, EventRecord.camera).where(EventRecord.ongoing)
                ).all()
            for worker in ("wA", "wB"):
                ids = [r.id for r in rows if now.get(r.camera) == worker]
                if ids and sorted(now.values()) == ["wA", "wA", "wB", "wB"]:
                    return worker, ids
            return None

        victim, left_ongoing = wait_for("an ongoing event", ongoing_on_one_worker, 40)  # type: ignore[misc]
        survivor = "wB" if victim == "wA" else "wA"
        moved = sorted(c for c, w in owners(logs).items() if w == victim)
        killed_at = datetime.now()
        dead = procs.pop(victim)
        dead.kill()  # SIGKILL: no release, no last word
        dead.wait()

        def resumed() -> list[float] | None:
            seen = {
                camera: (t - killed_at).total_seconds()
                for t, worker, camera, what in lines(logs)
                if worker == survivor and what == "analysing" and t > killed_at
            }
            return [seen[c] for c in moved] if all(c in seen for c in moved) else None

        delays = wait_for("the dead worker's cameras analysed elsewhere", resumed, 20)
        assert isinstance(delays, list)
        print(f"failover: first frame on {survivor} {max(delays):.1f} s after kill -9 ({delays})")
        assert max(delays) < 10.0, delays
        wait_for(
            "the store's health rows vouch for the moved cameras",
            lambda: all(
                (h := camera_health(engine, c)) is not None
                and h.state == "running"
                and h.lag_seconds is not None
                and h.updated_at > datetime.now(UTC) - timedelta(seconds=6)
                for c in moved
            ),
            15,
        )
        left = set(left_ongoing)

        def closed() -> list[AuditRecord] | None:
            with engine.connect() as conn:
                rows = conn.execute(select(AuditRecord).where(AuditRecord.action == "event_closed")).all()
            done = {e for r in rows for e in json.loads(r.details)["events"]} if rows else set()
            return rows if left <= done else None

        records = wait_for("the dead worker's ongoing events closed", closed, 40)
        assert isinstance(records, list)
        details = [json.loads(r.details) for r in records]
        assert all(d["reason"] == "owner_changed" and d["worker"] == survivor for d in details)
        with engine.connect() as conn:
            still = conn.execute(
                select(EventRecord.id).where(EventRecord.id.in_(left), EventRecord.ongoing)
            ).all()
        assert not still, "closed in the store as well as in the audit log"

        # Leave: the survivor stops its cameras and hands its leases back, the ingester drains.
        assert stop(procs.pop(survivor)) == 0
        wait_for("the ingester drained the stream", lambda: consumer_done(url), 30)
        assert stop(procs.pop("ingest")) == 0

        messages = stream_messages(url)
        with engine.connect() as conn:
            stored = {r.id: r.ongoing for r in conn.execute(select(EventRecord.id, EventRecord.ongoing))}
            evidence = conn.execute(select(EvidenceRecord.event_id)).all()
        last: dict[str, EventMessage] = {}
        for m in messages:
            last[m.event.id] = m
        assert messages and set(last) == set(stored), "every acknowledged event stored, nothing else"
        assert any(m.worker == survivor and m.event.camera in moved for m in messages)
        assert all(not stored[i] for i, m in last.items() if not m.event.ongoing), "ended stays ended"
        assert evidence and {e.event_id for e in evidence} <= set(stored), "snapshots recorded centrally"
        for log in logs.values():
            text = log.read_text(errors="replace")
            assert "evidence writer" not in text and "Traceback" not in text, text[-3000:]
        keys = KeyRing.load(cfg.recording.key_file)
        assert verify(site_store.store, cfg.recording.dir, keys) == [], "one hash chain per camera"
        site_store.close()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        procs.clear()
        for name in ("ingest", "wA", "wB"):
            path = tmp_path / f"{name}.log"
            if path.exists():
                sys.stderr.write(f"--- {name} (tail)\n{path.read_text(errors='replace')[-2500:]}\n")
    assert os.path.exists(tmp_path / "shared" / "recordings")
