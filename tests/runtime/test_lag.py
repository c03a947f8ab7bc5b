"""`lanterne run` keeps real time or says it cannot: file cameras are read at real time, a camera
whose analysis cannot keep up sheds rate, then drops frames (counted), one log line per change,
all of it in its health row, while the other cameras go on unaffected."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from lanterne.accountability.cameras import camera_health
from lanterne.config import parse_config
from lanterne.runtime.demo import CROSSROADS
from lanterne.runtime.runner import LAG_SHED_SECONDS, MIN_FPS, STARTUP_SECONDS, Runner, Shedder
from lanterne.store import Store
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector
from lanterne.video.detectors.base import Detector, PixelBox
from tests.support.video import VIDEO, excerpt

CLIP_SECONDS = 40


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("clip") / "vtest-40s.mp4", CLIP_SECONDS)


class SleepyDetector(Detector):
    """The real YOLOX detector, slowed on some cameras by really sleeping before each call: what
    an overloaded machine or a too-large model does to a camera. The runner shares one detector
    between its workers, so a camera is told by its worker thread's name (`camera-<id>`)."""

    def __init__(self, inner: Detector, delays: dict[str, float]) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.model_sha256 = inner.model_sha256
        self.delays = delays

    def detect(self, image: np.ndarray, regions: Sequence[PixelBox] | None = None) -> sv.Detections:
        delay = self.delays.get(threading.current_thread().name.removeprefix("camera-"), 0.0)
        if delay:
            time.sleep(delay)
        return self.inner.detect(image, regions)


def site(tmp: Path, clip: Path, cameras: Sequence[str]) -> dict:
    zone = {"id": "crossroads", "polygon": CROSSROADS, "events": {}}
    cam = {"source": str(clip), "location": {"lat": 51.44, "lon": -0.94}, "fps": 5, "zones": [zone]}
    return {
        "mode": "statistics",
        "store": {"url": f"sqlite:///{tmp / 'run.db'}", "evidence_dir": str(tmp / "evidence")},
        "cameras": [{**cam, "id": c} for c in cameras],
    }


def test_a_slow_camera_sheds_then_drops_while_the_others_keep_real_time(
    tmp_path: Path, clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # `slow` needs 1.25 s of analysis per second of video at 5 fps but under 1 s at 2.5 fps: it
    # sheds and catches up. `stuck` needs 1.5 s per second even at the 1 fps floor: it drops.
    cameras = ("good-1", "good-2", "slow", "stuck")
    cfg = parse_config(site(tmp_path, clip, cameras))
    detector = SleepyDetector(create_detector(cfg.detector, cfg.models_dir), {"slow": 0.25, "stuck": 1.5})
    runner = Runner(cfg, detector=detector)
    seen: dict[str, set[str]] = defaultdict(set)
    caplog.set_level(logging.WARNING, logger="lanterne.runtime.runner")
    runner.start()
    try:
        engine = runner.store.engine
        deadline = time.monotonic() + CLIP_SECONDS + 120
        while time.monotonic() < deadline:
            for cam in cameras:
                row = camera_health(engine, cam)
                if row is not None:
                    seen[cam].add(row.state)
            if all(runner.workers[c].state.status == "finished" for c in ("good-1", "good-2")):
                break
            time.sleep(0.5)
    finally:
        runner.stop()

    for cam in ("good-1", "good-2"):
        w = runner.workers[cam]
        assert w.state.status == "finished", f"{cam} read its whole clip"
        assert seen[cam] <= {"starting", "running", "finished"}, f"{cam} never shed: {seen[cam]}"
        assert w.shedder.rate == 5 and w.state.frames_dropped == 0
        assert w.state.lag is not None and w.state.lag < LAG_SHED_SECONDS, "a paced camera keeps real time"
        assert w.state.frames >= CLIP_SECONDS * 5 - 1, "every frame of the clip analysed at 5 fps"

    slow, stuck = runner.workers["slow"], runner.workers["stuck"]
    assert "shedding" in seen["slow"] and "dropping" not in seen["slow"]
    assert MIN_FPS <= slow.shedder.rate < 5 and slow.state.frames_dropped == 0
    assert "dropping" in seen["stuck"]
    assert stuck.shedder.rate == MIN_FPS and stuck.state.frames_dropped > 0

    # One line per change of state, never one per frame.
    lines = [r.getMessage() for r in caplog.records if r.name == "lanterne.runtime.runner"]
    slow_lines = [m for m in lines if m.startswith("camera slow:")]
    assert re.fullmatch(
        r"camera slow: \d+\.\d s behind real time; analysis shed from 5 to 2\.5 fps", slow_lines[0]
    )
    assert len(slow_lines) == len(set(slow_lines)) <= 3
    stuck_lines = [m for m in lines if m.startswith("camera stuck:")]
    assert sum("dropping frames to catch up" in m for m in stuck_lines) == 1
    assert not [m for m in lines if m.startswith("camera good-")]

    # The store says the same (rows written after the stop: their final word).
    store = Store.open(cfg.store.url)
    try:
        rows = {c: camera_health(store.engine, c) for c in cameras}
    finally:
        store.close()
    assert rows["good-1"] is not None and rows["good-1"].state == "finished"
    assert rows["good-1"].analysis_fps == rows["good-1"].configured_fps == 5
    assert rows["stuck"] is not None and rows["stuck"].frames_dropped == stuck.state.frames_dropped
    assert rows["stuck"].analysis_fps == MIN_FPS and rows["stuck"].lag_seconds is not None


def test_a_paced_file_is_held_to_its_timestamps_an_unpaced_one_is_not(clip: Path) -> None:
    """`--no-pace` (replays, the demo): the clip is read as fast as the machine allows, so there is
    no real time to be behind, and nothing is shed."""
    replay = FileSource("replay", str(clip), fps=5)
    for frame in replay.frames():
        if frame.pts >= 2.0:
            break
    assert replay.wall_origin is None, "no real time to be behind"
    paced = FileSource("live", str(clip), fps=5, pace=True)
    for frame in paced.frames():
        assert paced.wall_origin is not None
        ahead = paced.wall_origin + frame.pts - time.monotonic()
        assert ahead <= 0.0, "a paced frame never comes before its time"
        if frame.pts >= 2.0:
            break


def test_dropping_resumes_at_a_keyframe_and_counts_what_it_skipped(clip: Path) -> None:
    src = FileSource("cam", str(clip), fps=5)
    pts = []
    for frame in src.frames():
        pts.append(frame.pts)
        if len(pts) == 3:
            src.skip_until = 10.0
    # The decoder's frame threads may still hand over the pictures it had in hand (a few tenths
    # of a second); after them, the next picture is the first keyframe at or after the target.
    assert [p for p in pts if p < 10.0] == [p for p in pts if p < 1.5]
    assert 10.0 <= min(p for p in pts if p >= 10.0) < 10.0 + 1.2 + 1e-6, "GOP of 12 frames at 10 fps"
    assert src.stats.frames_dropped >= 90, "about 10 s at 10 fps skipped undecoded"
    assert src.error is None, "frames dropped on purpose are not a truncated file"


# Lag in seconds at monotonic time t (one measurement per row), and the rate after it.
SHED_TABLE: list[tuple[str, list[tuple[float, float]], list[float], list[bool]]] = [
    ("keeping up", [(0, 0.1), (10, 0.2), (60, 0.1)], [5, 5, 5], [False] * 3),
    ("a spike under the threshold", [(0, 1.9), (1, 0.3)], [5, 5], [False] * 2),
    (
        "sheds step by step, one step per STEP_SECONDS",
        [(0, 2.5), (1, 3.0), (5, 3.5), (10, 4.0), (15, 4.5)],
        [2.5, 2.5, 1.25, 1, 1],
        [False] * 5,
    ),
    (
        "waits while the backlog shrinks",
        [(0, 10.0), (5, 7.0), (10, 6.0)],
        [2.5, 2.5, 1.25],
        [False] * 3,
    ),
    (
        "drops only at the floor and beyond LAG_DROP_SECONDS",
        [(0, 3), (5, 4), (10, 4.5), (15, 4.8), (20, 6.0), (21, 7.0), (25, 8.0)],
        [2.5, 1.25, 1, 1, 1, 1, 1],
        [False, False, False, False, True, False, True],
    ),
    (
        "raised again after RECOVER_SECONDS of keeping up",
        [(0, 3), (5, 0.2), (34, 0.2), (35, 0.2), (64, 0.2), (65, 0.1)],
        [2.5, 2.5, 2.5, 5, 5, 5],
        [False] * 6,
    ),
]


@pytest.mark.parametrize(("case", "lags", "rates", "drops"), SHED_TABLE, ids=[c[0] for c in SHED_TABLE])
def test_shedder_table(
    case: str, lags: list[tuple[float, float]], rates: list[float], drops: list[bool]
) -> None:
    shed = Shedder("cam", configured=5.0, started=-STARTUP_SECONDS)
    got_rates, got_drops = [], []
    for now, lag in lags:
        got_drops.append(shed.update(lag, now))
        got_rates.append(shed.rate)
    assert (got_rates, got_drops) == (rates, drops)


def test_a_camera_that_flaps_waits_longer_before_each_raise() -> None:
    shed = Shedder("cam", configured=5.0, started=-STARTUP_SECONDS)
    shed.update(3.0, 0)  # shed to 2.5
    shed.update(0.1, 5)
    shed.update(0.1, 35)  # raised to 5
    assert shed.rate == 5
    shed.update(3.0, 40)  # behind again soon after the raise
    assert shed.rate == 2.5 and shed.recover_after == 60
    shed.update(0.1, 45)
    shed.update(0.1, 80)
    assert shed.rate == 2.5, "30 s of keeping up is not enough any more"
    shed.update(0.1, 105)
    assert shed.rate == 5


def test_start_up_lag_is_worked_off_unless_it_keeps_growing() -> None:
    """Every camera starts at once and lags at first; one that works its start-up backlog off
    keeps its rate, one still falling behind sheds as soon as start-up is over."""
    working_off, growing = Shedder("a", configured=5.0), Shedder("b", configured=5.0)
    for now, lag in [(0, 1.0), (3, 4.0), (6, 5.0), (9, 4.5)]:
        assert not working_off.update(lag, now)
        assert not growing.update(lag + now / 3, now)
    assert working_off.rate == growing.rate == 5, "nothing is shed during start-up"
    working_off.update(3.0, STARTUP_SECONDS)
    growing.update(7.5, STARTUP_SECONDS)
    assert (working_off.rate, growing.rate) == (5, 2.5)
