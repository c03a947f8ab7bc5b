"""crowd_movement: synthetic motion fields for the rule's arithmetic, real footage for the whole
chain (optical flow + rule)."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from lanterne.config.loader import parse_config
from lanterne.core.types import Event, EventType, MotionField, Observation
from lanterne.rules import crowd_movement as cm
from lanterne.rules.base import ZoneRef
from lanterne.rules.crowd_movement import CrowdMovementParams
from lanterne.video.motion.flow import FlowEstimator, FlowMethod

VTEST = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "video" / "vtest.avi"
WHOLE = ZoneRef("cam", "all", ((0, 0), (1, 0), (1, 1), (0, 1)))
WALKWAY = ZoneRef("cam", "walkway", ((0, 0.3), (1, 0.25), (1, 0.8), (0, 0.75)))
"""The grey path crossing PETS09 S2.L1 (vtest.avi) from left to right, where people walk."""


def field(
    share: float, vx: float, vy: float, spread: float = 0.0, rows: int = 12, cols: int = 16
) -> MotionField:
    """A motion field where the first `share` of the cells (row-major) move by (vx, vy) frame
    fractions per second; with `spread`, alternate moving cells have their direction rotated
    by ±spread radians, which lowers the coherence to cos(spread)."""
    n = rows * cols
    k = round(share * n)
    moving = np.zeros(n, bool)
    moving[:k] = True
    flow = np.zeros((n, 2), np.float32)
    for i in range(k):
        a = spread if i % 2 else -spread
        flow[i] = (vx * np.cos(a) - vy * np.sin(a), vx * np.sin(a) + vy * np.cos(a))
    return MotionField(flow.reshape(rows, cols, 2), moving.reshape(rows, cols))


def run(
    fields: list[tuple[float, MotionField | None]], zone: ZoneRef, params: CrowdMovementParams
) -> list[Event]:
    state, events = cm.State(), []
    t = 0.0
    for t, mf in fields:
        state, ev = cm.step(state, Observation("cam", t, (640, 480), motion=mf), zone, params)
        events += ev
    return events + cm.finish(state, t, zone)


DEFAULTS = CrowdMovementParams()
FLOWS: tuple[FlowMethod, ...] = ("farneback", "dis")


@pytest.mark.parametrize(
    ("name", "mf", "fires"),
    [
        ("rush down", field(0.5, 0.0, 0.4), True),
        ("rush sideways, aspect converts widths to heights", field(0.5, 0.3, 0.0), True),
        # 0.1 widths/s is 0.133 heights/s at 4:3: under the 0.15 default.
        ("walking pace sideways", field(0.5, 0.1, 0.0), False),
        ("too few cells (a cyclist)", field(0.1, 0.0, 0.6), False),
        ("fast but all directions", field(0.5, 0.0, 0.5, spread=1.4), False),
        ("nothing moves", field(0.0, 0.0, 0.0), False),
    ],
)
def test_synthetic_fields(name: str, mf: MotionField, fires: bool) -> None:
    events = run([(i * 0.2, mf) for i in range(15)], WHOLE, DEFAULTS)
    assert bool(events) is fires, name


def test_dispersal_caught_with_zero_coherence() -> None:
    mf = field(0.5, 0.0, 0.5, spread=1.4)
    assert run([(i * 0.2, mf) for i in range(15)], WHOLE, CrowdMovementParams(min_coherence=0))


def test_duration_counted_in_seconds_not_frames() -> None:
    """Ten frames 0.05 s apart are half a second: not enough for min_seconds=1."""
    mf = field(0.5, 0.0, 0.4)
    assert not run([(i * 0.05, mf) for i in range(10)], WHOLE, DEFAULTS)
    events = run([(i * 0.25, mf) for i in range(10)], WHOLE, DEFAULTS)
    assert [e.ongoing for e in events] == [True, False]
    opened = events[0]
    assert opened.end - opened.start >= 1.0
    assert 0.5 <= opened.confidence <= 1.0
    assert opened.id == events[1].id


def test_region_is_the_moving_cells_and_zone_limits_the_cells() -> None:
    mf = field(0.25, 0.0, 0.5)  # the top three rows of 12
    events = run([(i * 0.2, mf) for i in range(10)], WHOLE, DEFAULTS)
    assert events[0].region == pytest.approx((0.0, 0.0, 1.0, 0.25))
    bottom = ZoneRef("cam", "bottom", ((0, 0.5), (1, 0.5), (1, 1), (0, 1)))
    assert not run([(i * 0.2, mf) for i in range(10)], bottom, DEFAULTS)


def test_confidence_grows_with_margin() -> None:
    near = cm.ZoneMotion(0.25, 0.15, 0.5, (0, 0, 1, 1))
    far = cm.ZoneMotion(0.8, 0.6, 1.0, (0, 0, 1, 1))
    assert cm.confidence(near, DEFAULTS) == pytest.approx(0.5)
    assert cm.confidence(far, DEFAULTS) == pytest.approx(0.75)  # coherence 2x is the weakest margin


@pytest.mark.parametrize("method", FLOWS)
def test_flow_estimator_uses_real_time(method: FlowMethod) -> None:
    """The same pixel shift read 0.1 s or 0.4 s apart is four times faster in the first case."""
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (5, 5), 0)
    shifted = np.roll(base, 4, axis=0)  # 4 px down at 320 wide = 2 px at the 160 px analysis width
    speeds = []
    for dt in (0.1, 0.4):
        est = FlowEstimator(method=method)
        assert est.update(base, 10.0) is None
        mf = est.update(shifted, 10.0 + dt)
        assert mf is not None
        assert mf.moving.mean() > 0.9
        speeds.append(float(np.median(mf.flow[mf.moving][:, 1])))
    assert speeds[0] == pytest.approx(4 * speeds[1], rel=0.05)
    assert speeds[0] == pytest.approx(4 / 240 / 0.1, rel=0.2)


def vtest_frames(stop: int, every: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(VTEST))
    frames, i = [], 0
    while i < stop:
        ok, img = cap.read()
        if not ok:
            break
        if i % every == 0:
            frames.append(img)
        i += 1
    cap.release()
    assert len(frames) > 10, f"could not decode {VTEST}"
    return frames


def run_clip(frames: list[np.ndarray], dt: float, method: FlowMethod = "farneback") -> list[Event]:
    est, state, events = FlowEstimator(method=method), cm.State(), []
    t = 0.0
    for k, img in enumerate(frames):
        t = k * dt
        obs = Observation("cam", t, (img.shape[1], img.shape[0]), motion=est.update(img, t))
        state, ev = cm.step(state, obs, WALKWAY, DEFAULTS)
        events += ev
    return events + cm.finish(state, t, WALKWAY)


@pytest.mark.parametrize("method", FLOWS)
@pytest.mark.parametrize(("every", "dt"), [(1, 0.1), (2, 0.2)])
def test_people_walking_on_pets09_raise_nothing(every: int, dt: float, method: FlowMethod) -> None:
    """30 s of PETS09 S2.L1 at its real speed (analysed at 10 and 5 fps): 2 to 8 people walking."""
    assert run_clip(vtest_frames(300, every), dt, method) == []


@pytest.mark.parametrize("method", FLOWS)
@pytest.mark.parametrize("every", [4, 5, 6])
def test_time_compressed_pets09_is_a_rush(every: int, method: FlowMethod) -> None:
    """Semi-synthetic rush: every 4th–6th decoded frame of the real clip, but timestamps
    advancing 0.1 s per analysed frame (the clip's real rate), so the same people appear to move
    4–6 times faster — a brisk run. Real footage of a crowd rush with a usable licence was not
    available; this checks the chain on real pixels, not the thresholds on a real panic."""
    events = run_clip(vtest_frames(every * 100, every), 0.1, method)
    assert events, "no crowd_movement event on a 4-6x accelerated crowd"
    assert events[0].start < 6.0
    assert events[0].start < 1.5, "DIS's noise threshold lets a rush through late (0.4 px: 4-5 s)"


@pytest.mark.parametrize("method", FLOWS)
def test_a_5x_rush_analysed_at_5_fps_is_missed(method: FlowMethod) -> None:
    """The documented miss (docs/events/crowd_movement.md, measured precision and recall): every
    10th frame 0.2 s apart is the same 5x rush seen at 5 fps, and Farneback loses people who move
    more than their own width between two frames, so the speed stays under `min_speed`. If this
    starts raising an event, the limit and the envelope's 10 fps bound can be revisited."""
    assert run_clip(vtest_frames(800, 10), 0.2, method) == []


def covered(events: list[Event]) -> list[tuple[float, float]]:
    """The time spans of the situations, each once (an event is reported open, then closed)."""
    return sorted({e.id: (e.start, e.end) for e in events}.values())


def overlap_seconds(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(e0, e1) - max(s0, s1)) for s0, e0 in a for s1, e1 in b)


@pytest.mark.parametrize("every", [4, 5, 6])
def test_dis_and_farneback_see_the_same_rush(every: int) -> None:
    """Switching `motion.flow` must not change what the rule reports: on the accelerated crowd
    the two methods' situations cover mostly the same seconds (measured 0.78-0.90 of the
    union with DIS at 0.8 px; 0.4 px gave 0.2-0.5)."""
    frames = vtest_frames(every * 100, every)
    farneback, dis = (covered(run_clip(frames, 0.1, m)) for m in FLOWS)
    length = sum(e - s for s, e in farneback) + sum(e - s for s, e in dis)
    shared = overlap_seconds(farneback, dis)
    assert shared / (length - shared) >= 0.7, f"farneback {farneback}, dis {dis}"


def test_doc_example_is_a_valid_zone() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "events" / "crowd_movement.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None
    camera = {"id": "c", "source": "clip.mp4", "location": {"lat": 45.0, "lon": 4.0}}
    config = parse_config({"mode": "alerts", "cameras": [{**camera, **yaml.safe_load(block.group(1))}]})
    zone = config.cameras[0].zones[0]
    assert list(zone.events.enabled()) == [EventType.CROWD_MOVEMENT]
    assert tuple(map(tuple, zone.polygon)) == WALKWAY.polygon  # the zone the PETS09 tests use
