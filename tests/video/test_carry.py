"""Detector at a configurable rate (`detector.interval_seconds`), boxes carried by optical flow in
between (issue 10): the carry step on synthetic motion, the detector's rate in stream time, and
what it costs in person recall on real footage."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import supervision as sv

from lanterne.config import config_hash, parse_config
from lanterne.config.schema import Config
from lanterne.core.types import Frame
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector
from lanterne.video.detectors.base import Detector, PixelBox
from lanterne.video.evaluation import load_mot
from lanterne.video.tracking import carry
from lanterne.video.tracking.carry import BoxCarrier
from tests.support.video import VIDEO

SIZE = (768, 576)
PATCH = (300, 200, 360, 330)
"""A person-sized textured patch, in camera pixels."""


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return cv2.GaussianBlur(rng.integers(0, 255, (h, w), np.uint8), (3, 3), 0)


def scene(patch: np.ndarray, x: int, y: int) -> np.ndarray:
    """A flat grey picture with the patch pasted at (x, y), as BGR."""
    img = np.full((SIZE[1], SIZE[0]), 110, np.uint8)
    img[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def test_carried_box_follows_a_translating_patch() -> None:
    rng = np.random.default_rng(1)
    patch = texture(rng, PATCH[3] - PATCH[1], PATCH[2] - PATCH[0])
    carrier = BoxCarrier(SIZE, hold_seconds=2.0)
    x, y = PATCH[0], PATCH[1]
    carrier.seed(carrier.prepare(scene(patch, x, y)), {1: PATCH})
    for step in range(1, 6):
        x, y = x + 7, y + 3  # a brisk walker at 5 fps: 35 px/s across, 15 px/s down
        (c,) = carrier.carry(carrier.prepare(scene(patch, x, y)), step * 0.2)
        assert c.key == 1 and c.moved
        expected = (x, y, x + patch.shape[1], y + patch.shape[0])
        assert np.abs(np.subtract(c.box, expected)).max() <= 2.0, (step, c.box, expected)


def jump(seed: int, hold_seconds: float = 1.0) -> tuple[BoxCarrier, np.ndarray, bool]:
    """Seed a box on a patch, then show the patch 80 px further right (a dropped stretch of
    frames, a camera knock): beyond the flow's reach, so whatever the corners land on is wrong."""
    rng = np.random.default_rng(seed)
    patch = texture(rng, PATCH[3] - PATCH[1], PATCH[2] - PATCH[0])
    carrier = BoxCarrier(SIZE, hold_seconds=hold_seconds)
    carrier.seed(carrier.prepare(scene(patch, PATCH[0], PATCH[1])), {5: PATCH})
    after = scene(patch, PATCH[0] + 80, PATCH[1])
    (c,) = carrier.carry(carrier.prepare(after), 0.2)
    return carrier, after, c.moved


def test_forward_backward_check_holds_a_box_whose_points_are_inconsistent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Corners followed to the next frame and back must return where they started. Without the
    check, some boxes would be moved by spurious matches; with it, none is."""
    assert not any(jump(seed)[2] for seed in range(20))
    monkeypatch.setattr(carry, "FB_MAX", np.inf)
    assert any(jump(seed)[2] for seed in range(20))


def test_a_held_box_is_forgotten_after_the_hold_time() -> None:
    """Like an object the detector stopped seeing: held still, then let go."""
    carrier, after, _ = jump(0, hold_seconds=1.0)
    t = 0.2
    while t < 1.2 - 1e-9:
        t += 0.2
        (c,) = carrier.carry(carrier.prepare(after), t)
        assert not c.moved and c.box == PATCH
    assert carrier.carry(carrier.prepare(after), t + 0.2) == []


def test_a_static_patch_stays_put() -> None:
    rng = np.random.default_rng(3)
    patch = texture(rng, PATCH[3] - PATCH[1], PATCH[2] - PATCH[0])
    carrier = BoxCarrier(SIZE, hold_seconds=2.0)
    picture = carrier.prepare(scene(patch, PATCH[0], PATCH[1]))
    carrier.seed(picture, {1: PATCH})
    (c,) = carrier.carry(picture, 0.2)
    assert c.moved and np.abs(np.subtract(c.box, PATCH)).max() < 0.5


# --- the analyser on real footage --------------------------------------------------------------

PETS_SECONDS = 20.0


def pets_config(interval: float) -> Config:
    return parse_config(
        {
            "mode": "statistics",
            "detector": {"interval_seconds": interval},
            "cameras": [
                {
                    "id": "pets",
                    "source": "vtest.avi",
                    "location": {"lat": 51.44, "lon": -0.94},
                    "fps": 5,
                    "zones": [{"id": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def detector() -> Detector:
    return create_detector(pets_config(0).detector, None)


@pytest.fixture(scope="module")
def pets_frames() -> list[Frame]:
    frames = FileSource("pets", str(VIDEO / "vtest.avi"), fps=5).frames()
    return list(itertools.takewhile(lambda f: f.pts < PETS_SECONDS, frames))


class Counting:
    """The real detector, noting the stream time of each call."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner
        self.model_sha256 = inner.model_sha256
        self.now = 0.0
        self.calls: list[float] = []

    def detect(self, image: np.ndarray, regions: list[PixelBox] | None = None) -> sv.Detections:
        self.calls.append(self.now)
        return self.inner.detect(image, regions)


def analyse(frames: list[Frame], interval: float, detector: Detector) -> tuple[CameraAnalyser, list]:
    cfg = pets_config(interval)
    analyser = CameraAnalyser(cfg.cameras[0], cfg, detector, config_hash=config_hash(cfg))  # type: ignore[arg-type]
    seen = []
    for f in frames:
        if isinstance(detector, Counting):
            detector.now = f.pts
        analyser.process(f)
        seen.append(analyser.objects)
    return analyser, seen


@pytest.mark.parametrize("interval", [0.6, 1.0])
def test_detector_runs_at_most_once_per_interval_of_stream_time(
    interval: float, detector: Detector, pets_frames: list[Frame]
) -> None:
    # Drop frames irregularly, as RTSP does: the interval is stream time, not a frame count.
    rng = np.random.default_rng(4)
    frames = [f for f in pets_frames[:50] if rng.random() > 0.25]
    counting = Counting(detector)
    analyser, seen = analyse(frames, interval, counting)  # type: ignore[arg-type]
    gaps = np.diff(counting.calls)
    assert len(counting.calls) >= 3
    assert gaps.min() >= interval - 1e-6, counting.calls
    # A busy scene is not left without a detection for longer than the interval needs.
    assert gaps.max() <= interval + 0.6, counting.calls
    assert analyser.stats.detector_runs == len(counting.calls)
    carried = [objs for f, objs in zip(frames, seen, strict=True) if f.pts not in counting.calls]
    assert carried and all(objs for objs in carried), "between detections the tracked people stay"


def test_interval_zero_runs_the_detector_on_every_busy_frame(
    detector: Detector, pets_frames: list[Frame]
) -> None:
    counting = Counting(detector)
    analyse(pets_frames[:15], 0.0, counting)  # type: ignore[arg-type]
    assert len(counting.calls) == 15


def person_recall(frames: list[Frame], seen: list) -> float:
    gt = load_mot(VIDEO / "vtest.PETS09-S2L1.gt.txt", SIZE, 10)
    tp = fn = 0
    for f, objects in zip(frames, seen, strict=True):
        truth = np.array([o.box for o in gt.frames.get(f.index, ())]).reshape(-1, 4)
        found = np.array([o.box for o in objects if o.label == "person"]).reshape(-1, 4)
        matched = 0
        if len(truth) and len(found):
            iou = sv.box_iou_batch(truth, found)
            while iou.size and iou.max() >= 0.5:
                i, j = np.unravel_index(int(iou.argmax()), iou.shape)
                iou[i, :] = 0
                iou[:, j] = 0
                matched += 1
        tp += matched
        fn += len(truth) - matched
    return tp / (tp + fn)


def test_pets_recall_with_detection_every_0_6_s_stays_close(
    detector: Detector, pets_frames: list[Frame]
) -> None:
    """Real detector, real clip: carrying boxes by optical flow for two frames out of three keeps
    person recall within 0.1 of detecting every frame (measured 0.81 against 0.85 on 30 s)."""
    _, every = analyse(pets_frames, 0.0, detector)
    analyser, carried = analyse(pets_frames, 0.6, detector)
    assert analyser.stats.detector_runs <= len(pets_frames) / 3 + 1
    base, rate = person_recall(pets_frames, every), person_recall(pets_frames, carried)
    assert base > 0.7, base
    print(f"person recall {base:.3f} every frame, {rate:.3f} every 0.6 s")
    assert rate >= base - 0.1, (rate, base)


def test_carry_uses_stream_time_after_a_restart(detector: Detector, pets_frames: list[Frame]) -> None:
    """A source that restarts (time runs backwards) is detected afresh on its first frame, not
    carried until the old clock is caught up."""
    counting = Counting(detector)
    frames = pets_frames[:10] + [
        Frame(f.camera_id, f.pts - pets_frames[9].pts, f.image, f.index) for f in pets_frames[10:12]
    ]
    analyse(frames, 1.0, counting)  # type: ignore[arg-type]
    assert counting.calls == pytest.approx([0.0, 1.0, 0.2]), counting.calls
