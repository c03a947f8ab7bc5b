"""Operating figures per detector × camera (PM-01, PM-06) on SQLite and PostgreSQL: counts,
dismissal reasons, confirmed share, alerts per camera-hour, time to acknowledge and the follow-up
split, from scripted operator decisions, with alerts outside the period, an evaluation replay and
what retention left of deleted alerts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert

from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.accountability.operations import (
    PeriodError,
    nearest_rank,
    operations,
    period_bounds,
    public_type_figures,
)
from lanterne.accountability.precision import wilson_interval
from lanterne.audit import AuditLog
from lanterne.core.types import Counts, Event, EventType
from lanterne.store import Store
from lanterne.store.tables import EventAggregateRecord

ZI, FIRE = EventType.ZONE_INTRUSION, EventType.FIRE
T = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # inside 2026Q4


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


def alert(
    store: Store, id_: str, at: datetime, camera: str = "c1", type_: EventType = ZI, mode: str = "alerts"
) -> None:
    store.upsert_event(Event(id_, type_, camera, "z", 0.0, 3.0, 0.7, (0, 0, 1, 1), False), at, mode)


def decide(store: Store, audit: AuditLog, id_: str, at: datetime, wait_s: float, verdict: str) -> None:
    """Acknowledged `wait_s` after `at` (the alert's start), then confirmed or dismissed."""
    seen = at + timedelta(seconds=wait_s)
    acknowledge(store.engine, audit, id_, "op1", seen)
    if verdict in ("none", "monitoring", "field_request", "emergency_services"):
        confirm(store.engine, audit, id_, "op1", seen + timedelta(seconds=5), verdict)
    elif verdict != "ack":
        dismiss(store.engine, audit, id_, "op1", seen + timedelta(seconds=5), verdict)


def hours(store: Store, camera: str, start: datetime, n: int) -> None:
    """`n` hour-long count buckets, two zones each (the hours must not count twice)."""
    for h in range(n):
        for zone in ("z", "y"):
            store.add_counts(Counts(camera, zone, h * 3600.0, 3600.0, samples=100), start)


def scripted(store: Store) -> None:
    audit = AuditLog(store.engine)
    hours(store, "c1", T, 10)
    hours(store, "c2", T, 5)
    hours(store, "c3", T, 5)
    hours(store, "c1", datetime(2026, 9, 1, tzinfo=UTC), 7)  # Q3: outside the period
    script = [
        ("a1", "c1", ZI, 10, "field_request"),
        ("a2", "c1", ZI, 20, "emergency_services"),
        ("a3", "c1", ZI, 30, "none"),
        ("a4", "c1", ZI, 40, "reflection_or_light"),
        ("a5", "c1", ZI, None, None),  # nobody looked yet
        ("a6", "c1", ZI, 15, "ack"),  # looked, not decided
        ("f1", "c1", FIRE, 100, "street_furniture"),
        ("b1", "c2", ZI, 50, "monitoring"),
        ("b2", "c2", ZI, 70, "monitoring"),
    ]
    for i, (id_, cam, type_, wait, verdict) in enumerate(script):
        at = T + timedelta(minutes=10 * i)
        alert(store, id_, at, cam, type_)
        if wait is not None:
            decide(store, audit, id_, at, wait, verdict or "ack")
    # Outside the period or not alerts: none of these may count.
    alert(store, "old", datetime(2026, 9, 30, 23, 59, tzinfo=UTC))
    decide(store, audit, "old", datetime(2026, 9, 30, 23, 59, tzinfo=UTC), 1, "field_request")
    alert(store, "next", datetime(2027, 1, 1, tzinfo=UTC))
    alert(store, "replay", T, mode="evaluation")
    # What retention left of three deleted alerts of c2 in the period, and one in Q3.
    with store.engine.begin() as conn:
        for day, events, confirmed, dismissed in ((date(2026, 10, 5), 3, 2, 1), (date(2026, 9, 5), 9, 9, 0)):
            conn.execute(
                insert(EventAggregateRecord).values(
                    day=day,
                    camera="c2",
                    type=str(ZI),
                    mode="alerts",
                    events=events,
                    confirmed=confirmed,
                    dismissed=dismissed,
                    dismiss_reasons={"owner_nearby": dismissed} if dismissed else None,
                )
            )


def test_figures_per_detector_and_camera_follow_the_decisions(store: Store) -> None:
    scripted(store)
    since, until = period_bounds("2026Q4")
    ops = operations(store.engine, since, until, watched={"c1": [ZI, FIRE], "c2": [ZI], "c3": [ZI]})
    rows = {(r.camera, r.type): r for r in ops.rows}
    assert set(rows) == {
        ("c1", "zone_intrusion"),
        ("c1", "fire"),
        ("c2", "zone_intrusion"),
        ("c3", "zone_intrusion"),
    }
    c1 = rows[("c1", "zone_intrusion")]
    assert (c1.alerts, c1.confirmed, c1.dismissed, c1.pending) == (6, 3, 1, 2)
    assert c1.reasons == {"reflection_or_light": 1}
    assert c1.follow_ups == {"none": 1, "monitoring": 0, "field_request": 1, "emergency_services": 1}
    assert (c1.useful, c1.without_action, c1.useful_share) == (2, 1, pytest.approx(2 / 3))
    assert c1.confirmed_share == pytest.approx(0.75) and c1.interval == wilson_interval(3, 4)
    assert c1.camera_hours == pytest.approx(10.0) and c1.alerts_per_camera_hour == pytest.approx(0.6)
    # Waits 10, 15, 20, 30, 40 s to the first step (the acknowledgement, not the decision).
    assert (c1.acknowledged, c1.ack_median_s, c1.ack_p90_s) == (5, 20.0, 40.0)
    fire = rows[("c1", "fire")]
    assert (fire.alerts, fire.dismissed, fire.reasons, fire.ack_median_s) == (
        1,
        1,
        {"street_furniture": 1},
        100.0,
    )
    c2 = rows[("c2", "zone_intrusion")]
    # Two live confirmations with their follow-up, two deleted ones whose follow-up is gone.
    assert (c2.alerts, c2.confirmed, c2.dismissed, c2.follow_up_unknown) == (5, 4, 1, 2)
    assert c2.follow_ups["monitoring"] == 2 and c2.reasons == {"owner_nearby": 1}
    assert (c2.acknowledged, c2.ack_median_s, c2.useful_share) == (2, 60.0, 0.0)
    c3 = rows[("c3", "zone_intrusion")]  # watched, quiet: a row of zeros with its hours
    assert (c3.alerts, c3.camera_hours, c3.alerts_per_camera_hour, c3.confirmed_share) == (0, 5.0, 0.0, None)
    zi = {r.type: r for r in ops.by_type}["zone_intrusion"]
    assert (zi.camera, zi.alerts, zi.confirmed, zi.dismissed, zi.camera_hours) == (None, 11, 7, 2, 20.0)
    assert zi.alerts_per_camera_hour == pytest.approx(11 / 20)
    assert (zi.useful, zi.without_action, zi.follow_up_unknown) == (2, 3, 2)
    assert zi.ack_median_s == 30.0  # of 10, 15, 20, 30, 40, 50, 70
    counts_only = {(r.camera, r.type): r for r in operations(store.engine, since, until, times=False).rows}
    assert counts_only[("c1", "zone_intrusion")].alerts == 6
    assert counts_only[("c1", "zone_intrusion")].ack_median_s is None
    as_json = c1.to_json()
    assert as_json["confirmed_share_interval"] == [round(v, 4) for v in wilson_interval(3, 4) or ()]


def test_without_configuration_only_pairs_with_alerts(store: Store) -> None:
    scripted(store)
    ops = operations(store.engine, *period_bounds("2026-11"))
    assert {(r.camera, r.type) for r in ops.rows} == {
        ("c1", "zone_intrusion"),
        ("c1", "fire"),
        ("c2", "zone_intrusion"),
    }
    # November only: the aggregate of 5 October is outside.
    assert {r.type: r.alerts for r in ops.by_type} == {"zone_intrusion": 8, "fire": 1}


def test_public_split_hides_small_cells_and_what_the_total_gives_back(store: Store) -> None:
    scripted(store)
    ops = operations(store.engine, *period_bounds("2026Q4"))
    public = {p.event_type: p for p in public_type_figures(ops.by_type, k=3)}
    zi = public["zone_intrusion"]
    assert (zi.alerts, zi.confirmed, zi.follow_up_unknown) == (11, 7, 2)
    # 1 none, 2 monitoring, 1 field request, 1 emergency: every one below 3 is hidden.
    assert zi.follow_ups == {
        "none": None,
        "monitoring": None,
        "field_request": None,
        "emergency_services": None,
    }
    # 2 useful is below 3; the 3 without action goes too, or confirmed - unknown - 3 gives it back.
    assert (zi.useful_to_an_operation, zi.confirmed_without_action) == (None, None)
    exact = {p.event_type: p for p in public_type_figures(ops.by_type, k=1)}["zone_intrusion"]
    assert exact.follow_ups == {"none": 1, "monitoring": 2, "field_request": 1, "emergency_services": 1}


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("2026Q4", "2026-10-01", "2027-01-01"),
        ("2026q1", "2026-01-01", "2026-04-01"),
        ("2026-12", "2026-12-01", "2027-01-01"),
        ("2026-W01", "2025-12-29", "2026-01-05"),
    ],
)
def test_period_bounds(text: str, since: str, until: str) -> None:
    a, b = period_bounds(text)
    assert (a.date().isoformat(), b.date().isoformat()) == (since, until) and a.tzinfo is not None


@pytest.mark.parametrize("text", ["2026Q5", "2026-13", "2026-W60", "last quarter", ""])
def test_bad_periods_are_refused_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(PeriodError, match="2026-W49, 2026-11 or 2026Q4"):
        period_bounds(text)


def test_nearest_rank() -> None:
    assert nearest_rank([], 0.9) is None
    assert nearest_rank([5.0], 0.9) == 5.0
    assert nearest_rank([1.0, 2.0, 3.0], 0.5) == 2.0
