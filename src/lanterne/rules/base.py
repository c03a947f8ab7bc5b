"""What every event rule shares.

A rule is a pure function over explicit, serialisable state, counted in seconds:

    new_state, events = step(state, observation, zone, params)

`state` is a frozen dataclass made of numbers, strings, tuples and nested frozen dataclasses, so
that it can be stored, replayed and built directly by a test. `step` never reads a clock, a
random source or a global: everything comes from the arguments. `finish(state, t, zone)` closes
what is still open when a stream ends.

Events are emitted twice per situation: once when the rule fires (`ongoing=True`) and once when
the situation is over (`ongoing=False`, with its final `end`). Both carry the same `id`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, TypeVar

import cv2
import numpy as np
from pydantic import BaseModel

from lanterne.core.types import Box, Event, EventType, Observation

Need = Literal["objects", "motion", "fire"]


@dataclass(frozen=True, slots=True)
class ZoneRef:
    """A zone of one camera, in frame fractions."""

    camera: str
    id: str
    polygon: tuple[tuple[float, float], ...]

    def contains(self, point: tuple[float, float]) -> bool:
        # Asked for every object of every frame by every rule: build the contour once per zone.
        return cv2.pointPolygonTest(_contour(self.polygon), (float(point[0]), float(point[1])), False) >= 0

    @property
    def bbox(self) -> Box:
        xs = [p[0] for p in self.polygon]
        ys = [p[1] for p in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)

    def cell_mask(self, rows: int, cols: int) -> np.ndarray:
        """Which cells of a `rows x cols` grid have their centre inside the zone (read-only;
        cached, since rules ask for it on every frame)."""
        return _cell_mask(self.polygon, rows, cols)


@functools.lru_cache(maxsize=256)
def _contour(polygon: tuple[tuple[float, float], ...]) -> np.ndarray:
    contour = np.asarray(polygon, dtype=np.float32).reshape(-1, 1, 2)
    contour.flags.writeable = False
    return contour


@functools.lru_cache(maxsize=256)
def _cell_mask(polygon: tuple[tuple[float, float], ...], rows: int, cols: int) -> np.ndarray:
    contour = _contour(polygon)
    ys = (np.arange(rows) + 0.5) / rows
    xs = (np.arange(cols) + 0.5) / cols
    mask = np.array(
        [[cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x in xs] for y in ys],
        dtype=bool,
    )
    mask.flags.writeable = False
    return mask


@dataclass(frozen=True, slots=True)
class Pending:
    """A condition being timed: it becomes an event after `min_seconds`, and stays open while the
    condition holds (with a short grace period, so that one missed detection does not split it)."""

    key: str
    since: float
    last: float
    region: Box
    confidence: float
    object_class: str | None = None
    emitted: bool = False


GRACE_SECONDS = 1.6
"""How long a condition may disappear before its event is closed. It hides one missed detection
next to one dropped frame even at 2 fps (1.5 s without the condition), without merging two
separate situations."""


def event_id(camera: str, zone: str, type_: EventType, key: str, start: float) -> str:
    raw = f"{camera}|{zone}|{type_}|{key}|{start:.3f}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def make_event(type_: EventType, zone: ZoneRef, p: Pending, end: float, ongoing: bool) -> Event:
    return Event(
        id=event_id(zone.camera, zone.id, type_, p.key, p.since),
        type=type_,
        camera=zone.camera,
        zone=zone.id,
        start=p.since,
        end=end,
        confidence=p.confidence,
        region=p.region,
        ongoing=ongoing,
        object_class=p.object_class,
    )


def advance(
    type_: EventType,
    zone: ZoneRef,
    pending: tuple[Pending, ...],
    active: dict[str, tuple[Box, float, str | None]],
    t: float,
    min_seconds: float,
) -> tuple[tuple[Pending, ...], list[Event]]:
    """The timing logic all condition-based rules share.

    `active` maps a key (a track id, or `"zone"` for whole-zone conditions) to the region,
    confidence and object class of a condition that holds at time `t`.
    """
    events: list[Event] = []
    out: list[Pending] = []
    seen: set[str] = set()
    for p in pending:
        if p.key in active:
            region, conf, cls = active[p.key]
            p = replace(p, last=t, region=region, confidence=max(p.confidence, conf), object_class=cls)
            seen.add(p.key)
        elif t - p.last > GRACE_SECONDS:
            if p.emitted:
                events.append(make_event(type_, zone, p, p.last, ongoing=False))
            continue
        if not p.emitted and p.last - p.since >= min_seconds:
            p = replace(p, emitted=True)
            events.append(make_event(type_, zone, p, p.last, ongoing=True))
        out.append(p)
    for key, (region, conf, cls) in active.items():
        if key in seen:
            continue
        p = Pending(key=key, since=t, last=t, region=region, confidence=conf, object_class=cls)
        if min_seconds <= 0:
            p = replace(p, emitted=True)
            events.append(make_event(type_, zone, p, t, ongoing=True))
        out.append(p)
    return tuple(out), events


def close_all(type_: EventType, zone: ZoneRef, pending: tuple[Pending, ...]) -> list[Event]:
    return [make_event(type_, zone, p, p.last, ongoing=False) for p in pending if p.emitted]


S = TypeVar("S")
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What Lanterne says about one event type, kept beside its rule so that a new type is one
    module: the configuration builds the zone's `events` key from `params`, `summary` and
    `example`; the console, the public page (TR-01) and the DPIA show `title`, `method` and
    `known_limits`."""

    type: EventType
    params: type[BaseModel]
    """The zone's parameters for this type, validated by the configuration."""
    title: str
    """What the console, the public page and the DPIA call the type."""
    summary: str
    """One line under the type's key in the configuration reference."""
    example: str
    """A worked `zones:` list for docs/config.md; a test loads it through the real validator."""
    method: str
    """How the type is detected, in plain words, as published on the transparency page."""
    known_limits: tuple[str, ...]
    """A short, curated reading of docs/events/<type>.md "Known limits": the docs are not shipped
    inside the package, so the public page cannot read them at run time on an installed system.
    tests/accountability/test_transparency.py checks that each summary's key terms are in its doc."""
    key_title: str | None = None
    """Title of the type's key in the configuration reference, when shorter than `title`."""


@dataclass(frozen=True, slots=True)
class RuleSpec(Generic[S, P]):
    """How the pipeline drives one rule module, and what is said about it (`info`)."""

    info: EventInfo
    initial: Callable[[], S]
    step: Callable[[S, Observation, ZoneRef, P], tuple[S, list[Event]]]
    finish: Callable[[S, float, ZoneRef], list[Event]]
    needs: frozenset[Need]
    """Which parts of the `Observation` the rule reads, so the pipeline computes only those."""

    @property
    def type(self) -> EventType:
        return self.info.type

    @property
    def uses_detector(self) -> bool:
        """Whether the rule reads the object detector's boxes, a learned model; the others read
        pixels through a classical method."""
        return "objects" in self.needs


def union_box(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def state_to_dict(state: Any) -> dict[str, Any]:
    """Serialise a rule state (frozen dataclasses of plain values) for storage or replay."""
    from dataclasses import asdict

    return asdict(state)
