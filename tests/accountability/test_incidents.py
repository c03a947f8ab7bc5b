"""Incidents and breaches (RK-05, SC-05), on SQLite and PostgreSQL: what the sweep opens (a silent
detector, a false-alarm spike against the detector's own history, a self-suspension, a recall
audit's misses) and what it leaves alone, the timeline and its audit records, a breach's 72-hour
clock, the notification templates, and the public page's counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from lanterne.accountability.alerts import acknowledge, dismiss
from lanterne.accountability.cameras import CameraHealth, record_health
from lanterne.accountability.incidents import (
    SILENT_AFTER,
    IncidentConflict,
    IncidentError,
    Incidents,
    IncidentSweep,
    monthly_counts,
    open_breach,
    spike,
    template,
)
from lanterne.accountability.suspension import Suspensions
from lanterne.accountability.transparency import public_data, render_html
from lanterne.audit import Action, AuditLog
from lanterne.config import Config, parse_config
from lanterne.config.schema import SuspensionSettings
from lanterne.core.types import Event, EventType
from lanterne.runtime.demo import DEMO_CONFIG
from lanterne.store import Store
from lanterne.store.tables import (
    AlertStateRecord,
    EventRecord,
    RecallAuditRecord,
    RecallMarkRecord,
    RecallWindowRecord,
)

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
CAMERAS = [
    {"id": cam, "source": f"{cam}.mp4", "location": {"lat": 48.85, "lon": 2.35}}
    for cam in ("cam1", "cam2", "cam3")
]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def audit(store: Store, tmp_path: Path) -> AuditLog:
    return AuditLog(store.engine, key_path=tmp_path / "audit.key")


@pytest.fixture
def cfg() -> Config:
    return parse_config({"site": "gare-nord", "cameras": CAMERAS})


def health(camera: str, state: str, at: datetime) -> CameraHealth:
    return CameraHealth(camera, state, 0.1, 5.0, 5.0, 0, 0, None, at)


def incidents_of(audit: AuditLog) -> list[dict[str, object]]:
    return [{"id": e.object_id, **e.details} for e in audit.entries(action=Action.INCIDENT)]


# --- the sweep ----------------------------------------------------------------------------------


def test_a_silent_detector_opens_one_incident_after_the_bound_and_its_return_is_noted(
    store: Store, audit: AuditLog, cfg: Config
) -> None:
    sweep = IncidentSweep(store.engine, audit, cfg)
    record_health(
        store.engine,
        [health("cam1", "running", T0), health("cam2", "failed", T0), health("cam3", "stopped", T0)],
    )
    # Under the bound: nothing, neither for the row left behind nor for the failing worker.
    assert sweep(T0 + SILENT_AFTER - timedelta(seconds=1)) == []
    record_health(store.engine, [health("cam2", "failed", T0 + timedelta(minutes=5))])
    opened = sweep(T0 + timedelta(minutes=5, seconds=30))
    # cam1's row was not rewritten for 5.5 min: its runner is gone. cam2 has been failing since
    # the sweep first saw it (4:59) only 31 s ago. cam3 was stopped on purpose.
    assert [(i.kind, i.cameras) for i in opened] == [("detector_silent", ("cam1",))]
    assert opened[0].owner == "unassigned" and opened[0].deadline is None
    assert "has written no health report since 2026-12-01 20:00 UTC" in opened[0].summary
    record_health(store.engine, [health("cam2", "failed", T0 + timedelta(minutes=10))])
    later = sweep(T0 + timedelta(minutes=10))
    assert [(i.kind, i.cameras) for i in later] == [("detector_silent", ("cam2",))]
    # Still silent a minute later: the same incidents, none new.
    assert sweep(T0 + timedelta(minutes=11)) == []
    assert len(Incidents(store.engine, audit).list(state="open")) == 2
    # cam1 reports again: said once on its timeline, the incident stays open for its owner.
    record_health(store.engine, [health("cam1", "running", T0 + timedelta(minutes=12))])
    sweep(T0 + timedelta(minutes=12))
    sweep(T0 + timedelta(minutes=13))
    first = Incidents(store.engine, audit).get(opened[0].id)
    assert [e.step for e in first.entries] == ["opened", "evidence"]
    assert first.entries[1].body == "camera cam1 reports again at 2026-12-01 20:12 UTC" and first.is_open
    steps = [(d["id"], d["step"]) for d in incidents_of(audit)]
    assert steps == [
        (str(opened[0].id), "opened"),
        (str(later[0].id), "opened"),
        (str(opened[0].id), "evidence"),
    ]


@pytest.mark.parametrize(
    ("dismissed", "history", "expected"),
    [
        (5, 0, True),  # a new detector: five dismissals in an hour is already a spike
        (4, 0, False),  # under the floor
        (12, 14, True),  # two a day, twelve this hour
        (7, 336, False),  # two an hour is usual: seven is under four times that
        (8, 336, True),
    ],
)
def test_a_spike_is_judged_against_the_detectors_own_history(
    dismissed: int, history: int, expected: bool
) -> None:
    assert spike(dismissed=dismissed, history=history, history_hours=168) is expected


def _bulk_dismissals(store: Store, camera: str, type_: EventType, times: list[datetime]) -> None:
    """Past decisions, written straight into the tables: hundreds of audited decisions would take
    minutes, and only the counts over time matter here."""
    with store.engine.begin() as conn:
        for n, at in enumerate(times):
            id_ = f"{camera}-{type_}-h{n}"
            conn.execute(
                insert(EventRecord).values(
                    id=id_,
                    type=str(type_),
                    camera=camera,
                    zone="hall",
                    start_ts=at,
                    end_ts=at,
                    start_offset=0.0,
                    end_offset=1.0,
                    confidence=0.5,
                    x0=0.1,
                    y0=0.1,
                    x1=0.2,
                    y1=0.2,
                    object_class="person",
                    ongoing=False,
                    model_hash="m",
                    config_hash="c",
                    mode="alerts",
                    created_at=at,
                    state="dismissed",
                )
            )
            conn.execute(
                insert(AlertStateRecord).values(
                    event_id=id_, state="dismissed", user_id="op1", ts=at, reason="street_furniture"
                )
            )


def _dismissed_now(
    store: Store, audit: AuditLog, camera: str, type_: EventType, n: int, end: datetime
) -> None:
    for k in range(n):
        at = end - timedelta(minutes=50) + timedelta(minutes=k)
        id_ = f"{camera}-{type_}-{k}"
        store.upsert_event(
            Event(id_, type_, camera, "hall", 0.0, 4.0, 0.6, (0.1, 0.1, 0.2, 0.3)), at, "alerts"
        )
        acknowledge(store.engine, audit, id_, "op1", at)
        dismiss(store.engine, audit, id_, "op1", at, "reflection_or_light")


def test_dismissals_well_above_their_own_history_open_a_false_alarm_spike(
    store: Store, audit: AuditLog, cfg: Config
) -> None:
    now = T0
    week = [now - timedelta(hours=1, minutes=30) - timedelta(minutes=30 * k) for k in range(300)]
    _bulk_dismissals(store, "cam2", EventType.ABANDONED_OBJECT, week)  # ~1.8 an hour is usual there
    _dismissed_now(store, audit, "cam1", EventType.ABANDONED_OBJECT, 6, now)  # usually none
    _dismissed_now(store, audit, "cam2", EventType.ABANDONED_OBJECT, 6, now)  # its usual rate, about
    opened = IncidentSweep(store.engine, audit, cfg)(now)
    assert [(i.kind, i.cameras, i.detectors) for i in opened] == [
        ("false_alarm_spike", ("cam1",), ("abandoned_object",))
    ]
    assert opened[0].summary.startswith(
        "Operators dismissed 6 abandoned_object alerts of camera cam1 in the hour"
    )
    assert opened[0].entries[0].details == {"dismissed": 6, "history": 0, "history_days": 7}
    # Measured again later (past SPIKE_EVERY): the open incident stands for it, none new.
    assert IncidentSweep(store.engine, audit, cfg)(now + timedelta(minutes=15)) == []


def test_a_self_suspension_opens_a_false_alarm_spike_once(store: Store, audit: AuditLog, cfg: Config) -> None:
    for k in range(4):
        at = T0 - timedelta(minutes=10 - k)
        store.upsert_event(
            Event(f"f{k}", EventType.FIRE, "cam3", "hall", 0.0, 4.0, 0.6, (0.1, 0.1, 0.2, 0.3)), at, "alerts"
        )
    suspensions = Suspensions(store.engine, audit, SuspensionSettings(max_alerts_per_hour=3))
    flood = suspensions.check("cam3", EventType.FIRE, T0)
    assert flood is not None and flood.cause == "alert_rate"
    suspensions.suspend("cam1", EventType.FIRE, "sup1", "lens being replaced")  # by hand: not an incident
    sweep = IncidentSweep(store.engine, audit, cfg)
    [incident] = sweep(T0 + timedelta(minutes=1))
    assert (incident.kind, incident.cameras, incident.detectors) == (
        "false_alarm_spike",
        ("cam3",),
        ("fire",),
    )
    assert "suspended itself at 2026-12-01 20:00 UTC: 4 alerts in an hour (limit 3)" in incident.summary
    Incidents(store.engine, audit).close(incident.id, "a heater in view", "zone redrawn", by="sup1")
    assert sweep(T0 + timedelta(minutes=2)) == []  # closed stays closed: the suspension was handled


def _recall_audit(store: Store, closed_at: datetime) -> int:
    """A closed recall audit of cam1 (set to detect fire and zone intrusion) with three marks: one
    found by the system, one missed, and one of a type the camera does not watch."""
    with store.engine.begin() as conn:
        audit_id = conn.execute(
            insert(RecallAuditRecord)
            .values(
                reviewer="sup1", created_by="sup1", created_at=closed_at - timedelta(hours=1),
                range_start=closed_at - timedelta(days=2), range_end=closed_at - timedelta(days=1),
                cameras=["cam1"], window_seconds=30, tolerance_seconds=5.0, seed="s", state="closed",
                closed_at=closed_at, closed_by="sup1",
            )
            .returning(RecallAuditRecord.id)
        ).scalar_one()  # fmt: skip
        start = closed_at - timedelta(days=1, hours=3)
        window_id = conn.execute(
            insert(RecallWindowRecord)
            .values(
                audit_id=audit_id, seq=1, camera="cam1", start_ts=start, end_ts=start + timedelta(seconds=30),
                reviewed_at=closed_at, watched=["zone_intrusion", "fire"], unmarked=[], unblinded=False,
            )
            .returning(RecallWindowRecord.id)
        ).scalar_one()  # fmt: skip
        for type_, matched in (("zone_intrusion", "e1"), ("fire", None), ("person_down", None)):
            conn.execute(
                insert(RecallMarkRecord).values(
                    window_id=window_id, type=type_, offset_s=3.0, created_at=closed_at, matched_event=matched
                )
            )
    return int(audit_id)


def test_a_recall_audit_that_found_a_miss_opens_one_incident_ever(
    store: Store, audit: AuditLog, cfg: Config
) -> None:
    audit_id = _recall_audit(store, T0 - timedelta(hours=2))
    _recall_audit(store, T0 - timedelta(days=40))  # closed before the look-back: left alone
    sweep = IncidentSweep(store.engine, audit, cfg)
    [incident] = sweep(T0)
    assert (incident.kind, incident.cameras, incident.detectors) == ("recall_miss", ("cam1",), ("fire",))
    assert incident.title == f"recall audit {audit_id}: 1 situation missed"
    assert incident.entries[0].details == {"recall_audit": audit_id, "missed": {"cam1/fire": 1}}
    Incidents(store.engine, audit).close(incident.id, "smoke under the lamp", "threshold reviewed", by="sup1")
    assert sweep(T0 + timedelta(minutes=1)) == []


# --- the register ------------------------------------------------------------------------------


def test_a_timeline_of_opened_note_notified_closed_each_recorded(store: Store, audit: AuditLog) -> None:
    clock = Clock(T0)
    register = Incidents(store.engine, audit, clock=clock)
    incident, new = register.open(
        "manual", "camera cam2 turned towards a window", "The camera was found pointing at a dwelling.",
        by="sup1", cameras=["cam2"], detectors=["zone_intrusion"],
    )  # fmt: skip
    assert new and incident.owner == "sup1" and incident.deadline is None
    clock.now += timedelta(minutes=5)
    register.note(incident.id, "camera stopped; maintenance called", by="sup1", owner="dpo1")
    register.notify(incident.id, "provider", "ticket 4412", by="dpo1")
    closed = register.close(
        incident.id, "bracket loosened by wind", "bracket replaced, masks re-validated", by="dpo1"
    )
    assert [e.step for e in closed.entries] == ["opened", "note", "notified", "closed"]
    assert (closed.state, closed.owner, closed.closed_by, closed.notified_at) == (
        "closed",
        "dpo1",
        "dpo1",
        None,
    )
    records = audit.entries(action=Action.INCIDENT)
    assert [(e.user_id, e.details["step"]) for e in records] == [
        ("sup1", "opened"), ("sup1", "note"), ("dpo1", "notified"), ("dpo1", "closed"),
    ]  # fmt: skip
    assert (
        records[1].purpose == "camera stopped; maintenance called" and records[1].details["owner"] == "dpo1"
    )
    assert records[2].recipient == "provider" and records[2].details["reference"] == "ticket 4412"
    with pytest.raises(IncidentConflict, match="was closed by dpo1"):
        register.close(incident.id, "again", "again", by="dpo1")
    other, _ = register.open("manual", "a second one", "summary", by="u")
    with pytest.raises(IncidentError, match="the cause is empty; say it with --cause"):
        register.close(other.id, " ", "remedy", by="u")
    with pytest.raises(IncidentError, match="--to 'press'"):
        register.notify(incident.id, "press", "x", by="dpo1")
    assert len(audit.entries(action=Action.INCIDENT)) == 5  # refused steps leave no record


def test_a_breach_runs_a_72_hour_clock_and_verify_findings_open_it_once(
    store: Store, audit: AuditLog
) -> None:
    problem = "records 812-815 missing: witness signed head 815 at 2026-12-01 19:42:00 UTC"
    breach, new = open_breach(store.engine, audit, problem, 812, now=T0)
    assert new and breach.kind == "breach" and breach.deadline == T0 + timedelta(hours=72)
    assert not breach.overdue(T0 + timedelta(hours=72)) and breach.overdue(
        T0 + timedelta(hours=72, seconds=1)
    )
    text = template(breach, site="gare-nord", dpo_contact="dpo@ville.example", now=T0 + timedelta(hours=73))
    for heading in (
        "## 1. Organisme", "## 2. Nature de la violation", "## 3. Date et circonstances", "## 4. Données concernées",
        "## 5. Personnes concernées", "## 6. Conséquences probables", "## 7. Mesures prises ou envisagées",
        "## 8. Information des personnes concernées", "## 9. Délégué à la protection des données",
        "## 10. Motifs du retard",
    ):  # fmt: skip
        assert heading in text
    assert "Deadline: 2026-12-04 20:00 UTC. **OVERDUE.**" in text and problem in text
    # Told in time: the clock stops and the late section goes.
    register = Incidents(store.engine, audit, clock=Clock(T0 + timedelta(hours=20)))
    told = register.notify(breach.id, "authority", "CNIL receipt 2026-123456", by="dpo1")
    assert told.notified_at == T0 + timedelta(hours=20) and not told.overdue(T0 + timedelta(days=10))
    assert "Motifs du retard" not in template(told, site="gare-nord", now=T0 + timedelta(days=10))
    # While it is open, the same tampering read after more records were written is evidence on it.
    moved = "records 813-815 missing: witness signed head 815 at 2026-12-01 19:42:00 UTC"
    same, new = open_breach(store.engine, audit, moved, 813, now=T0 + timedelta(hours=21))
    assert (same.id, new, [e.step for e in same.entries]) == (
        breach.id,
        False,
        ["opened", "notified", "evidence"],
    )
    assert (
        open_breach(store.engine, audit, moved, 813, now=T0 + timedelta(hours=22))[0].entries == same.entries
    )
    register.close(
        breach.id, "an administrator deleted records", "access revoked, witness on another host", by="dpo1"
    )
    # The log stays broken: the same finding returns the breach already recorded, even closed.
    again, new = open_breach(store.engine, audit, problem, 812, now=T0 + timedelta(days=3))
    assert (again.id, new) == (breach.id, False)
    late, _ = open_breach(store.engine, audit, "record 7: content altered (hash mismatch)", 7, now=T0)
    assert late.id != breach.id and [d["step"] for d in incidents_of(audit)].count("opened") == 2


def test_the_malfunction_report_says_what_when_where_effects_and_measures(
    store: Store, audit: AuditLog
) -> None:
    register = Incidents(store.engine, audit, clock=Clock(T0))
    i, _ = register.open(
        "detector_silent", "camera cam1: detector silent", "Camera cam1 has been failed since 20:00.",
        by="system", cameras=["cam1"], detected_at=T0 - timedelta(minutes=6),
    )  # fmt: skip
    i = register.note(i.id, "worker restarted by hand", by="sup1")
    text = template(i, site="gare-nord", controller="Ville de Paris", dpo_contact="dpo@ville.example", now=T0)
    assert text.startswith(f"# Incident report {i.id}: camera cam1: detector silent\n")
    for part in (
        "## What happened\nDetector silent. Camera cam1 has been failed since 20:00.",
        "## When\nDetected 2026-12-01 19:54 UTC; recorded 2026-12-01 20:00 UTC; still open.",
        "- cameras: cam1\n- detectors: none in particular",
        "## Effects\nWhile silent, the detector analysed nothing",
        "## Measures taken\n- 2026-12-01 20:00 UTC: worker restarted by hand",
        "Cause: under investigation.",
        "Ville de Paris; data-protection officer: dpo@ville.example.",
    ):
        assert part in text
    assert "sup1" not in text  # who wrote a note is in the timeline, not in what is sent out


def test_the_public_page_counts_incidents_by_kind_and_month_without_details(
    store: Store, audit: AuditLog
) -> None:
    for when, kind in (
        (T0, "manual"),
        (T0, "manual"),
        (T0 - timedelta(days=31), "breach"),
        (T0, "detector_silent"),
    ):
        Incidents(store.engine, audit, clock=Clock(when)).open(
            kind, f"secret title {kind}", "secret summary", by="u"
        )
    counts = [(m.month, m.kind, m.opened) for m in monthly_counts(store.engine, T0 + timedelta(hours=1))]
    assert counts == [("2026-12", "detector_silent", 1), ("2026-12", "manual", 2), ("2026-10", "breach", 1)]
    data = public_data(parse_config(DEMO_CONFIG), store.engine, T0 + timedelta(hours=1))
    assert [(m.month, m.kind, m.opened) for m in data.incidents] == counts
    html = render_html(data)
    assert 'data-month="2026-10" data-kind="breach"' in html and "secret" not in html


def test_an_incident_the_audit_log_refuses_is_not_opened(store: Store, tmp_path: Path) -> None:
    from lanterne.core.errors import LanterneError
    from lanterne.store import create_engine_for

    unmigrated = create_engine_for(f"sqlite:///{tmp_path / 'elsewhere.db'}")  # no audit table there
    with pytest.raises(LanterneError):
        Incidents(store.engine, AuditLog(unmigrated)).open("manual", "t", "s", by="sup1")
    unmigrated.dispose()
    assert Incidents(store.engine, AuditLog(store.engine)).list() == []
