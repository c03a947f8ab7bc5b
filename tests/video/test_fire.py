"""fire (experimental): semi-synthetic scenes on real frames, from `benchmarks/fire_false_alarms.py`
(one generator for the benchmark and the tests), and the rule's arithmetic on built grids."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from lanterne.config.loader import parse_config
from lanterne.core.types import Event, EventType, Observation
from lanterne.rules import fire
from lanterne.rules.base import ZoneRef
from lanterne.rules.fire import FireParams
from lanterne.video.detectors import fire_classic
from lanterne.video.detectors.fire_classic import FireEstimator, flame_mask

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "fire_false_alarms", ROOT / "benchmarks" / "fire_false_alarms.py"
)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["fire_false_alarms"] = bench
_spec.loader.exec_module(bench)

PARAMS = FireParams(experimental=True)
WHOLE = ZoneRef("cam", "all", ((0, 0), (1, 0), (1, 1), (0, 1)))


@pytest.fixture(scope="module")
def vtest() -> list[tuple[float, np.ndarray]]:
    """12 s of PETS09 at 5 fps: people walking, parked cars, brick walls, orange traffic cones."""
    return bench.load("vtest.avi", max_seconds=12)


def test_synthetic_flame_on_real_frames_fires_soon(vtest: list[tuple[float, np.ndarray]]) -> None:
    """Semi-synthetic positive: a procedurally animated flame (20% of the frame high) appears at
    5 s on real footage. The event must open within min_seconds + 2 s of its appearance."""
    opened = bench.run(bench.flame(vtest))
    assert opened, "no fire event on the synthetic flame"
    assert opened[0].start >= bench.ONSET
    assert opened[0].end - bench.ONSET <= PARAMS.min_seconds + 2.0
    x0, y0, x1, y1 = opened[0].region
    assert x0 <= 0.3 <= x1 and y0 <= 0.7 <= y1  # where the flame stands


@pytest.mark.parametrize(
    ("name", "scene"),
    [
        ("real clip alone", lambda c: c),
        ("static lit orange sign", lambda c: bench.sign(c)),
        ("flashing orange beacon 1.5 Hz", lambda c: bench.beacon(c)),
        ("flashing orange beacon 2 Hz", lambda c: bench.beacon(c, hz=2.0, at=(0.4, 0.5))),
    ],
)
def test_hard_negatives_raise_nothing(
    vtest: list[tuple[float, np.ndarray]], name: str, scene: object
) -> None:
    assert bench.run(scene(vtest)) == [], name  # type: ignore[operator]


def test_static_sign_has_colour_but_no_likelihood(vtest: list[tuple[float, np.ndarray]]) -> None:
    """The sign passes the colour cue (it must, to be a meaningful negative) and is stopped by
    the flicker cue."""
    clip = bench.sign(vtest)
    est = FireEstimator()
    grid = np.zeros(1)
    for t, img in clip:
        grid = est.update(img, t)
    assert flame_mask(img, cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)).mean() > 0.005
    assert grid.max() < fire.LEVEL


def steps(grids: list[np.ndarray], dt: float = 0.2, params: FireParams = PARAMS) -> list[Event]:
    state, events = fire.State(), []
    t = 0.0
    for i, g in enumerate(grids):
        t = i * dt
        state, ev = fire.step(state, Observation("cam", t, (640, 480), fire=g), WHOLE, params)
        events += ev
    return events + fire.finish(state, t, WHOLE)


def patch(cells: int, value: float) -> np.ndarray:
    g = np.zeros((18, 24), np.float32)
    g.ravel()[:cells] = value
    return g


@pytest.mark.parametrize(
    ("name", "grids", "fires"),
    [
        ("flickering patch, 3.4 s", [patch(8, 0.5 + 0.2 * (i % 2)) for i in range(18)], True),
        ("steady patch: no cell-level flicker", [patch(8, 0.6)] * 18, False),
        ("too small: 3 cells of 432", [patch(3, 0.5 + 0.2 * (i % 2)) for i in range(18)], False),
        ("too short: 2 s", [patch(8, 0.5 + 0.2 * (i % 2)) for i in range(10)], False),
        ("below the level", [patch(8, 0.05 + 0.1 * (i % 2)) for i in range(18)], False),
    ],
)
def test_rule_table(name: str, grids: list[np.ndarray], fires: bool) -> None:
    events = steps(grids)
    assert bool(events) is fires, name
    if fires:
        assert [e.ongoing for e in events] == [True, False]
        assert events[0].type is EventType.FIRE
        assert 0.0 < events[0].confidence <= 1.0


def test_missing_grid_closes_after_grace() -> None:
    grids = [patch(8, 0.5 + 0.2 * (i % 2)) for i in range(20)]
    state, events = fire.State(), []
    for i, g in enumerate(grids):
        state, ev = fire.step(state, Observation("cam", i * 0.2, (640, 480), fire=g), WHOLE, PARAMS)
        events += ev
    state, ev = fire.step(state, Observation("cam", 6.0, (640, 480), fire=None), WHOLE, PARAMS)
    assert [e.ongoing for e in events + ev] == [True, False]


def test_estimator_counts_time_not_frames() -> None:
    """The same frames at twice the rate build the same persistence in the same seconds."""
    sprite = bench.FlameSprite(120, seed=5)
    base = np.full((240, 320, 3), 60, np.uint8)

    def frame() -> np.ndarray:
        img = base.copy()
        colour, alpha = sprite.frame()
        a = alpha[..., None]
        img[100:220, 130:202] = (img[100:220, 130:202] * (1 - a) + colour * a).astype(np.uint8)
        return img

    frames = [frame() for _ in range(9)]
    fast, slow = FireEstimator(), FireEstimator()
    for i in range(5):
        slow.update(frames[i], i * 0.2)
    for i in range(9):
        fast.update(frames[i], i * 0.1)
    # After 0.8 s either way, the persistence average is 1 - exp(-0.8 / TAU) where the flame is.
    expected = 1 - math.exp(-0.8 / fire_classic.TAU)
    assert slow._presence.max() == pytest.approx(expected, abs=0.02)
    assert fast._presence.max() == pytest.approx(expected, abs=0.02)


def test_doc_example_is_a_valid_zone() -> None:
    text = (ROOT / "docs" / "events" / "fire.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None
    camera = {"id": "c", "source": "clip.mp4", "location": {"lat": 45.0, "lon": 4.0}}
    zone = parse_config({"mode": "alerts", "cameras": [{**camera, **yaml.safe_load(block.group(1))}]})
    assert list(zone.cameras[0].zones[0].events.enabled()) == [EventType.FIRE]
