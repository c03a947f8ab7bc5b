"""Recording retention and holds on real segments (vtest.avi through the recorder), on SQLite and
PostgreSQL: 30 days at most (RT-01), held ranges survive (RT-02), every deletion and a proof are
on the audit log (RT-05), the storage cap and `events` cameras delete oldest or far-from-event
segments first, and the chain still verifies after each purge."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from sqlalchemy import delete

from lanterne.accountability.recordings import (
    RecordingHoldError,
    lift_hold,
    place_hold,
    purge_events_only,
    purge_recordings,
    recording_holds,
)
from lanterne.audit import Action, AuditLog
from lanterne.config import parse_config
from lanterne.config.schema import RecordingSettings
from lanterne.core.errors import ConfigError
from lanterne.core.types import Event, EventType
from lanterne.runtime.recording import open_recorder
from lanterne.store import Store, StoreError
from lanterne.store.tables import RecordingSegmentRecord
from lanterne.video.recording import KeyRing, segments, verify
from tests.support.video import VIDEO

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=40)
"""vtest.avi recorded 40 days ago: four segments at +0, +25, +50, +75 s (one keyframe every 25 s)."""


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[tuple[Store, AuditLog, KeyRing, RecordingSettings]]:
    store = Store.open(db_url)
    settings = RecordingSettings(dir=tmp_path / "rec", key_file=tmp_path / "keys.json", segment_seconds=5)
    yield store, AuditLog(store.engine), KeyRing.load_or_create(settings.key_file), settings
    store.close()


def record(
    site: tuple[Store, AuditLog, KeyRing, RecordingSettings], origin: datetime, camera: str = "cam1"
) -> None:
    store, audit, keys, settings = site
    rec = open_recorder(settings, store, audit, keys=keys)
    with av.open(str(VIDEO / "vtest.avi")) as src:
        cam = rec.open(camera, src.streams.video[0], origin)
        for p in src.demux(src.streams.video[0]):
            cam.push(p)
        cam.close()


def deletions(audit: AuditLog) -> list[dict[str, object]]:
    return [
        {"camera": e.object_id, **e.details}
        for e in audit.entries(action=Action.RETENTION_DELETE)
        if e.object_type == "recording" and e.object_id != "summary"
    ]


@pytest.mark.parametrize(("days", "ok"), [(30, True), (31, False)])
def test_more_than_30_days_is_refused_at_load(days: int, ok: bool) -> None:
    data = {
        "recording": {"retention_days": days},
        "cameras": [{"id": "c", "source": "x.mp4", "location": {"lat": 0, "lon": 0}}],
    }
    if ok:
        assert parse_config(data).recording.retention_days == 30
    else:
        with pytest.raises(
            ConfigError, match=r"may not be kept more than 30 days \(CSI L252-5\); use a legal hold"
        ):
            parse_config(data)


def test_expired_segments_go_held_ones_stay_and_everything_is_on_the_record(site) -> None:  # type: ignore[no-untyped-def]
    store, audit, keys, settings = site
    record(site, OLD)
    record(site, NOW - timedelta(days=1))  # recent: kept
    old = segments(store, "cam1", OLD, OLD + timedelta(hours=1))
    assert len(old) == 4
    hold = place_hold(
        store,
        audit,
        "cam1",
        OLD + timedelta(seconds=30),
        OLD + timedelta(seconds=40),
        "PV 2026/123",
        "enquête",
        "sup",
        NOW,
    )
    # The database itself refuses to delete the held segment.
    with pytest.raises((StoreError, Exception), match="legal hold"), store.engine.begin() as conn:
        conn.execute(delete(RecordingSegmentRecord).where(RecordingSegmentRecord.id == old[1].id))
    report = purge_recordings(store, settings, {"cam1": "continuous"}, audit, NOW)
    assert (report.deleted, report.held_kept, report.overdue_remaining) == (3, 1, 0)
    assert report.by_reason == {"retention": 3}
    left = segments(store, "cam1", OLD, NOW)
    assert [r.id for r in left][:1] == [old[1].id] and len(left) == 5
    for r in old:
        assert (settings.dir / r.path).exists() == (r.id == old[1].id)
    [rec] = deletions(audit)
    assert rec["camera"] == "cam1" and rec["reason"] == "retention" and rec["segments"] == 3
    assert rec["seq_ranges"] == [[1, 1], [3, 4]]
    [proof] = [e for e in audit.entries(action=Action.RETENTION_DELETE) if e.object_id == "summary"]
    assert proof.details["overdue_remaining"] == 0 and proof.details["held_kept"] == 1
    # The chain still verifies: the missing sequence numbers are accounted for by the record.
    assert verify(store, settings.dir, keys) == []
    # Lifted, the hold no longer protects: the next purge takes it.
    lift_hold(store, audit, hold.id, "sup", NOW)
    assert purge_recordings(store, settings, {"cam1": "continuous"}, audit, NOW).deleted == 1
    assert [h.active for h in recording_holds(store)] == [False]
    assert [e.details["operation"] for e in audit.entries(action=Action.LEGAL_HOLD)] == ["add", "lift"]


def test_a_hold_on_every_camera_keeps_each_cameras_segments(site) -> None:  # type: ignore[no-untyped-def]
    store, audit, _, settings = site
    record(site, OLD, "cam1")
    record(site, OLD, "cam2")
    place_hold(store, audit, None, OLD, OLD + timedelta(seconds=10), "PV 2026/9", "réquisition", "sup", NOW)
    report = purge_recordings(store, settings, {}, audit, NOW)
    assert report.deleted == 6 and report.held_kept == 2
    assert {
        (r.camera, r.seq) for r in segments(store, "cam1", OLD, NOW) + segments(store, "cam2", OLD, NOW)
    } == {
        ("cam1", 1),
        ("cam2", 1),
    }


@pytest.mark.parametrize(
    ("reference", "reason", "msg"), [(" ", "x", "judicial reference"), ("PV 1", "", "needs a reason")]
)
def test_a_hold_needs_a_reference_and_a_reason(site, reference: str, reason: str, msg: str) -> None:  # type: ignore[no-untyped-def]
    store, audit, _, _ = site
    with pytest.raises(RecordingHoldError, match=msg):
        place_hold(store, audit, "cam1", OLD, NOW, reference, reason, "sup", NOW)
    assert recording_holds(store) == []


def test_storage_cap_deletes_the_oldest_first_and_warns(site, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    store, audit, keys, settings = site
    record(site, NOW - timedelta(days=3), "cam1")
    record(site, NOW - timedelta(days=2), "cam2")
    rows = segments(store, "cam1", OLD, NOW) + segments(store, "cam2", OLD, NOW)
    total = sum(r.size for r in rows)
    cap_bytes = total - rows[0].size - rows[1].size // 2  # two cam1 segments must go
    capped = settings.model_copy(update={"storage_cap_gb": cap_bytes / 1e9})
    with caplog.at_level(logging.WARNING):
        report = purge_recordings(store, capped, {}, audit, NOW)
    assert report.by_reason == {"storage_cap": 2} and report.total_bytes <= cap_bytes
    assert [r.seq for r in segments(store, "cam1", OLD, NOW)] == [3, 4]
    assert any("storage cap" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    [rec] = deletions(audit)
    assert rec["reason"] == "storage_cap" and rec["seq_ranges"] == [[1, 2]]
    assert verify(store, settings.dir, keys) == []


def test_events_cameras_keep_only_the_segments_around_events(site) -> None:  # type: ignore[no-untyped-def]
    store, audit, keys, settings = site
    origin = NOW - timedelta(hours=1)
    record(site, origin, "cam1")
    record(site, origin, "cam2")
    # An event at +55..+58 s on cam1: with a 2 s margin only the segment at +50..+75 is near it.
    event = Event(
        id="e1", type=EventType.PERSON_DOWN, camera="cam1", zone="z", start=55.0, end=58.0, confidence=0.9,
        region=(0.1, 0.1, 0.2, 0.2), object_class="person", model_hash="m", config_hash="c", ongoing=False,
    )  # fmt: skip
    store.upsert_event(event, origin, "alerts")
    margin = settings.model_copy(update={"event_margin_seconds": 2})
    report = purge_recordings(store, margin, {"cam1": "events", "cam2": "continuous"}, audit, NOW)
    assert report.by_reason == {"events_only": 3}
    assert [(r.start - origin).total_seconds() for r in segments(store, "cam1", origin, NOW)] == [50.0]
    assert len(segments(store, "cam2", origin, NOW)) == 4  # continuous: untouched until 30 days
    # A segment not yet older than the margin stays: an event about it may still come.
    record(site, NOW - timedelta(seconds=85), "cam3")  # its last segment ends 5.5 s before NOW
    margin = settings.model_copy(update={"event_margin_seconds": 8})
    assert purge_recordings(store, margin, {"cam3": "events"}, audit, NOW).by_reason == {"events_only": 3}
    assert [r.seq for r in segments(store, "cam3", OLD, NOW)] == [4]
    assert verify(store, settings.dir, keys) == []


def test_the_minutely_events_only_purge_deletes_without_waiting_for_the_hourly_one(site) -> None:  # type: ignore[no-untyped-def]
    store, audit, _keys, settings = site
    origin = NOW - timedelta(minutes=3)
    record(site, origin, "cam1")
    margin = settings.model_copy(update={"event_margin_seconds": 2})
    assert purge_events_only(store, margin, {"cam1": "events", "cam2": "continuous"}, audit, NOW) == 4
    assert segments(store, "cam1", OLD, NOW) == []
    [rec] = deletions(audit)
    assert rec["reason"] == "events_only" and rec["seq_ranges"] == [[1, 4]]
    # The proof stays the hourly purge's: no summary record here.
    assert [e for e in audit.entries(action=Action.RETENTION_DELETE) if e.object_id == "summary"] == []
    assert purge_events_only(store, margin, {"cam1": "continuous"}, audit, NOW) == 0
