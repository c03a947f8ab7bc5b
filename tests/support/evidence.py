"""Synthetic frames for the evidence tests: a checkerboard in a person's head band (pixelation must
flatten it) and in a control area far from any box (which must stay sharp)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np

from lanterne.core.types import Event, EventType

W, H = 320, 240
PERSON = (120, 40, 200, 220)
"""Pixel box of the synthetic person; its head band must never reach the disk unpixelated."""
HEAD = (120, 40, 200, 67)
"""Top 15 % of the person box: wherever the anonymiser's head band ends, this much is the head."""
CONTROL = (10, 10, 90, 70)
"""A patterned area far from any box: it must survive, or the head-band check proves nothing."""
CHECKER = 4
DAY = datetime(2026, 5, 1, 23, 59, tzinfo=UTC)


def frame(i: int) -> np.ndarray:
    """A moving grey level (so frames differ) with sharp checkerboards in the head band and in
    the control area: pixelation flattens the first, the second must stay sharp."""
    img = np.full((H, W, 3), 60 + (i * 7) % 120, np.uint8)
    yy, xx = np.mgrid[0:H, 0:W]
    board = (((yy // CHECKER) + (xx // CHECKER)) % 2 * 255).astype(np.uint8)[..., None]
    for x0, y0, x1, y1 in (HEAD, CONTROL):
        img[y0:y1, x0:x1] = board[y0:y1, x0:x1]
    return img


def event(start: float, end: float, ongoing: bool, id_: str = "0123abcd4567ef89") -> Event:
    return Event(
        id=id_,
        type=EventType.ZONE_INTRUSION,
        camera="cam1",
        zone="quay",
        start=start,
        end=end,
        confidence=0.7,
        region=(0.5, 0.1, 0.7, 0.9),
        ongoing=ongoing,
        object_class="person",
    )


def decode(path: Path) -> tuple[list[float], list[np.ndarray]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
        return [float(f.time) for f in frames], [f.to_ndarray(format="bgr24") for f in frames]
