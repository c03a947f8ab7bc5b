"""Motion gate: when and where the detector runs, on real PETS09 footage (vtest.avi)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from lanterne.config.schema import DetectorSettings, MotionSettings
from lanterne.video.detectors import create_detector
from lanterne.video.motion.gate import MIN_REGION, MotionGate, MotionResult, merge_boxes

VIDEO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "video"
VTEST = VIDEO / "vtest.avi"
VTEST_GT = VIDEO / "vtest.PETS09-S2L1.gt.txt"
SIZE = (768, 576)


def frames(path: Path, count: int) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= count:
                return
            yield frame.to_ndarray(format="bgr24")


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return list(frames(VTEST, 60))


@pytest.fixture(scope="module")
def gt() -> dict[int, dict[int, np.ndarray]]:
    """Considered GT boxes (xyxy) by 0-based frame, then by object id."""
    rows = np.loadtxt(VTEST_GT, delimiter=",")
    rows = rows[rows[:, 6] == 1]
    out: dict[int, dict[int, np.ndarray]] = {}
    for r in rows:
        out.setdefault(int(r[0]) - 1, {})[int(r[1])] = np.array([r[2], r[3], r[2] + r[4], r[3] + r[5]])
    return out


def run_times(gate: MotionGate, image: np.ndarray, times: list[float]) -> list[float]:
    return [t for t in times if gate.update(image, t).run_detector]


@pytest.mark.parametrize("fps", [1.0, 5.0, 12.5])
def test_a_static_scene_runs_the_detector_only_at_refresh_times(clip: list[np.ndarray], fps: float) -> None:
    """Time comes from `t`, not from frame counts: the same refreshes whatever the rate."""
    gate = MotionGate(MotionSettings(refresh_seconds=5.0), SIZE)
    times = [k / fps for k in range(int(12 * fps) + 1)]
    ran = run_times(gate, clip[0], times)
    assert ran == pytest.approx([0.0, 5.0, 10.0], abs=1 / fps + 1e-9)


def test_first_frame_runs_full(clip: list[np.ndarray]) -> None:
    r = MotionGate(MotionSettings(), SIZE).update(clip[0], 0.0)
    assert r == MotionResult(0.0, (), True, True)


def test_time_going_backwards_restarts_the_gate(clip: list[np.ndarray]) -> None:
    gate = MotionGate(MotionSettings(refresh_seconds=5.0), SIZE)
    assert run_times(gate, clip[0], [100.0, 101.0, 102.0]) == [100.0]
    assert run_times(gate, clip[0], [0.0, 1.0, 5.0]) == [0.0, 5.0]


def test_disabled_gate_always_runs_full(clip: list[np.ndarray]) -> None:
    gate = MotionGate(MotionSettings(enabled=False), SIZE)
    results = [gate.update(clip[0], k * 0.2) for k in range(10)]
    assert all(r.run_detector and r.full_frame for r in results)


def test_regions_contain_the_moving_people(
    clip: list[np.ndarray], gt: dict[int, dict[int, np.ndarray]]
) -> None:
    """Every annotated person who moved since the previous frame lies (mostly) inside a region,
    or the gate chose a full frame."""
    gate = MotionGate(MotionSettings(max_regions=4), SIZE)
    region_frames = checked = 0
    for i, image in enumerate(clip):
        r = gate.update(image, i / 10)
        assert r.run_detector  # people walk in every one of these frames
        if i < 5 or r.full_frame:
            continue
        region_frames += 1
        for oid, box in gt[i].items():
            prev = gt[i - 1].get(oid)
            if prev is None or np.abs(box - prev).max() < 1.5:
                continue  # standing still: the tracker's `keep` boxes cover that case
            checked += 1
            area = (box[2] - box[0]) * (box[3] - box[1])
            best = max(
                max(0.0, min(box[2], x1) - max(box[0], x0)) * max(0.0, min(box[3], y1) - max(box[1], y0))
                for x0, y0, x1, y1 in r.regions
            )
            assert best / area >= 0.9, f"frame {i}: person {oid} outside the regions {r.regions}"
    assert region_frames >= 10
    assert checked >= 20


def test_regions_are_disjoint_padded_and_not_too_small(clip: list[np.ndarray]) -> None:
    gate = MotionGate(MotionSettings(max_regions=4), SIZE)
    gate.update(clip[0], 0.0)
    keep = [(300, 200, 330, 260)]
    r = gate.update(clip[0], 0.5, keep=keep)
    assert r.run_detector and not r.full_frame
    assert len(r.regions) == 1
    x0, y0, x1, y1 = r.regions[0]
    assert x0 < 300 and y0 < 200 and x1 > 330 and y1 > 260
    assert x1 - x0 >= MIN_REGION and y1 - y0 >= MIN_REGION
    assert x0 >= 0 and y0 >= 0 and x1 <= SIZE[0] and y1 <= SIZE[1]


@pytest.mark.parametrize(
    ("keep", "full"),
    [
        ([(10, 10, 40, 60)], False),
        ([(10, 10, 40, 60), (600, 400, 640, 480)], False),
        ([(x, y, x + 20, y + 40) for x in (10, 250, 500, 700) for y in (10, 400)], True),  # too many
        ([(0, 0, 500, 400)], True),  # too much of the frame
    ],
)
def test_many_or_large_regions_fall_back_to_full_frame(
    clip: list[np.ndarray], keep: list[tuple[int, int, int, int]], full: bool
) -> None:
    gate = MotionGate(MotionSettings(max_regions=4), SIZE)
    gate.update(clip[0], 0.0)
    r = gate.update(clip[0], 0.2, keep=keep)
    assert r.run_detector
    assert r.full_frame == full
    assert (r.regions == ()) == full


def test_lighting_jump_recalibrates_and_runs_full(clip: list[np.ndarray]) -> None:
    gate = MotionGate(MotionSettings(max_regions=4), SIZE)
    for k in range(3):
        gate.update(clip[0], k * 0.2)
    dark = (clip[0] * 0.35).astype(np.uint8)
    r = gate.update(dark, 0.6)
    assert r.run_detector and r.full_frame
    assert r.changed_share > 0.8
    # The background was reset to the dark picture: the next identical frame is static.
    after = gate.update(dark, 0.8)
    assert not after.run_detector
    assert after.changed_share < 0.001


def test_merge_boxes_leaves_disjoint_boxes() -> None:
    merged = merge_boxes([(0, 0, 10, 10), (20, 0, 30, 10), (5, 5, 25, 8), (100, 100, 110, 110)])
    assert merged == [(0, 0, 30, 10), (100, 100, 110, 110)]


def test_a_static_frame_costs_far_less_than_a_detector_call(clip: list[np.ndarray]) -> None:
    gate = MotionGate(MotionSettings(max_regions=4), SIZE)
    gate.update(clip[0], 0.0)
    detector = create_detector(DetectorSettings(), None)
    detector.detect(clip[0])  # warm-up

    def median_ms(fn: object, n: int) -> float:
        times = []
        for k in range(n):
            start = time.perf_counter()
            fn(k)  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return float(np.median(times)) * 1000

    gate_ms = median_ms(lambda k: gate.update(clip[0], 0.1 + k * 0.01), 100)
    detect_ms = median_ms(lambda _: detector.detect(clip[0]), 10)
    print(f"static gate {gate_ms:.3f} ms, detector {detect_ms:.2f} ms, ratio {detect_ms / gate_ms:.0f}")
    assert gate_ms * 20 < detect_ms
