"""Semi-synthetic scenes through the full pipeline (YOLOX-nano + ByteTrack + rules) for the two
events no real clip shows: an abandoned bag and a person falling.

The scenes are composited from real footage, never drawn (see `tests/scenes.py`): a real empty
street (TUD-Stadtmitte, median of its frames), a real pedestrian cut out of the same clip walking
with their real gait, and a dark object cut out of a real frame that YOLOX-nano labels backpack.
The fall is the standing cut-out rotated to horizontal about the feet within 0.8 s; sitting is the
cut-out squashed to 60 % height. They test the chain (detection, tracking, rule) on pictures
the detector really has to read; they do not show that a real fall or a real left bag is caught.
Figures over more variants: `benchmarks/event_accuracy.py`, docs/events/evaluation.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.pipeline import (
    ABANDONED,
    ABANDONED_SECONDS,
    BAG_TOLERANCE,
    DOWN,
    DOWN_SECONDS,
    DOWN_TOLERANCE,
    run,
)
from tests.support.scenes import BagScene, FallScene, abandoned_scene, person_down_scene


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def test_bag_left_behind_raises_one_event(tmp_path: Path) -> None:
    """A pedestrian walks in carrying the object, stops, sets it down at their feet, walks out
    to the right; the object stays for the rest of the clip."""
    scene = abandoned_scene(tmp_path, BagScene(kind="left", bag="hood-b"), ABANDONED_SECONDS)
    events = [e for e in run(scene, ABANDONED) if str(e.type) == "abandoned_object"]
    assert len(events) == 1, events
    want = scene.expected[0]
    assert abs(events[0].start - want.start) <= BAG_TOLERANCE, (events[0].start, want.start)
    assert _overlaps(events[0].region, want.region)


@pytest.mark.parametrize(
    "kind",
    [
        "stays",  # set down, the owner keeps standing right beside it
        "lying",  # a person lying on the ground (cut-out rotated 90°) with the object against them
        "carried",  # walks across and out without ever setting it down
    ],
)
def test_bag_hard_negatives_raise_nothing(tmp_path: Path, kind: str) -> None:
    scene = abandoned_scene(tmp_path, BagScene(kind=kind, bag="hood-b"), ABANDONED_SECONDS)
    events = [e for e in run(scene, ABANDONED) if str(e.type) == "abandoned_object"]
    assert events == []


def test_fall_raises_one_event(tmp_path: Path) -> None:
    """A pedestrian walks in, stands a second, falls sideways (rotated to horizontal about the
    feet in 0.8 s) and stays down."""
    scene = person_down_scene(tmp_path, FallScene(kind="fall"), DOWN_SECONDS)
    events = [e for e in run(scene, DOWN) if str(e.type) == "person_down"]
    assert len(events) == 1, events
    want = scene.expected[0]
    assert abs(events[0].start - want.start) <= DOWN_TOLERANCE, (events[0].start, want.start)
    assert _overlaps(events[0].region, want.region)


@pytest.mark.parametrize(
    "kind",
    [
        "lying",  # lying on the ground from the first frame: never seen upright
        "slow",  # sits down, rests, then lies back: 5 s in all
        "sit",  # sits down quickly (squashed to 60 % height) and stays
    ],
)
def test_fall_hard_negatives_raise_nothing(tmp_path: Path, kind: str) -> None:
    scene = person_down_scene(tmp_path, FallScene(kind=kind), DOWN_SECONDS)
    events = [e for e in run(scene, DOWN) if str(e.type) == "person_down"]
    assert events == []
