"""The anonymiser contract. Every frame that leaves memory (snapshot, clip, console image) goes
through `Anonymizer.anonymize` first; evidence writers take an `Anonymizer`, not frames that a
caller promises were anonymised, so forgetting the step is impossible."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from lanterne.video.detectors.base import PixelBox


class Anonymizer(Protocol):
    def anonymize(
        self, image: np.ndarray, person_boxes: Sequence[PixelBox] = (), vehicle_boxes: Sequence[PixelBox] = ()
    ) -> np.ndarray:
        """Return a copy of the BGR image with faces, licence plates and the head region of every
        given person box pixelated. Boxes from the object detector are hints that make the result
        safe even when the face detector misses a small face; the anonymiser runs its own face and
        plate detectors as well. Never returns the face boxes themselves."""
        ...
