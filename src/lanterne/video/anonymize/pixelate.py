"""Pixelation whose coarseness follows the size of what it hides.

A fixed kernel (say 15 px) turns a 20 px face into mush but leaves a 200 px face close to the
camera recognisable. Here the block size is a fixed fraction of the box side, so every face ends
up as the same handful of blocks across, whatever its size in pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from lanterne.video.detectors.base import PixelBox

BLOCKS_ACROSS = 4
"""Four blocks across the longer side of the enlarged box: eyes, nose and mouth share blocks, and
the person stays visible as a person. With six blocks YuNet itself still found 4 of 10 pixelated
TUD-Campus faces (a face-shaped blob is enough for it); with four and a 20 % margin, 1 of 10."""

MIN_BLOCK = 3
"""Below 3 px a block hides nothing on a 10 px face seen at CCTV distance."""

MARGIN = 0.2
"""Each side grows by 20 % of the box: detector boxes hug the face and leave ears, hairline and
chin outside, which are cues too."""


def block_size(
    width: int, height: int, blocks_across: int = BLOCKS_ACROSS, min_block: int = MIN_BLOCK
) -> int:
    """Side of one pixel block for a box of this size (before clamping to the frame)."""
    return max(min_block, round(max(width, height) / blocks_across))


def enlarge(box: PixelBox, margin: float, frame_size: tuple[int, int]) -> PixelBox | None:
    """`box` grown by `margin` x its width/height on each side and clamped to the frame;
    None when nothing of it is inside the frame."""
    x0, y0, x1, y1 = box
    dx = (x1 - x0) * margin
    dy = (y1 - y0) * margin
    w, h = frame_size
    ex0 = max(0, int(np.floor(x0 - dx)))
    ey0 = max(0, int(np.floor(y0 - dy)))
    ex1 = min(w, int(np.ceil(x1 + dx)))
    ey1 = min(h, int(np.ceil(y1 + dy)))
    if ex1 <= ex0 or ey1 <= ey0:
        return None
    return ex0, ey0, ex1, ey1


def pixelate(
    image: np.ndarray,
    box: PixelBox,
    *,
    margin: float = MARGIN,
    blocks_across: int = BLOCKS_ACROSS,
    min_block: int = MIN_BLOCK,
) -> int:
    """Pixelate `box` of `image` in place and return the block size used (0 when the box lies
    outside the frame). Callers own the copy: the anonymiser copies a frame once and then
    pixelates every region of it, instead of copying once per region.

    The block size is computed from the enlarged box *before* clamping, so a face half out of
    the frame is as coarse as the same face fully inside.

    >>> img = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    >>> pixelate(img, (20, 20, 80, 80))
    21
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    block = block_size(
        round((x1 - x0) * (1 + 2 * margin)), round((y1 - y0) * (1 + 2 * margin)), blocks_across, min_block
    )
    region = enlarge(box, margin, (w, h))
    if region is None:
        return 0
    rx0, ry0, rx1, ry1 = region
    roi = image[ry0:ry1, rx0:rx1]
    rh, rw = roi.shape[:2]
    # INTER_AREA averages each block exactly; NEAREST scales it back without re-blending, so
    # no detail leaks across block edges.
    small = cv2.resize(
        roi, (max(1, round(rw / block)), max(1, round(rh / block))), interpolation=cv2.INTER_AREA
    )
    image[ry0:ry1, rx0:rx1] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
    return block
