"""Zone intrusion: an object of a watched class stays inside a zone for `min_seconds`.

A person is placed by their feet (bottom centre of the box), a vehicle or object by its centre:
a person walking in front of a zone drawn on the ground is not inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, field_validator

from lanterne.core.params import Seconds, Strict, check_classes
from lanterne.core.types import Event, EventType, Observation
from lanterne.rules.base import EventInfo, Pending, RuleSpec, ZoneRef, advance, close_all

TYPE = EventType.ZONE_INTRUSION


class ZoneIntrusionParams(Strict):
    classes: list[str] = Field(
        ["person"],
        title="Object classes",
        description="Classes that must not enter the zone (COCO names).",
        min_length=1,
    )
    min_seconds: Seconds = Field(
        1.0,
        title="Minimum presence (s)",
        description="How long an object must stay inside before the alert is raised.",
    )

    _classes = field_validator("classes")(check_classes)


@dataclass(frozen=True, slots=True)
class State:
    pending: tuple[Pending, ...] = ()


def step(
    state: State, obs: Observation, zone: ZoneRef, params: ZoneIntrusionParams
) -> tuple[State, list[Event]]:
    """>>> from lanterne.core.types import TrackedObject
    >>> z = ZoneRef("cam", "z", ((0, 0), (1, 0), (1, 1), (0, 1)))
    >>> p = ZoneIntrusionParams(min_seconds=1)
    >>> o = TrackedObject(7, "person", (0.4, 0.2, 0.5, 0.6), 0.9)
    >>> s, ev = step(State(), Observation("cam", 0.0, (640, 480), (o,)), z, p)
    >>> s, ev = step(s, Observation("cam", 1.2, (640, 480), (o,)), z, p)
    >>> [e.type for e in ev]
    [<EventType.ZONE_INTRUSION: 'zone_intrusion'>]
    """
    active = {
        str(o.track_id): (o.box, o.confidence, o.label)
        for o in obs.objects
        if o.label in params.classes and zone.contains(o.foot if o.label == "person" else o.centre)
    }
    pending, events = advance(TYPE, zone, state.pending, active, obs.t, params.min_seconds)
    return State(pending), events


def finish(state: State, t: float, zone: ZoneRef) -> list[Event]:
    return close_all(TYPE, zone, state.pending)


EXAMPLE = """\
zones:
  - id: track-side
    polygon: [[0.05, 0.6], [0.95, 0.6], [0.95, 0.95], [0.05, 0.95]]
    events:
      zone_intrusion: {classes: [person], min_seconds: 1}
"""

SPEC: RuleSpec[State, ZoneIntrusionParams] = RuleSpec(
    info=EventInfo(
        type=TYPE,
        params=ZoneIntrusionParams,
        title="Zone intrusion",
        summary="An object of a listed class stays inside the zone.",
        method="Object detector boxes; a person is placed by their feet inside a zone drawn on the picture.",
        known_limits=(
            "The zone is a polygon on the picture, not on the ground.",
            "A person hidden up to the waist is placed too high, since feet are guessed from the box bottom.",
            "A tracker id change while the object stays inside may open a new event.",
        ),
        example=EXAMPLE,
    ),
    initial=State,
    step=step,
    finish=finish,
    needs=frozenset({"objects"}),
)
