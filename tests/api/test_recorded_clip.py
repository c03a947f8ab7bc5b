"""An alert of a recorded camera: its clip is the alert's range of the recording, rendered through
the one read path when someone looks, verified first and named in the audit record."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import av
import pytest

from lanterne.audit import Action
from lanterne.config import Config
from lanterne.config.schema import Mode
from lanterne.video.recording import segments
from tests.support.console import NOW, Clock, Console, add_event, open_console, site_config
from tests.support.recording import camera_clip, record


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camera_clip(tmp_path_factory.mktemp("cam"))


@pytest.fixture
def recorded(sqlite_url: str, tmp_path: Path, clock: Clock, clip: Path) -> Iterator[Console]:
    # One backend: the segment index is tested on both with the recorder; rendering is the cost.
    cfg = site_config(sqlite_url, tmp_path).model_copy(update={"mode": Mode.ALERTS})
    gen = open_console(cfg, clock)
    console = next(gen)
    record(cfg, console.store, console.audit, "quai-nord", NOW - timedelta(seconds=5), clip)
    add_event(console.store, "r1", "quai-nord")  # NOW .. NOW + 5 s
    add_event(console.store, "r2", "parvis")  # a camera with no recording
    console.cfg = cfg  # type: ignore[attr-defined]
    yield console
    gen.close()


def test_the_clip_is_rendered_from_the_recording_and_the_view_names_its_segments(recorded: Console) -> None:
    recorded.as_user("oper")
    r = recorded.client.get("/api/alerts/r1/clip", params={"purpose": "verify before deciding"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(r.content)) as c:
        frames = list(c.decode(video=0))
    # The alert's 5 s with 3 s before and after, at the camera's analysis rate (5 a second).
    assert 50 <= len(frames) <= 58
    view = recorded.audit_entries(Action.VIEW_CLIP)[-1]
    assert view.purpose == "verify before deciding"
    rec = view.details["recording"]
    assert rec["camera"] == "quai-nord" and rec["segments"]
    assert set(rec["segments"]) <= {
        s.id for s in segments(recorded.store, "quai-nord", NOW - timedelta(days=1), NOW + timedelta(days=1))
    }


def test_a_tampered_segment_is_named_and_nothing_is_shown(recorded: Console) -> None:
    cfg: Config = recorded.cfg  # type: ignore[attr-defined]
    rows = segments(recorded.store, "quai-nord", NOW, NOW + timedelta(seconds=5))
    target = Path(cfg.recording.dir) / rows[0].path
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    recorded.as_user("oper")
    before = len(recorded.audit_entries(Action.VIEW_CLIP))
    r = recorded.client.get("/api/alerts/r1/clip", params={"purpose": "verify before deciding"})
    assert r.status_code == 409
    assert f"segment {rows[0].id} of camera quai-nord" in r.json()["detail"]
    assert "tampered" in r.json()["detail"]
    assert len(recorded.audit_entries(Action.VIEW_CLIP)) == before


def test_no_recording_no_clip(recorded: Console) -> None:
    recorded.as_user("oper")
    r = recorded.client.get("/api/alerts/r2/clip", params={"purpose": "verify before deciding"})
    assert r.status_code == 404
    assert "no recording of camera 'parvis' covers alert 'r2'" in r.json()["detail"]


def test_the_clip_still_needs_a_purpose_and_the_scope(recorded: Console) -> None:
    recorded.as_user("oper")
    assert recorded.client.get("/api/alerts/r1/clip").status_code == 400
    recorded.as_user("oper-nord")
    assert recorded.client.get("/api/alerts/r2/clip", params={"purpose": "x"}).status_code in (403, 404)
