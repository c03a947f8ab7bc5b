"""Access requests in the console (GDPR art. 15, TR-03): export officers, the only role that exports
(AC-03), list them (open first, overdue flagged and counted), record them, refuse them with a
reason, and answer them with an export of a range inside the request's window where only the
marked person is visible; every other role is refused and the refusal recorded; each step is on
the audit log under the request's number."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lanterne.audit import Action
from lanterne.config.schema import Mode
from lanterne.video.export import read_manifest, verify_export
from tests.api.test_recorded_clip import record
from tests.support.console import NOW, Clock, Console, add_account, open_console, site_config
from tests.support.recording import camera_clip

FIRST = NOW - timedelta(seconds=5)
"""quai-nord is recorded for 20 s from here."""
WINDOW = {
    "window_start": (NOW - timedelta(minutes=20)).isoformat(),
    "window_end": (NOW + timedelta(minutes=20)).isoformat(),
}
KEEP = {"x0": 0.4, "y0": 0.3, "x1": 0.6, "y1": 0.9}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camera_clip(tmp_path_factory.mktemp("cam"))


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path, clock: Clock, clip: Path) -> Iterator[Console]:
    cfg = site_config(sqlite_url, tmp_path).model_copy(update={"mode": Mode.ALERTS})
    gen = open_console(cfg, clock)
    console = next(gen)
    add_account(console, "expo", "export_officer")
    add_account(console, "expo-nord", "export_officer", ["quai-nord"])
    record(cfg, console.store, console.audit, "quai-nord", FIRST, clip)
    console.cfg = cfg  # type: ignore[attr-defined]
    yield console
    gen.close()


def add(site: Console, **body: Any) -> Any:
    payload = {
        "requester": "Jeanne Martin",
        "contact": "jeanne.martin@example.org",
        **WINDOW,
        "place": "arrêt de bus quai nord",
        "description": "manteau rouge, attend le bus",
    } | body
    return site.client.post("/api/requests", json=payload, headers=site.csrf)


def answer(site: Console, request_id: int, start: Any = NOW, seconds: float = 1, **body: Any) -> Any:
    payload = {
        "camera": "quai-nord",
        "start": start.isoformat(),
        "end": (start + timedelta(seconds=seconds)).isoformat(),
        "keep": KEEP,
    } | body
    return site.client.post(f"/api/requests/{request_id}/answer", json=payload, headers=site.csrf)


def steps(site: Console) -> list[tuple[str | None, str]]:
    return [(e.object_id, e.details["step"]) for e in site.audit_entries(Action.ACCESS_REQUEST)]


def test_the_list_puts_open_requests_first_and_flags_the_overdue(site: Console) -> None:
    site.as_user("expo")
    late = add(site, received_at=(NOW - timedelta(days=40)).isoformat())
    assert late.status_code == 201, late.text
    recent = add(site, requester="Paul Durand", received_at=(NOW - timedelta(days=2)).isoformat()).json()
    closed = add(site, requester="Ana Lopez").json()
    assert (
        site.client.post(
            f"/api/requests/{closed['id']}/refuse",
            json={"reason": "no camera covers that place"},
            headers=site.csrf,
        ).status_code
        == 200
    )
    body = site.client.get("/api/requests").json()
    assert body["overdue"] == 1
    assert [(r["id"], r["state"], r["overdue"]) for r in body["items"]] == [
        (late.json()["id"], "open", True),  # the most urgent first
        (recent["id"], "open", False),
        (closed["id"], "refused", False),
    ]
    first = body["items"][0]
    assert first["deadline"] == "2026-04-25T12:00:00Z"  # received 25 March: one month later
    assert first["requester"] == "Jeanne Martin" and first["contact"] == "jeanne.martin@example.org"
    # Recorded when received, by the export officer, under its number: never the person's name.
    received = [e for e in site.audit_entries(Action.ACCESS_REQUEST) if e.details["step"] == "received"]
    assert [e.user_id for e in received] == [site.ids["expo"]] * 3
    text = json.dumps([str(e) for e in site.audit.entries()])
    for personal in ("Jeanne", "Durand", "Lopez", "example.org", "manteau"):
        assert personal not in text


def test_roles_other_than_export_officer_are_refused_and_recorded(site: Console) -> None:
    """Every role but the export officer's, supervisors included, is refused and recorded."""
    site.as_user("expo")
    request_id = add(site).json()["id"]
    for login, role in (("oper", "operator"), ("sup", "supervisor"), ("audi", "auditor")):
        site.as_user(login)
        before = len(site.audit_entries(Action.ACCESS_DENIED))
        assert site.client.get("/api/requests").status_code == 403
        assert add(site).status_code == 403
        assert (
            site.client.post(
                f"/api/requests/{request_id}/refuse", json={"reason": "x"}, headers=site.csrf
            ).status_code
            == 403
        )
        assert answer(site, request_id).status_code == 403
        denied = site.audit_entries(Action.ACCESS_DENIED)[before:]
        assert len(denied) == 4 and {e.user_id for e in denied} == {site.ids[login]}
        assert {e.details["role"] for e in denied} == {role}
    # An export officer of another camera cannot answer from quai-nord's neighbour either.
    site.as_user("expo-nord")
    r = answer(site, request_id, camera="parvis")
    assert r.status_code == 403
    assert site.audit_entries(Action.ACCESS_DENIED)[-1].object_id == "parvis"
    site.client.cookies.clear()
    assert site.client.get("/api/requests").status_code == 401
    assert steps(site) == [(str(request_id), "received")]
    assert not site.audit_entries(Action.EXPORT)


def test_a_refusal_needs_its_reason(site: Console) -> None:
    site.as_user("expo")
    request_id = add(site).json()["id"]
    for reason in ("", "   "):
        r = site.client.post(f"/api/requests/{request_id}/refuse", json={"reason": reason}, headers=site.csrf)
        assert r.status_code == 422
    assert (
        site.client.post(f"/api/requests/{request_id}/refuse", json={}, headers=site.csrf).status_code == 422
    )
    r = site.client.post(
        f"/api/requests/{request_id}/refuse",
        json={"reason": "footage deleted after 30 days"},
        headers=site.csrf,
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "refused" and r.json()["refusal_reason"] == "footage deleted after 30 days"
    [refused] = [e for e in site.audit_entries(Action.ACCESS_REQUEST) if e.details["step"] == "refused"]
    assert refused.purpose == "footage deleted after 30 days" and refused.user_id == site.ids["expo"]
    again = site.client.post(f"/api/requests/{request_id}/refuse", json={"reason": "x"}, headers=site.csrf)
    assert again.status_code == 409 and "already refused" in again.json()["detail"]
    assert answer(site, request_id).status_code == 409
    assert (
        site.client.post("/api/requests/999/refuse", json={"reason": "x"}, headers=site.csrf).status_code
        == 404
    )


def test_an_answer_outside_the_window_is_refused(site: Console) -> None:
    site.as_user("expo")
    request_id = add(
        site, window_start=NOW.isoformat(), window_end=(NOW + timedelta(minutes=5)).isoformat()
    ).json()["id"]
    r = answer(site, request_id, start=NOW - timedelta(seconds=1))
    assert r.status_code == 422 and "the answer must stay inside it" in r.json()["detail"]
    r = answer(site, request_id, start=NOW + timedelta(minutes=5) - timedelta(seconds=0.5))
    assert r.status_code == 422
    bad_region = answer(site, request_id, keep={"x0": 0.6, "y0": 0.3, "x1": 0.4, "y1": 0.9})
    assert bad_region.status_code == 422
    assert not site.audit_entries(Action.EXPORT)
    assert site.client.get("/api/requests").json()["items"][0]["state"] == "open"


def test_a_request_window_is_bounded_and_fields_are_required(site: Console) -> None:
    site.as_user("expo")
    r = add(site, window_end=(NOW - timedelta(minutes=20) + timedelta(hours=7)).isoformat())
    assert r.status_code == 422 and "at most 6:00:00" in r.json()["detail"]
    assert add(site, contact="  ").status_code == 422
    assert add(site, received_at=(NOW + timedelta(days=1)).isoformat()).status_code == 422
    assert add(site, face="round").status_code == 422  # nothing about the person beyond their words
    assert site.client.get("/api/requests").json() == {"overdue": 0, "items": []}


def test_an_answer_is_a_verifiable_export_and_every_step_is_recorded(site: Console, tmp_path: Path) -> None:
    site.as_user("expo")
    request_id = add(site).json()["id"]
    r = answer(site, request_id)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = sorted(zf.namelist())
        zf.extractall(tmp_path)
    mp4 = next(n for n in names if n.endswith(".mp4"))
    assert names == [mp4, mp4 + ".manifest.json"]
    assert verify_export(tmp_path / mp4) == []
    manifest = read_manifest(tmp_path / mp4)
    assert manifest.recipient == f"requester of access request {request_id}"
    [exported] = site.audit_entries(Action.EXPORT)
    assert exported.user_id == site.ids["expo"] and exported.details["access_request"] == request_id
    assert exported.details["sha256"] == manifest.video_sha256
    assert steps(site) == [(str(request_id), "received"), (str(request_id), "answered")]
    item = site.client.get("/api/requests").json()["items"][0]
    assert item["state"] == "answered" and item["export_id"] == manifest.export_id
    assert not list(Path(site.cfg.recording.dir).rglob("*.mp4")), "no copy stays on the server"  # type: ignore[attr-defined]
    assert answer(site, request_id).status_code == 409


def test_nothing_recorded_in_the_range_says_so(site: Console) -> None:
    site.as_user("expo")
    request_id = add(site).json()["id"]
    r = answer(site, request_id, start=NOW + timedelta(minutes=2))
    assert r.status_code == 404 and "nothing was recorded" in r.json()["detail"]
    assert answer(site, request_id, camera="nowhere").status_code == 404
    assert site.client.get("/api/requests").json()["items"][0]["state"] == "open"


def test_the_page_is_for_export_officers(site: Console) -> None:
    r = site.client.get("/console/requests", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    site.as_user("expo")
    page = site.client.get("/console/requests")
    assert page.status_code == 200 and "/static/console/requests.js" in page.text
    for asset in ("requests.js", "requests.css", "requests_link.js"):
        assert site.client.get(f"/static/console/{asset}").status_code == 200
    # The export officer starts on the recordings page, whose link counts the overdue requests.
    recordings = site.client.get("/console/recordings").text
    assert '<a href="/console/requests">' in recordings and "requests_link.js" in recordings
    for login in ("audi", "sup"):
        site.as_user(login)
        assert site.client.get("/console/requests").status_code == 403
        assert site.audit_entries(Action.ACCESS_DENIED)[-1].details["path"] == "/console/requests"
