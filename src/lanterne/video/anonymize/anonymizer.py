"""The default anonymiser: faces, licence plates and the head of every person box.

Why head regions as well as a face detector: at street-camera distance faces are 8-15 px and no
face detector we could ship finds most of them (YuNet: 2 of ~7 visible faces on a PETS frame even
at 2x). The object detector does find the *people*, and a person's head is, by anatomy, in the top
fifth of their box whatever the pose of a walking or standing person. Pixelating that band is safe
by construction; the face detector then adds faces of people the object detector missed (partly
hidden bodies, faces behind glass, people at the frame edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lanterne.video.anonymize.faces import _FaceDetector, _FaceSettings
from lanterne.video.anonymize.pixelate import pixelate
from lanterne.video.anonymize.plates import _PlateDetector, _PlateSettings
from lanterne.video.detectors.base import PixelBox

HEAD_FRACTION = 0.22
"""A standing adult's head is ~1/7.5 of the height; 22 % of the box also covers a head bowed
forward or a box whose top edge is cut a little low by the detector."""

HEAD_MARGIN = 0.15
"""Extra margin around the head band, as a fraction of the band: boxes may lag a frame behind a
walking person when detection runs on alternate frames."""


@dataclass(slots=True)
class BlurCounts:
    """How many regions of each kind the last `anonymize` call pixelated. Counts, never boxes."""

    faces: int = 0
    plates: int = 0
    heads: int = 0


def _head_region(person: PixelBox, fraction: float = HEAD_FRACTION) -> PixelBox:
    """The top band of a person box, full width: where the head is, whether or not a face
    detector can see it."""
    x0, y0, x1, y1 = person
    return x0, y0, x1, y0 + max(1, round((y1 - y0) * fraction))


class DefaultAnonymizer:
    """Pixelates faces (YuNet), plates (LPD-YuNet) and the head region of every given person box.

    One instance per thread (the OpenCV face detector is stateful).

    >>> anon = DefaultAnonymizer()
    >>> out = anon.anonymize(frame, person_boxes=[(100, 50, 140, 170)])  # doctest: +SKIP
    >>> anon.last_counts.heads  # doctest: +SKIP
    1
    """

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        faces: bool = True,
        plates: bool = True,
        upscale_small_frames: bool = True,
        face_score: float = 0.6,
        plate_score: float = 0.7,
    ) -> None:
        self._faces = (
            _FaceDetector(models_dir, _FaceSettings(score=face_score, upscale_small=upscale_small_frames))
            if faces
            else None
        )
        self._plates = _PlateDetector(models_dir, _PlateSettings(score=plate_score)) if plates else None
        self.last_counts = BlurCounts()

    def anonymize(
        self, image: np.ndarray, person_boxes: Sequence[PixelBox] = (), vehicle_boxes: Sequence[PixelBox] = ()
    ) -> np.ndarray:
        """Return a copy of the BGR image with faces, plates and head regions pixelated."""
        out = image.copy()
        counts = BlurCounts()
        # Detectors look at the original image: a face inside a head band that was already
        # pixelated would no longer be found, and the count would under-report.
        faces = self._faces._boxes(image) if self._faces is not None else []
        plates = self._plates._boxes(image, vehicle_boxes) if self._plates is not None else []
        for box in person_boxes:
            if pixelate(out, _head_region(box), margin=HEAD_MARGIN):
                counts.heads += 1
        for box in faces:
            if pixelate(out, box):
                counts.faces += 1
        for box in plates:
            if pixelate(out, box):
                counts.plates += 1
        self.last_counts = counts
        return out
