"""Real footage with MOT ground truth: the pipeline's events against the events the same rules
raise on the annotated boxes (see `lanterne.video.evaluation`).

PETS 2009 S2.L1 (`vtest.avi`): people walk across a campus crossroads, many right to left, some
over the lawn. TUD-Stadtmitte: a pedestrian street at eye level.
"""

from __future__ import annotations

import pytest

from lanterne.config import parse_config
from lanterne.video.evaluation import Score, load_mot, match_events, reference_events
from tests.support.pipeline import PETS, run_pipeline
from tests.support.video import VIDEO


@pytest.fixture(scope="module")
def pets() -> dict[str, Score]:
    events, times, cfg = run_pipeline(VIDEO / "vtest.avi", PETS)
    gt = load_mot(VIDEO / "vtest.PETS09-S2L1.gt.txt", (768, 576), 10)
    ref = reference_events(gt, cfg.cameras[0], times)
    scores = match_events(events, ref, slack=1.5)
    print({k: (s.tp, s.fp, s.fn, round(s.precision, 2), round(s.recall, 2)) for k, s in scores.items()})
    return scores


@pytest.mark.parametrize(
    ("event_type", "min_precision", "min_recall"),
    [("wrong_way", 0.6, 0.6), ("crowd_density", 0.5, 0.5), ("zone_intrusion", 0.5, 0.5)],
)
def test_pets_events_match_ground_truth(
    pets: dict[str, Score], event_type: str, min_precision: float, min_recall: float
) -> None:
    s = pets[event_type]
    assert s.tp + s.fn > 0, "the scene must contain reference events of this type"
    assert s.precision >= min_precision and s.recall >= min_recall, s


def test_ground_truth_reference_is_sane() -> None:
    """The reference itself: in PETS, people walking right to left against [1, 0] exist and
    nobody walks the lawn for long at the start."""
    gt = load_mot(VIDEO / "vtest.PETS09-S2L1.gt.txt", (768, 576), 10)
    cfg = parse_config(PETS)
    times = [(i, i / 10) for i in range(0, 795, 2)]
    ref = reference_events(gt, cfg.cameras[0], times)
    kinds = {str(e.type) for e in ref}
    assert {"wrong_way", "crowd_density"} <= kinds
    assert all(e.end >= e.start for e in ref)
