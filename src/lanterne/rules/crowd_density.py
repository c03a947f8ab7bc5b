"""Crowd density: more than `max_people` persons stand inside the zone for `min_seconds`.

People are counted by their feet (bottom centre of the box), so a person walking in front of a
zone drawn on the ground, whose box only overlaps it, is not counted. The count is never stored
beyond the current frame: the state holds only the timing of the whole-zone condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from lanterne.core.params import Seconds, Strict
from lanterne.core.types import Event, EventType, Observation
from lanterne.rules.base import EventInfo, Pending, RuleSpec, ZoneRef, advance, close_all, union_box

TYPE = EventType.CROWD_DENSITY


class CrowdDensityParams(Strict):
    max_people: int = Field(
        ...,
        ge=1,
        le=10_000,
        title="Maximum people",
        description="An alert is raised when more people than this are inside the zone.",
    )
    min_seconds: Seconds = Field(
        2.0, title="Minimum duration (s)", description="How long the count must stay above the maximum."
    )


@dataclass(frozen=True, slots=True)
class State:
    pending: tuple[Pending, ...] = ()


def count_confidence(confidences: list[float], max_people: int) -> float:
    """How sure we are that the count really exceeds `max_people`.

    The count is above the maximum only if at least `max_people + 1` of the detections are real
    people, so the score that matters is the weakest of the `max_people + 1` strongest ones. A mean
    would let twenty sure detections hide that the one person tipping the count over is a shadow.
    """
    ranked = sorted(confidences, reverse=True)
    return ranked[max_people] if len(ranked) > max_people else 0.0


def step(
    state: State, obs: Observation, zone: ZoneRef, params: CrowdDensityParams
) -> tuple[State, list[Event]]:
    """>>> from lanterne.core.types import TrackedObject
    >>> z = ZoneRef("cam", "z", ((0, 0), (1, 0), (1, 1), (0, 1)))
    >>> p = CrowdDensityParams(max_people=1, min_seconds=1)
    >>> people = tuple(TrackedObject(i, "person", (0.1 * i, 0.2, 0.1 * i + 0.05, 0.5), 0.8) for i in range(3))
    >>> s, _ = step(State(), Observation("cam", 0.0, (640, 480), people), z, p)
    >>> s, ev = step(s, Observation("cam", 1.0, (640, 480), people), z, p)
    >>> [(e.type, e.start, e.end) for e in ev]
    [(<EventType.CROWD_DENSITY: 'crowd_density'>, 0.0, 1.0)]
    """
    inside = [o for o in obs.objects if o.label == "person" and zone.contains(o.foot)]
    active: dict[str, tuple[tuple[float, float, float, float], float, str | None]] = {}
    if len(inside) > params.max_people:
        conf = count_confidence([o.confidence for o in inside], params.max_people)
        active["zone"] = (union_box([o.box for o in inside]), conf, "person")
    pending, events = advance(TYPE, zone, state.pending, active, obs.t, params.min_seconds)
    return State(pending), events


def finish(state: State, t: float, zone: ZoneRef) -> list[Event]:
    return close_all(TYPE, zone, state.pending)


def from_dict(d: dict[str, Any]) -> State:
    """Rebuild a state from `dataclasses.asdict` (or its JSON form, where tuples became lists)."""
    return State(pending=tuple(Pending(**{**p, "region": tuple(p["region"])}) for p in d["pending"]))


EXAMPLE = """\
zones:
  - id: station-stairs
    polygon: [[0.2, 0.3], [0.8, 0.3], [0.9, 1.0], [0.1, 1.0]]
    events:
      crowd_density: {max_people: 6, min_seconds: 2}
"""

SPEC: RuleSpec[State, CrowdDensityParams] = RuleSpec(
    info=EventInfo(
        type=TYPE,
        params=CrowdDensityParams,
        title="Crowd density",
        summary="Too many people in the zone.",
        method="Object detector boxes; people whose feet are inside the zone are counted, frame by frame.",
        known_limits=(
            "Heavily occluded people are missed: in a dense crowd the count is an underestimate, often by a third or more.",
            "People below about 15 pixels high are not detected at all.",
        ),
        example=EXAMPLE,
    ),
    initial=State,
    step=step,
    finish=finish,
    needs=frozenset({"objects"}),
)
