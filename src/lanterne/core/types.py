"""The few value types that flow one way through the engine.

source → `Frame` → detections (`supervision.Detections`) → `TrackedObject` → `Observation`
→ rule states → `Event`. Nothing here can describe who a person is: an object has a class
label, a box and an ephemeral random id, and that is all the engine ever knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import cv2
import numpy as np

from lanterne.core.masks import paint

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


class Picture(Protocol):
    """A decoded picture still in the decoder's own pixel format (PyAV's `VideoFrame`). Kept
    abstract here so that the core does not depend on the decoder."""

    width: int
    height: int

    @property
    def format(self) -> Any: ...

    @property
    def planes(self) -> Sequence[Any]: ...

    def to_ndarray(self, *, format: str) -> np.ndarray: ...


LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"})
"""Decoder formats whose first plane is the 8-bit luma: their grey picture is a view of it, free."""


class Frame:
    """One decoded picture. `pts` is in seconds from the stream start, never a frame count,
    because RTSP drops frames and cameras vary their rate.

    Pixels are made only when asked for: cameras send YUV, and most analysed frames need only its
    grey plane (motion gate, optical flow, carried boxes), which is a free view, while a BGR copy
    costs 0.5 ms a 768x576 frame in FFmpeg's converter (2.3 ms in OpenCV's). Each form is made at
    most once per frame. The camera's privacy masks (`lanterne.core.masks`) are painted on every
    form as it is made, so no step ever reads a masked pixel."""

    __slots__ = ("_bgr", "_grey", "_masks", "_picture", "camera_id", "index", "pts")

    def __init__(
        self,
        camera_id: str,
        pts: float,
        image: np.ndarray | None = None,
        index: int = 0,
        *,
        picture: Picture | None = None,
        masks: Sequence[np.ndarray] = (),
    ) -> None:
        if (image is None) == (picture is None):
            raise ValueError("a Frame needs exactly one of image (BGR) or picture (decoded)")
        self.camera_id = camera_id
        self.pts = pts
        self.index = index
        """Decoded frame number (0-based), for diagnostics and ground-truth alignment only."""
        self._masks = tuple(masks)
        self._bgr = paint(image.copy(), self._masks) if image is not None and self._masks else image
        self._grey: np.ndarray | None = None
        self._picture = picture

    @property
    def image(self) -> np.ndarray:
        """BGR uint8, H x W x 3 (made on first use, then kept)."""
        if self._bgr is None:
            assert self._picture is not None
            self._bgr = paint(self._picture.to_ndarray(format="bgr24"), self._masks)
        return self._bgr

    @property
    def grey(self) -> np.ndarray:
        """8-bit luma, H x W: a view of the decoder's plane when it has one, else from BGR."""
        if self._grey is None:
            pic = self._picture
            if pic is not None and pic.format.name in LUMA_FIRST:
                plane = pic.planes[0]
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                luma = rows[:, : plane.width]
                # A view of the decoder's plane is free; a masked camera pays one copy to paint.
                self._grey = paint(luma.copy(), self._masks) if self._masks else luma
            else:
                self._grey = cv2.cvtColor(self.image, cv2.COLOR_BGR2GRAY)
        return self._grey

    def unconverted(self) -> Frame:
        """The same decoded picture as a new Frame with none of its conversions made, so that
        pipelines sharing one decode each pay their own (benchmarks compare them that way)."""
        if self._picture is None:
            assert self._bgr is not None
            return Frame(self.camera_id, self.pts, self._bgr, self.index)
        return Frame(self.camera_id, self.pts, index=self.index, picture=self._picture, masks=self._masks)

    @property
    def size(self) -> tuple[int, int]:
        """`(width, height)` in pixels."""
        if self._bgr is not None:
            return int(self._bgr.shape[1]), int(self._bgr.shape[0])
        assert self._picture is not None
        return int(self._picture.width), int(self._picture.height)


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
