"""The console's playback routes (issue 11, item 4): a camera's timeline over a window, and a
stretch of its recording rendered through the one read path; both need a purpose and the scope,
both are recorded (LG-02), the video before its first byte and with the segments it is made of."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import pytest

from lanterne.audit import Action
from lanterne.config import Config
from lanterne.config.schema import Mode
from lanterne.video.export import verify_export
from lanterne.video.recording import segments
from tests.api.test_recorded_clip import record
from tests.support.console import NOW, Clock, Console, add_account, add_event, open_console, site_config
from tests.support.video import VIDEO, excerpt

PURPOSE = "incident report 2026-041"
FIRST = NOW - timedelta(seconds=5)
"""The first recording of quai-nord: 20 s from here; the camera then drops for 10 s."""
SECOND = NOW + timedelta(seconds=25)
"""The second recording, after the camera reconnected: 20 s more."""
WINDOW = {
    "start": (NOW - timedelta(seconds=30)).isoformat(),
    "end": (NOW + timedelta(seconds=60)).isoformat(),
}


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A camera sends a keyframe every second or two (vtest.avi has one every 25 s).
    return excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("cam") / "pets.mp4", 20.0)


def _open(cfg: Config, clock: Clock) -> Iterator[Console]:
    gen = open_console(cfg, clock)
    console = next(gen)
    console.cfg = cfg  # type: ignore[attr-defined]
    yield console
    gen.close()


@pytest.fixture
def site(sqlite_url: str, tmp_path: Path, clock: Clock, camera_clip: Path) -> Iterator[Console]:
    cfg = site_config(sqlite_url, tmp_path).model_copy(update={"mode": Mode.ALERTS})
    cameras = [c.model_copy(update={"record": "off"}) if c.id == "depot" else c for c in cfg.cameras]
    cfg = cfg.model_copy(update={"cameras": cameras})
    for console in _open(cfg, clock):
        add_account(console, "expo", "export_officer")
        record(cfg, console.store, console.audit, "quai-nord", FIRST, camera_clip)
        record(cfg, console.store, console.audit, "quai-nord", SECOND, camera_clip)
        add_event(console.store, "r1", "quai-nord")  # NOW .. NOW + 5 s
        add_event(console.store, "r2", "parvis")
        add_event(console.store, "old", "quai-nord", at=NOW - timedelta(hours=2))
        yield console


def timeline(site: Console, camera: str = "quai-nord", **params: Any) -> Any:
    return site.client.get(
        f"/api/cameras/{camera}/recording", params={**WINDOW, "purpose": PURPOSE, **params}
    )


def video(site: Console, start: Any, seconds: float, camera: str = "quai-nord", **params: Any) -> Any:
    query = {"start": start.isoformat(), "end": (start + timedelta(seconds=seconds)).isoformat()}
    return site.client.get(
        f"/api/cameras/{camera}/recording/video", params={**query, "purpose": PURPOSE, "fps": 5, **params}
    )


def test_the_timeline_shows_both_recordings_the_gap_between_and_the_alerts(site: Console) -> None:
    site.as_user("oper")
    r = timeline(site)
    assert r.status_code == 200, r.text
    body = r.json()
    kinds = [s["kind"] for s in body["spans"]]
    assert kinds == ["gap", "recorded", "recorded", "gap", "recorded", "recorded", "gap"]
    gap = body["spans"][3]
    # The camera dropped between the end of the first recording and the start of the second.
    assert gap["start"] == body["spans"][2]["end"]
    assert gap["end"] == SECOND.isoformat().replace("+00:00", "Z")
    assert [a["id"] for a in body["alerts"]] == ["r1"]  # not parvis's, not one outside the window
    assert body["alerts"][0]["state"] == "new" and body["record"] == "events"
    entry = site.audit_entries(Action.SEARCH)[-1]
    assert entry.object_type == "recording" and entry.object_id == "quai-nord"
    assert entry.purpose == PURPOSE
    assert entry.details == {
        "camera": "quai-nord",
        "from": WINDOW["start"][:19] + "Z",
        "to": WINDOW["end"][:19] + "Z",
    }


def test_a_stretch_plays_and_its_view_is_recorded_with_its_segments(site: Console) -> None:
    site.as_user("oper")
    r = video(site, NOW, 3.0)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["cache-control"] == "private, no-store"
    with av.open(io.BytesIO(r.content)) as c:
        frames = list(c.decode(video=0))
    assert 14 <= len(frames) <= 16  # 3 s at 5 frames a second
    (view,) = site.audit_entries(Action.VIEW_RECORDING)
    assert view.purpose == PURPOSE and view.user_id == site.ids["oper"]
    assert view.object_id == "quai-nord"
    assert view.time_from == NOW and view.time_to == NOW + timedelta(seconds=3)
    rows = segments(site.store, "quai-nord", NOW, NOW + timedelta(seconds=3))
    assert view.details["recording"]["segments"] == [s.id for s in rows]
    assert view.details["fps"] == 5


def test_an_export_officer_sees_the_recording_and_cameras_but_no_alert(site: Console) -> None:
    """AC-03: the export officer finds and checks the stretch to hand over; alerts stay the
    watchers' work, so neither the timeline nor the camera list carries one."""
    site.as_user("expo")
    r = timeline(site)
    assert r.status_code == 200, r.text
    assert [s["kind"] for s in r.json()["spans"]].count("recorded") == 4
    assert r.json()["alerts"] == []
    played = video(site, NOW, 1.0)
    assert played.status_code == 200, played.text
    assert site.audit_entries(Action.VIEW_RECORDING)[-1].user_id == site.ids["expo"]
    cameras = site.client.get("/api/cameras")
    assert cameras.status_code == 200
    assert [c["recent_alerts"] for c in cameras.json()] == [[], [], []]
    site.as_user("oper")
    assert [a["id"] for a in timeline(site).json()["alerts"]] == ["r1"]
    assert any(c["recent_alerts"] for c in site.client.get("/api/cameras").json())


@pytest.mark.parametrize("route", ["timeline", "video"])
def test_a_purpose_is_required_and_nothing_is_shown_without_one(site: Console, route: str) -> None:
    site.as_user("oper")
    before = len(site.audit.entries())
    for purpose in (None, "   "):
        params = {} if purpose is None else {"purpose": purpose}
        if route == "timeline":
            r = site.client.get("/api/cameras/quai-nord/recording", params={**WINDOW, **params})
        else:
            r = site.client.get(
                "/api/cameras/quai-nord/recording/video",
                params={"start": NOW.isoformat(), "end": (NOW + timedelta(seconds=2)).isoformat(), **params},
            )
        assert r.status_code == 400
        assert "purpose" in r.json()["detail"]
    assert len(site.audit.entries()) == before


def test_out_of_scope_and_no_footage_roles_are_refused_and_recorded(site: Console) -> None:
    site.as_user("oper-nord")
    assert timeline(site, "parvis").status_code == 403
    assert video(site, NOW, 2.0, camera="parvis").status_code == 403
    denied = [e for e in site.audit_entries(Action.SEARCH) if e.details.get("denied") == "recording"]
    assert [(e.object_id, e.user_id, e.details["path"]) for e in denied] == [
        ("parvis", site.ids["oper-nord"], "/api/cameras/parvis/recording"),
        ("parvis", site.ids["oper-nord"], "/api/cameras/parvis/recording/video"),
    ]
    assert site.audit_entries(Action.VIEW_RECORDING) == []
    site.as_user("audi")
    assert timeline(site).status_code == 403
    assert video(site, NOW, 2.0).status_code == 403
    assert site.audit_entries(Action.ACCESS_DENIED)[-1].user_id == site.ids["audi"]
    site.client.cookies.clear()
    assert timeline(site).status_code == 401


@pytest.mark.parametrize(
    ("route", "seconds", "message"),
    [
        ("timeline", 24 * 3600 + 1, "a timeline covers at most 24 h"),
        ("video", 601, "a video request covers at most 10 minutes"),
        ("video", 0, "end must be after start"),
        ("timeline", -5, "end must be after start"),
    ],
)
def test_windows_are_bounded(site: Console, route: str, seconds: int, message: str) -> None:
    site.as_user("oper")
    start, end = NOW, NOW + timedelta(seconds=seconds)
    path = "/api/cameras/quai-nord/recording" + ("/video" if route == "video" else "")
    r = site.client.get(path, params={"start": start.isoformat(), "end": end.isoformat(), "purpose": PURPOSE})
    assert r.status_code == 422
    assert message in r.json()["detail"]
    assert site.audit_entries(Action.VIEW_RECORDING) == []


def test_unknown_parameters_are_refused(site: Console) -> None:
    site.as_user("oper")
    r = timeline(site, person="red coat")
    assert r.status_code == 422
    assert "unknown parameter(s): person" in r.json()["detail"]


def test_a_tampered_segment_is_named_and_nothing_is_shown(site: Console) -> None:
    cfg: Config = site.cfg  # type: ignore[attr-defined]
    (row,) = segments(site.store, "quai-nord", NOW + timedelta(seconds=1), NOW + timedelta(seconds=2))
    target = Path(cfg.recording.dir) / row.path
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    site.as_user("oper")
    r = video(site, NOW, 3.0)
    assert r.status_code == 409
    assert f"segment {row.id} of camera quai-nord" in r.json()["detail"]
    assert "tampered" in r.json()["detail"]
    assert site.audit_entries(Action.VIEW_RECORDING) == []
    # The timeline reads the index only: it still shows where footage should be.
    assert timeline(site).status_code == 200


def test_no_recording_says_why(site: Console) -> None:
    site.as_user("oper")
    r = video(site, NOW + timedelta(seconds=17), 5.0)  # inside the gap
    assert r.status_code == 404
    assert "nothing of camera 'quai-nord' is recorded between" in r.json()["detail"]
    r = timeline(site, "depot")
    assert r.status_code == 404
    assert r.json()["detail"] == "camera 'depot' does not record (record: off in the configuration)"
    assert video(site, NOW, 2.0, camera="depot").status_code == 404
    assert timeline(site, "nowhere").status_code == 404
    assert site.audit_entries(Action.VIEW_RECORDING) == []


def test_a_statistics_site_has_no_recordings(console: Console) -> None:
    console.as_user("oper")
    r = timeline(console)
    assert r.status_code == 404
    assert r.json()["detail"] == "this site runs in statistics mode, which never records video"


def test_the_page_is_for_roles_that_see_footage(site: Console) -> None:
    r = site.client.get("/console/recordings", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    site.as_user("oper-nord")
    page = site.client.get("/console/recordings")
    assert page.status_code == 200 and "/static/console/playback.js" in page.text
    assert site.client.get("/static/console/playback.js").status_code == 200
    site.as_user("audi")
    assert site.client.get("/console/recordings").status_code == 403
    assert site.audit_entries(Action.ACCESS_DENIED)[-1].details["path"] == "/console/recordings"


# --- exports from the console ---------------------------------------------------------------


def export(site: Console, seconds: float = 3, **body: object) -> object:
    payload = {
        "start": (FIRST + timedelta(seconds=2)).isoformat(),
        "end": (FIRST + timedelta(seconds=2 + seconds)).isoformat(),
        "purpose": "PV 2026/123",
        "recipient": "OPJ Martin",
    } | body
    return site.client.post("/api/cameras/quai-nord/recording/export", json=payload, headers=site.csrf)


def test_an_export_officer_gets_a_verifiable_export_and_it_is_recorded(site: Console, tmp_path: Path) -> None:
    site.as_user("expo")
    r = export(site)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = sorted(zf.namelist())
        zf.extractall(tmp_path)
    mp4 = next(n for n in names if n.endswith(".mp4"))
    assert names == [mp4, mp4 + ".manifest.json"]
    assert verify_export(tmp_path / mp4) == []
    [record] = site.audit_entries(Action.EXPORT)
    assert record.user_id == site.ids["expo"] and record.recipient == "OPJ Martin"
    assert not list(Path(site.cfg.recording.dir).rglob("*.mp4")), "no copy stays on the server"  # type: ignore[attr-defined]


@pytest.mark.parametrize("login", ["oper", "sup"])
def test_watchers_may_not_export_and_the_refusal_is_recorded(site: Console, login: str) -> None:
    """AC-03: the people who watch the cameras, supervisors included, do not copy footage out."""
    site.as_user(login)
    assert export(site).status_code == 403
    assert not site.audit_entries(Action.EXPORT)
    (denied,) = site.audit_entries(Action.ACCESS_DENIED)
    assert denied.user_id == site.ids[login] and denied.details["denied"] == "export"


def test_an_unmasked_export_without_permission_is_refused(site: Console) -> None:
    site.as_user("expo")
    r = export(site, unmasked_reference="réquisition 2026-77")
    assert r.status_code == 403 and "holds no permission to remove privacy protection" in r.json()["detail"]
    assert not site.audit_entries(Action.EXPORT)


def test_console_exports_are_short_and_need_their_fields(site: Console) -> None:
    site.as_user("expo")
    assert export(site, seconds=11 * 60).status_code == 422
    assert export(site, recipient="").status_code == 422
    assert export(site, extra="x").status_code == 422


# --- viewing without anonymisation -----------------------------------------------------------


def test_unanonymised_viewing_needs_a_permission_and_is_recorded_before_and_after(site: Console) -> None:
    from lanterne.accountability.privacy import grant

    site.as_user("sup")
    refused = video(site, FIRST + timedelta(seconds=1), 2, unmasked_reference="réquisition 2026-77")
    assert refused.status_code == 403 and "holds no permission" in refused.json()["detail"]
    assert not site.audit_entries(Action.VIEW_RECORDING)
    grant(
        site.store.engine, site.audit, user=site.ids["sup"], cameras=["quai-nord"], until=NOW + timedelta(days=30),
        reason="unité judiciaire", granted_by="admin", now=NOW - timedelta(days=1),
    )  # fmt: skip
    r = video(site, FIRST + timedelta(seconds=1), 2, unmasked_reference="réquisition 2026-77")
    assert r.status_code == 200, r.text
    with av.open(io.BytesIO(r.content)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 8
    actions = [e.action for e in site.audit.entries()]
    removed, viewed, restored = (
        actions.index(Action.PRIVACY_REMOVED),
        actions.index(Action.VIEW_RECORDING),
        actions.index(Action.PRIVACY_RESTORED),
    )
    assert removed < viewed < restored
    [use] = site.audit_entries(Action.PRIVACY_REMOVED)
    assert use.purpose == PURPOSE and use.details["reference"] == "réquisition 2026-77"
    [end] = site.audit_entries(Action.PRIVACY_RESTORED)
    assert end.details["frames"] >= 8
