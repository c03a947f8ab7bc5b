"""Person down: someone seen upright falls quickly and stays on the ground.

Posture comes from the shape of the person's box alone (height over width, in pixels): no pose
model, no body keypoints. What makes it a *fall* rather than someone resting is the history: the
person was seen standing for `min_upright_seconds`, then was down within `fall_seconds`. Someone
first seen sitting or lying, or who lies down slowly, never triggers.

A fall changes the box so much that the tracker may give the person a new id. A new track that
appears down where an upright track was lost in the same `fall_seconds` inherits that track's
posture history: this is matching by place and time within two seconds, never by appearance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from pydantic import Field

from lanterne.core.params import Seconds, Strict
from lanterne.core.types import Box, Event, EventType, Observation, TrackedObject
from lanterne.rules.base import EventInfo, Pending, RuleSpec, ZoneRef, advance, close_all

TYPE = EventType.PERSON_DOWN


class PersonDownParams(Strict):
    min_seconds: Seconds = Field(
        5.0, title="Time down (s)", description="How long the person must stay down after the fall."
    )
    fall_seconds: float = Field(
        2.0,
        gt=0,
        le=10,
        title="Fall duration (s)",
        description="The change from upright to down must happen within this time; a slow change (sitting down, lying down) is not a fall.",
    )
    min_upright_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        title="Upright before (s)",
        description="The person must have been seen upright this long before the fall, so that someone already sitting or lying never triggers.",
    )


UPRIGHT_RATIO = 1.2
"""Height over width (pixels) at or above which a person is upright. A standing or walking
person measures about 2 to 3.5; 1.2 still accepts one seen with arms spread or slightly from above,
while most people sitting on a bench or crouching measure 1.0 to 1.5 and land in between."""

DOWN_RATIO = 0.9
"""At or below this a person is down. Someone lying seen from the side measures 0.2 to 0.6; the
gap up to `UPRIGHT_RATIO` keeps crouching, bending and sitting out of both classes, so that
box jitter around one threshold cannot produce a fall."""

TALL_SHARE = 0.9
LOW_SHARE = 0.5
"""A fall is timed by the top of the box: from the last sighting at nearly full standing height
(`TALL_SHARE` of the height seen upright) to the first sighting down at no more than `LOW_SHARE`
of it. The aspect thresholds alone are crossed within a second even when someone takes five
seconds to lie down, because the ratio changes fastest in the middle of the movement; the drop
of the head from 90 % to 50 % of standing height spans two thirds of it. Sitting leaves the box at
55-70 % of standing height, so a quick sit never counts either."""

FORGET_SECONDS = 2.0
"""A track unseen this long is dropped; ids are never reused, so it will not come back."""


class Posture(Enum):
    UPRIGHT = "upright"
    BETWEEN = "between"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class Person:
    track_id: int
    key: str
    """Pending key: the first track id, kept when a fall makes the tracker change the id."""
    box: Box
    last_seen: float
    upright_since: float | None = None
    """Start of the current run of upright observations; None once the run is broken."""
    standing_height: float = 0.0
    """Box height in pixels at the last upright sighting of a run of `min_upright_seconds`."""
    last_tall: float | None = None
    """Last sighting at `TALL_SHARE` of `standing_height` or more, after such a run."""
    fallen: bool = False


@dataclass(frozen=True, slots=True)
class State:
    people: tuple[Person, ...] = ()
    pending: tuple[Pending, ...] = ()


LYING_LOOKALIKES = frozenset({"bench", "bed", "couch", "dog", "cat"})
"""COCO detectors trained on upright people often label a person lying on the ground as one of
these (measured on the semi-synthetic falls, docs/events/evaluation.md). Such a box is followed
only when it continues a person's track (same track, or a lost upright person at the same place
within `fall_seconds`): a real bench never starts a person."""


def posture(box: Box, frame_size: tuple[int, int]) -> Posture:
    w = (box[2] - box[0]) * frame_size[0]
    h = (box[3] - box[1]) * frame_size[1]
    if w <= 0:
        return Posture.UPRIGHT if h > 0 else Posture.BETWEEN
    ratio = h / w
    if ratio >= UPRIGHT_RATIO:
        return Posture.UPRIGHT
    if ratio <= DOWN_RATIO:
        return Posture.DOWN
    return Posture.BETWEEN


def _overlap(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _update(
    p: Person, o: TrackedObject, pose: Posture, t: float, frame_h: int, params: PersonDownParams
) -> Person:
    p = replace(p, track_id=o.track_id, box=o.box, last_seen=t)
    height = (o.box[3] - o.box[1]) * frame_h
    if pose is Posture.UPRIGHT:
        since = p.upright_since if p.upright_since is not None else t
        p = replace(p, upright_since=since, fallen=False)
        if t - since >= params.min_upright_seconds:
            p = replace(p, standing_height=height, last_tall=t)
        return p
    p = replace(p, upright_since=None)
    if p.last_tall is None:
        return p
    if height >= TALL_SHARE * p.standing_height:
        return replace(p, last_tall=t)
    # A gap longer than `fall_seconds` since the last tall sighting (someone lying down slowly,
    # or frames lost) proves nothing about a fall.
    if (
        pose is Posture.DOWN
        and not p.fallen
        and height <= LOW_SHARE * p.standing_height
        and t - p.last_tall <= params.fall_seconds
    ):
        p = replace(p, fallen=True)
    return p


def step(
    state: State, obs: Observation, zone: ZoneRef, params: PersonDownParams
) -> tuple[State, list[Event]]:
    """>>> from lanterne.core.types import TrackedObject
    >>> z = ZoneRef("cam", "z", ((0, 0), (1, 0), (1, 1), (0, 1)))
    >>> p = PersonDownParams(min_seconds=2)
    >>> standing = TrackedObject(1, "person", (0.40, 0.30, 0.45, 0.60), 0.9)
    >>> lying = TrackedObject(1, "person", (0.35, 0.55, 0.55, 0.60), 0.9)
    >>> s, events = State(), []
    >>> for i in range(30):
    ...     o = standing if i < 10 else lying
    ...     s, ev = step(s, Observation("cam", i * 0.2, (640, 480), (o,)), z, p)
    ...     events += ev
    >>> [(e.type, e.start) for e in events]
    [(<EventType.PERSON_DOWN: 'person_down'>, 2.0)]
    """
    t = obs.t
    known = {p.track_id: p for p in state.people}
    seen_ids = {o.track_id for o in obs.objects if o.label == "person"}
    people: list[Person] = []
    active: dict[str, tuple[Box, float, str | None]] = {}
    for o in obs.objects:
        if o.label != "person" and o.label not in LYING_LOOKALIKES:
            continue
        pose = posture(o.box, obs.frame_size)
        person = known.pop(o.track_id, None)
        if person is None:
            person = _inherit(known, seen_ids, o, pose, t, params)
        if person is None:
            if o.label != "person":
                continue
            person = Person(o.track_id, str(o.track_id), o.box, t)
        person = _update(person, o, pose, t, obs.frame_size[1], params)
        people.append(person)
        # Once fallen, sitting up (between) still counts as down; only standing up ends it.
        if person.fallen and zone.contains(o.foot):
            active[person.key] = (o.box, o.confidence, "person")
    for person in known.values():
        if t - person.last_seen <= FORGET_SECONDS:
            people.append(person)
    pending, events = advance(TYPE, zone, state.pending, active, t, params.min_seconds)
    return State(tuple(people), pending), events


def _inherit(
    known: dict[int, Person],
    seen_ids: set[int],
    o: TrackedObject,
    pose: Posture,
    t: float,
    params: PersonDownParams,
) -> Person | None:
    """The lost upright track a new, down track continues, if there is exactly one candidate."""
    if pose is not Posture.DOWN:
        return None
    lost = [
        p
        for p in known.values()
        if p.track_id not in seen_ids
        and p.last_tall is not None
        and t - p.last_seen <= params.fall_seconds
        and _overlap(p.box, o.box)
    ]
    if len(lost) != 1:
        return None
    del known[lost[0].track_id]
    return lost[0]


def finish(state: State, t: float, zone: ZoneRef) -> list[Event]:
    return close_all(TYPE, zone, state.pending)


def from_dict(d: dict[str, Any]) -> State:
    """Rebuild a state from `dataclasses.asdict` (or its JSON form, where tuples became lists)."""
    return State(
        people=tuple(Person(**{**p, "box": tuple(p["box"])}) for p in d["people"]),
        pending=tuple(Pending(**{**p, "region": tuple(p["region"])}) for p in d["pending"]),
    )


EXAMPLE = """\
zones:
  - id: underpass
    polygon: [[0.1, 0.3], [0.9, 0.3], [0.9, 1.0], [0.1, 1.0]]
    events:
      person_down: {min_seconds: 5, fall_seconds: 2, min_upright_seconds: 1}
"""

SPEC: RuleSpec[State, PersonDownParams] = RuleSpec(
    info=EventInfo(
        type=TYPE,
        params=PersonDownParams,
        title="Person down",
        summary="A person who falls and stays on the ground.",
        method="Object detector boxes; the shape of a person's box changes from upright to lying within a short time and stays so.",
        known_limits=(
            "A fall towards or away from the camera barely changes the box's shape and is missed.",
            "From a high camera looking down, standing people look squat.",
            "Lying people are detected less reliably than standing ones.",
        ),
        example=EXAMPLE,
    ),
    initial=State,
    step=step,
    finish=finish,
    needs=frozenset({"objects"}),
)
