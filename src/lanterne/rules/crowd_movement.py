"""Crowd movement: a large part of a zone suddenly moves fast, and mostly one way.

The rule reads only the aggregate `MotionField` (see `lanterne.video.motion.flow`): a grid of mean
motions with no notion of who moves. Three conditions must hold together for `min_seconds`:

- share: enough of the zone's cells move, so that one cyclist or one running child (a few
  cells) is not a crowd movement;
- speed: the mean speed of the moving cells, in frame heights per second, is above a walking
  pace. Horizontal motion is converted from frame widths to frame heights by the aspect ratio, so
  that the same physical speed counts the same in both directions;
- coherence: `|mean vector| / mean magnitude` of the moving cells. 1 when everybody moves the
  same way (a rush towards an exit), near 0 for people crossing in all directions. Setting
  `min_coherence: 0` also catches a dispersal in all directions.

Confidence is `1 - 0.5 / r`, where `r` is the smallest of the three ratios value / threshold:
0.5 exactly at the thresholds, 0.75 at twice the weakest one, tending to 1. The weakest
condition sets it because the situation is only as certain as its least certain part. A
coherence threshold of 0 is left out of the ratio (it cannot be exceeded "by how much").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from lanterne.core.params import Seconds, Strict
from lanterne.core.types import Box, Event, EventType, MotionField, Observation
from lanterne.rules.base import EventInfo, Pending, RuleSpec, ZoneRef, advance, close_all

TYPE = EventType.CROWD_MOVEMENT


class CrowdMovementParams(Strict):
    min_speed: float = Field(
        0.15,
        gt=0,
        le=10,
        title="Minimum speed",
        description="Mean motion in the moving part of the zone, in frame heights per second, above which movement counts as a rush.",
    )
    min_moving_share: float = Field(
        0.25,
        gt=0,
        le=1,
        title="Minimum moving share",
        description="Share of the zone's cells that must be moving at that speed.",
    )
    min_coherence: float = Field(
        0.5,
        ge=0,
        le=1,
        title="Minimum coherence",
        description="How aligned the cells' motion must be (1 = all in one direction, 0 = any). Dispersal in all directions is caught with 0.",
    )
    min_seconds: Seconds = Field(
        1.0, title="Minimum duration (s)", description="How long the movement must last."
    )


WINDOW_SECONDS = 1.0
"""The figures are averaged over this sliding window before they are compared. Optical flow of
compressed video is jumpy: on PETS09 (vtest.avi) single frame pairs reach twice the walking
speed every few frames, and without the average those spikes, bridged by the grace period,
raised a rush on people walking normally. One second delays an event by about half a second."""


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    moving_share: float
    speed: float
    coherence: float


@dataclass(frozen=True, slots=True)
class State:
    pending: tuple[Pending, ...] = ()
    recent: tuple[Sample, ...] = ()
    """Measurements of the last `WINDOW_SECONDS`, oldest first."""


@dataclass(frozen=True, slots=True)
class ZoneMotion:
    """The three aggregate figures the rule compares with its thresholds."""

    moving_share: float
    speed: float
    """Mean speed of the moving cells, frame heights per second."""
    coherence: float
    region: Box | None
    """Bounding box of the moving cells, None when nothing moves."""


def measure(motion: MotionField, mask: np.ndarray, aspect: float) -> ZoneMotion:
    """Aggregate the motion of the zone's cells. `aspect` is width / height of the frame."""
    rows, cols = mask.shape
    total = int(mask.sum())
    moving = motion.moving & mask
    n = int(moving.sum())
    if total == 0 or n == 0:
        return ZoneMotion(0.0, 0.0, 0.0, None)
    vec = motion.flow[moving].astype(np.float64)
    vec[:, 0] *= aspect  # frame widths → frame heights
    mag = np.hypot(vec[:, 0], vec[:, 1])
    speed = float(mag.mean())
    coherence = float(np.hypot(*vec.mean(axis=0)) / speed) if speed > 0 else 0.0
    rr, cc = np.nonzero(moving)
    region = (cc.min() / cols, rr.min() / rows, (cc.max() + 1) / cols, (rr.max() + 1) / rows)
    return ZoneMotion(n / total, speed, coherence, tuple(float(v) for v in region))  # type: ignore[arg-type]


def confidence(m: ZoneMotion, params: CrowdMovementParams) -> float:
    ratios = [m.moving_share / params.min_moving_share, m.speed / params.min_speed]
    if params.min_coherence > 0:
        ratios.append(m.coherence / params.min_coherence)
    r = min(ratios)
    return float(np.clip(1.0 - 0.5 / r, 0.0, 1.0)) if r > 0 else 0.0


def holds(m: ZoneMotion, params: CrowdMovementParams) -> bool:
    return (
        m.moving_share >= params.min_moving_share
        and m.speed >= params.min_speed
        and m.coherence >= params.min_coherence
    )


def step(
    state: State, obs: Observation, zone: ZoneRef, params: CrowdMovementParams
) -> tuple[State, list[Event]]:
    """>>> mf = MotionField(np.tile(np.float32([0.0, 0.5]), (12, 16, 1)), np.ones((12, 16), bool))
    >>> z = ZoneRef("cam", "z", ((0, 0), (1, 0), (1, 1), (0, 1)))
    >>> p = CrowdMovementParams(min_seconds=1)
    >>> s, ev = step(State(), Observation("cam", 0.0, (640, 480), motion=mf), z, p)
    >>> s, ev = step(s, Observation("cam", 1.0, (640, 480), motion=mf), z, p)
    >>> [e.type for e in ev]
    [<EventType.CROWD_MOVEMENT: 'crowd_movement'>]
    """
    # No motion field (the estimator's first frame, a repeated timestamp) means no evidence
    # either way: the grace period of `advance` keeps an open situation through one such gap.
    active: dict[str, tuple[Box, float, str | None]] = {}
    recent = tuple(s for s in state.recent if obs.t - s.t < WINDOW_SECONDS)
    if obs.motion is not None:
        rows, cols = obs.motion.moving.shape
        w, h = obs.frame_size
        m = measure(obs.motion, zone.cell_mask(rows, cols), w / h)
        recent = (*recent, Sample(obs.t, m.moving_share, m.speed, m.coherence))
        avg = ZoneMotion(
            moving_share=float(np.mean([s.moving_share for s in recent])),
            speed=float(np.mean([s.speed for s in recent])),
            coherence=float(np.mean([s.coherence for s in recent])),
            region=m.region,
        )
        if m.region is not None and holds(avg, params):
            active["zone"] = (m.region, confidence(avg, params), None)
    pending, events = advance(TYPE, zone, state.pending, active, obs.t, params.min_seconds)
    return State(pending, recent), events


def finish(state: State, t: float, zone: ZoneRef) -> list[Event]:
    return close_all(TYPE, zone, state.pending)


EXAMPLE = """\
zones:
  - id: square
    polygon: [[0.0, 0.2], [1.0, 0.2], [1.0, 1.0], [0.0, 1.0]]
    events:
      crowd_movement: {min_speed: 0.15, min_moving_share: 0.25, min_coherence: 0.5, min_seconds: 1}
"""

SPEC: RuleSpec[State, CrowdMovementParams] = RuleSpec(
    info=EventInfo(
        type=TYPE,
        params=CrowdMovementParams,
        title="Crowd movement",
        summary="A sudden rush of the crowd, from aggregate motion only (no individuals).",
        method="Optical flow (Farneback) averaged over a coarse grid: no person is detected, counted or followed.",
        known_limits=(
            "Camera motion (PTZ, wind) looks like a rush of the whole frame: fixed cameras only.",
            "Vehicles, trams, escalators and moving water move like a crowd.",
            "Opposite flows (two groups crossing) pass unnoticed.",
        ),
        example=EXAMPLE,
    ),
    initial=State,
    step=step,
    finish=finish,
    needs=frozenset({"motion"}),
)
