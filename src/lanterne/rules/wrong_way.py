"""Wrong way: an object inside the zone keeps moving against the allowed direction.

The velocity of each track is a least-squares slope over its positions of the last second, not
the step between two frames: box jitter of a few pixels between frames would otherwise look like
movement, and frames may be dropped or analysed at any rate. Angles and speeds are compared in
pixels, because a frame fraction is not the same length along x and y (a diagonal arrow drawn on
a 16:9 picture is not at 45° in fractions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from lanterne.core.params import VEHICLE_CLASSES, Seconds, Strict, check_classes
from lanterne.core.types import Event, EventType, Observation, TrackedObject
from lanterne.rules.base import EventInfo, Pending, RuleSpec, ZoneRef, advance, close_all

TYPE = EventType.WRONG_WAY


class WrongWayParams(Strict):
    direction: tuple[float, float] = Field(
        ...,
        title="Allowed direction",
        description="The allowed direction of travel as `[dx, dy]` in image axes (x to the right, y downwards). `[1, 0]` means left to right.",
    )
    classes: list[str] = Field(
        ["person", *VEHICLE_CLASSES],
        title="Object classes",
        description="Classes whose direction is checked.",
        min_length=1,
    )
    min_seconds: Seconds = Field(
        1.0,
        title="Minimum duration (s)",
        description="How long an object must move against the direction before the alert.",
    )
    min_speed: float = Field(
        0.03,
        gt=0,
        le=5,
        title="Minimum speed",
        description="Slower movement is ignored, in frame widths per second along the direction (filters box jitter).",
    )
    max_angle: float = Field(
        60.0,
        gt=0,
        le=90,
        title="Angle tolerance (°)",
        description="Movement within this angle of the opposite direction counts as wrong way.",
    )

    _classes = field_validator("classes")(check_classes)

    @field_validator("direction")
    @classmethod
    def _nonzero(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] == 0 and v[1] == 0:
            raise ValueError("needs a non-zero vector such as [1, 0]")
        return v


WINDOW_SECONDS = 1.0
"""Span of positions the velocity is fitted on. One second smooths box jitter at any analysis
rate and still reacts within the `min_seconds` a user would set."""

MIN_SPAN_SECONDS = 0.4
"""A velocity fitted over less time than this is mostly jitter: a new track is not judged before."""

FORGET_SECONDS = 2.0
"""A track unseen this long is dropped from the state; its id will not come back."""

MAX_POINTS = 32
"""Hard bound on the history of one track (the schema caps analysis at 30 fps, one window)."""

EPS = 1e-6
"""Timestamps are floats (0.1 * 3 != 0.3): spans are compared with this slack."""

Point = tuple[float, float, float]
"""`(t, x, y)`: time in seconds and the reference point in frame fractions."""


@dataclass(frozen=True, slots=True)
class Track:
    track_id: int
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class State:
    tracks: tuple[Track, ...] = ()
    pending: tuple[Pending, ...] = ()


def reference_point(o: TrackedObject) -> tuple[float, float]:
    """Feet for a person (where they walk), centre for anything else."""
    return o.foot if o.label == "person" else o.centre


def _trim(points: tuple[Point, ...], t: float) -> tuple[Point, ...]:
    # Keep the newest point at or before `t - WINDOW_SECONDS` as well, so that the fit spans a full
    # window as soon as the history allows it, even at 2 fps or after a dropped frame.
    kept = [p for p in points if t - p[0] <= FORGET_SECONDS]
    while len(kept) >= 2 and kept[1][0] <= t - WINDOW_SECONDS + EPS:
        kept.pop(0)
    return tuple(kept[-MAX_POINTS:])


def velocity(points: tuple[Point, ...]) -> tuple[float, float] | None:
    """Least-squares `(vx, vy)` in frame fractions per second, or None when the span is too short."""
    if len(points) < 2 or points[-1][0] - points[0][0] < MIN_SPAN_SECONDS - EPS:
        return None
    n = len(points)
    mt = sum(p[0] for p in points) / n
    mx = sum(p[1] for p in points) / n
    my = sum(p[2] for p in points) / n
    var = sum((p[0] - mt) ** 2 for p in points)
    vx = sum((p[0] - mt) * (p[1] - mx) for p in points) / var
    vy = sum((p[0] - mt) * (p[2] - my) for p in points) / var
    return vx, vy


def is_wrong_way(v: tuple[float, float], frame_size: tuple[int, int], params: WrongWayParams) -> bool:
    """Speed along the opposite of the allowed direction, in frame widths per second, above
    `min_speed`, and the heading within `max_angle` of that opposite direction."""
    w, h = frame_size
    vx, vy = v[0] * w, v[1] * h
    dx, dy = params.direction
    norm = math.hypot(dx, dy)
    ox, oy = -dx / norm, -dy / norm
    along = vx * ox + vy * oy
    speed = math.hypot(vx, vy)
    if along / w <= params.min_speed or speed == 0:
        return False
    return along / speed >= math.cos(math.radians(params.max_angle))


def step(state: State, obs: Observation, zone: ZoneRef, params: WrongWayParams) -> tuple[State, list[Event]]:
    """>>> from lanterne.core.types import TrackedObject
    >>> z = ZoneRef("cam", "z", ((0, 0), (1, 0), (1, 1), (0, 1)))
    >>> p = WrongWayParams(direction=(1, 0), min_seconds=1)
    >>> s, events = State(), []
    >>> for i in range(16):
    ...     o = TrackedObject(3, "person", (0.8 - 0.02 * i, 0.4, 0.85 - 0.02 * i, 0.6), 0.9)
    ...     s, ev = step(s, Observation("cam", i * 0.2, (640, 480), (o,)), z, p)
    ...     events += ev
    >>> [(e.type, e.start) for e in events]
    [(<EventType.WRONG_WAY: 'wrong_way'>, 0.4)]
    """
    t = obs.t
    previous = {tr.track_id: tr.points for tr in state.tracks}
    tracks: list[Track] = []
    active: dict[str, tuple[tuple[float, float, float, float], float, str | None]] = {}
    for o in obs.objects:
        if o.label not in params.classes:
            continue
        x, y = reference_point(o)
        points = _trim((*previous.pop(o.track_id, ()), (t, x, y)), t)
        tracks.append(Track(o.track_id, points))
        if not zone.contains((x, y)):
            continue
        v = velocity(points)
        if v is not None and is_wrong_way(v, obs.frame_size, params):
            active[str(o.track_id)] = (o.box, o.confidence, o.label)
    # Tracks not seen in this frame are kept a little, in case the detector missed them once.
    for track_id, points in previous.items():
        if points and t - points[-1][0] <= FORGET_SECONDS:
            tracks.append(Track(track_id, points))
    pending, events = advance(TYPE, zone, state.pending, active, t, params.min_seconds)
    return State(tuple(tracks), pending), events


def finish(state: State, t: float, zone: ZoneRef) -> list[Event]:
    return close_all(TYPE, zone, state.pending)


def from_dict(d: dict[str, Any]) -> State:
    """Rebuild a state from `dataclasses.asdict` (or its JSON form, where tuples became lists)."""
    return State(
        tracks=tuple(
            Track(int(tr["track_id"]), tuple(tuple(p) for p in tr["points"]))  # type: ignore[misc]
            for tr in d["tracks"]
        ),
        pending=tuple(_pending(p) for p in d["pending"]),
    )


def _pending(d: dict[str, Any]) -> Pending:
    return Pending(**{**d, "region": tuple(d["region"])})


EXAMPLE = """\
zones:
  - id: one-way-street
    polygon: [[0.0, 0.4], [1.0, 0.4], [1.0, 0.9], [0.0, 0.9]]
    events:
      wrong_way: {direction: [1, 0], classes: [car, bicycle, motorcycle], min_seconds: 1}
"""

SPEC: RuleSpec[State, WrongWayParams] = RuleSpec(
    info=EventInfo(
        type=TYPE,
        params=WrongWayParams,
        title="Wrong way",
        summary="An object moves against the allowed direction.",
        method="Object detector boxes followed for a few seconds on one camera; the direction of travel is compared with the allowed one.",
        known_limits=(
            "An event starts at the earliest 0.4 s after the object entered the view.",
            "Perspective: far-away objects look slower and may be missed.",
            "In a dense crowd, occluded people give short tracks, hence late events.",
        ),
        example=EXAMPLE,
    ),
    initial=State,
    step=step,
    finish=finish,
    needs=frozenset({"objects"}),
)
