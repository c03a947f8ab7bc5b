"""Operating envelopes (EV-05): the conditions each detector was measured under.

A figure in docs/events/ holds only for pictures like the ones it was measured on. A camera whose
people are smaller, whose scene is darker or whose analysis rate is lower than anything measured
is outside what Lanterne knows, and its alerts have no measured precision or recall to rest on.
So each event type declares here, beside its rule, the least favourable conditions its evaluation
covered, each bound with where its number comes from; `lanterne envelope check` measures a
camera's sample against them and a camera outside the envelope of a type does not alert that type
unless someone records an override with a reason (`lanterne.accountability.envelope`).

These are the conditions *measured*, not the detector's physical limits: a camera just outside may
work well, but nobody has shown it. The bounds are the smallest values the evaluation clips held
(person heights: the 1st percentile of the annotated boxes, so a few outliers do not widen the
envelope; light: the darkest clip's median frame luma; rate: the analysis rate of the figures).

The tables in docs/events/<type>.md are generated from `ENVELOPES` (`envelope_table`), and
tests/accountability/test_envelope.py fails when a page and the registry differ.

>>> ENVELOPES[EventType.ZONE_INTRUSION].min_person_px.value
55.0
>>> assess(ENVELOPES[EventType.ZONE_INTRUSION], Measured(80.0, 12, 120.0, 5.0, 576)).inside
True
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lanterne.core.types import EventType
from lanterne.rules.base import ZoneRef

_PETS = "PETS09-S2L1 (`vtest.avi`, 768x576)"
_TUD = "TUD-Stadtmitte (640x480)"
_SYNTH = "the semi-synthetic scenes of docs/events/evaluation.md"
_EVAL = "docs/events/evaluation.md, 'Measured'"


@dataclass(frozen=True, slots=True)
class Bound:
    """One measured lower bound and where its number comes from."""

    value: float
    source: str


@dataclass(frozen=True, slots=True)
class Declared:
    """A measured limit stated in the type's doc that a sample of ordinary frames cannot check
    (the size of a bag, of a flame): published with the envelope, left to whoever installs the
    camera to judge."""

    name: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class Envelope:
    """The least favourable conditions one event type was measured under.

    `min_person_px`: median height in pixels of the persons whose feet are in the type's zones;
    None for a type that reads no person (fire). `min_luma`: median over the sample of each
    frame's mean luma (0-255). `min_fps`: frames analysed per second. `min_frame_height`: the
    picture's height in pixels (a smaller picture was never measured)."""

    type: EventType
    min_person_px: Bound | None
    min_luma: Bound
    min_fps: Bound
    min_frame_height: Bound
    declared: tuple[Declared, ...] = ()


@dataclass(frozen=True, slots=True)
class Measured:
    """What a sample of one camera's frames showed, for one event type's zones."""

    person_height_px: float | None
    """Median height of the persons seen in the type's zones; None when nobody was seen there."""
    persons: int
    """Person boxes the median is taken over."""
    luma: float
    fps: float
    frame_height: int


@dataclass(frozen=True, slots=True)
class Verdict:
    status: str
    """`inside`, `outside`, or `undetermined` (nobody seen in the zones, so the person height
    could not be measured: it gates like `outside` until a sample with people is checked)."""
    reasons: tuple[str, ...]
    """One line per bound not met, with the measured figure and the bound."""

    @property
    def inside(self) -> bool:
        return self.status == "inside"


INSIDE, OUTSIDE, UNDETERMINED = "inside", "outside", "undetermined"

FPS_TOLERANCE = 0.1
"""A rate measured over a few seconds of timestamps reads 4.9 on a camera analysed at 5 fps when
the source's frames do not fall exactly on the selection instants: that is not a slower camera."""

_FPS_5 = Bound(5.0, f"all detector figures are at 5 fps ({_EVAL})")
_LIGHT_TUD = Bound(100.0, f"{_TUD}, the darker of the two clips measured: median frame luma 101")
_LIGHT_PETS = Bound(118.0, f"{_PETS}, the only clip measured: median frame luma 120, darkest frame 118")

ENVELOPES: dict[EventType, Envelope] = {
    e.type: e
    for e in (
        Envelope(
            EventType.ZONE_INTRUSION,
            min_person_px=Bound(55.0, f"{_PETS}: 1st percentile of the annotated person heights"),
            min_luma=_LIGHT_TUD,
            min_fps=_FPS_5,
            min_frame_height=Bound(480.0, f"{_TUD} and {_PETS}"),
        ),
        Envelope(
            EventType.WRONG_WAY,
            min_person_px=Bound(55.0, f"{_PETS}: 1st percentile of the annotated person heights"),
            min_luma=_LIGHT_PETS,
            min_fps=_FPS_5,
            min_frame_height=Bound(576.0, f"{_PETS}, the only clip measured"),
        ),
        Envelope(
            EventType.CROWD_DENSITY,
            min_person_px=Bound(55.0, f"{_PETS}: 1st percentile of the annotated person heights"),
            min_luma=_LIGHT_TUD,
            min_fps=_FPS_5,
            min_frame_height=Bound(480.0, f"{_TUD} and {_PETS}"),
            declared=(
                Declared(
                    "person height below which nobody is detected", 15.0, "px", "docs/events/crowd_density.md"
                ),
            ),
        ),
        Envelope(
            EventType.CROWD_MOVEMENT,
            min_person_px=Bound(
                55.0,
                f"{_PETS} (people about a sixth of the frame high): 1st percentile of the annotated heights",
            ),
            min_luma=_LIGHT_PETS,
            min_fps=Bound(
                10.0, "docs/events/crowd_movement.md: a 5x run caught at 10 fps, missed at 5 fps on PETS09"
            ),
            min_frame_height=Bound(576.0, f"{_PETS}, the only clip measured"),
        ),
        Envelope(
            EventType.ABANDONED_OBJECT,
            min_person_px=Bound(130.0, f"{_SYNTH}: walkers scaled to 130-240 px"),
            min_luma=Bound(100.0, f"{_SYNTH}: darkest background, the median of {_TUD} (luma 101)"),
            min_fps=_FPS_5,
            min_frame_height=Bound(360.0, f"{_SYNTH}: the Intel room background is 640x360"),
            declared=(
                Declared(
                    "bag height below which it is usually not detected",
                    20.0,
                    "px",
                    "docs/events/abandoned_object.md",
                ),
            ),
        ),
        Envelope(
            EventType.PERSON_DOWN,
            min_person_px=Bound(130.0, f"{_SYNTH}: walkers scaled to 130-240 px"),
            min_luma=Bound(100.0, f"{_SYNTH}: darkest background, the median of {_TUD} (luma 101)"),
            min_fps=_FPS_5,
            min_frame_height=Bound(360.0, f"{_SYNTH}: the Intel room background is 640x360"),
        ),
        Envelope(
            EventType.FIRE,
            min_person_px=None,
            min_luma=Bound(
                100.0,
                "docs/events/fire.md: six real daytime clips, the darkest TUD-Stadtmitte (median luma 101);"
                " nothing measured at night",
            ),
            min_fps=Bound(5.0, "docs/events/fire.md: analysis at 5 fps"),
            min_frame_height=Bound(432.0, "docs/events/fire.md: the Intel clips are 768x432"),
            declared=(
                Declared(
                    "flame height detected with a whole-frame zone (86 px missed)",
                    108.0,
                    "px",
                    "docs/events/fire.md: 25 % of a 432-px frame",
                ),
            ),
        ),
    )
}
"""Every type with a rule; `weapon` has none (refused, docs/events/weapon.md)."""


def assess(envelope: Envelope, m: Measured) -> Verdict:
    """Whether `m` lies inside `envelope`, and which bounds it misses."""
    reasons: list[str] = []
    undetermined = False
    if envelope.min_person_px is not None:
        if m.person_height_px is None:
            undetermined = True
            reasons.append("no person seen in the zones: person height not measured")
        elif m.person_height_px < envelope.min_person_px.value:
            reasons.append(
                f"person height {m.person_height_px:.0f} px < {envelope.min_person_px.value:.0f} px measured"
            )
    if m.luma < envelope.min_luma.value:
        reasons.append(f"light (mean luma) {m.luma:.0f} < {envelope.min_luma.value:.0f} measured")
    if m.fps < envelope.min_fps.value - FPS_TOLERANCE:
        reasons.append(f"analysis rate {m.fps:.1f} fps < {envelope.min_fps.value:.0f} fps measured")
    if m.frame_height < envelope.min_frame_height.value:
        reasons.append(
            f"frame height {m.frame_height} px < {envelope.min_frame_height.value:.0f} px measured"
        )
    if not reasons:
        return Verdict(INSIDE, ())
    status = UNDETERMINED if undetermined and len(reasons) == 1 else OUTSIDE
    return Verdict(status, tuple(reasons))


@dataclass(frozen=True, slots=True)
class PersonBox:
    """A person seen in a sampled frame, in frame fractions for the feet and pixels for height."""

    foot_x: float
    foot_y: float
    height_px: float


def measure(
    persons: Iterable[PersonBox],
    zones: Sequence[ZoneRef],
    luma: float,
    fps: float,
    frame_height: int,
) -> Measured:
    """The figures of one type from a camera's sample: persons count when their feet are in one
    of the type's zones, as the rules place them, since a rule never reads anyone outside."""
    heights = [p.height_px for p in persons if any(z.contains((p.foot_x, p.foot_y)) for z in zones)]
    return Measured(
        person_height_px=round(float(statistics.median(heights)), 1) if heights else None,
        persons=len(heights),
        luma=float(luma),
        fps=float(fps),
        frame_height=int(frame_height),
    )


def envelope_table(envelope: Envelope) -> str:
    """The Markdown table docs/events/<type>.md carries, generated from the registry."""
    rows = ["| condition | at least | measured on |", "|---|---:|---|"]
    if envelope.min_person_px is not None:
        rows.append(
            f"| person height in the zone (median) | {envelope.min_person_px.value:g} px | {envelope.min_person_px.source} |"
        )
    rows.append(
        f"| light (mean luma of the frame, 0-255) | {envelope.min_luma.value:g} | {envelope.min_luma.source} |"
    )
    rows.append(f"| analysis rate | {envelope.min_fps.value:g} fps | {envelope.min_fps.source} |")
    rows.append(
        f"| frame height | {envelope.min_frame_height.value:g} px | {envelope.min_frame_height.source} |"
    )
    for d in envelope.declared:
        rows.append(f"| {d.name} (not checked from a sample) | {d.value:g} {d.unit} | {d.source} |")
    return "\n".join(rows)
