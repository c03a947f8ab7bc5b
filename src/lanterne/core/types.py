"""The few value types that flow one way through the engine.

source → `Frame` → detections (`supervision.Detections`) → `TrackedObject` → `Observation`
→ rule states → `Event`. Nothing here can describe who a person is: an object has a class
label, a box and an ephemeral random id, and that is all the engine ever knows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

Box = tuple[float, float, float, float]
"""`(x0, y0, x1, y1)` as fractions of the frame width and height (0..1)."""


class EventType(StrEnum):
    """The closed list of décret 2023-828 art. 3. Adding a member is a legal change, not a feature.

    Each member has its module in `lanterne.rules` (parameters, rule and public texts); the
    registry there refuses to load while one is missing."""

    ABANDONED_OBJECT = "abandoned_object"
    WEAPON = "weapon"
    WRONG_WAY = "wrong_way"
    ZONE_INTRUSION = "zone_intrusion"
    PERSON_DOWN = "person_down"
    CROWD_MOVEMENT = "crowd_movement"
    CROWD_DENSITY = "crowd_density"
    FIRE = "fire"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture. `pts` is in seconds from the stream start, never a frame count,
    because RTSP drops frames and cameras vary their rate."""

    camera_id: str
    pts: float
    image: np.ndarray
    """BGR uint8, H x W x 3."""
    index: int
    """Decoded frame number (0-based), for diagnostics and ground-truth alignment only."""

    @property
    def size(self) -> tuple[int, int]:
        """`(width, height)` in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class TrackedObject:
    """An object seen by one camera. `track_id` is random, lives only in memory and is
    forgotten shortly after the object leaves the view (see `lanterne.video.tracking`)."""

    track_id: int
    label: str
    """COCO class name, e.g. `person`, `suitcase`."""
    box: Box
    confidence: float

    @property
    def centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def foot(self) -> tuple[float, float]:
        """Bottom centre: where a person stands, the right point to test against a ground zone."""
        x0, _, x1, y1 = self.box
        return (x0 + x1) / 2, y1


@dataclass(frozen=True, slots=True)
class MotionField:
    """Aggregate motion on a coarse grid, with no notion of individuals.

    `flow[r, c] = (dx, dy)` is the mean displacement of the cell in frame fractions per second
    (x as a fraction of the width, y of the height). `moving[r, c]` says whether the cell's
    pixels changed beyond the motion threshold.
    """

    flow: np.ndarray
    """float32, rows x cols x 2."""
    moving: np.ndarray
    """bool, rows x cols."""


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything a rule may look at for one analysed frame of one camera."""

    camera_id: str
    t: float
    """Seconds from the stream start."""
    frame_size: tuple[int, int]
    objects: tuple[TrackedObject, ...] = ()
    motion: MotionField | None = None
    """Present only when a `crowd_movement` rule needs it."""
    fire: np.ndarray | None = None
    """Coarse fire-likelihood grid (float32 0..1, rows x cols), present only when a `fire` rule needs it."""


@dataclass(frozen=True, slots=True)
class Event:
    """A situation signalled for a human to verify. Deliberately has no field that could hold an
    identity, an appearance or a track history (EV-01 of the legal requirements)."""

    id: str
    """Stable across the event's updates: the rule derives it from camera, zone, type and start."""
    type: EventType
    camera: str
    zone: str
    start: float
    end: float
    confidence: float
    region: Box
    ongoing: bool = True
    """True while the situation lasts; the final update of an event has `ongoing=False`."""
    object_class: str | None = None
    """COCO class of the object concerned (`suitcase`, `car`), when there is one."""
    model_hash: str = ""
    config_hash: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "type": str(self.type),
            "camera": self.camera,
            "zone": self.zone,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "confidence": round(self.confidence, 4),
            "region": [round(v, 4) for v in self.region],
            "object_class": self.object_class,
            "model_hash": self.model_hash,
            "config_hash": self.config_hash,
        }


@dataclass(slots=True)
class Counts:
    """Statistics-mode output: counts per zone and time bucket, never a frame or a track id."""

    camera: str
    zone: str
    bucket_start: float
    bucket_seconds: float
    max_people: int = 0
    mean_people: float = 0.0
    entries: dict[str, int] = field(default_factory=dict)
    """Objects of each class that entered the zone during the bucket."""
    samples: int = 0
