"""The second look on real pixels (a TUD-Stadtmitte pedestrian cut out and set on the empty
street, as in tests/support/scenes.py) with the real YOLOX-nano: what it finds, what it refuses,
and that it costs nothing where nobody vanishes."""

from __future__ import annotations

import numpy as np
import pytest

from lanterne.config.schema import DetectorSettings
from lanterne.core.types import EventType, TrackedObject
from lanterne.rules.abandoned_object import AbandonedObjectParams
from lanterne.rules.person_down import DOWN_RATIO, PersonDownParams
from lanterne.video.detectors import create_detector
from lanterne.video.detectors.base import Detector
from lanterne.video.detectors.second_look import SecondLook
from tests.support.scenes import WALKERS, Placement, background, paste, transform, walker

GROUND = 330
HEIGHT = 220.0
FEET = 320.0


@pytest.fixture(scope="module")
def detector() -> Detector:
    return create_detector(DetectorSettings())


def _street(angle: float) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The empty street with walker `a` standing (0°) or lying (90°, head to the right) with the
    feet at column `FEET`; the pasted silhouette's box in frame fractions."""
    img = background("street").copy()
    sprite = transform(walker(*WALKERS["a"])[0], HEIGHT, angle=angle)
    shift = np.sin(np.radians(angle)) * HEIGHT * 0.35
    box = paste(img, Placement(sprite, FEET + shift, GROUND))
    assert box is not None
    h, w = img.shape[:2]
    return img, (box[0] / w, box[1] / h, box[2] / w, box[3] / h)


def _ratio(box: tuple[float, float, float, float], size: tuple[int, int]) -> float:
    return (box[3] - box[1]) * size[1] / ((box[2] - box[0]) * size[0])


def test_a_person_lost_standing_is_found_lying_under_their_own_id(detector: Detector) -> None:
    standing, box = _street(0.0)
    lying, lying_box = _street(90.0)
    look = SecondLook(detector)
    person = TrackedObject(41, "person", box, 0.9)
    assert look.refine(standing, 0.0, (person,)) == (person,)
    # The tracker lost them; the first look comes after `LOOK_EVERY`.
    out = look.refine(lying, 0.6, ())
    assert [(o.track_id, o.label) for o in out] == [(41, "person")]
    found = out[0].box
    assert _ratio(found, (640, 480)) <= DOWN_RATIO
    assert found[0] < lying_box[2] and lying_box[0] < found[2]
    assert found[1] < lying_box[3] and lying_box[1] < found[3]
    # Held in between looks, without another detector call.
    calls = look.calls
    assert look.refine(lying, 0.8, ())[0].box == found
    assert look.calls == calls


def test_a_person_still_standing_is_not_turned_into_a_lying_one(detector: Detector) -> None:
    """The tracker loses someone who is in fact still standing: the turned picture shows them
    lying sideways, which the detector does not call a person, and a box it might find would map
    back upright and be refused."""
    standing, box = _street(0.0)
    look = SecondLook(detector)
    look.refine(standing, 0.0, (TrackedObject(5, "person", box, 0.9),))
    assert look.refine(standing, 0.6, ()) == ()
    assert look.calls == 1


def test_nobody_vanishing_costs_no_detector_call(detector: Detector) -> None:
    standing, box = _street(0.0)
    look = SecondLook(detector)
    for i in range(10):
        look.refine(standing, i * 0.2, (TrackedObject(5, "person", box, 0.9),))
    # Someone who walks out at the frame edge is not looked for either.
    still = TrackedObject(5, "person", box, 0.9)
    look.refine(standing, 2.2, (still, TrackedObject(6, "person", (0.0, 0.3, 0.05, 0.7), 0.9)))
    look.refine(standing, 3.0, (still,))
    assert look.calls == 0


def test_a_still_bag_relabelled_by_the_detector_keeps_its_label(detector: Detector) -> None:
    """The same box at the same place, called `backpack` while it stood there and `person` later,
    is still the backpack; a person's box at that spot, much bigger, is left alone."""
    img = background("street")
    look = SecondLook(detector, people=False, bag_classes=frozenset({"backpack"}))
    bag_box = (0.70, 0.53, 0.78, 0.69)
    for i in range(4):
        look.refine(img, i * 0.2, (TrackedObject(3, "backpack", bag_box, 0.3),))
    relabelled = look.refine(img, 0.8, (TrackedObject(9, "person", bag_box, 0.4),))
    assert [(o.track_id, o.label) for o in relabelled] == [(9, "backpack")]
    owner = TrackedObject(9, "person", (0.66, 0.25, 0.80, 0.69), 0.9)
    assert look.refine(img, 1.0, (owner,)) == (owner,)


@pytest.mark.parametrize(
    ("types", "people", "bags"),
    [
        ([EventType.PERSON_DOWN], True, False),
        ([EventType.ABANDONED_OBJECT], False, True),
        ([EventType.ZONE_INTRUSION], None, None),
    ],
)
def test_only_the_rules_that_need_it_get_a_second_look(
    detector: Detector, types: list[EventType], people: bool | None, bags: bool | None
) -> None:
    params = {EventType.PERSON_DOWN: PersonDownParams(), EventType.ABANDONED_OBJECT: AbandonedObjectParams()}
    look = SecondLook.for_rules(detector, [(t, params.get(t)) for t in types])
    if people is None:
        assert look is None
        return
    assert look is not None
    assert look.people is people
    assert bool(look.bag_classes) is bags
