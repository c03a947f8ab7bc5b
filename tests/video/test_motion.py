"""Motion gate: when and where the detector runs, on real PETS09 footage (vtest.avi); dense
optical flow for crowd motion, Farneback and DIS side by side."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lanterne.config import config_hash
from lanterne.config.loader import parse_config
from lanterne.config.schema import DetectorSettings, MotionSettings
from lanterne.core.errors import ConfigError
from lanterne.video.detectors import create_detector
from lanterne.video.motion.flow import FlowEstimator
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


# -- dense optical flow (motion.flow) ---------------------------------------------------------


def texture(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Blurred noise: structure at every scale, as on a paved square seen from above."""
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, shape, dtype=np.uint8), (7, 7), 0)


@pytest.mark.parametrize("shift", [(2, 1), (-3, 0), (0, 4)])
def test_dis_and_farneback_agree_on_a_translation(shift: tuple[int, int]) -> None:
    """A whole-picture shift of a few analysis pixels (a run at 5 fps) reads the same with
    either method: mean flow within 0.5 px of the true shift and of each other."""
    dx, dy = shift
    base = texture((120, 160))
    moved = np.roll(base, (dy, dx), axis=(0, 1))
    inner = (slice(16, -16), slice(16, -16))  # np.roll wraps the borders around
    means = {}
    for method in ("farneback", "dis"):
        flow = FlowEstimator(method=method).dense(base, moved)
        means[method] = flow[inner].reshape(-1, 2).mean(axis=0)
        assert np.abs(means[method] - (dx, dy)).max() < 0.5, (method, means[method])
    assert np.abs(means["farneback"] - means["dis"]).max() < 0.5


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_still_real_footage_moves_nowhere(clip: list[np.ndarray], method: str) -> None:
    """The same decoded frame twice (a static camera without sensor noise) and two frames of
    PETS where people walk: nothing moves in the first, some cells in the second."""
    est = FlowEstimator(method=method)  # type: ignore[arg-type]
    est.update(clip[0], 0.0)
    still = est.update(clip[0], 0.2)
    assert still is not None and not still.moving.any()
    walking = est.update(clip[2], 0.4)
    assert walking is not None and 0.02 < walking.moving.mean() < 0.5


def test_unknown_flow_is_refused_by_the_configuration() -> None:
    assert MotionSettings().flow == "farneback"  # today's flow stays the default
    camera = {"id": "a", "source": "x.mp4", "location": {"lat": 45.0, "lon": 4.0}}
    with pytest.raises(ConfigError, match=r"motion\.flow: Input should be 'farneback' or 'dis'"):
        parse_config({"cameras": [camera], "motion": {"flow": "lucas-kanade"}})


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_a_grey_frame_gives_the_field_of_its_colour_frame(clip: list[np.ndarray], method: str) -> None:
    """The Y plane of a yuv420p decode can be passed as is: same moving cells and speeds as the
    BGR frame, up to the rounding of converting before or after the resize."""
    fields = []
    for convert in (False, True):
        est = FlowEstimator(method=method)  # type: ignore[arg-type]
        for k in (0, 2):
            image = cv2.cvtColor(clip[k], cv2.COLOR_BGR2GRAY) if convert else clip[k]
            mf = est.update(image, k / 10)
        assert mf is not None
        fields.append(mf)
    colour, grey = fields
    agree = (colour.moving == grey.moving).mean()
    assert agree >= 0.95, agree
    both = colour.moving & grey.moving
    assert np.abs(colour.flow[both] - grey.flow[both]).max() < 0.01  # speeds up to 0.1 here


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_the_configured_flow_is_the_one_the_camera_runs(clip: list[np.ndarray], method: str) -> None:
    """`motion.flow` reaches the camera's estimator: a setting the analyser ignored would leave
    every camera on Farneback whatever the configuration says."""
    from lanterne.core.types import Frame
    from lanterne.video.analyser import CameraAnalyser

    cfg = parse_config(
        {
            "mode": "alerts",
            "motion": {"flow": method},
            "cameras": [
                {
                    "id": "pets",
                    "source": str(VTEST),
                    "location": {"lat": 51.44, "lon": -0.94},
                    "zones": [
                        {
                            "id": "all",
                            "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
                            "events": {"crowd_movement": {}},
                        }
                    ],
                }
            ],
        }
    )
    analyser = CameraAnalyser(
        cfg.cameras[0], cfg, create_detector(cfg.detector, cfg.models_dir), config_hash=config_hash(cfg)
    )
    for i, image in enumerate(clip[:3]):
        analyser.process(Frame("pets", i * 0.2, image, i))
    assert analyser._flow is not None and analyser._flow.method == method
