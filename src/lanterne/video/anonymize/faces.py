"""Face detection for pixelation only (YuNet through `cv2.FaceDetectorYN`).

Face boxes never leave `lanterne.video.anonymize`: the detector below is private to the package and
the anonymiser only returns pixelated images and counts. Nothing here looks at who a face
belongs to: no landmarks are used beyond the box, nothing is stored, no embedding exists.

YuNet misses most faces under ~10 px (typical of a street camera). A 2x upscale of small frames
recovers some of them at about 4-7x the cost; the head regions derived from person boxes are
what makes the result safe anyway (see `anonymizer.py` and docs/anonymisation.md).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lanterne.core.assets import resolve_model
from lanterne.video.detectors.base import PixelBox

SMALL_FRAME_WIDTH = 1000
"""Frames narrower than this are also searched at 2x: their faces are likely below YuNet's
~10 px floor, and the upscaled frame still costs less than a 4K frame would."""


MAX_NETS = 32
"""Nets kept per detector, one per input size (each a few MB of buffers)."""


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
        self._nets: OrderedDict[tuple[int, int], cv2.FaceDetectorYN] = OrderedDict()

    def _net(self, size: tuple[int, int]) -> cv2.FaceDetectorYN:
        # Two sizes alternate (1x and 2x) on every frame; one net per size avoids re-planning
        # the graph on each setInputSize switch.
        # Crops of changed regions come in more sizes: the least recently used nets are dropped.
        net = self._nets.get(size)
        if net is None:
            s = self._settings
            net = cv2.FaceDetectorYN.create(self._path, "", size, s.score, s.nms, s.top_k)
            self._nets[size] = net
            while len(self._nets) > MAX_NETS:
                self._nets.popitem(last=False)
        else:
            self._nets.move_to_end(size)
        return net

    def _detect_at(self, image: np.ndarray, scale: float, offset: tuple[int, int] = (0, 0)) -> list[PixelBox]:
        h, w = image.shape[:2]
        if scale != 1.0:
            image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
        sh, sw = image.shape[:2]
        _, rows = self._net((sw, sh)).detect(image)
        if rows is None:
            return []
        ox, oy = offset
        boxes: list[PixelBox] = []
        for r in rows:
            x, y, bw, bh = (float(v) / scale for v in r[:4])
            boxes.append((ox + int(x), oy + int(y), ox + int(np.ceil(x + bw)), oy + int(np.ceil(y + bh))))
        return boxes

    def _boxes(self, image: np.ndarray) -> list[PixelBox]:
        """Face boxes in full-frame pixels, for pixelation inside this package only."""
        boxes = self._detect_at(image, 1.0)
        if self._settings.upscale_small and image.shape[1] < SMALL_FRAME_WIDTH:
            # Overlaps between the two passes are harmless: pixelating a region twice with
            # similar blocks leaves it as unreadable as once.
            boxes += self._detect_at(image, 2.0)
        return boxes

    def _boxes_in(self, image: np.ndarray, region: PixelBox) -> list[PixelBox]:
        """Face boxes found in `region` of the frame, in full-frame pixels: the same passes as
        `_boxes` (the 2x one when the *frame* is narrow), on the region alone.

        The region is grown to a multiple of `REGION_STEP` (more context, never less) so that crops
        of a stream fall into a few sizes, each with its own net."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = _snap(region, (w, h))
        crop = image[y0:y1, x0:x1]
        boxes = self._detect_at(crop, 1.0, (x0, y0))
        if self._settings.upscale_small and w < SMALL_FRAME_WIDTH:
            boxes += self._detect_at(crop, 2.0, (x0, y0))
        return boxes


REGION_STEP = 32
"""Crops start and end on multiples of 32 px, YuNet's coarsest stride, at 1x (16 px at 2x): the
network then sees a face on the same grid of anchors as in the whole frame, and finds what the
whole-frame search finds (with crops at any offset it missed some 10 px faces on PETS). Crops of
a stream also come in few sizes, each with its own net."""

MIN_REGION = 64
"""YuNet's coarsest feature map has a stride of 32; a crop under 64 px gives it a single cell and
non-finite boxes."""


def _snap(region: PixelBox, size: tuple[int, int]) -> PixelBox:
    """`region` grown to the grid of REGION_STEP and to at least MIN_REGION a side, inside the
    frame (never smaller than `region`)."""
    w, h = size
    x0, y0, x1, y1 = region
    out = []
    for lo, hi, side in ((x0, x1, w), (y0, y1, h)):
        start = max(0, lo // REGION_STEP * REGION_STEP)
        end = min(side, -(-hi // REGION_STEP) * REGION_STEP)
        if end - start < MIN_REGION:
            end = min(side, start + MIN_REGION)
            start = max(0, (end - MIN_REGION) // REGION_STEP * REGION_STEP)
        out.append((start, end))
    (ax0, ax1), (ay0, ay1) = out
    return ax0, ay0, ax1, ay1
