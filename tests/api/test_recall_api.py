"""The console's blinded recall audits (PM-03): a supervisor draws windows of a real recording,
plays one through the one read path (recorded as a view with the audit as purpose), marks what
they see, and gets the score only once the audit is closed; while it is open no answer carries an
alert of the system. Refusals (out-of-scope camera, another supervisor's audit, other roles) are
recorded. The public page then shows the recall beside the precision."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import pytest

from lanterne.audit import Action
from lanterne.config.schema import Mode
from lanterne.core.types import EventType
from lanterne.video.recording import segments
from tests.support.console import NOW, Clock, Console, add_event, open_console, site_config
from tests.support.recording import camera_clip, record

RUNS = (NOW - timedelta(minutes=10), NOW - timedelta(minutes=9), NOW - timedelta(minutes=8))
"""Three recordings of quai-nord, 20 s each: three windows of 15 s fit, one in each."""
AUDIT = {
    "cameras": ["quai-nord"],
    "start": (NOW - timedelta(hours=1)).isoformat(),
    "end": NOW.isoformat(),
    "windows": 3,
    "seconds": 15,
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camera_clip(tmp_path_factory.mktemp("cam"))


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path, clock: Clock, clip: Path, cheap_hashes: None) -> Iterator[Console]:
    # One backend: the audit's store is tested on both in tests/accountability/test_recall.py;
    # rendering the window is the cost here.
    cfg = site_config(sqlite_url, tmp_path).model_copy(update={"mode": Mode.ALERTS})
    cameras = [
        c.model_copy(update={"record": "events" if c.id == "depot" else "continuous"}) for c in cfg.cameras
    ]
    cfg = cfg.model_copy(update={"cameras": cameras})
    gen = open_console(cfg, clock)
    console = next(gen)
    for origin in RUNS:
        record(cfg, console.store, console.audit, "quai-nord", origin, clip)
    yield console
    gen.close()


def start(site: Console, **body: Any) -> Any:
    return site.client.post("/api/recall/audits", json=AUDIT | body, headers=site.csrf)


def steps(site: Console) -> list[dict[str, Any]]:
    return [e.details for e in site.audit_entries(Action.RECALL_AUDIT)]


def test_a_supervisor_draws_plays_marks_and_reads_the_score_once_closed(site: Console) -> None:
    site.as_user("sup")
    r = start(site)
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["you_review"] and a["state"] == "open" and a["results"] is None
    assert [w["seq"] for w in a["windows"]] == [1, 2, 3]
    assert a["windows"][0]["zones"] == ["z1"] and a["windows"][0]["camera_name"] == "Camera quai-nord"
    starts = [NOW.fromisoformat(w["start"]) for w in a["windows"]]
    add_event(site.store, "seen", "quai-nord", EventType.ZONE_INTRUSION, starts[0] + timedelta(seconds=1))
    add_event(site.store, "unmarked", "quai-nord", EventType.CROWD_DENSITY, starts[1])

    v = site.client.get(f"/api/recall/audits/{a['id']}/windows/1/video", params={"fps": 2})
    assert v.status_code == 200, v.text
    assert v.headers["content-type"] == "video/mp4" and v.headers["cache-control"] == "private, no-store"
    with av.open(io.BytesIO(v.content)) as c:
        frames = list(c.decode(video=0))
    assert 28 <= len(frames) <= 31  # 15 s at 2 frames a second
    (view,) = site.audit_entries(Action.VIEW_RECORDING)
    assert view.user_id == site.ids["sup"] and view.object_id == "quai-nord"
    assert view.purpose == f"recall audit {a['id']}, window 1: blinded review (PM-03)"
    assert (view.time_from, view.time_to) == (starts[0], starts[0] + timedelta(seconds=15))
    assert view.details["recall_audit"] == a["id"] and view.details["window"] == 1
    rows = segments(site.store, "quai-nord", starts[0], starts[0] + timedelta(seconds=15))
    assert view.details["recording"]["segments"] == [s.id for s in rows]

    base = f"/api/recall/audits/{a['id']}/windows"
    m = site.client.post(f"{base}/1/marks", json={"type": "zone_intrusion", "at": 3.5}, headers=site.csrf)
    assert m.status_code == 201, m.text
    assert m.json()["matched_event"] is None
    missed = site.client.post(
        f"{base}/2/marks", json={"type": "zone_intrusion", "at": 10, "zone": "z1"}, headers=site.csrf
    )
    assert missed.status_code == 201, missed.text
    bad = site.client.post(f"{base}/2/marks", json={"type": "fire", "at": 30}, headers=site.csrf)
    assert bad.status_code == 422 and "0 to 15 s" in bad.json()["detail"]
    empty = site.client.post(f"{base}/3/done", json={}, headers=site.csrf)
    assert empty.status_code == 422 and "say that nothing" in empty.json()["detail"]
    for seq, nothing in ((1, False), (2, False)):
        d = site.client.post(f"{base}/{seq}/done", json={"nothing": nothing}, headers=site.csrf)
        assert d.status_code == 200 and d.json()["state"] == "open", d.text
    again = site.client.post(f"{base}/1/marks", json={"type": "fire", "at": 1}, headers=site.csrf)
    assert again.status_code == 409 and "already reviewed" in again.json()["detail"]
    last = site.client.post(f"{base}/3/done", json={"nothing": True}, headers=site.csrf)
    assert last.status_code == 200, last.text
    closed = last.json()
    assert closed["state"] == "closed"
    res = closed["results"]
    assert (res["windows"], res["reviewed"]) == (3, 3)
    assert (res["overall"]["marks"], res["overall"]["found"], res["overall"]["recall"]) == (2, 1, 0.5)
    (zi,) = res["by_type"]
    assert zi["key"] == "zone_intrusion" and zi["interval"] == pytest.approx([0.0945, 0.9055], abs=1e-3)
    assert [(w["seq"], [m["matched_event"] for m in w["marks"]]) for w in closed["windows"]] == [
        (1, ["seen"]),
        (2, [None]),
        (3, []),
    ]
    assert closed["windows"][1]["unmarked"][0]["event_id"] == "unmarked"
    assert [s["step"] for s in steps(site)] == [
        "start",
        "mark",
        "mark",
        "window",
        "window",
        "window",
        "close",
    ]

    listed = site.client.get("/api/recall/audits").json()
    assert [(x["id"], x["state"], x["overall"]["found"]) for x in listed] == [(a["id"], "closed", 1)]
    page = site.client.get("/public").text
    assert 'id="recall-table"' in page and '<td class="n recall-share">50 %</td>' in page


def test_an_open_audit_never_answers_with_the_systems_alerts(site: Console) -> None:
    site.as_user("sup")
    a = start(site).json()
    events = []
    for w in a["windows"]:
        at = NOW.fromisoformat(w["start"])
        for k, t in enumerate((EventType.ZONE_INTRUSION, EventType.FIRE)):
            eid = f"hidden-{w['seq']}-{k}"
            add_event(site.store, eid, "quai-nord", t, at + timedelta(seconds=2 + k))
            events.append(eid)
    base = f"/api/recall/audits/{a['id']}"
    answers = [
        site.client.get(base),
        site.client.get("/api/recall/audits"),
        site.client.get("/api/recall/cameras"),
        site.client.post(
            f"{base}/windows/1/marks", json={"type": "zone_intrusion", "at": 2.5}, headers=site.csrf
        ),
        site.client.post(f"{base}/windows/1/done", json={}, headers=site.csrf),
        site.client.post(f"{base}/windows/2/done", json={"nothing": True}, headers=site.csrf),
    ]
    for r in answers:
        assert r.status_code in (200, 201), r.text
        assert not any(e in r.text for e in events), r.text
        assert "recent_alerts" not in r.text
    detail = answers[0].json()
    assert detail["results"] is None and all(w["unmarked"] is None for w in detail["windows"])
    assert answers[1].json()[0]["overall"] is None
    assert answers[2].json() == [
        {"id": "quai-nord", "name": "Camera quai-nord", "zones": ["z1"]},
        {"id": "parvis", "name": "Camera parvis", "zones": ["z1"]},
    ]
    # The reviewer looks at window 3's stretch on the playback page, whose timeline marks the
    # alerts: the audit cannot prevent it, but its score says that window was not blind.
    w3 = a["windows"][2]
    looked = site.client.get(
        "/api/cameras/quai-nord/recording",
        params={"start": w3["start"], "end": w3["end"], "purpose": "curious"},
    )
    assert looked.status_code == 200 and "hidden-3-0" in looked.text
    site.client.post(f"{base}/windows/3/done", json={"nothing": True}, headers=site.csrf)
    assert site.client.get(base).json()["state"] == "closed"
    closed = site.client.get(base)
    # Once closed, the same audit names them: the answers above had them to hide.
    assert "hidden-1-0" in closed.text and "hidden-2-1" in closed.text
    assert [w["unblinded"] for w in closed.json()["windows"]] == [False, False, True]
    assert closed.json()["results"]["unblinded"] == 1


def test_refusals_are_answered_and_recorded(site: Console) -> None:
    site.as_user("sup-nord")
    r = start(site, cameras=["quai-nord", "parvis"])
    assert r.status_code == 403 and "parvis are outside the reviewer's scope" in r.json()["detail"]
    assert steps(site)[-1] == {
        "step": "refused",
        "reason": "camera(s) parvis are outside the reviewer's scope",
        "reviewer": site.ids["sup-nord"],
        "cameras": ["parvis", "quai-nord"],
        "outside": ["parvis"],
    }
    refused = start(site, cameras=["depot"])
    assert refused.status_code == 403  # depot is outside sup-nord's scope too

    site.as_user("sup")
    assert start(site, cameras=["depot"]).status_code == 422  # record: events
    a = start(site).json()
    site.as_user("sup-nord")  # quai-nord is in scope, but the audit is sup's
    before = len(site.audit_entries(Action.ACCESS_DENIED))
    assert site.client.get(f"/api/recall/audits/{a['id']}").status_code == 200
    video = site.client.get(f"/api/recall/audits/{a['id']}/windows/1/video")
    assert video.status_code == 403 and "its reviewer only" in video.json()["detail"]
    mark = site.client.post(
        f"/api/recall/audits/{a['id']}/windows/1/marks", json={"type": "fire", "at": 1}, headers=site.csrf
    )
    assert mark.status_code == 403
    denied = site.audit_entries(Action.ACCESS_DENIED)[before:]
    assert [(d.object_type, d.object_id) for d in denied] == [("recall_audit", str(a["id"]))] * 2
    assert site.audit_entries(Action.VIEW_RECORDING) == []

    site.as_user("oper")
    assert start(site).status_code == 403
    assert site.client.get("/api/recall/audits").status_code == 403
    site.as_user("audi")  # the DPO reads audits and scores, sees no footage
    assert site.client.get(f"/api/recall/audits/{a['id']}").status_code == 200
    assert site.client.get(f"/api/recall/audits/{a['id']}/windows/1/video").status_code == 403
    assert site.client.get("/console/recall").status_code == 403
    site.as_user("sup")
    page = site.client.get("/console/recall")
    assert page.status_code == 200 and "recall.js" in page.text
