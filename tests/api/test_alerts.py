"""The alert queue's API (issue 3, items 3 and 4; HO-01, AC-02, AC-03): scope, roles, CSRF, the
state machine through HTTP, purposes for clips, audit records, and the live stream.

Every rule is checked on SQLite and PostgreSQL (`db_url`); the live stream needs a real server
(the test client buffers a response until it ends, and a stream never ends) and runs on SQLite.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from lanterne.accountability import accounts
from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.api.app import create_app
from lanterne.api.routes.alerts import LABEL
from lanterne.audit import Action, AuditLog
from lanterne.audit.log import PURPOSE_MAX_LENGTH
from lanterne.config import Config
from lanterne.config.loader import parse_config
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from tests.support.console import LOOPBACK, cleared_account, login_json

PASSWORD = "correct horse battery staple"
SQUARE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
USERS = {
    "op-a": ("operator", ["cam-a"]),
    "op-b": ("operator", ["cam-b"]),
    "sup": ("supervisor", ["*"]),
    "aud": ("auditor", ["*"]),
    "adm": ("admin", ["*"]),
}
CLIP_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(200)


@dataclass
class Site:
    cfg: Config
    url: str
    ids: dict[str, str]
    """login → opaque account id (the audit user id)."""
    t0: datetime


def _camera(cam: str) -> dict[str, object]:
    return {
        "id": cam,
        "source": f"{cam}.mp4",
        "location": {"lat": 48.88, "lon": 2.35},
        "zones": [{"id": "quai", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
    }


def _event(eid: str, cam: str, region: tuple[float, float, float, float] = (0.2, 0.3, 0.5, 0.9)) -> Event:
    return Event(eid, EventType.ZONE_INTRUSION, cam, "quai", 0.0, 3.0, 0.81, region)


def _jpeg() -> bytes:
    img = np.full((90, 160, 3), 80, np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def make_site(url: str, tmp_path: Path) -> Site:
    """Two cameras, five accounts, alerts on both cameras; `a1` (cam-a) has a snapshot and a clip."""
    evidence = tmp_path / "evidence"
    cfg = parse_config(
        {
            "mode": "alerts",
            "site": "Test",
            "store": {"url": url, "evidence_dir": str(evidence)},
            "cameras": [_camera("cam-a"), _camera("cam-b")],
        },
        tmp_path,
    )
    store = Store.open(url)
    audit = AuditLog(store.engine, key_path=cfg.audit.key_path)
    ids = {
        login: cleared_account(store.engine, audit, login, role, scope, PASSWORD, "setup").id
        for login, (role, scope) in USERS.items()
    }
    t0 = datetime.now(UTC) - timedelta(hours=1)
    store.upsert_event(_event("a1", "cam-a"), t0, "alerts")
    store.upsert_event(_event("a2", "cam-a"), t0 + timedelta(minutes=5), "alerts")
    store.upsert_event(_event("b1", "cam-b"), t0 + timedelta(minutes=2), "alerts")
    store.upsert_event(_event("x1", "cam-a"), t0, "evaluation")
    (evidence / "cam-a").mkdir(parents=True)
    (evidence / "cam-a" / "a1.jpg").write_bytes(_jpeg())
    (evidence / "cam-a" / "a1.mp4").write_bytes(CLIP_BYTES)
    store.add_evidence("a1", "snapshot", "cam-a/a1.jpg", "0" * 64, 10)
    store.add_evidence("a1", "clip", "cam-a/a1.mp4", "0" * 64, len(CLIP_BYTES))
    store.close()
    return Site(cfg, url, ids, t0)


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its production cost is what makes guessing slow, and would make this file slow
    too (five accounts and a login or two per test); the rules tested here do not depend on it."""
    monkeypatch.setattr(accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Site:
    return make_site(db_url, tmp_path)


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site.cfg), client=LOOPBACK) as c:
        yield c


def login(client: TestClient, name: str) -> dict[str, str]:
    """Log in as `name` (replacing the client's session cookie); the CSRF header for writes."""
    r = client.post("/api/login", json=login_json(name, PASSWORD))
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def entries(client: TestClient, action: Action, user_id: str) -> list[object]:
    engine = client.app.state.store.engine  # type: ignore[attr-defined]
    return list(AuditLog(engine).entries(action=action, user_id=user_id))


# --- listing and scope --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "query", "expected"),
    [
        ("op-a", "", ["a2", "a1"]),  # newest first, only cam-a, never the evaluation event
        ("op-b", "", ["b1"]),
        ("sup", "", ["a2", "b1", "a1"]),
        ("sup", "?camera=cam-b", ["b1"]),
        ("sup", "?limit=1", ["a2"]),
        ("op-a", "?state=new", ["a2", "a1"]),
        ("op-a", "?state=acknowledged", []),
    ],
)
def test_list_is_scoped_and_newest_first(
    client: TestClient, user: str, query: str, expected: list[str]
) -> None:
    login(client, user)
    r = client.get(f"/api/alerts{query}")
    assert r.status_code == 200, r.text
    assert [a["id"] for a in r.json()] == expected


def test_list_before_pages_back(client: TestClient, site: Site) -> None:
    login(client, "sup")
    before = (site.t0 + timedelta(minutes=3)).isoformat()
    r = client.get("/api/alerts", params={"before": before})
    assert [a["id"] for a in r.json()] == ["b1", "a1"]
    # A time that cannot be written in UTC (found by the schema fuzzing: a 500 from the database).
    r = client.get("/api/alerts", params={"before": "0001-01-01T00:00:00+01:00"})
    assert r.status_code == 422 and "out of range" in r.text


def test_alert_json_carries_what_the_card_shows(client: TestClient, site: Site) -> None:
    # 7 of 9 decided alerts confirmed on cam-a over the last 30 days; one decided on cam-b.
    store = Store.open(site.url)
    audit = AuditLog(store.engine)
    now = datetime.now(UTC)
    for i in range(9):
        store.upsert_event(_event(f"p{i}", "cam-a"), now - timedelta(days=3), "alerts")
        acknowledge(store.engine, audit, f"p{i}", "u-x", now)
        if i < 7:
            confirm(store.engine, audit, f"p{i}", "u-x", now, "monitoring")
        else:
            dismiss(store.engine, audit, f"p{i}", "u-x", now, "street_furniture")
    store.close()
    login(client, "op-a")
    a = client.get("/api/alerts/a1").json()
    assert a["label"] == LABEL == "machine suggestion — to verify"
    assert (a["type"], a["camera"], a["zone"], a["state"]) == ("zone_intrusion", "cam-a", "quai", "new")
    assert a["region"] == [0.2, 0.3, 0.5, 0.9]
    assert a["start"] == site.t0.isoformat().replace("+00:00", "Z")
    assert a["precision"]["confirmed"] == 7 and a["precision"]["decided"] == 9
    assert a["precision"]["value"] == pytest.approx(7 / 9)
    assert a["snapshot_url"] == "/api/alerts/a1/snapshot" and a["clip_url"] == "/api/alerts/a1/clip"
    login(client, "op-b")
    assert client.get("/api/alerts/b1").json()["precision"] == {
        "confirmed": 0,
        "decided": 0,
        "value": None,
        "days": 30,
    }


def test_viewing_an_alert_is_recorded(client: TestClient, site: Site) -> None:
    login(client, "op-a")
    assert client.get("/api/alerts/a1").status_code == 200
    (entry,) = entries(client, Action.SEARCH, site.ids["op-a"])
    assert (entry.object_type, entry.object_id, entry.details) == ("alert", "a1", {"alert": "a1"})  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "/api/alerts/b1", Action.SEARCH),
        ("GET", "/api/alerts/b1/history", Action.SEARCH),
        ("GET", "/api/alerts/b1/snapshot", Action.VIEW_SNAPSHOT),
        ("GET", "/api/alerts/b1/clip?purpose=curious", Action.SEARCH),
        ("POST", "/api/alerts/b1/ack", Action.ALERT_STATE),
        ("GET", "/api/alerts?camera=cam-b", Action.ACCESS_DENIED),
    ],
)
def test_out_of_scope_is_refused_and_recorded(
    client: TestClient, site: Site, method: str, path: str, action: Action
) -> None:
    headers = login(client, "op-a")
    r = client.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert r.status_code == 403, r.text
    (entry,) = entries(client, action, site.ids["op-a"])
    assert entry.details["role"] == "operator"  # type: ignore[attr-defined]
    assert "denied" in entry.details  # type: ignore[attr-defined]
    if "?camera" not in path:
        assert entry.object_id == "b1"  # type: ignore[attr-defined]


@pytest.mark.parametrize("role_user", ["aud", "adm"])
@pytest.mark.parametrize(
    "path", ["/api/alerts", "/api/alerts/a1", "/api/alerts/a1/snapshot", "/api/alerts/a1/clip?purpose=x"]
)
def test_auditors_and_admins_see_no_footage(
    client: TestClient, site: Site, role_user: str, path: str
) -> None:
    login(client, role_user)
    r = client.get(path)
    assert r.status_code == 403, r.text
    (entry,) = entries(client, Action.ACCESS_DENIED, site.ids[role_user])
    assert path.split("?")[0] in entry.details["denied"]  # type: ignore[attr-defined]
    # Nothing was shown, so no view was recorded.
    assert entries(client, Action.VIEW_SNAPSHOT, site.ids[role_user]) == []


def test_everything_needs_a_login(client: TestClient) -> None:
    for path in ("/api/alerts", "/api/alerts/a1", "/api/alerts/a1/snapshot", "/api/alerts/stream"):
        r = client.get(path)
        assert r.status_code == 401 and r.json() == {"detail": "login required"}, path
    assert client.post("/api/alerts/a1/ack").status_code == 401


def test_pages(client: TestClient, site: Site) -> None:
    for path in ("/console", "/console/alerts/a1"):
        r = client.get(path, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (303, "/login"), path
    login(client, "op-a")
    page = client.get("/console")
    assert page.status_code == 200 and "/static/console/queue.js" in page.text
    assert "<script>" not in page.text  # CSP: no inline script
    assert "/static/console/alert.js" in client.get("/console/alerts/a1").text
    for asset in ("queue.js", "alert.js", "alerts.css"):
        assert client.get(f"/static/console/{asset}").status_code == 200, asset
    login(client, "aud")
    assert client.get("/console").status_code == 403
    # Recorded as a refusal, not as a view: the auditor saw nothing.
    (entry,) = entries(client, Action.ACCESS_DENIED, site.ids["aud"])
    assert entry.details["denied"] == "alert queue"  # type: ignore[attr-defined]


# --- decisions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "body"),
    [("ack", {}), ("confirm", {"follow_up": "monitoring"}), ("dismiss", {"reason": "test"})],
)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_decisions_need_the_csrf_token(
    client: TestClient, verb: str, body: dict[str, str], token: str | None
) -> None:
    login(client, "op-a")
    headers = {} if token is None else {"X-CSRF-Token": token}
    r = client.post(f"/api/alerts/a1/{verb}", json=body, headers=headers)
    assert (r.status_code, r.json()) == (403, {"detail": "CSRF token missing or wrong"})
    assert client.get("/api/alerts/a1/history").json()["steps"] == []


def test_state_machine_through_the_api(client: TestClient, site: Site) -> None:
    h = login(client, "op-a")
    post = lambda verb, body=None: client.post(f"/api/alerts/a1/{verb}", json=body or {}, headers=h)  # noqa: E731

    r = post("confirm", {"follow_up": "monitoring"})
    assert r.status_code == 409 and "acknowledge it first" in r.json()["detail"]
    r = post("ack")
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert post("ack").status_code == 409
    r = post("dismiss")
    assert r.status_code == 422 and r.json()["detail"].startswith("a dismissal needs a reason")
    assert "--" not in r.json()["detail"]  # no command-line hint in the console
    r = post("dismiss", {"reason": "other"})
    assert r.status_code == 422 and "needs a short text" in r.json()["detail"]
    r = post("confirm")
    assert r.status_code == 422 and "needs a follow-up" in r.json()["detail"]
    r = post("confirm", {"follow_up": "arrest"})
    assert r.status_code == 422 and "is not one of" in r.json()["detail"]
    r = post("confirm", {"follow_up": "field_request"})
    assert r.status_code == 200 and r.json()["state"] == "confirmed"
    r = post("dismiss", {"reason": "test"})
    assert r.status_code == 409 and "decision is final" in r.json()["detail"]

    steps = client.get("/api/alerts/a1/history").json()["steps"]
    assert [(s["state"], s["user_id"], s["follow_up"]) for s in steps] == [
        ("acknowledged", site.ids["op-a"], None),
        ("confirmed", site.ids["op-a"], "field_request"),
    ]
    assert all(s["ts"].endswith("Z") for s in steps)
    assert len(entries(client, Action.ALERT_STATE, site.ids["op-a"])) == 2


def test_dismiss_with_reason_and_text(client: TestClient, site: Site) -> None:
    h = login(client, "op-a")
    assert client.post("/api/alerts/a2/ack", headers=h).status_code == 200
    r = client.post("/api/alerts/a2/dismiss", json={"reason": "other", "text": "a pigeon"}, headers=h)
    assert r.status_code == 200 and r.json()["state"] == "dismissed"
    (step,) = client.get("/api/alerts/a2/history").json()["steps"][1:]
    assert (step["reason"], step["reason_text"]) == ("other", "a pigeon")
    assert [a["id"] for a in client.get("/api/alerts?state=dismissed").json()] == ["a2"]


# --- evidence -----------------------------------------------------------------------------------


def test_snapshot_is_served_and_recorded(client: TestClient, site: Site) -> None:
    login(client, "op-a")
    r = client.get("/api/alerts/a1/snapshot")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8"
    (entry,) = entries(client, Action.VIEW_SNAPSHOT, site.ids["op-a"])
    assert (entry.object_type, entry.object_id) == ("alert", "a1")  # type: ignore[attr-defined]
    assert client.get("/api/alerts/a2/snapshot").status_code == 404  # none stored


@pytest.mark.parametrize("purpose", [None, "", "   "])
def test_clip_needs_a_purpose(client: TestClient, site: Site, purpose: str | None) -> None:
    login(client, "op-a")
    params = {} if purpose is None else {"purpose": purpose}
    r = client.get("/api/alerts/a1/clip", params=params)
    assert (r.status_code, r.json()) == (400, {"detail": "a purpose is required to view a recorded clip"})
    assert entries(client, Action.VIEW_CLIP, site.ids["op-a"]) == []


def test_clip_with_purpose_is_served_and_recorded(client: TestClient, site: Site) -> None:
    login(client, "op-a")
    r = client.get("/api/alerts/a1/clip", params={"purpose": "verify before deciding"})
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.content == CLIP_BYTES
    (entry,) = entries(client, Action.VIEW_CLIP, site.ids["op-a"])
    assert (entry.object_id, entry.purpose) == ("a1", "verify before deciding")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("purpose", "status"),
    [("x" * PURPOSE_MAX_LENGTH, 200), ("x" * (PURPOSE_MAX_LENGTH + 1), 422), ("ref 12\x07", 422)],
)
def test_clip_purpose_is_checked_as_the_audit_log_checks_it(
    client: TestClient, site: Site, purpose: str, status: int
) -> None:
    """One limit everywhere (the audit log's), and no control characters."""
    login(client, "op-a")
    assert client.get("/api/alerts/a1/clip", params={"purpose": purpose}).status_code == status
    assert len(entries(client, Action.VIEW_CLIP, site.ids["op-a"])) == (1 if status == 200 else 0)


def test_unknown_and_evaluation_events_are_not_alerts(client: TestClient) -> None:
    login(client, "sup")
    assert client.get("/api/alerts/nope").status_code == 404
    assert client.get("/api/alerts/x1").status_code == 404


# --- live stream (real server) ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _next_alert(lines: Iterator[str], within: float) -> tuple[str, dict[str, object]]:
    """The next `event: alert` of an SSE stream: its id and its data."""
    start = time.monotonic()
    event_id = ""
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            return event_id, json.loads(line[6:])
        assert time.monotonic() - start < within, f"no alert within {within} s"
    raise AssertionError("the stream ended")


def test_stream_delivers_new_alerts_in_scope(sqlite_url: str, tmp_path: Path) -> None:
    site = make_site(sqlite_url, tmp_path)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(site.cfg), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    store = Store.open(sqlite_url)
    audit = AuditLog(store.engine)
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
            assert c.post("/api/login", json=login_json("op-a", PASSWORD)).status_code == 200
            with c.stream("GET", "/api/alerts/stream") as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                lines = r.iter_lines()
                assert next(lines) == "retry: 1000"  # the stream is open
                # Out of scope first, then in scope: only the second may arrive, within 1 s.
                store.upsert_event(_event("b-new", "cam-b"), datetime.now(UTC), "alerts")
                store.upsert_event(_event("a-new", "cam-a"), datetime.now(UTC), "alerts")
                stored = time.monotonic()
                _, a = _next_alert(lines, 3)
                assert time.monotonic() - stored < 1.0
                assert (a["id"], a["label"], a["state"]) == ("a-new", LABEL, "new")
                # Another operator takes it: every open console learns it.
                acknowledge(store.engine, audit, "a-new", "u-other", datetime.now(UTC))
                acknowledge(store.engine, audit, "b-new", "u-other", datetime.now(UTC))
                last_id, a = _next_alert(lines, 3)
                assert (a["id"], a["state"]) == ("a-new", "acknowledged")
            # Stored while the browser was away: sent when it comes back with Last-Event-ID.
            store.upsert_event(_event("a-gap", "cam-a"), datetime.now(UTC), "alerts")
            with c.stream("GET", "/api/alerts/stream", headers={"Last-Event-ID": last_id}) as r:
                lines = r.iter_lines()
                seen = {str(_next_alert(lines, 3)[1]["id"]) for _ in range(2)}
                assert "a-gap" in seen and "b-new" not in seen
    finally:
        store.close()
        server.should_exit = True
        thread.join(timeout=10)
