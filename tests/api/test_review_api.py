"""The DPO's queue in the console (LG-06): the auditor lists what the review of the audit log
flagged, acknowledges a finding and closes it with a note, each decision on the record; every
other role is refused, the refusal recorded, and never sees the queue or its page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lanterne.accountability.log_review import LOG_ACCESS, REPEATED_REFUSALS, review
from lanterne.audit import Action
from lanterne.config.schema import ReviewSettings
from tests.support.console import Console

pytestmark = pytest.mark.usefixtures("cheap_hashes")


def flagged(console: Console) -> list[int]:
    """Five refusals of one account within minutes, reviewed: one open finding. The records'
    times are the audit log's own clock (now), so the review covers the last hour."""
    denied = {"denied": "video", "role": "operator"}
    seqs = [
        console.audit.append("u-probe", Action.ACCESS_DENIED, object_type="camera", details=denied).seq
        for _ in range(5)
    ]
    now = datetime.now(UTC)
    [f] = review(
        console.store, console.audit, ReviewSettings(), now - timedelta(hours=1), now + timedelta(minutes=1)
    )
    assert f.rule == REPEATED_REFUSALS and f.id is not None
    return [f.id, *seqs]


def test_the_dpo_lists_open_findings_then_acknowledges_and_closes_one_on_the_record(console: Console) -> None:
    fid, *seqs = flagged(console)
    client = console.client
    csrf = console.as_user("audi")
    [item] = client.get("/api/review/findings", params={"state": "open"}).json()
    assert item["id"] == fid and item["rule"] == REPEATED_REFUSALS and item["title"] == "repeated refusals"
    assert item["account"] == "u-probe" and item["evidence"] == seqs and item["state"] == "open"
    assert "5 refusals" in item["explanation"] and item["note"] is None
    assert client.get("/api/review/findings", params={"state": "closed"}).json() == []

    ack = client.post(f"/api/review/findings/{fid}", json={"state": "acknowledged", "note": ""}, headers=csrf)
    assert ack.status_code == 200, ack.text
    assert (ack.json()["state"], ack.json()["decided_by"]) == ("acknowledged", console.ids["audi"])
    bare = client.post(f"/api/review/findings/{fid}", json={"state": "closed"}, headers=csrf)
    assert bare.status_code == 400 and "needs a note" in bare.json()["detail"]
    note = "operator tried the depot camera after a scope change; scope explained"
    done = client.post(f"/api/review/findings/{fid}", json={"state": "closed", "note": note}, headers=csrf)
    assert done.status_code == 200 and (done.json()["state"], done.json()["note"]) == ("closed", note)
    again = client.post(f"/api/review/findings/{fid}", json={"state": "closed", "note": note}, headers=csrf)
    assert again.status_code == 409 and "is closed" in again.json()["detail"]
    assert (
        client.post(
            "/api/review/findings/999", json={"state": "closed", "note": "x"}, headers=csrf
        ).status_code
        == 404
    )
    assert (
        client.post(f"/api/review/findings/{fid}", json={"state": "closed", "note": "x"}).status_code == 403
    )  # no CSRF
    assert client.get("/api/review/findings", params={"state": "open"}).json() == []
    assert [f["id"] for f in client.get("/api/review/findings").json()] == [fid]

    decisions = [
        (e.user_id, e.object_id, e.details["step"], e.purpose)
        for e in console.audit_entries(Action.LOG_REVIEW)
        if e.object_type == "review_finding"
    ]
    assert decisions == [
        (console.ids["audi"], str(fid), "acknowledged", None),
        (console.ids["audi"], str(fid), "closed", note),
    ]
    page = client.get("/console/review")
    assert page.status_code == 200 and "Log review" in page.text
    # Every listing is a read of what the review drew from the log: recorded, and the DPO's own
    # reads raise nothing.
    listings = [
        (e.user_id, e.details["state"], e.details["findings"])
        for e in console.audit_entries(Action.LOG_REVIEW)
        if e.object_type == "review_queue"
    ]
    assert listings == [
        (console.ids["audi"], "open", 1),
        (console.ids["audi"], "closed", 0),
        (console.ids["audi"], "open", 0),
        (console.ids["audi"], None, 1),
    ]
    now = console.clock.now  # the console's records are on its clock
    again = review(
        console.store, console.audit, ReviewSettings(), now - timedelta(hours=1), now + timedelta(minutes=1)
    )
    assert [f for f in again if f.rule == LOG_ACCESS] == []


def test_unknown_parameters_and_states_are_refused(console: Console) -> None:
    flagged(console)
    csrf = console.as_user("audi")
    unknown = console.client.get("/api/review/findings", params={"account": "u-probe"})
    assert unknown.status_code == 422 and "unknown parameter(s): account" in unknown.json()["detail"]
    assert console.client.get("/api/review/findings", params={"state": "done"}).status_code == 422
    reopen = console.client.post("/api/review/findings/1", json={"state": "open"}, headers=csrf)
    assert reopen.status_code == 422


@pytest.mark.parametrize("login", ["oper", "sup", "oper-nord"])
def test_every_other_role_is_refused_and_the_refusal_recorded(console: Console, login: str) -> None:
    fid = flagged(console)[0]
    anonymous = console.client.get("/console/review", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    csrf = console.as_user(login)
    assert console.client.get("/api/review/findings").status_code == 403
    post = console.client.post(
        f"/api/review/findings/{fid}", json={"state": "closed", "note": "fine"}, headers=csrf
    )
    assert post.status_code == 403
    assert console.client.get("/console/review").status_code == 403
    refusals = [
        e.details["denied"]
        for e in console.audit_entries(Action.ACCESS_DENIED)
        if e.user_id == console.ids[login]
    ]
    assert refusals == [
        "GET /api/review/findings",
        f"POST /api/review/findings/{fid}",
        "log review",
    ]
    assert [
        e
        for e in console.audit_entries(Action.LOG_REVIEW)
        if e.object_type in ("review_finding", "review_queue")
    ] == []
    # The three attempts at the DPO's queue are one finding for the DPO: access to the log itself.
    now = console.clock.now  # the console's records are on its clock
    found = review(
        console.store, console.audit, ReviewSettings(), now - timedelta(hours=1), now + timedelta(minutes=1)
    )
    [tried] = [f for f in found if f.rule == LOG_ACCESS]
    assert tried.account == console.ids[login] and len(tried.evidence) == 3
    assert "refused ×3" in tried.explanation
