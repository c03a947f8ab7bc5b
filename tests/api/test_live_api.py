"""The live wall's API against a real Janus (Debian's, started by the console on first use): every
view on the record from start to end, scope and habilitation checked at the start and at every
confirmation, quiet views and finished grants ended by the sweeper, protection removed only under
a permission, the gateway relay open only to logged-in viewers (issue 14, LG-02)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.websockets import WebSocketDisconnect

from lanterne.accountability import live
from lanterne.accountability.habilitation import habilitations, revoke
from lanterne.accountability.privacy import grant
from lanterne.audit import Action
from lanterne.runtime.live_wall import LINGER, LiveWall
from tests.support.console import Console, open_console, site_config

pytestmark = pytest.mark.skipif(shutil.which("janus") is None, reason="Debian's janus is not installed")


@pytest.fixture
def console(db_url: str, tmp_path: Path, clock) -> Iterator[Console]:
    yield from open_console(site_config(db_url, tmp_path), clock)


def wall_of(console: Console) -> LiveWall:
    w = console.client.app.state.live_wall  # type: ignore[attr-defined]
    assert w is not None and w.janus is not None, w and w.unavailable
    return w


def start(console: Console, camera: str = "quai-nord", purpose: str = "night patrol support") -> dict:
    r = console.client.post(f"/api/live/{camera}/views", json={"purpose": purpose}, headers=console.csrf)
    assert r.status_code == 201, r.text
    return r.json()


def live_records(console: Console) -> list:
    return console.audit_entries(Action.VIEW_LIVE)


def test_a_view_is_on_the_record_from_start_to_end(console: Console) -> None:
    console.as_user("oper")
    assert console.client.get("/api/live").json()["available"] is True
    g = start(console)
    assert g["kind"] == "anonymised" and g["janus_url"] == "/api/live/gateway"
    w = wall_of(console)
    assert g["token"] in w.janus.tokens()
    [stream] = live.streams(console.store.engine)
    assert (stream.id, stream.camera, stream.kind) == (g["mountpoint"], "quai-nord", "anonymised")
    assert g["mountpoint"] in w.janus.mountpoints()
    [opened] = live_records(console)
    assert opened.purpose == "night patrol support" and opened.object_id == "quai-nord"
    assert opened.details == {"live": "start", "view": g["view"], "kind": "anonymised"}

    # A second viewer shares the mountpoint and gets a pin of its own; the first one's no longer opens it.
    second = start(console)
    assert second["mountpoint"] == g["mountpoint"] and second["pin"] != g["pin"]
    assert len(live.streams(console.store.engine)) == 1
    # The first one's connection drops (the gateway restarted, the network): it rejoins the same
    # view with the current pin, rotated again, and its own token; no new view is recorded.
    r = console.client.post(f"/api/live/views/{g['view']}/rejoin", headers=console.csrf)
    assert r.status_code == 200, r.text
    again = r.json()
    assert (again["view"], again["mountpoint"], again["token"]) == (g["view"], g["mountpoint"], g["token"])
    assert again["pin"] not in (g["pin"], second["pin"]) and g["token"] in w.janus.tokens()
    assert len(live_records(console)) == 2
    console.as_user("oper-nord")
    assert console.client.post(f"/api/live/views/{g['view']}/rejoin", headers=console.csrf).status_code == 404
    console.as_user("oper")

    console.clock.now += timedelta(seconds=42)
    assert (
        console.client.post(f"/api/live/views/{g['view']}/heartbeat", headers=console.csrf).status_code == 204
    )
    assert console.client.delete(f"/api/live/views/{g['view']}", headers=console.csrf).status_code == 204
    ended = live_records(console)[-1]
    assert ended.details["live"] == "end" and ended.details["reason"] == "closed"
    assert ended.details["seconds"] == 42.0 and ended.time_from == opened.time_from
    assert g["token"] not in w.janus.tokens() and second["token"] in w.janus.tokens()
    assert console.client.delete(f"/api/live/views/{g['view']}", headers=console.csrf).status_code == 404
    assert (
        console.client.post(f"/api/live/views/{g['view']}/heartbeat", headers=console.csrf).status_code == 404
    )
    assert console.client.post(f"/api/live/views/{g['view']}/rejoin", headers=console.csrf).status_code == 404

    # The last viewer gone, the mountpoint lingers a moment, then goes with its row.
    assert console.client.delete(f"/api/live/views/{second['view']}", headers=console.csrf).status_code == 204
    w.sweep(console.clock.now)
    assert len(live.streams(console.store.engine)) == 1
    w.sweep(console.clock.now + LINGER)
    assert live.streams(console.store.engine) == [] and g["mountpoint"] not in w.janus.mountpoints()


def test_out_of_scope_roles_and_missing_purposes_are_refused(console: Console) -> None:
    console.as_user("oper-nord")
    r = console.client.post("/api/live/parvis/views", json={"purpose": "x"}, headers=console.csrf)
    assert r.status_code == 403
    denied = console.audit_entries(Action.ACCESS_DENIED)[-1]
    assert denied.object_id == "parvis" and denied.details["denied"] == "view_live"
    assert (
        console.client.post(
            "/api/live/nowhere/views", json={"purpose": "x"}, headers=console.csrf
        ).status_code
        == 404
    )
    assert (
        console.client.post(
            "/api/live/quai-nord/views", json={"purpose": ""}, headers=console.csrf
        ).status_code
        == 422
    )
    assert console.client.post("/api/live/quai-nord/views", json={}, headers=console.csrf).status_code == 422
    assert (
        console.client.post("/api/live/quai-nord/views", json={"purpose": "x"}).status_code == 403
    )  # no CSRF
    console.as_user("audi")
    assert (
        console.client.post(
            "/api/live/quai-nord/views", json={"purpose": "x"}, headers=console.csrf
        ).status_code
        == 403
    )
    assert console.client.get("/api/live/watching").status_code == 403
    assert live_records(console) == []


def test_a_lapsed_habilitation_ends_the_view_at_its_next_confirmation(console: Console) -> None:
    console.as_user("oper")
    g = start(console)
    [h] = habilitations(console.store.engine, console.ids["oper"])
    revoke(
        console.store.engine, console.audit, "habilitation", h.id, revoked_by="admin", now=console.clock.now
    )
    r = console.client.post(f"/api/live/views/{g['view']}/heartbeat", headers=console.csrf)
    assert r.status_code == 403 and "habilitation" in r.json()["detail"]
    v = live.view(console.store.engine, g["view"])
    assert v is not None and v.end_reason == "refused"
    assert g["token"] not in wall_of(console).janus.tokens()


def test_a_quiet_page_s_view_expires(console: Console) -> None:
    console.as_user("oper")
    g = start(console)
    w = wall_of(console)
    w.sweep(console.clock.now + timedelta(seconds=29))
    assert live.view(console.store.engine, g["view"]).open  # type: ignore[union-attr]
    w.sweep(console.clock.now + timedelta(seconds=31))
    v = live.view(console.store.engine, g["view"])
    assert v is not None and v.end_reason == "expired"
    assert live_records(console)[-1].details["reason"] == "expired"


def test_protection_is_removed_only_under_a_permission_and_only_until_its_end(console: Console) -> None:
    console.as_user("oper")
    body = {
        "purpose": "requisition follow-up",
        "reason": "identify the author of an assault",
        "reference": "PV 2026/1234",
    }
    r = console.client.post("/api/live/quai-nord/views/raw", json=body, headers=console.csrf)
    assert r.status_code == 403 and "lanterne privacy grant" in r.json()["detail"]
    assert console.audit_entries(Action.ACCESS_DENIED)[-1].details["refused"] == "remove privacy protection"
    assert live.streams(console.store.engine) == []

    grant(
        console.store.engine,
        console.audit,
        user=console.ids["oper"],
        cameras=["quai-nord"],
        until=console.clock.now + timedelta(days=30),
        reason="judicial requisitions",
        granted_by="admin",
        now=console.clock.now,
    )
    r = console.client.post("/api/live/quai-nord/views/raw", json=body | {"minutes": 2}, headers=console.csrf)
    assert r.status_code == 201, r.text
    g = r.json()
    assert g["kind"] == "raw"
    [stream] = live.streams(console.store.engine)
    assert stream.kind == "raw" and stream.view_id == g["view"] and "PV 2026/1234" in (stream.banner or "")
    removed = console.audit_entries(Action.PRIVACY_REMOVED)[-1]
    assert removed.purpose == body["reason"] and removed.details["reference"] == body["reference"]

    console.as_user("sup")
    [watched] = console.client.get("/api/live/watching").json()
    assert (watched["user"], watched["camera"], watched["kind"]) == (console.ids["oper"], "quai-nord", "raw")
    assert watched["reference"] == "PV 2026/1234"

    w = wall_of(console)
    w.sweep(console.clock.now + timedelta(seconds=25))
    assert g["mountpoint"] in w.janus.mountpoints()
    # A dropped connection rejoins the raw view within its grant, never past its end, even before
    # the sweep has ended the view and destroyed its mountpoint.
    console.as_user("oper")
    rejoin = f"/api/live/views/{g['view']}/rejoin"
    assert console.client.post(rejoin, headers=console.csrf).status_code == 200
    console.clock.now += timedelta(minutes=2, seconds=1)
    assert console.client.post(rejoin, headers=console.csrf).status_code == 404
    assert g["mountpoint"] in w.janus.mountpoints()
    w.sweep(console.clock.now + timedelta(minutes=2))
    assert g["mountpoint"] not in w.janus.mountpoints() and live.streams(console.store.engine) == []
    v = live.view(console.store.engine, g["view"])
    assert v is not None and v.end_reason == "grant_ended"
    restored = console.audit_entries(Action.PRIVACY_RESTORED)[-1]
    assert restored.details["opened_by"] == removed.seq
    assert (
        console.client.post(
            "/api/live/quai-nord/views/raw", json=body | {"minutes": 31}, headers=console.csrf
        ).status_code
        == 422
    )


def test_saved_walls_belong_to_their_operator(console: Console) -> None:
    console.as_user("oper-nord")
    r = console.client.put(
        "/api/live/groups",
        json={"title": "nord", "layout": 4, "cameras": ["quai-nord", None]},
        headers=console.csrf,
    )
    assert r.status_code == 200, r.text
    assert (
        console.client.put(
            "/api/live/groups", json={"title": "x", "layout": 4, "cameras": ["parvis"]}, headers=console.csrf
        ).status_code
        == 422
    )
    assert (
        console.client.put(
            "/api/live/groups", json={"title": "x", "layout": 5, "cameras": []}, headers=console.csrf
        ).status_code
        == 422
    )
    [saved] = console.client.get("/api/live/groups").json()
    assert saved["cameras"] == ["quai-nord", None] and saved["layout"] == 4
    console.as_user("oper")
    assert console.client.get("/api/live/groups").json() == []
    assert console.client.delete(f"/api/live/groups/{saved['id']}", headers=console.csrf).status_code == 404
    console.as_user("oper-nord")
    assert console.client.delete(f"/api/live/groups/{saved['id']}", headers=console.csrf).status_code == 204


def test_the_gateway_relay_needs_a_viewer_and_janus_needs_the_view_s_token(console: Console) -> None:
    with (
        pytest.raises(WebSocketDisconnect),
        console.client.websocket_connect("/api/live/gateway", subprotocols=["janus-protocol"]) as ws,
    ):
        ws.receive_text()
    console.as_user("oper")
    g = start(console)
    headers = {"origin": "http://evil.example"}
    with (
        pytest.raises(WebSocketDisconnect),
        console.client.websocket_connect(
            "/api/live/gateway", subprotocols=["janus-protocol"], headers=headers
        ) as ws,
    ):
        ws.receive_text()
    with console.client.websocket_connect("/api/live/gateway", subprotocols=["janus-protocol"]) as ws:
        ws.send_text(json.dumps({"janus": "create", "transaction": "forged", "token": "not-a-token"}))
        refused = json.loads(ws.receive_text())
        assert refused["janus"] == "error" and refused["error"]["code"] == 403
        ws.send_text(json.dumps({"janus": "create", "transaction": "mine", "token": g["token"]}))
        created = json.loads(ws.receive_text())
        assert created["janus"] == "success" and created["transaction"] == "mine"
