"""Semi-synthetic scenes through the full pipeline (YOLOX-nano + ByteTrack + second look + rules)
for the two events no real clip shows: an abandoned bag and a person falling.

The scenes are composited from real footage, never drawn (see `tests/support/scenes.py`): real
empty backgrounds (a street, a room, a campus), real pedestrians cut out of TUD-Stadtmitte walking
with their real gait, and dark objects cut out of real frames that YOLOX-nano labels backpack.
A fall is the standing cut-out rotated to horizontal about the feet; sitting, crouching and
bending are the cut-out squashed or tilted. They test the chain (detection, tracking, rule) on
pictures the detector really has to read; they do not show that a real fall or a real left bag is
caught.

Each test runs a whole set (24 positives and 24 hard negatives per type) and asserts recall and
precision over it, so that one lucky scene cannot carry the figure. The same sets and figures
are in `benchmarks/event_accuracy.py` and docs/events/evaluation.md.
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
from tests.support.scenes import (
    BAG_NEGATIVES,
    BAG_POSITIVES,
    FALL_NEGATIVES,
    FALL_POSITIVES,
    SetScore,
    abandoned_scene,
    person_down_scene,
    score_scene,
)

pytestmark = pytest.mark.slow

FALL_RECALL = 0.8
FALL_PRECISION = 0.8
"""The issue's goal, reached: 23 of 24 falls, no false alarm on the 24 hard negatives."""
BAG_RECALL = 0.7
BAG_PRECISION = 0.8
"""Measured 0.75 recall (18 of 24) and 1.00 precision: the goal of 0.8 recall is not reached.
The six misses are objects YOLOX-nano never calls a bag while they stand still, even zoomed
(docs/events/evaluation.md). The floor sits one scene under the measured recall so that the
test catches a regression, not noise; raise it when recall improves."""


@pytest.fixture(scope="session")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Clips are rendered once per test session into one folder."""
    return tmp_path_factory.mktemp("scenes")


def test_person_down_recall_and_precision_over_the_scene_set(scene_dir: Path) -> None:
    total = SetScore()
    for spec in FALL_POSITIVES + FALL_NEGATIVES:
        scene = person_down_scene(scene_dir, spec, DOWN_SECONDS)
        total.add(scene, score_scene(scene, run(scene, DOWN), "person_down", DOWN_TOLERANCE))
    assert total.tp + total.fn == len(FALL_POSITIVES)
    assert total.recall >= FALL_RECALL, total.report()
    assert total.precision >= FALL_PRECISION, total.report()


def test_abandoned_object_recall_and_precision_over_the_scene_set(scene_dir: Path) -> None:
    total = SetScore()
    for spec in BAG_POSITIVES + BAG_NEGATIVES:
        scene = abandoned_scene(scene_dir, spec, ABANDONED_SECONDS)
        total.add(scene, score_scene(scene, run(scene, ABANDONED), "abandoned_object", BAG_TOLERANCE))
    assert total.tp + total.fn == len(BAG_POSITIVES)
    assert total.recall >= BAG_RECALL, total.report()
    assert total.precision >= BAG_PRECISION, total.report()
