"""Incidents and breaches in the console (RK-05, SC-05): a supervisor or the DPO lists them, reads
one's timeline and notification, adds a note, records the notification and closes it, each step
on the record; a breach shows its deadline and is flagged overdue; every other role is refused,
the refusal recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lanterne.accountability.incidents import Incidents, open_breach
from lanterne.audit import Action
from tests.support.console import NOW, Console

pytestmark = pytest.mark.usefixtures("cheap_hashes")


def test_a_supervisor_handles_an_incident_from_list_to_close_on_the_record(console: Console) -> None:
    incident, _ = Incidents(console.store.engine, console.audit, clock=lambda: NOW - timedelta(hours=2)).open(
        "detector_silent",
        "camera quai-nord: detector silent",
        "Camera quai-nord has written no health report since 10:00.",
        by="system",
        cameras=["quai-nord"],
    )
    client = console.client
    csrf = console.as_user("sup")
    [item] = client.get("/api/incidents", params={"state": "open"}).json()
    assert (item["id"], item["kind"], item["owner"], item["deadline"], item["overdue"]) == (
        incident.id, "detector_silent", "unassigned", None, False,
    )  # fmt: skip
    assert client.get("/api/incidents", params={"kind": "breach"}).json() == []
    note = client.post(
        f"/api/incidents/{incident.id}/notes", json={"text": "worker restarted", "owner": "sup"}, headers=csrf
    )
    assert note.status_code == 200, note.text
    told = client.post(
        f"/api/incidents/{incident.id}/notifications",
        json={"to": "provider", "reference": "ticket 88"},
        headers=csrf,
    )
    assert told.status_code == 200 and told.json()["notified_at"] is None  # the provider, not the authority
    bare = client.post(
        f"/api/incidents/{incident.id}/close", json={"cause": "disk full", "remedy": " "}, headers=csrf
    )
    assert bare.status_code == 422
    done = client.post(
        f"/api/incidents/{incident.id}/close",
        json={"cause": "disk full", "remedy": "purge fixed"},
        headers=csrf,
    )
    assert done.status_code == 200
    body = done.json()
    assert (body["state"], body["owner"], body["closed_by"]) == ("closed", "sup", console.ids["sup"])
    assert [e["step"] for e in body["entries"]] == ["opened", "note", "notified", "closed"]
    assert body["template"].startswith(f"# Incident report {incident.id}: camera quai-nord: detector silent")
    assert "- " + NOW.strftime("%Y-%m-%d %H:%M") + " UTC: worker restarted" in body["template"]
    again = client.post(
        f"/api/incidents/{incident.id}/close", json={"cause": "x", "remedy": "y"}, headers=csrf
    )
    assert again.status_code == 409
    assert client.post("/api/incidents/999/notes", json={"text": "x"}, headers=csrf).status_code == 404
    assert (
        client.post(f"/api/incidents/{incident.id}/notes", json={"text": "x"}).status_code == 403
    )  # no CSRF
    steps = [(e.user_id, e.details["step"]) for e in console.audit_entries(Action.INCIDENT)]
    assert steps == [("system", "opened")] + [(console.ids["sup"], s) for s in ("note", "notified", "closed")]
    page = client.get("/console/incidents")
    assert page.status_code == 200 and "Incidents" in page.text


def test_the_dpo_sees_a_breach_overdue_until_the_authority_is_told(console: Console) -> None:
    breach, _ = open_breach(
        console.store.engine,
        console.audit,
        "record 7: content altered (hash mismatch)",
        7,
        now=NOW - timedelta(hours=73),
    )
    client = console.client
    csrf = console.as_user("audi")
    [item] = client.get("/api/incidents").json()
    assert item["kind"] == "breach" and item["overdue"] is True
    assert item["deadline"] == (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    detail = client.get(f"/api/incidents/{breach.id}").json()
    assert "## 2. Nature de la violation" in detail["template"] and "**OVERDUE.**" in detail["template"]
    told = client.post(
        f"/api/incidents/{breach.id}/notifications",
        json={"to": "authority", "reference": "CNIL 2026-5521"},
        headers=csrf,
    ).json()
    assert told["notified_at"] is not None and told["overdue"] is True  # told late stays late
    assert "## 10. Motifs du retard" in told["template"]
    assert client.get("/api/incidents", params={"status": "open"}).status_code == 422  # unknown parameter


@pytest.mark.parametrize("login", ["oper", "oper-nord"])
def test_operators_are_refused_and_the_refusal_recorded(console: Console, login: str) -> None:
    incident, _ = Incidents(console.store.engine, console.audit).open("manual", "t", "s", by="sup")
    anonymous = console.client.get("/console/incidents", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    csrf = console.as_user(login)
    assert console.client.get("/api/incidents").status_code == 403
    post = console.client.post(f"/api/incidents/{incident.id}/notes", json={"text": "x"}, headers=csrf)
    assert post.status_code == 403
    assert console.client.get("/console/incidents").status_code == 403
    refusals = [
        e.details["denied"]
        for e in console.audit_entries(Action.ACCESS_DENIED)
        if e.user_id == console.ids[login]
    ]
    assert refusals == ["GET /api/incidents", f"POST /api/incidents/{incident.id}/notes", "incidents"]
    assert [e.details["step"] for e in console.audit_entries(Action.INCIDENT)] == ["opened"]
