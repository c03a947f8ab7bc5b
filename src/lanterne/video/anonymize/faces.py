"""Face detection for pixelation only (YuNet through `cv2.FaceDetectorYN`).

Face boxes never leave `lanterne.video.anonymize`: the detector below is private to the package and
the anonymiser only returns pixelated images and counts. Nothing here looks at who a face
belongs to: no landmarks are used beyond the box, nothing is stored, no embedding exists.

YuNet misses most faces under ~10 px (typical of a street camera). A 2x upscale of small frames
recovers some of them at about 4-7x the cost; the head regions derived from person boxes are
what makes the result safe anyway (see `anonymizer.py` and docs/anonymisation.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lanterne.core.assets import resolve_model
from lanterne.video.detectors.base import PixelBox

SMALL_FRAME_WIDTH = 1000
"""Frames narrower than this are also searched at 2x: their faces are likely below YuNet's
~10 px floor, and the upscaled frame still costs less than a 4K frame would."""


@dataclass(frozen=True, slots=True)
class _FaceSettings:
    score: float = 0.6
    """YuNet's published default is 0.9; a false positive here costs only a pixelated patch,
    a miss costs a readable face, so we accept more."""
    nms: float = 0.3
    top_k: int = 5000
    upscale_small: bool = True
    """Run a second pass on a 2x upscale when the frame is narrower than `SMALL_FRAME_WIDTH`."""


class _FaceDetector:
    """YuNet with its input size following the frame size. One instance per thread:
    `cv2.FaceDetectorYN` keeps per-size state and is not thread-safe."""

    def __init__(self, models_dir: Path | None, settings: _FaceSettings = _FaceSettings()) -> None:
        self._settings = settings
        self._path = str(resolve_model("yunet", models_dir))
        self._nets: dict[tuple[int, int], cv2.FaceDetectorYN] = {}

    def _net(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        # Two sizes alternate (1x and 2x) on every frame; one net per size avoids re-planning
        # the graph on each setInputSize switch.
        net = self._nets.get(size)
        if net is None:
            s = self._settings
            net = cv2.FaceDetectorYN.create(self._path, "", size, s.score, s.nms, s.top_k)
            self._nets[size] = net
        return net

    def _detect_at(self, image: np.ndarray, scale: float) -> list[PixelBox]:
        h, w = image.shape[:2]
        if scale != 1.0:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        sh, sw = image.shape[:2]
        _, rows = self._net((sw, sh)).detect(image)
        if rows is None:
            return []
        boxes: list[PixelBox] = []
        for r in rows:
            x, y, bw, bh = (float(v) / scale for v in r[:4])
            boxes.append((int(x), int(y), int(np.ceil(x + bw)), int(np.ceil(y + bh))))
        return boxes

    def _boxes(self, image: np.ndarray) -> list[PixelBox]:
        """Face boxes in full-frame pixels, for pixelation inside this package only."""
        boxes = self._detect_at(image, 1.0)
        if self._settings.upscale_small and image.shape[1] < SMALL_FRAME_WIDTH:
            # Overlaps between the two passes are harmless: pixelating a region twice with
            # similar blocks leaves it as unreadable as once.
            boxes += self._detect_at(image, 2.0)
        return boxes
