"""Text burned into pictures that leave the system: who, for whom, why.

A band across the whole width, dark with white text, readable on any scene and impossible to
crop away without losing that edge of the view. The frame font (OpenCV's Hershey) has no accents,
so the text is folded to ASCII first.
"""

from __future__ import annotations

import unicodedata

import cv2
import numpy as np


def ascii_text(text: str) -> str:
    """`é` → `e`, anything else outside ASCII dropped."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def burn(image: np.ndarray, text: str, *, top: bool = False) -> np.ndarray:
    """Burn `text` in a band along the bottom (or the top) of `image`, in place; returns it."""
    text = ascii_text(text)
    h, w = image.shape[:2]
    scale = max(0.35, w / 1600)
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    if tw > w - 8:
        scale *= (w - 8) / tw
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    band = th + base + 8
    rows = slice(0, band) if top else slice(h - band, h)
    image[rows, :] = (image[rows, :] * 0.3).astype(np.uint8)
    y = band - base - 4 if top else h - base - 4
    cv2.putText(image, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return image
