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
from lanterne.video.anonymize.memory import FrameMemory
from lanterne.video.anonymize.pixelate import pixelate
from lanterne.video.anonymize.plates import _PlateDetector, _PlateSettings, vehicle_region
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


def head_region(person: PixelBox, fraction: float = HEAD_FRACTION) -> PixelBox:
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
        remember_frames: bool = True,
    ) -> None:
        self._faces = (
            _FaceDetector(models_dir, _FaceSettings(score=face_score, upscale_small=upscale_small_frames))
            if faces
            else None
        )
        self._plates = _PlateDetector(models_dir, _PlateSettings(score=plate_score)) if plates else None
        self.last_counts = BlurCounts()
        self.remembers_frames = remember_frames
        """Whether a caller rendering a stream may pass a `FrameMemory` (`playback` does); off,
        every frame is searched whole, as before (`benchmarks/playback.py` compares both)."""

    def anonymize(
        self,
        image: np.ndarray,
        person_boxes: Sequence[PixelBox] = (),
        vehicle_boxes: Sequence[PixelBox] = (),
        *,
        memory: FrameMemory | None = None,
    ) -> np.ndarray:
        """Return a copy of the BGR image with faces, plates and head regions pixelated.

        `memory`: the previous frames of the same stream (one camera, in order); faces and plates
        are then searched only where the picture changed (see `FrameMemory`). Cleared when the
        call fails, so that the next frame is searched whole."""
        try:
            return self._anonymize(image, person_boxes, vehicle_boxes, memory)
        except BaseException:
            if memory is not None:
                memory.clear()
            raise

    def _anonymize(
        self,
        image: np.ndarray,
        person_boxes: Sequence[PixelBox],
        vehicle_boxes: Sequence[PixelBox],
        memory: FrameMemory | None,
    ) -> np.ndarray:
        out = image.copy()
        counts = BlurCounts()
        # Detectors look at the original image: a face inside a head band that was already
        # pixelated would no longer be found, and the count would under-report.
        if memory is None:
            faces = self._faces._boxes(image) if self._faces is not None else []
            plates = self._plates._boxes(image, vehicle_boxes) if self._plates is not None else []
        else:
            faces, plates = self._search(image, vehicle_boxes, memory)
        for box in person_boxes:
            if pixelate(out, head_region(box), margin=HEAD_MARGIN):
                counts.heads += 1
        for box in faces:
            if pixelate(out, box):
                counts.faces += 1
        for box in plates:
            if pixelate(out, box):
                counts.plates += 1
        self.last_counts = counts
        return out

    def _search(
        self, image: np.ndarray, vehicle_boxes: Sequence[PixelBox], memory: FrameMemory
    ) -> tuple[list[PixelBox], list[PixelBox]]:
        """Faces and plates to pixelate in this frame: searched where it changed, remembered
        where it did not. The memory keeps what stays valid for the next frame."""
        h, w = image.shape[:2]
        grey, changes = memory.changes(image)
        regions = [vehicle_region(v, (w, h)) for v in vehicle_boxes]
        if changes is None:
            faces = self._faces._boxes(image) if self._faces is not None else []
            plates = self._plates._boxes(image, vehicle_boxes) if self._plates is not None else []
            memory._faces, memory._plates = list(faces), list(plates)
            memory._searched_vehicles = regions
            memory.searched_whole(grey, (w, h))
            return faces, plates
        kept_faces, kept_plates = memory.kept(memory._faces, changes), memory.kept(memory._plates, changes)
        new_faces: list[PixelBox] = []
        new_plates: list[PixelBox] = []
        if self._faces is not None:
            for region in changes.regions:
                new_faces += self._faces._boxes_in(image, region)
        searched = [r for r in memory._searched_vehicles if not changes.touches(r)]
        if self._plates is not None:
            if changes.regions:
                # The whole-frame pass, on the part of the frame that changed: plates there are
                # at least as large in the network's input as in the whole frame.
                new_plates += self._plates._detect_in(image, _union(changes.regions))
            for region in regions:
                if not memory.vehicle_searched(region, changes):
                    new_plates += self._plates._detect_in(image, region)
                    searched.append(region)
        # This frame hides the boxes that were remembered where it changed as well as what the
        # new search found; the next frame starts from the new search there.
        faces = memory._faces + new_faces
        plates = memory._plates + new_plates
        memory._faces, memory._plates = kept_faces + new_faces, kept_plates + new_plates
        memory._searched_vehicles = searched
        memory.searched_changes(grey, changes)
        return faces, plates


def _union(regions: Sequence[PixelBox]) -> PixelBox:
    return (
        min(r[0] for r in regions),
        min(r[1] for r in regions),
        max(r[2] for r in regions),
        max(r[3] for r in regions),
    )
