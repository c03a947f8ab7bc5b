"""The independent oversight view (GV-07): the auditor reads the register, the metrics, the logs'
summaries and the complaints, each read on the record; the same account is still refused, and
recorded, on every route that serves footage; every other role is refused the view and recorded;
the audit chain is re-checked on request and a broken one opens its breach."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from starlette.websockets import WebSocketDisconnect

from lanterne.accountability.alerts import acknowledge, confirm
from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.complaints import Complaints
from lanterne.accountability.incidents import Incidents
from lanterne.api import routes as routes_package
from lanterne.api.deps import ExportOfficer, RecordingReader, Viewer
from lanterne.api.routes.live import GATEWAY_PATH
from lanterne.audit import Action
from tests.audit.test_audit import bypass_triggers, sql
from tests.support.console import NOW, Console, add_account, add_event

pytestmark = pytest.mark.usefixtures("cheap_hashes")

FOOTAGE_PAGES = (
    "/console",
    "/console/alerts/e1",
    "/console/recordings",
    "/console/wall",
    "/console/recall",
    "/console/requests",
)
"""The console pages that exist to show footage (`pages._alert_page`)."""
SAMPLE = {"alert_id": "e1", "camera": "quai-nord", "view_id": "1", "group_id": "1", "request_id": "1"}
SUPERVISORS_FOOTAGE = ("/api/recall/audits/1/windows/1/video",)
"""Footage routes for supervisors only (`recall.Reviewing`), not behind `Viewer`."""


def _records(console: Console) -> None:
    """What an overseer reads: an authorisation with its assessments, a confirmed alert, an
    incident, and two complaints, one answered."""
    Authorisations(console.store.engine, console.audit).add(
        "AP-2026-17",
        legal_basis="décret 2023-828",
        authority="Préfecture de police",
        valid_from=NOW - timedelta(days=10),
        valid_until=NOW + timedelta(days=20),
        cameras=["quai-nord"],
        event_types=["zone_intrusion"],
        impact_assessments=["https://ville.example/aipd.pdf"],
        user_id="u-dpo",
    )
    add_event(console.store, "e1", "quai-nord", at=NOW - timedelta(hours=1))
    acknowledge(console.store.engine, console.audit, "e1", console.ids["oper"], NOW - timedelta(minutes=50))
    confirm(
        console.store.engine,
        console.audit,
        "e1",
        console.ids["oper"],
        NOW - timedelta(minutes=49),
        "monitoring",
    )
    Incidents(console.store.engine, console.audit, clock=lambda: NOW).open(
        "detector_silent", "camera depot: detector silent", "No health row since 10:00.", by="system"
    )
    complaints = Complaints(console.store.engine, console.audit, clock=lambda: NOW)
    first = complaints.add(
        received_on=date(2026, 4, 20),
        channel="letter",
        category="camera_placement",
        summary="Camera quai-nord is said to see into the windows of a building",
        by="u-dpo",
    )
    complaints.answer(first.id, answered_on=date(2026, 5, 1), answer="Privacy mask widened", by="u-dpo")
    complaints.add(
        received_on=date(2026, 5, 2),
        channel="authority",
        category="false_alert",
        summary="CNIL forwards a complaint about agents sent after an alert",
        by="u-dpo",
    )


def test_the_auditor_reads_the_oversight_view_and_each_read_is_recorded(console: Console) -> None:
    _records(console)
    client = console.client
    console.as_user("audi")
    page = client.get("/console/oversight")
    assert page.status_code == 200 and "/static/console/oversight.js" in page.text
    assert "<script>" not in page.text  # CSP: no inline script
    assert client.get("/static/console/oversight.js").status_code == 200
    r = client.get("/api/oversight")
    assert r.status_code == 200, r.text
    body = r.json()
    [authorisation] = body["authorisations"]
    assert (authorisation["reference"], authorisation["state"], authorisation["impact_assessments"]) == (
        "AP-2026-17", "active", ["https://ville.example/aipd.pdf"],
    )  # fmt: skip
    [month] = [m for m in body["monthly"] if m["event_type"] == "zone_intrusion"]
    assert (month["alerts"], month["confirmed"], month["confirmed_share"]) == (1, 1, 1.0)
    [quarter] = [q for q in body["quarter"] if q["event_type"] == "zone_intrusion"]
    assert (quarter["alerts"], quarter["confirmed"], quarter["confirmed_without_action"]) == (1, 1, 1)
    assert body["quarter_since"] == "2026-04-01T00:00:00Z"
    assert [(i["kind"], i["state"]) for i in body["incidents"]] == [("detector_silent", "open")]
    assert {f["rule"] for f in body["findings"]} >= {"bulk_export", "outside_shift", "no_habilitation"}
    assert body["audit"]["records"] > 0 and body["audit"]["open_breaches"] == 0
    assert [(c["category"], c["state"], c["days_to_answer"]) for c in body["complaints"]] == [
        ("false_alert", "open", None),
        ("camera_placement", "answered", 11),
    ]
    assert [(c["category"], c["state"], c["count"]) for c in body["complaint_counts"]] == [
        ("camera_placement", "answered", 1),
        ("false_alert", "open", 1),
    ]
    assert "snapshot" not in r.text and "/api/alerts" not in r.text  # no way to footage from here
    reads = [e for e in console.audit_entries(Action.SEARCH) if e.user_id == console.ids["audi"]]
    assert [(e.object_type, e.object_id) for e in reads] == [("oversight", "dashboard")]
    client.get("/api/oversight")
    reads = [e for e in console.audit_entries(Action.SEARCH) if e.user_id == console.ids["audi"]]
    assert len(reads) == 2  # every read, not the first only


def _footage_routes() -> list[APIRoute]:
    """Every API route that only the roles seeing footage may call: those depending on `Viewer`
    (`VideoViewer` does too), `RecordingReader` (recorded footage, export officers included) or
    `ExportOfficer`, found in every route module the app includes, so a footage route added later
    is checked without editing this test."""
    guards = {dep.__metadata__[0].dependency for dep in (Viewer, RecordingReader, ExportOfficer)}

    def depends(dependant: Any) -> bool:
        return any(d.call in guards or depends(d) for d in dependant.dependencies)

    found = []
    for info in pkgutil.iter_modules(routes_package.__path__):
        router = getattr(importlib.import_module(f"{routes_package.__name__}.{info.name}"), "router", None)
        found += [
            r for r in getattr(router, "routes", ()) if isinstance(r, APIRoute) and depends(r.dependant)
        ]
    return found


def test_the_auditor_is_still_refused_every_footage_route_and_each_refusal_recorded(console: Console) -> None:
    add_event(console.store, "e1", "quai-nord")
    routes = _footage_routes()
    paths = {r.path for r in routes}
    assert {
        "/api/alerts/{alert_id}/snapshot",
        "/api/alerts/{alert_id}/clip",
        "/api/cameras/{camera}/recording/video",
        "/api/live/{camera}/views",
    } <= paths, paths
    csrf = console.as_user("audi")
    tried = []
    for route in routes:
        path = route.path.format(**SAMPLE)
        for method in sorted(route.methods):
            r = console.client.request(method, path, headers=csrf, json={} if method != "GET" else None)
            assert r.status_code == 403, (method, path, r.text)
            tried.append(path)
    for path in SUPERVISORS_FOOTAGE:
        assert console.client.get(path).status_code == 403, path
        tried.append(path)
    for page in FOOTAGE_PAGES:
        assert console.client.get(page, follow_redirects=False).status_code == 403, page
        tried.append(page)
    refused = [
        e.details["path"]
        for e in console.audit_entries(Action.ACCESS_DENIED)
        if e.user_id == console.ids["audi"]
    ]
    assert sorted(refused) == sorted(tried)
    # The live gateway relays Janus' signalling, never pixels without a recorded view: it closes,
    # and the refusal is on the record like the others.
    with pytest.raises(WebSocketDisconnect) as closed, console.client.websocket_connect(GATEWAY_PATH):
        pass
    assert closed.value.code == 1008
    [gateway] = [e for e in console.audit_entries(Action.ACCESS_DENIED) if e.details["path"] == GATEWAY_PATH]
    assert gateway.user_id == console.ids["audi"] and gateway.details["role"] == "auditor"
    viewed = {Action.VIEW_SNAPSHOT, Action.VIEW_CLIP, Action.VIEW_RECORDING, Action.VIEW_LIVE}
    assert not [e for e in console.audit.entries() if e.action in viewed]


@pytest.mark.parametrize("login", ["oper", "sup", "admin"])
def test_every_other_role_is_refused_the_oversight_view_and_recorded(console: Console, login: str) -> None:
    if login == "admin":
        add_account(console, "admin", "admin")
    anonymous = console.client.get("/console/oversight", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    assert console.client.get("/api/oversight").status_code == 401
    console.as_user(login)
    assert console.client.get("/api/oversight").status_code == 403
    assert console.client.get("/api/oversight/verification").status_code == 403
    assert console.client.get("/console/oversight").status_code == 403
    refusals = [
        e.details["denied"]
        for e in console.audit_entries(Action.ACCESS_DENIED)
        if e.user_id == console.ids[login]
    ]
    assert refusals == ["GET /api/oversight", "GET /api/oversight/verification", "oversight"]
    assert not [e for e in console.audit_entries(Action.SEARCH) if e.object_type == "oversight"]


def test_the_audit_chain_is_rechecked_on_request_and_a_broken_one_opens_its_breach(console: Console) -> None:
    console.as_user("audi")
    intact = console.client.get("/api/oversight/verification").json()
    assert (
        intact["ok"] is True
        and intact["summary"].startswith("intact: ")
        and intact["breach_incident"] is None
    )
    bypass_triggers(console.store.engine)
    sql(console.store.engine, "UPDATE audit_records SET action = 'search' WHERE seq = 2")
    broken = console.client.get("/api/oversight/verification").json()
    assert (broken["ok"], broken["first_bad_seq"]) == (False, 2)
    assert broken["breach_incident"] is not None
    [breach] = Incidents(console.store.engine, console.audit).list(kind="breach")
    assert breach.id == broken["breach_incident"]
    again = console.client.get("/api/oversight/verification").json()
    assert again["breach_incident"] == breach.id  # the same finding, not a second breach
    assert console.client.get("/api/oversight").json()["audit"]["open_breaches"] == 1
    checks = [e for e in console.audit_entries(Action.SEARCH) if e.object_id == "verification"]
    assert len(checks) == 3
