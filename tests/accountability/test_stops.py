"""Supervisors' stops (HO-03): each scope stops what it should and nothing else, every stop and
lift is audited, and another process sees a stop within a second."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lanterne.accountability.stops import REFRESH_S, StopError, Stops
from lanterne.audit import Action, AuditLog
from lanterne.core.types import EventType
from lanterne.store import Store
from tests.support.console import Console, open_console, site_config

pytestmark = pytest.mark.usefixtures("cheap_hashes")

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


# --- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Console]:
    yield from open_console(site_config(db_url, tmp_path), Clock())


def test_supervisor_stops_and_lifts_each_scope_over_http(api: Console) -> None:
    csrf = api.as_user("sup")
    bodies = [
        {"scope": "detector", "camera": "parvis", "type": "fire", "reason": "smoke machine"},
        {"scope": "camera", "camera": "depot", "reason": "lens cleaning"},
        {"scope": "site", "reason": "council order"},
    ]
    placed = []
    for body in bodies:
        r = api.client.post("/api/stops", json=body, headers=csrf)
        assert r.status_code == 201, r.text
        assert r.json()["scope"] == body["scope"] and r.json()["started_by"] == api.ids["sup"]
        placed.append(r.json()["id"])
    listed = api.client.get("/api/stops").json()
    assert sorted(s["id"] for s in listed if s["active"]) == sorted(placed)
    for stop_id in placed:
        r = api.client.post(f"/api/stops/{stop_id}/lift", headers=csrf)
        assert r.status_code == 200 and r.json()["active"] is False
    assert api.client.post(f"/api/stops/{placed[0]}/lift", headers=csrf).status_code == 409
    assert api.client.post("/api/stops/4242/lift", headers=csrf).status_code == 404
    actions = [(e.action, e.user_id) for e in api.audit.entries() if e.action in (Action.STOP, Action.RESUME)]
    assert actions == [(Action.STOP, api.ids["sup"])] * 3 + [(Action.RESUME, api.ids["sup"])] * 3


CAMERA_STOP = {"scope": "camera", "camera": "parvis", "reason": "lens cleaning"}


@pytest.mark.parametrize(
    ("login", "body", "csrf", "status"),
    [
        (None, CAMERA_STOP, False, 401),
        ("oper", CAMERA_STOP, True, 403),
        ("audi", CAMERA_STOP, True, 403),
        ("sup", CAMERA_STOP, False, 403),  # no CSRF header
        ("sup", {**CAMERA_STOP, "camera": "mairie"}, True, 404),  # not in the configuration
        ("sup-nord", CAMERA_STOP, True, 403),  # outside the supervisor's scope
        ("sup-nord", {"scope": "site", "reason": "x"}, True, 403),  # a site stop needs every camera
        ("sup", {**CAMERA_STOP, "reason": ""}, True, 422),
        ("sup", {"scope": "camera", "reason": "x"}, True, 422),
        ("sup", {"scope": "detector", "camera": "parvis", "reason": "x"}, True, 422),
        ("sup", {**CAMERA_STOP, "type": "fire"}, True, 422),
        ("sup", {**CAMERA_STOP, "type": "face"}, True, 422),
        ("sup", {**CAMERA_STOP, "scope": "everything"}, True, 422),
        ("sup", {**CAMERA_STOP, "until": "tomorrow"}, True, 422),  # unknown field
        ("sup-nord", {**CAMERA_STOP, "camera": "quai-nord"}, True, 201),
    ],
)
def test_refusals(api: Console, login: str | None, body: dict, csrf: bool, status: int) -> None:
    headers = api.as_user(login) if login else {}
    r = api.client.post("/api/stops", json=body, headers=headers if csrf else {})
    assert r.status_code == status, r.text
    stops = Stops(api.store.engine, api.audit).active()
    assert len(stops) == (1 if status == 201 else 0)
    if status == 403 and login:
        last = api.audit.entries()[-1]
        assert (last.user_id == api.ids[login] and "denied" in last.details) or r.json()["detail"].startswith(
            "CSRF"
        )
        if login in ("oper", "audi"):  # refused for the role: no stop was attempted on anything
            assert last.action == Action.ACCESS_DENIED


def test_out_of_scope_refusal_is_audited_as_a_stop(api: Console) -> None:
    api.as_user("sup-nord")
    r = api.client.post("/api/stops", json=CAMERA_STOP, headers=api.csrf)
    assert r.status_code == 403
    last = api.audit.entries()[-1]
    assert (last.action, last.object_id, last.details["denied"]) == (Action.STOP, "parvis", "stop_camera")


def test_lifting_out_of_scope_and_listing_by_scope(api: Console) -> None:
    sup = api.as_user("sup")
    depot = api.client.post("/api/stops", json={**CAMERA_STOP, "camera": "depot"}, headers=sup).json()["id"]
    api.as_user("sup-nord")
    assert api.client.post(f"/api/stops/{depot}/lift", headers=api.csrf).status_code == 403
    assert api.client.get("/api/stops").json() == [], "a stop on another camera is not listed"
    api.as_user("oper")
    assert api.client.get("/api/stops").status_code == 403
