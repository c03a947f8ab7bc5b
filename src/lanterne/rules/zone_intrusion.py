"""Zone intrusion: an object of a watched class stays inside a zone for `min_seconds`.

A person is placed by their feet (bottom centre of the box), a vehicle or object by its centre:
a person walking in front of a zone drawn on the ground is not inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lanterne.config.schema import ZoneIntrusionParams
from lanterne.core.types import Event, EventType, Observation
from lanterne.rules.base import Pending, RuleSpec, ZoneRef, advance, close_all

TYPE = EventType.ZONE_INTRUSION


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


SPEC: RuleSpec[State, ZoneIntrusionParams] = RuleSpec(
    type=TYPE, initial=State, step=step, finish=finish, needs=frozenset({"objects"})
)
