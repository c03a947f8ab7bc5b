"""Measured precision and self-suspension (PM-01, PM-02, HO-04): figures after a scripted set of
operator decisions, over 30 days and since the start, before and after retention has deleted the
alerts; suspension by alert flood and by precision floor, a supervisor's suspension and lift, the
pipeline's cached `allowed`, and the `lanterne suspensions` commands."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.accountability.precision import MonthStat, Precision, monthly_stats, precision, precision_table
from lanterne.accountability.retention import purge
from lanterne.accountability.suspension import CACHE_S, CHECK_S, SuspensionError, Suspensions
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config.schema import RetentionSettings, SuspensionSettings
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from lanterne.store.tables import EventAggregateRecord

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AO = EventType.ABANDONED_OBJECT


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store.open(db_url)
    yield s
    s.close()


def add(
    store: Store, id_: str, at: datetime, camera: str = "cam1", type_: EventType = AO, mode: str = "alerts"
) -> None:
    store.upsert_event(Event(id_, type_, camera, "hall", 0.0, 4.0, 0.6, (0.1, 0.1, 0.2, 0.3)), at, mode)


def decide(store: Store, audit: AuditLog, id_: str, verdict: str, at: datetime) -> None:
    acknowledge(store.engine, audit, id_, "op1", at)
    if verdict == "confirm":
        confirm(store.engine, audit, id_, "op1", at, "monitoring")
    elif verdict != "ack":
        dismiss(store.engine, audit, id_, "op1", at, verdict, "a bin bag" if verdict == "other" else None)


SCRIPT = [
    *["confirm"] * 6,
    "street_furniture",
    "street_furniture",
    "reflection_or_light",
    None,  # one alert nobody decided yet
]
"""10 alerts, 6 confirmed, 3 dismissed with reasons, 1 undecided: precision 6 / 9."""


def scripted(
    store: Store, audit: AuditLog, start: datetime = T0, camera: str = "cam1", prefix: str = "a"
) -> None:
    for i, verdict in enumerate(SCRIPT):
        at = start + timedelta(minutes=7 * i)
        add(store, f"{prefix}{i}", at, camera)
        if verdict is not None:
            decide(store, audit, f"{prefix}{i}", verdict, at + timedelta(minutes=2))


EXPECTED = {
    "alerts": 10,
    "confirmed": 6,
    "dismissed": 3,
    "reasons": {"reflection_or_light": 1, "street_furniture": 2},
}


def figures(p: Precision) -> dict[str, object]:
    return {"alerts": p.alerts, "confirmed": p.confirmed, "dismissed": p.dismissed, "reasons": p.reasons}


@pytest.mark.parametrize("days", [30, None])
def test_precision_after_scripted_decisions(store: Store, days: int | None) -> None:
    audit = AuditLog(store.engine)
    scripted(store, audit)
    # Noise that must not count: a replayed clip, another camera, another detector.
    add(store, "eval", T0, mode="evaluation")
    add(store, "other-cam", T0, camera="cam2")
    add(store, "fire", T0, type_=EventType.FIRE)
    now = T0 + timedelta(days=3)
    p = precision(store.engine, camera="cam1", type=AO, now=now, days=days)
    assert figures(p) == EXPECTED
    assert p.precision == pytest.approx(0.667, abs=5e-4) and p.decided == 9
    assert p.interval == pytest.approx((0.354, 0.879), abs=5e-4)  # Wilson, PM-02
    everywhere = precision(store.engine, camera=None, type=AO, now=now, days=days)
    assert (everywhere.alerts, everywhere.confirmed) == (11, 6)
    assert precision(store.engine, camera="cam1", type=EventType.FIRE, now=now, days=days).precision is None
    table = precision_table(store.engine, now, days)
    assert [(r.camera, str(r.type), r.alerts) for r in table] == [
        ("cam1", "abandoned_object", 10),
        ("cam1", "fire", 1),
        ("cam2", "abandoned_object", 1),
    ]
    assert monthly_stats(store.engine, now) == [
        MonthStat("2026-03", AO, 11, 6, 3, EXPECTED["reasons"]),  # type: ignore[arg-type]
        MonthStat("2026-03", EventType.FIRE, 1, 0, 0, {}),
    ]


def test_window_excludes_older_and_future_alerts(store: Store) -> None:
    audit = AuditLog(store.engine)
    scripted(store, audit)
    assert precision(store.engine, camera="cam1", type=AO, now=T0 + timedelta(days=31), days=30).alerts == 0
    assert precision(store.engine, camera="cam1", type=AO, now=T0 - timedelta(hours=1), days=30).alerts == 0
    assert (
        precision(store.engine, camera="cam1", type=AO, now=T0 + timedelta(minutes=30), days=30).alerts == 5
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        precision(store.engine, camera=None, type=AO, now=datetime(2026, 3, 1), days=30)


def test_decisions_outlive_retention(store: Store, tmp_path: Path) -> None:
    """The alerts are deleted at day 31; the decision counts stay in the anonymous aggregates, so
    precision since the start is unchanged and the 30-day window no longer holds them."""
    audit = AuditLog(store.engine)
    scripted(store, audit, start=T0, prefix="old")
    later = T0 + timedelta(days=20)
    scripted(store, audit, start=later, prefix="new")
    before = precision(store.engine, camera="cam1", type=AO, now=later + timedelta(days=1), days=None)

    now = T0 + timedelta(days=31)
    report = purge(store, tmp_path / "evidence", RetentionSettings(evidence_days=30), audit, now)
    assert report.events_deleted == 10 and report.errors == ()

    with store.engine.connect() as conn:
        agg = list(conn.execute(select(*EventAggregateRecord.__table__.c)))
    assert [(a.day, a.events, a.confirmed, a.dismissed, a.dismiss_reasons) for a in agg] == [
        (date(2026, 3, 2), 10, 6, 3, EXPECTED["reasons"])
    ]
    since_start = precision(store.engine, camera="cam1", type=AO, now=now, days=None)
    assert (
        figures(since_start)
        == figures(before)
        == {
            "alerts": 20,
            "confirmed": 12,
            "dismissed": 6,
            "reasons": {"reflection_or_light": 2, "street_furniture": 4},
        }
    )
    assert since_start.precision == pytest.approx(2 / 3)
    assert figures(precision(store.engine, camera="cam1", type=AO, now=now, days=30)) == EXPECTED
    assert precision_table(store.engine, now, None)[0].alerts == 20
    assert monthly_stats(store.engine, now)[0].alerts == 20
    # A second purge finds nothing more and counts nothing twice.
    purge(store, tmp_path / "evidence", RetentionSettings(evidence_days=30), audit, now)
    assert figures(precision(store.engine, camera="cam1", type=AO, now=now, days=None)) == figures(before)


# --- self-suspension ------------------------------------------------------------------------


def suspensions(store: Store, clock: Clock, **settings: float) -> Suspensions:
    return Suspensions(store.engine, AuditLog(store.engine), SuspensionSettings(**settings), clock)


def test_alert_flood_suspends_and_a_supervisor_lifts(store: Store) -> None:
    clock = Clock(T0)
    sus = suspensions(store, clock, max_alerts_per_hour=5)
    for i in range(5):
        add(store, f"b{i}", T0 - timedelta(minutes=50 - i))
    add(store, "old", T0 - timedelta(minutes=70))  # outside the hour
    assert sus.check("cam1", AO, T0) is None
    add(store, "b5", T0 - timedelta(minutes=1))
    s = sus.check("cam1", AO, T0)
    assert s is not None and sus.active("cam1", AO)
    assert sus.list() == [s]
    assert (s.cause, s.camera, s.type, s.started_by) == ("alert_rate", "cam1", AO, "system")
    assert s.details["alerts"] == 6 and s.details["max_alerts_per_hour"] == 5
    assert not sus.active("cam2", AO) and not sus.active("cam1", EventType.FIRE)
    assert sus.check("cam1", AO, T0) is None  # already suspended: no second one
    records = sus.audit.entries(action=Action.SUSPEND)
    assert len(records) == 1 and records[0].details["cause"] == "alert_rate"

    with pytest.raises(SuspensionError, match="needs a note"):
        sus.lift(s.id, "sup1", " ")
    clock.advance(600)
    lifted = sus.lift(s.id, "sup1", "zone redrawn away from the bus stop")
    assert (lifted.lifted_by, lifted.lift_note) == ("sup1", "zone redrawn away from the bus stop")
    assert not sus.active("cam1", AO)
    resume = sus.audit.entries(action=Action.RESUME)
    assert [(r.user_id, r.details["suspension_id"]) for r in resume] == [("sup1", s.id)]
    # The alerts before the review were what it was about: they do not suspend it again.
    assert sus.check("cam1", AO, clock.now) is None
    with pytest.raises(SuspensionError, match="already lifted by sup1"):
        sus.lift(s.id, "sup1", "again")
    with pytest.raises(SuspensionError, match="does not exist"):
        sus.lift(999, "sup1", "note")


def test_precision_floor_suspends_at_the_next_check(store: Store) -> None:
    audit = AuditLog(store.engine)
    clock = Clock(T0)
    sus = Suspensions(
        store.engine,
        audit,
        SuspensionSettings(precision_floor=0.5, last_decisions=4, max_alerts_per_hour=100),
        clock,
    )
    allowed = sus.allowed("cam1")
    verdicts = ["confirm", "street_furniture", "test", "confirm", "test"]
    for i, v in enumerate(verdicts[:3]):
        add(store, f"p{i}", T0 - timedelta(hours=3, minutes=-i))
        decide(store, audit, f"p{i}", v, T0 - timedelta(hours=2, minutes=-i))
    assert allowed(AO, 0.0)  # 3 decisions, fewer than the 4 needed: no judgement yet
    add(store, "p3", T0 - timedelta(hours=2))
    decide(store, audit, "p3", "confirm", T0 - timedelta(minutes=30))  # 2 of 4 = 0.5: at the floor
    clock.advance(CHECK_S)
    assert allowed(AO, 0.0)
    add(store, "p4", T0)
    decide(store, audit, "p4", "test", T0 + timedelta(seconds=1))  # last 4: 1 of 4 = 0.25
    clock.advance(1)
    assert allowed(AO, 1.0)  # decided a second ago: the check comes every CHECK_S, not per frame
    clock.advance(CHECK_S)
    assert not allowed(AO, 2.0)
    assert allowed(EventType.FIRE, 2.0) and sus.allowed("cam2")(AO, 2.0)
    s = sus.list(active_only=True)[0]
    assert s.cause == "precision_floor" and s.details["precision"] == 0.25 and s.details["decisions"] == 4
    sus.lift(s.id, "sup1", "reviewed: test tags were a drill, detector kept")
    assert allowed(AO, 3.0)  # a lift in this process is seen at once
    clock.advance(CHECK_S)
    assert allowed(AO, 4.0)  # and the decisions it reviewed do not count again


def test_supervisor_suspension_and_cache(store: Store) -> None:
    clock = Clock(T0)
    ours = suspensions(store, clock)
    allowed = ours.allowed("cam1")
    assert allowed(AO, 0.0) and ours.allowed("cam1") == allowed  # one view per camera
    # Another process (another Suspensions on the same database) suspends: seen within CACHE_S.
    theirs = suspensions(store, clock)
    with pytest.raises(SuspensionError, match="needs a note"):
        theirs.suspend("cam1", AO, "sup1", "")
    s = theirs.suspend("cam1", AO, "sup1", "camera moved, zone no longer matches")
    assert s.cause == "supervisor" and s.details == {"note": "camera moved, zone no longer matches"}
    clock.advance(CACHE_S / 2)
    assert allowed(AO, 0.0)
    clock.advance(CACHE_S)
    assert not allowed(AO, 0.0)
    with pytest.raises(SuspensionError, match="already suspended on camera 'cam1'"):
        ours.suspend("cam1", AO, "sup2", "again")
    assert [r.user_id for r in ours.audit.entries(action=Action.SUSPEND)] == ["sup1"]


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


def _one_line(output: str, words: str) -> None:
    assert words in output and "Traceback" not in output, output
    assert len([line for line in output.splitlines() if line.strip()]) == 1, output


def test_cli_suspensions(db_url: str, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, db_url))
    env = {"COLUMNS": "220"}
    r = cli.invoke(app, ["suspensions", "suspend", "cam1", "fire", "--config", cfg, "--user", "sup1"])
    assert r.exit_code == 2
    _one_line(r.output, "needs a note")
    r = cli.invoke(app, ["suspensions", "suspend", "cam1", "flames", "--note", "x", "--config", cfg])
    assert r.exit_code == 2
    _one_line(r.output, "event type 'flames' is unknown")
    r = cli.invoke(app, ["suspensions", "suspend", "cam9", "fire", "--note", "x", "--config", cfg])
    assert r.exit_code == 2
    _one_line(r.output, "camera 'cam9' is not in the configuration")
    r = cli.invoke(
        app,
        [
            "suspensions",
            "suspend",
            "cam1",
            "fire",
            "--note",
            "smoke tests",
            "--config",
            cfg,
            "--user",
            "sup1",
        ],
    )
    assert r.exit_code == 0 and "suspension 1" in r.output, r.output
    r = cli.invoke(app, ["suspensions", "list", "--active", "--config", cfg], env=env)
    assert (
        r.exit_code == 0 and "supervisor" in r.output and "smoke tests" in r.output and "active" in r.output
    )
    r = cli.invoke(app, ["suspensions", "lift", "1", "--config", cfg])
    assert r.exit_code == 2
    _one_line(r.output, "needs a note")
    r = cli.invoke(
        app, ["suspensions", "lift", "1", "--note", "tests over", "--config", cfg, "--user", "sup2"]
    )
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["suspensions", "lift", "1", "--note", "again", "--config", cfg])
    assert r.exit_code == 2
    _one_line(r.output, "already lifted by sup2")
    r = cli.invoke(app, ["suspensions", "list", "--active", "--config", cfg], env=env)
    assert r.exit_code == 0 and "smoke tests" not in r.output
    r = cli.invoke(app, ["suspensions", "list", "--config", cfg], env=env)
    assert r.exit_code == 0 and "tests over" in r.output and "sup2" in r.output
