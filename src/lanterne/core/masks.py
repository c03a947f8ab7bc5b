"""Privacy masks (LB-06): parts of the picture no one may see or analyse, such as the windows and
entrances of dwellings.

A mask is a polygon in frame fractions, like a zone. Masked pixels are painted one flat colour
on every path that turns video into pixels: before analysis (so the detector, the motion gate and
the flow see nothing there) and in every rendering for a person, the privileged one included, so
a masked window is never shown, exported or analysed. Painting costs a few microseconds per
polygon (`cv2.fillPoly`), so it runs on every frame rather than being cached.

>>> import numpy as np
>>> image = np.full((4, 8, 3), 200, np.uint8)
>>> polys = pixel_polygons([[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]], (8, 4))
>>> paint(image, polys)[0, :, 0].tolist()
[128, 128, 128, 128, 128, 128, 200, 200]
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

MASK_VALUE = 128
"""Mid grey in every channel and in luma: flat, so that neither motion nor an object can appear."""

PixelPolygon = np.ndarray
"""An (N, 2) int32 array of pixel corners, as `cv2.fillPoly` takes it."""


def pixel_polygons(
    polygons: Sequence[Sequence[tuple[float, float]]], size: tuple[int, int]
) -> tuple[PixelPolygon, ...]:
    """Fractions of the frame to pixel corners for a frame of `size` (width, height). Corners are
    rounded outwards by drawing with the polygon's outline too (see `paint`), so a mask never
    leaves a one-pixel sliver of what it covers."""
    w, h = size
    return tuple(
        np.array([(round(x * (w - 1)), round(y * (h - 1))) for x, y in poly], dtype=np.int32)
        for poly in polygons
    )


def paint(image: np.ndarray, polygons: Sequence[PixelPolygon]) -> np.ndarray:
    """Paint the polygons flat on `image` (BGR or grey) in place and return it."""
    if polygons:
        colour = (MASK_VALUE,) * (1 if image.ndim == 2 else image.shape[2])
        cv2.fillPoly(image, list(polygons), colour)
        cv2.polylines(image, list(polygons), True, colour, 2)
    return image
