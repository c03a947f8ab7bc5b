"""Retention with a controlled clock: at day 29 nothing goes, at day 31 files and rows are gone,
counted in the anonymous aggregates and recorded in the audit log; a held event stays until its
hold is lifted, and the database refuses to delete it even by hand."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from lanterne.accountability import retention
from lanterne.accountability.retention import RetentionError, RetentionScheduler, hold, holds, lift, purge
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import parse_config
from lanterne.config.schema import RetentionSettings
from lanterne.core.errors import ConfigError
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from lanterne.store.tables import AuditRecord

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""When the test events end. Fixed in the past, so real file times are never older than a cut-off."""
SETTINGS = RetentionSettings(evidence_days=30)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Site:
    store: Store
    audit: AuditLog
    root: Path
    clock: Clock

    def purge(self, day: float) -> retention.PurgeReport:
        self.clock.now = T0 + timedelta(days=day)
        return purge(self.store, self.root, SETTINGS, self.audit, self.clock.now)

    def audit_rows(self, action: Action) -> list[AuditRecord]:
        with self.store.engine.connect() as conn:
            q = select(AuditRecord).where(AuditRecord.action == str(action)).order_by(AuditRecord.seq)
            return list(conn.execute(q))


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def add_event(
    site: Site,
    id_: str,
    camera: str = "cam1",
    type_: EventType = EventType.ZONE_INTRUSION,
    end: datetime = T0,
    files: tuple[str, ...] = ("snapshot", "clip"),
) -> list[Path]:
    """An event ending at `end` with real files under the evidence root, recorded like the writer does."""
    event = Event(id_, type_, camera, "quay", 0.0, 5.0, 0.7, (0.1, 0.2, 0.3, 0.4), ongoing=False)
    site.store.upsert_event(event, end - timedelta(seconds=5), "alerts")
    paths = []
    for i, kind in enumerate(files):
        rel = f"{camera}/{end.date().isoformat()}/{id_}-{kind}.{'jpg' if kind == 'snapshot' else 'mp4'}"
        data = jpeg(zlib.crc32(f"{id_}/{i}".encode()))
        path = site.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        site.store.add_evidence(id_, kind, rel, hashlib.sha256(data).hexdigest(), len(data))
        paths.append(path)
    return paths


def age(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    store = Store.open(db_url)
    clock = Clock(T0)
    audit = AuditLog(store.engine, clock=clock)
    root = tmp_path / "evidence"
    root.mkdir()
    yield Site(store, audit, root, clock)
    store.close()


def test_day_29_keeps_everything_and_day_31_deletes_files_rows_and_records_it(site: Site) -> None:
    a = add_event(site, "ev-a")
    b = add_event(site, "ev-b", camera="cam2", type_=EventType.FIRE, files=("snapshot",))
    add_event(site, "ev-c")  # same day, camera and type as ev-a: counted together
    recent = add_event(site, "ev-recent", end=T0 + timedelta(days=2))

    r29 = site.purge(29)
    assert (r29.events_deleted, r29.files_deleted, r29.overdue_remaining) == (0, 0, 0)
    assert all(p.exists() for p in a + b + recent)
    assert len(site.store.events()) == 4

    size = sum(p.stat().st_size for p in a + b) + sum(
        p.stat().st_size for p in site.root.glob("cam1/*/ev-c-*")
    )
    r31 = site.purge(31)
    assert (r31.events_deleted, r31.files_deleted, r31.held_kept, r31.overdue_remaining) == (3, 5, 0, 0)
    assert r31.bytes_freed == size
    assert r31.errors == () and r31.missing == ()
    assert not any(p.exists() for p in a + b)
    assert all(p.exists() for p in recent)
    assert [e.id for e in site.store.events()] == ["ev-recent"]
    for gone in ("ev-a", "ev-b", "ev-c"):
        assert site.store.event(gone) is None
        assert site.store.evidence_for(gone) == []
    assert site.store.event_aggregates() == [
        (date(2026, 3, 1), "cam1", "zone_intrusion", "alerts", 2),
        (date(2026, 3, 1), "cam2", "fire", "alerts", 1),
    ]
    records = site.audit_rows(Action.RETENTION_DELETE)
    per_event = {r.object_id: json.loads(r.details) for r in records if r.object_type == "event"}
    assert sorted(per_event) == ["ev-a", "ev-b", "ev-c"]
    assert per_event["ev-b"]["type"] == "fire" and per_event["ev-b"]["camera"] == "cam2"
    files = per_event["ev-a"]["files"]
    assert [f["file"] for f in files] == [
        "cam1/2026-03-01/ev-a-snapshot.jpg",
        "cam1/2026-03-01/ev-a-clip.mp4",
    ]
    assert all(len(f["sha256"]) == 64 and f["result"] == "deleted" for f in files)
    summaries = [json.loads(r.details) for r in records if r.object_type == "retention"]
    assert len(summaries) == 2  # one proof per purge, even when nothing was due
    assert summaries[-1]["overdue_remaining"] == 0 and summaries[-1]["events_deleted"] == 3
    # The empty day folder went with its files; the recent one stays.
    assert not (site.root / "cam2" / "2026-03-01").exists()
    assert recent[0].parent.is_dir()


def test_the_proof_flags_an_overdue_event_left_behind(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """RT-05: the proof re-counts instead of trusting the loop, so a purge that skipped an event says so."""
    add_event(site, "ev-a")
    monkeypatch.setattr(site.store, "overdue_event_ids", lambda *a, **k: [])
    report = site.purge(31)
    assert report.events_deleted == 0 and report.overdue_remaining == 1
    proof = json.loads(site.audit_rows(Action.RETENTION_DELETE)[-1].details)
    assert proof["overdue_remaining"] == 1


def test_a_held_event_stays_past_the_limit_until_its_hold_is_lifted(site: Site) -> None:
    files = add_event(site, "ev-held")
    add_event(site, "ev-other")
    h = hold(site.store, site.audit, "ev-held", "PV 2026/00123 TJ Lyon", "requisition", "opj-7", T0)
    assert h.active and h.judicial_reference == "PV 2026/00123 TJ Lyon"

    for day in (31, 60):
        report = site.purge(day)
        assert report.held_kept == 1 and report.overdue_remaining == 0
        assert site.store.event("ev-held") is not None
        assert all(p.exists() for p in files)
    assert site.store.event("ev-other") is None

    lifted = lift(site.store, site.audit, h.id, "opj-7", T0 + timedelta(days=61))
    assert not lifted.active and lifted.lifted_by == "opj-7"
    report = site.purge(62)
    assert (report.events_deleted, report.held_kept) == (1, 0)
    assert site.store.event("ev-held") is None and not any(p.exists() for p in files)
    ops = [json.loads(r.details)["operation"] for r in site.audit_rows(Action.LEGAL_HOLD)]
    assert ops == ["add", "lift"]
    assert [x.active for x in holds(site.store)] == [False]


@pytest.mark.parametrize(
    ("event_id", "reference", "reason", "message"),
    [
        ("ev", "", "requisition", "needs the judicial reference"),
        ("ev", "   ", "requisition", "needs the judicial reference"),
        ("ev", "PV 1", " ", "needs a reason"),
        ("nope", "PV 1", "requisition", "event 'nope' does not exist"),
    ],
)
def test_a_hold_needs_a_reference_a_reason_and_an_event(
    site: Site, event_id: str, reference: str, reason: str, message: str
) -> None:
    add_event(site, "ev")
    with pytest.raises(RetentionError, match=message):
        hold(site.store, site.audit, event_id, reference, reason, "opj-7", T0)
    assert holds(site.store) == []
    assert site.audit_rows(Action.LEGAL_HOLD) == []


def test_lifting_an_unknown_or_lifted_hold_is_refused(site: Site) -> None:
    add_event(site, "ev")
    h = hold(site.store, site.audit, "ev", "PV 1", "requisition", "opj-7", T0)
    with pytest.raises(RetentionError, match="does not exist"):
        lift(site.store, site.audit, h.id + 1, "opj-7", T0)
    lift(site.store, site.audit, h.id, "opj-7", T0)
    with pytest.raises(RetentionError, match="already lifted"):
        lift(site.store, site.audit, h.id, "opj-7", T0)


def test_the_database_refuses_to_delete_a_held_event_even_by_raw_sql(site: Site) -> None:
    add_event(site, "ev")
    h = hold(site.store, site.audit, "ev", "PV 1", "requisition", "opj-7", T0)
    with pytest.raises(DBAPIError, match="legal hold"), site.store.engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE id = 'ev'"))
    assert site.store.event("ev") is not None
    lift(site.store, site.audit, h.id, "opj-7", T0)
    with site.store.engine.begin() as conn:
        assert conn.execute(text("DELETE FROM events WHERE id = 'ev'")).rowcount == 1


def test_a_hold_placed_after_the_query_still_wins(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The purge chose the event, then a hold arrived before the delete: the trigger refuses it."""
    files = add_event(site, "ev")
    chosen = site.store.overdue_event_ids

    def choose_then_hold(*a: object, **k: object) -> list[str]:
        ids = chosen(*a, **k)  # type: ignore[arg-type]
        if ids:
            hold(site.store, site.audit, "ev", "PV 1", "late requisition", "opj-7", T0)
        return ids

    monkeypatch.setattr(site.store, "overdue_event_ids", choose_then_hold)
    report = site.purge(31)
    assert (report.events_deleted, report.held_kept, report.errors) == (0, 1, ())
    assert site.store.event("ev") is not None and all(p.exists() for p in files)
    assert site.store.event_aggregates() == []  # the count rolled back with the refused delete


def test_orphan_files_past_the_limit_are_deleted_and_recorded(site: Site) -> None:
    kept = add_event(site, "ev-recent", end=T0 + timedelta(days=20))
    for p in kept:
        age(p, T0 - timedelta(days=40))  # referenced by a live row: never an orphan, however old
    day = site.root / "cam1" / "2026-01-10"
    day.mkdir(parents=True)
    old = day / "lost-snapshot.jpg"
    old.write_bytes(jpeg(1))
    part = day / "lost-clip.mp4.part"
    part.write_bytes(b"\x00" * 100)
    fresh = site.root / "cam1" / "2026-03-30" / "being-written.mp4.part"
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"\x00" * 10)
    for p in (old, part):
        age(p, T0 - timedelta(days=20))
    age(fresh, T0 + timedelta(days=30, hours=23))

    report = site.purge(31)
    assert report.orphans_deleted == 2 and report.files_deleted == 2
    assert report.bytes_freed == len(jpeg(1)) + 100
    assert not old.exists() and not part.exists() and not day.exists()
    assert fresh.exists() and all(p.exists() for p in kept)
    recorded = [
        json.loads(r.details) for r in site.audit_rows(Action.RETENTION_DELETE) if r.object_type == "file"
    ]
    assert sorted(d["file"] for d in recorded) == [
        "cam1/2026-01-10/lost-clip.mp4.part",
        "cam1/2026-01-10/lost-snapshot.jpg",
    ]
    assert {d["reason"] for d in recorded} == {"orphan"}
    assert hashlib.sha256(jpeg(1)).hexdigest() in {d["sha256"] for d in recorded}


def test_a_missing_file_is_reported_and_the_purge_goes_on(site: Site) -> None:
    a = add_event(site, "ev-a")
    b = add_event(site, "ev-b")
    a[0].unlink()
    report = site.purge(31)
    assert report.events_deleted == 2 and report.files_deleted == 3
    assert report.missing == ("cam1/2026-03-01/ev-a-snapshot.jpg",) and report.errors == ()
    assert not any(p.exists() for p in a + b)
    assert site.store.events() == []
    details = json.loads(
        next(r for r in site.audit_rows(Action.RETENTION_DELETE) if r.object_id == "ev-a").details
    )
    assert [f["result"] for f in details["files"]] == ["already missing", "deleted"]


@pytest.mark.parametrize(
    "bad", ["../outside.jpg", "cam1/../../outside.jpg", "/tmp/outside.jpg", "link/x.jpg"]
)
def test_a_path_leading_outside_the_evidence_root_is_never_deleted(
    site: Site, tmp_path: Path, bad: str
) -> None:
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(jpeg(2))
    (site.root / "link").symlink_to(tmp_path)  # a link inside the root to the folder outside
    (tmp_path / "x.jpg").write_bytes(jpeg(3))
    target = Path(bad) if bad.startswith("/") else None
    if target is not None:
        bad = str(outside)  # an absolute path, whatever the tmp dir
    add_event(site, "ev", files=())
    site.store.add_evidence("ev", "snapshot", bad, "0" * 64, 1)
    report = site.purge(31)
    assert report.events_deleted == 1 and len(report.errors) == 1
    assert "evidence directory" in report.errors[0]
    assert outside.exists() and (tmp_path / "x.jpg").exists()


def test_more_than_30_days_is_refused_at_load() -> None:
    data = {
        "retention": {"evidence_days": 31},
        "cameras": [{"id": "a", "source": "x.mp4", "location": {"lat": 45.0, "lon": 4.0}}],
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert str(err.value) == (
        "configuration: retention.evidence_days: recordings may not be kept more than 30 days "
        "(CSI L252-5); use a legal hold for evidence a court needs"
    )
    data["retention"] = {"evidence_days": 30}
    assert parse_config(data).retention.evidence_days == 30


def test_the_scheduler_purges_at_start_and_on_every_tick_and_survives_a_failure(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_event(site, "ev")
    clock = Clock(T0 + timedelta(days=31))
    real = retention.purge
    calls: list[datetime] = []
    third = threading.Event()

    def flaky(*args: object, **kw: object) -> retention.PurgeReport:
        calls.append(args[4])  # type: ignore[arg-type]
        if len(calls) >= 3:
            third.set()
        if len(calls) == 1:
            raise OSError("disk unavailable")
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(retention, "purge", flaky)
    scheduler = RetentionScheduler(site.store, site.root, SETTINGS, site.audit, clock=clock, interval_s=0.02)
    scheduler.start()
    try:
        assert third.wait(10)
    finally:
        scheduler.stop()
    assert scheduler.failures == 1 and scheduler.runs >= 3
    assert scheduler.last_report is not None and scheduler.last_report.overdue_remaining == 0
    assert calls[0] == clock.now
    assert site.store.event("ev") is None


def test_the_scheduler_stops_promptly_between_ticks(site: Site) -> None:
    scheduler = RetentionScheduler(site.store, site.root, SETTINGS, site.audit, clock=Clock(T0))
    assert scheduler.interval_s == SETTINGS.purge_interval_minutes * 60
    scheduler.start()
    started = datetime.now(UTC)
    scheduler.stop(timeout=10)
    assert (datetime.now(UTC) - started).total_seconds() < 5
    assert scheduler.runs == 1  # the run at start, then it waited for the next tick and was stopped


# --- CLI ------------------------------------------------------------------------------------

cli = CliRunner()


def write_config(tmp: Path, db_url: str) -> Path:
    data = {
        "store": {"url": db_url, "evidence_dir": "evidence"},
        "audit": {"key_path": "audit.key"},
        "cameras": [{"id": "cam1", "source": "x.mp4", "location": {"lat": 45.0, "lon": 4.0}}],
    }
    path = tmp / "site.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_purge_and_holds(db_url: str, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, db_url)
    store = Store.open(db_url)
    now = datetime.now(UTC)
    site = Site(store, AuditLog(store.engine), tmp_path / "evidence", Clock(now))
    old = add_event(site, "ev-old", end=now - timedelta(days=31))
    held = add_event(site, "ev-held", end=now - timedelta(days=31))
    young = add_event(site, "ev-young", end=now - timedelta(days=29))
    store.close()

    r = cli.invoke(app, ["hold", "add", "ev-held", "--reference", " ", "--reason", "x", "--config", str(cfg)])
    assert r.exit_code == 2 and "judicial reference" in r.output and "Traceback" not in r.output
    r = cli.invoke(app, ["hold", "add", "ev-held", "--reason", "requisition", "--config", str(cfg)])
    assert r.exit_code == 2  # --reference is required by the command line itself
    args = ["hold", "add", "ev-held", "--reference", "PV 42", "--reason", "requisition"]
    r = cli.invoke(app, [*args, "--config", str(cfg), "--user", "opj-7"])
    assert r.exit_code == 0, r.output
    assert "hold 1 placed on event ev-held" in r.output

    future = (now + timedelta(days=2)).isoformat()
    r = cli.invoke(app, ["retention", "purge", "--config", str(cfg), "--now", future])
    assert r.exit_code == 2 and "is in the future" in r.output
    assert all(p.exists() for p in old)

    r = cli.invoke(app, ["retention", "purge", "--config", str(cfg), "--user", "ops-1"])
    assert r.exit_code == 0, r.output
    assert "events deleted: 1" in r.output and "held events kept: 1" in r.output
    assert "overdue remaining: 0" in r.output
    assert not any(p.exists() for p in old) and all(p.exists() for p in held + young)

    r = cli.invoke(app, ["hold", "list", "--config", str(cfg)])
    assert r.exit_code == 0 and "PV 42" in r.output and "active" in r.output
    r = cli.invoke(app, ["hold", "lift", "1", "--config", str(cfg), "--user", "opj-7"])
    assert r.exit_code == 0 and "lifted" in r.output
    r = cli.invoke(app, ["hold", "lift", "1", "--config", str(cfg)])
    assert r.exit_code == 2 and "already lifted" in r.output
    r = cli.invoke(app, ["retention", "purge", "--config", str(cfg)])
    assert r.exit_code == 0 and "events deleted: 1" in r.output
    assert not any(p.exists() for p in held) and all(p.exists() for p in young)

    store = Store.open(db_url)
    try:
        with store.engine.connect() as conn:
            users = {
                (r.user_id, r.action) for r in conn.execute(select(AuditRecord.user_id, AuditRecord.action))
            }
    finally:
        store.close()
    assert ("ops-1", "retention_delete") in users and ("opj-7", "legal_hold") in users


def test_cli_purge_exits_1_when_something_could_not_be_deleted(sqlite_url: str, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, sqlite_url)
    store = Store.open(sqlite_url)
    site = Site(store, AuditLog(store.engine), tmp_path / "evidence", Clock(T0))
    add_event(site, "ev", files=())
    store.add_evidence("ev", "snapshot", "../escape.jpg", "0" * 64, 1)
    store.close()
    r = cli.invoke(app, ["retention", "purge", "--config", str(cfg)])
    assert r.exit_code == 1 and "error: ../escape.jpg" in r.output


def test_cli_bad_now_and_missing_config(tmp_path: Path, sqlite_url: str) -> None:
    cfg = write_config(tmp_path, sqlite_url)
    r = cli.invoke(app, ["retention", "purge", "--config", str(cfg), "--now", "yesterday"])
    assert r.exit_code == 2 and "not an ISO 8601 time" in r.output
    r = cli.invoke(app, ["retention", "purge", "--config", str(cfg), "--now", "2026-01-01T00:00:00"])
    assert r.exit_code == 2 and "no time zone" in r.output
    r = cli.invoke(app, ["hold", "list", "--config", str(tmp_path / "missing.yml")])
    assert r.exit_code == 2 and "configuration file not found" in r.output
