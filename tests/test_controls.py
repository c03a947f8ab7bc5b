"""Supervisors' stops (HO-03): each scope stops what it should and nothing else, every stop and
lift is audited, and another process sees a stop within a second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lanterne.audit import Action, AuditLog
from lanterne.controls import REFRESH_S, StopError, Stops
from lanterne.store import Store
from lanterne.types import EventType

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def env(db_url: str):
    store = Store.open(db_url)
    clock = Clock()
    audit = AuditLog(store.engine)
    yield Stops(store.engine, audit, clock), audit, clock, store
    store.close()


FIRE, WEAPON = EventType.FIRE, EventType.WEAPON


@pytest.mark.parametrize(
    ("scope", "expect"),
    [
        # (camera, type) -> stopped?, and which cameras have all inference stopped
        ("detector", {("cam1", FIRE): True, ("cam1", WEAPON): False, ("cam2", FIRE): False}),
        ("camera", {("cam1", FIRE): True, ("cam1", WEAPON): True, ("cam2", FIRE): False}),
        ("site", {("cam1", FIRE): True, ("cam1", WEAPON): True, ("cam2", FIRE): True}),
    ],
)
def test_each_scope_stops_what_it_covers_and_lift_resumes(env, scope: str, expect: dict) -> None:
    stops, audit, _clock, _store = env
    if scope == "detector":
        stop = stops.stop_detector("cam1", FIRE, "u-sup", "smoke machine at the concert")
    elif scope == "camera":
        stop = stops.stop_camera("cam1", "u-sup", "camera moved")
    else:
        stop = stops.stop_site("u-sup", "city council order")
    for (camera, kind), stopped in expect.items():
        assert stops.stopped(camera, kind) is stopped, (camera, kind)
    assert stops.inference_stopped("cam1") is (scope != "detector")
    assert stops.inference_stopped("cam2") is (scope == "site")
    assert [s.id for s in stops.active()] == [stop.id]

    lifted = stops.lift(stop.id, "u-sup2")
    assert not lifted.active and lifted.lifted_by == "u-sup2"
    assert stops.active() == []
    assert not any(stops.stopped(c, k) for c, k in expect)

    entries = [e for e in audit.entries() if e.action in (Action.STOP, Action.RESUME)]
    assert [(e.action, e.user_id, e.object_type) for e in entries] == [
        (Action.STOP, "u-sup", scope),
        (Action.RESUME, "u-sup2", scope),
    ]
    assert entries[0].details["stop_id"] == stop.id and entries[0].details["reason"]


def test_other_process_sees_a_stop_within_refresh(env) -> None:
    _stops, audit, clock, store = env
    pipeline = Stops(store.engine, audit, clock)  # the pipeline's own instance, its own cache
    assert not pipeline.inference_stopped("cam1")  # cache filled: nothing stopped
    console = Stops(store.engine, audit, clock)
    stop = console.stop_camera("cam1", "u-sup", "lens cleaning")
    clock.now += timedelta(seconds=REFRESH_S / 2)
    assert not pipeline.inference_stopped("cam1"), "cached for less than REFRESH_S"
    clock.now += timedelta(seconds=REFRESH_S / 2)
    assert pipeline.inference_stopped("cam1"), "seen once REFRESH_S has passed"
    assert REFRESH_S <= 1.0
    console.lift(stop.id, "u-sup")
    clock.now += timedelta(seconds=REFRESH_S)
    assert not pipeline.inference_stopped("cam1")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.stop_camera("cam1", "u", "  "), "needs a reason"),
        (lambda s: s.stop_camera("", "u", "x"), "needs a camera"),
        (lambda s: s.stop_detector("cam1", "face", "u", "x"), "unknown event type"),
        (lambda s: s.stop_site("u", "x" * 1001), "shorten it"),
        (lambda s: s.lift(999, "u"), "does not exist"),
    ],
)
def test_mistakes_are_refused_with_a_message(env, call, message: str) -> None:
    stops = env[0]
    with pytest.raises(StopError, match=message):
        call(stops)
    assert stops.active() == []


def test_lifting_twice_is_refused(env) -> None:
    stops = env[0]
    stop = stops.stop_site("u-sup", "drill")
    stops.lift(stop.id, "u-sup")
    with pytest.raises(StopError, match="already lifted"):
        stops.lift(stop.id, "u-sup")


def test_a_stop_the_audit_log_refuses_is_undone(env, monkeypatch: pytest.MonkeyPatch) -> None:
    stops, audit, _clock, _store = env

    def refuse(*_a: object, **_k: object) -> None:
        raise RuntimeError("audit unavailable")

    monkeypatch.setattr(audit, "append", refuse)
    with pytest.raises(RuntimeError):
        stops.stop_site("u-sup", "drill")
    assert stops.active() == [] and stops.history() == []
