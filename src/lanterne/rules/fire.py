"""Fire (experimental): flame-like, flickering cells cover part of a zone for `min_seconds`.

Reads only `Observation.fire`, the per-cell likelihood grid of
`lanterne.video.detectors.fire_classic.FireEstimator`, whose cues and their limits are documented
there and in `docs/events/fire.md`. The rule adds two zone-level checks:

- area: cells with likelihood ≥ `LEVEL` cover at least `min_area` of the zone's cells;
- flicker: of those cells, at least `min_flicker` changed likelihood by ≥ `FLICKER_DELTA` since
  the previous analysed frame. The estimator already requires per-pixel flicker; this second
  check, on the cells themselves, catches a steady source (a lit orange sign seen through
  moving branches, say) whose cells hold a constant likelihood.

Confidence is the mean likelihood of the flame-like cells: the estimator's figure, with no
claim of calibration (there is no labelled fire footage to calibrate it on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from lanterne.core.params import Seconds, Strict
from lanterne.core.types import Box, Event, EventType, Observation
from lanterne.rules.base import EventInfo, Pending, RuleSpec, ZoneRef, advance, close_all

TYPE = EventType.FIRE


class FireParams(Strict):
    min_seconds: Seconds = Field(
        3.0, title="Minimum duration (s)", description="How long flame-like pixels must persist."
    )
    min_area: float = Field(
        0.01, gt=0, le=1, title="Minimum area", description="Share of the zone covered by flame-like cells."
    )
    min_flicker: float = Field(
        0.25,
        ge=0,
        le=1,
        title="Minimum flicker",
        description="Flames flicker; static lights and signs do not. Share of flame-like cells whose brightness changed between analysed frames.",
    )
    experimental: Literal[True] = Field(
        ...,
        title="Experimental acknowledged",
        description="Must be `true`: there is no trained fire model; the classical colour-and-flicker method and its measured false alarms are in docs/events/fire.md.",
    )


LEVEL = 0.2
"""Likelihood from which a cell counts as flame-like. Chosen on the benchmark: the synthetic
flames' burning cells sit at 0.4–1, the hard negatives' cells mostly below 0.1."""
FLICKER_DELTA = 0.05


@dataclass(frozen=True, slots=True)
class State:
    pending: tuple[Pending, ...] = ()
    previous: tuple[float, ...] = ()
    """Likelihood of the zone's cells at the previous analysed frame (row-major, zone cells
    only), for the cell-level flicker. Empty before the first frame or after a grid change."""


def step(state: State, obs: Observation, zone: ZoneRef, params: FireParams) -> tuple[State, list[Event]]:
    """>>> grid = np.zeros((18, 24), np.float32)
    >>> z = ZoneRef("cam", "z", ((0, 0), (1, 0), (1, 1), (0, 1)))
    >>> p = FireParams(experimental=True, min_seconds=1)
    >>> s, ev = State(), []
    >>> for i in range(8):
    ...     grid[:4, :4] = 0.5 + 0.2 * (i % 2)  # 16 cells of 432, flickering
    ...     s, e = step(s, Observation("cam", i * 0.2, (640, 480), fire=grid.copy()), z, p)
    ...     ev += e
    >>> [e.type for e in ev]
    [<EventType.FIRE: 'fire'>]
    """
    if obs.fire is None:
        pending, events = advance(TYPE, zone, state.pending, {}, obs.t, params.min_seconds)
        return State(pending, ()), events
    rows, cols = obs.fire.shape
    mask = zone.cell_mask(rows, cols)
    values = obs.fire[mask].astype(np.float64)
    previous = np.asarray(state.previous) if len(state.previous) == values.size else None
    active: dict[str, tuple[Box, float, str | None]] = {}
    hot = values >= LEVEL
    n_hot = int(hot.sum())
    if values.size and previous is not None and n_hot / values.size >= params.min_area:
        changed = np.abs(values - previous) >= FLICKER_DELTA
        if float(changed[hot].mean()) >= params.min_flicker:
            rr, cc = np.nonzero(mask)
            rr, cc = rr[hot], cc[hot]
            region = (cc.min() / cols, rr.min() / rows, (cc.max() + 1) / cols, (rr.max() + 1) / rows)
            active["zone"] = (tuple(float(v) for v in region), float(values[hot].mean()), None)  # type: ignore[dict-item]
    pending, events = advance(TYPE, zone, state.pending, active, obs.t, params.min_seconds)
    return State(pending, tuple(float(v) for v in values)), events


def finish(state: State, t: float, zone: ZoneRef) -> list[Event]:
    return close_all(TYPE, zone, state.pending)


EXAMPLE = """\
zones:
  - id: bins
    polygon: [[0.6, 0.5], [0.95, 0.5], [0.95, 0.95], [0.6, 0.95]]
    events:
      fire: {experimental: true, min_seconds: 3, min_area: 0.01}
"""

SPEC: RuleSpec[State, FireParams] = RuleSpec(
    info=EventInfo(
        type=TYPE,
        params=FireParams,
        title="Fire (experimental)",
        key_title="Fire",
        summary="Flame-like colour and flicker (experimental).",
        method="Classical colour, brightness and flicker cues on a coarse grid; no trained fire model exists with a licence we can ship.",
        known_limits=(
            "Colour-based: sodium lighting, neon, sunsets and car tail-lights are the classic false alarms.",
            "No depth: a small fire near the camera and a large one far away look the same.",
        ),
        example=EXAMPLE,
    ),
    initial=State,
    step=step,
    finish=finish,
    needs=frozenset({"fire"}),
)
