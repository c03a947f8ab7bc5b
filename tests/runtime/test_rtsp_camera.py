"""A real RTSP camera (GStreamer's server) recorded and analysed by `lanterne run`: a camera that
hangs is declared lost and reopened, its recording shows the gap on the timeline instead of a
silent hole, every segment verifies, and analysis resumes at once after the reconnection; a
camera that dies is retried with a one-line reason naming the network, never "not a video file",
while the other camera goes on, and it is analysed again once it is back."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lanterne.accountability.transparency import export
from lanterne.audit import AuditLog
from lanterne.config import Config, parse_config
from lanterne.runtime.demo import CROSSROADS
from lanterne.runtime.runner import Runner
from lanterne.store import Store
from lanterne.video.recording import KeyRing, timeline, verify
from tests.support.rtsp import h264_clip, rtsp_camera


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return h264_clip(tmp_path_factory.mktemp("rtsp") / "cam.mp4")


def wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_a_hung_camera_leaves_a_gap_and_analysis_resumes(
    tmp_path: Path, clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with rtsp_camera(clip) as camera:
        cfg = parse_config(
            {
                "mode": "alerts",
                "store": {
                    "url": f"sqlite:///{tmp_path / 'run.db'}",
                    "evidence_dir": str(tmp_path / "evidence"),
                },
                "recording": {
                    "dir": str(tmp_path / "recordings"),
                    "key_file": str(tmp_path / "keys.json"),
                    "segment_seconds": 2,
                },
                "cameras": [
                    {
                        "id": "live",
                        "source": camera.url,
                        "location": {"lat": 51.44, "lon": -0.94},
                        "record": "continuous",
                        "zones": [{"id": "crossroads", "polygon": CROSSROADS}],
                    }
                ],
            }
        )
        audit = AuditLog.from_config(cfg)
        export(cfg, audit.engine, tmp_path / "public", "tester", datetime.now(UTC))
        runner = Runner(cfg)
        caplog.set_level(logging.WARNING, logger="lanterne.video.capture.source")
        started = datetime.now(UTC)
        runner.start()
        try:
            worker = runner.workers["live"]
            assert wait_until(lambda: worker.state.frames >= 25, 30), "frames flow from the camera"
            camera.hang()
            assert wait_until(lambda: "stream lost" in caplog.text, 20), "a hung camera is declared lost"
            camera.resume()
            before = worker.state.frames
            assert wait_until(lambda: worker.state.frames >= before + 25, 30), (
                "analysis resumes after the reconnection"
            )
        finally:
            runner.stop()
    store = Store.open(cfg.store.url)
    spans = timeline(store, "live", started - timedelta(seconds=5), datetime.now(UTC))
    kinds = [s.kind for s in spans]
    inner = kinds[kinds.index("recorded") : len(kinds) - kinds[::-1].index("recorded")]
    assert "gap" in inner, f"the hang is a gap between recorded spans: {kinds}"
    assert max(s.end - s.start for s in spans if s.kind == "gap" and s in spans[1:-1]) > timedelta(seconds=4)
    assert verify(store, cfg.recording.dir, KeyRing.load(cfg.recording.key_file)) == []


def _site(tmp_path: Path, cameras: dict[str, str]) -> Config:
    return parse_config(
        {
            "mode": "statistics",
            "store": {"url": f"sqlite:///{tmp_path / 'run.db'}", "evidence_dir": str(tmp_path / "evidence")},
            "cameras": [
                {"id": cid, "source": url, "location": {"lat": 51.44, "lon": -0.94}}
                for cid, url in cameras.items()
            ],
        }
    )


@pytest.mark.slow
def test_a_dead_camera_is_retried_with_its_reason_and_the_other_goes_on(
    tmp_path: Path, clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with rtsp_camera(clip) as dying, rtsp_camera(clip) as steady:
        runner = Runner(_site(tmp_path, {"dying": dying.url, "steady": steady.url}))
        caplog.set_level(logging.WARNING, logger="lanterne")
        runner.start()
        try:
            a, b = runner.workers["dying"], runner.workers["steady"]
            assert wait_until(lambda: a.state.frames >= 10 and b.state.frames >= 10, 30), "both flow"
            dying.die()
            assert wait_until(lambda: "dying: stream lost" in caplog.text, 20), "the death is noticed"
            steady_before = b.state.frames
            assert wait_until(lambda: "cannot open" in caplog.text, 30), "reopening says why it fails"
            assert wait_until(lambda: b.state.frames >= steady_before + 10, 20), "the other goes on"
            assert a.state.status == "running", "the dead camera's worker waits to retry, it does not fail"
            dying.revive()
            before = a.state.frames
            assert wait_until(lambda: a.state.frames >= before + 10, 45), "analysed again once back"
        finally:
            runner.stop()
    text = caplog.text
    assert "not a video file" not in text
    lines = [
        r.getMessage()
        for r in caplog.records
        if "dying" in r.getMessage() and "cannot open" in r.getMessage()
    ]
    assert lines and all("\n" not in m and "check the address and the network" in m for m in lines), lines
    assert "steady: stream lost" not in text
