"""Abandoned object: a bag stays still, with nobody near it, for `min_seconds`.

Small, low-scoring bags are the hardest objects for a small detector: they are missed in some
frames and the tracker often gives them a new id when they come back. A candidate is therefore
keyed by the place where the bag settled (its quantised centre), not by its track id: a bag
re-detected within `max_drift` of that place continues the same candidate and the same timer.
A candidate is forgotten only after `MEMORY_SECONDS` without a sighting, or when its last track
is seen elsewhere (the bag was picked up and carried).

Hard negatives this rule is built around:
- a bag at its owner's feet: a person whose box comes within `owner_distance` bag heights of the
  bag's centre attends it, and any such moment restarts the timer;
- a person lying or sitting: persons are never candidates, and a bag whose box lies mostly
  inside a person's box (carried, on a lap, a sleeper's bundle) never starts a candidate;
- a bag carried or pulled: it never stays within `max_drift` of one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field, field_validator

from lanterne.core.params import BAG_CLASSES, Seconds, Strict, check_classes
from lanterne.core.types import Box, Event, EventType, Observation, TrackedObject
from lanterne.rules.base import EventInfo, Pending, RuleSpec, ZoneRef, make_event

TYPE = EventType.ABANDONED_OBJECT


class AbandonedObjectParams(Strict):
    classes: list[str] = Field(
        list(BAG_CLASSES),
        title="Object classes",
        description="Classes that can be abandoned. Persons are never accepted here.",
        min_length=1,
    )
    min_seconds: Seconds = Field(
        30.0,
        title="Unattended time (s)",
        description="How long the object must stay still with nobody near before the alert.",
    )
    owner_distance: float = Field(
        2.0,
        gt=0,
        le=20,
        title="Owner distance",
        description="A person whose box comes within this many object-heights of the object's centre counts as attending it.",
    )
    max_drift: float = Field(
        0.02,
        gt=0,
        le=0.5,
        title="Maximum drift",
        description="An object whose centre moves more than this (frame fractions) is not still.",
    )

    @field_validator("classes")
    @classmethod
    def _no_people(cls, v: list[str]) -> list[str]:
        check_classes(v)
        if "person" in v:
            raise ValueError("'person' cannot be an abandoned object: a person at rest is never an object")
        return v


MEMORY_SECONDS = 6.0
"""How long a still bag may go undetected before its candidate is dropped. Longer than the
5-second default detector refresh on static scenes, and than the runs of missed detections seen on
low-scoring bags, so that flicker does not restart the timer."""

QUANTUM = 0.01
"""Grid step (frame fraction) of the candidate key: readable, and stable for the event id."""

PERSON_OVERLAP = 0.5
"""A bag box with at least this share of its area inside a person's box belongs to that person
(carried, on a lap, under a sleeper's arm) and never starts a candidate."""

MAX_CANDIDATES = 64
"""Bound on the state: beyond it, the candidates seen least recently that have not fired are dropped."""


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    anchor: tuple[float, float]
    """Centre where the bag settled, in frame fractions; drift is measured from here."""
    box: Box
    label: str
    track_id: int
    """Last track id seen here: if that track shows up far away, the bag was taken."""
    last_seen: float
    unattended_since: float
    """When the last person left its surroundings (or when it was first seen): the timer start."""
    confidence: float
    emitted: bool = False


@dataclass(frozen=True, slots=True)
class State:
    candidates: tuple[Candidate, ...] = ()


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def _inside_share(inner: Box, outer: Box) -> float:
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return w * h / area if w > 0 and h > 0 and area > 0 else 0.0


def attended(bag: Box, people: list[Box], frame_size: tuple[int, int], owner_distance: float) -> bool:
    """Whether a person's box comes within `owner_distance` bag heights of the bag's centre.

    Measured in pixels to the nearest point of the person's box rather than to its centre: the
    centre of a standing adult is at waist height, several handbag heights above a bag at their
    feet, while the nearest point of their box is at the bag.
    """
    w, h = frame_size
    cx, cy = _centre(bag)
    cx, cy = cx * w, cy * h
    reach = owner_distance * (bag[3] - bag[1]) * h
    for p in people:
        dx = max(p[0] * w - cx, 0.0, cx - p[2] * w)
        dy = max(p[1] * h - cy, 0.0, cy - p[3] * h)
        if math.hypot(dx, dy) <= reach:
            return True
    return False


def _pending(c: Candidate) -> Pending:
    return Pending(
        key=c.key,
        since=c.unattended_since,
        last=c.last_seen,
        region=c.box,
        confidence=c.confidence,
        object_class=c.label,
        emitted=c.emitted,
    )


def _close(c: Candidate, zone: ZoneRef) -> list[Event]:
    return [make_event(TYPE, zone, _pending(c), c.last_seen, ongoing=False)] if c.emitted else []


def step(
    state: State, obs: Observation, zone: ZoneRef, params: AbandonedObjectParams
) -> tuple[State, list[Event]]:
    """>>> from lanterne.core.types import TrackedObject
    >>> z = ZoneRef("cam", "z", ((0, 0), (1, 0), (1, 1), (0, 1)))
    >>> p = AbandonedObjectParams(min_seconds=10)
    >>> bag = TrackedObject(4, "suitcase", (0.50, 0.70, 0.56, 0.80), 0.4)
    >>> s, events = State(), []
    >>> for i in range(12):
    ...     s, ev = step(s, Observation("cam", float(i), (640, 480), (bag,)), z, p)
    ...     events += ev
    >>> [(e.type, e.start, e.object_class) for e in events]
    [(<EventType.ABANDONED_OBJECT: 'abandoned_object'>, 0.0, 'suitcase')]
    """
    t = obs.t
    people = [o.box for o in obs.objects if o.label == "person"]
    bags = sorted(
        (o for o in obs.objects if o.label in params.classes), key=lambda o: o.confidence, reverse=True
    )
    candidates = list(state.candidates)
    events: list[Event] = []
    matched: set[int] = set()
    taken: set[int] = set()
    fresh: list[TrackedObject] = []
    for o in bags:
        c_xy = o.centre
        near = [
            i
            for i, c in enumerate(candidates)
            if i not in matched and _dist(c.anchor, c_xy) <= params.max_drift
        ]
        if near:
            i = min(near, key=lambda i: _dist(candidates[i].anchor, c_xy))
            c = candidates[i]
            candidates[i] = replace(
                c,
                box=o.box,
                label=o.label,
                track_id=o.track_id,
                last_seen=t,
                confidence=max(c.confidence, o.confidence),
            )
            matched.add(i)
            continue
        # Seen at a place with no candidate: if its track was settled elsewhere, that bag moved.
        taken.update(i for i, c in enumerate(candidates) if c.track_id == o.track_id and i not in matched)
        fresh.append(o)
    kept: list[Candidate] = []
    for i, c in enumerate(candidates):
        if i in taken or t - c.last_seen > MEMORY_SECONDS:
            events += _close(c, zone)
            continue
        kept.append(c)
    for o in fresh:
        if not zone.contains(o.centre) or any(_inside_share(o.box, p) >= PERSON_OVERLAP for p in people):
            continue
        qx, qy = round(o.centre[0] / QUANTUM), round(o.centre[1] / QUANTUM)
        kept.append(
            Candidate(
                key=f"{qx}_{qy}",
                anchor=o.centre,
                box=o.box,
                label=o.label,
                track_id=o.track_id,
                last_seen=t,
                unattended_since=t,
                confidence=o.confidence,
            )
        )
    out: list[Candidate] = []
    for c in kept:
        if not c.emitted:
            # Once raised, the event stays open while the bag is there: a passer-by brushing past
            # does not resolve an abandoned bag, only its removal does.
            if attended(c.box, people, obs.frame_size, params.owner_distance):
                c = replace(c, unattended_since=t)
            elif c.last_seen == t and t - c.unattended_since >= params.min_seconds:
                c = replace(c, emitted=True)
                events.append(make_event(TYPE, zone, _pending(c), t, ongoing=True))
        out.append(c)
    if len(out) > MAX_CANDIDATES:
        out.sort(key=lambda c: (c.emitted, c.last_seen), reverse=True)
        for c in out[MAX_CANDIDATES:]:
            events += _close(c, zone)
        out = out[:MAX_CANDIDATES]
    return State(tuple(out)), events


def finish(state: State, t: float, zone: ZoneRef) -> list[Event]:
    return [e for c in state.candidates for e in _close(c, zone)]


def from_dict(d: dict[str, Any]) -> State:
    """Rebuild a state from `dataclasses.asdict` (or its JSON form, where tuples became lists)."""
    return State(
        candidates=tuple(
            Candidate(**{**c, "anchor": tuple(c["anchor"]), "box": tuple(c["box"])}) for c in d["candidates"]
        )
    )


EXAMPLE = """\
zones:
  - id: concourse
    polygon: [[0.0, 0.35], [1.0, 0.35], [1.0, 1.0], [0.0, 1.0]]
    events:
      abandoned_object: {classes: [backpack, handbag, suitcase], min_seconds: 60, owner_distance: 2}
"""

SPEC: RuleSpec[State, AbandonedObjectParams] = RuleSpec(
    info=EventInfo(
        type=TYPE,
        params=AbandonedObjectParams,
        title="Abandoned object",
        summary="A bag left still with nobody near it.",
        method="Object detector boxes; a bag that stays still with nobody near it for the configured time.",
        known_limits=(
            "Bags smaller than about 20 pixels, or dark bags in shade, are missed.",
            "If the detector misses a person lying next to their belongings, the belongings can be flagged.",
            "Someone standing beside the bag resets the timer as the owner would.",
        ),
        example=EXAMPLE,
    ),
    initial=State,
    step=step,
    finish=finish,
    needs=frozenset({"objects"}),
)
