"""What one frame's face and plate search still says about the next frame of the same camera.

Why: a recording is played frame after frame from a fixed camera, and most of each picture is the
same street as in the previous one. Searching an unchanged part again finds the same faces at the
same places, and the search is what anonymisation costs (YuNet at 1x and 2x, LPD-YuNet per
vehicle: 300 ms of a 768x576 frame against 1 ms to compare two frames). With a `FrameMemory` the
detectors run only on the parts that changed, with context around them, and the boxes found
before are kept where nothing changed.

Why it hides as much as searching everything:
- Each part is compared with the picture on which it was last *searched*, not with the previous
  frame, so changes too slow to count from one frame to the next add up until they do.
- A remembered box is dropped for the next frames as soon as one of its pixels changes, and the
  changed part is searched again with the box and `CONTEXT` pixels around it; in this frame the
  old box is pixelated as well as whatever the new search finds.
- The whole frame is searched as without memory on the first frame, every `REFRESH_FRAMES`
  frames, when the frame size changes and when more than `FULL_SEARCH_SHARE` of it changed.
- The anonymiser clears the memory when a frame fails, so the next one is searched whole.

Boxes stay inside this package, like the detectors' (`DefaultAnonymizer` reads them).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lanterne.video.detectors.base import PixelBox

CELL = 8
"""Changes are located on a grid of 8x8 pixel cells: finer than the smallest face YuNet finds
(~10 px at 1x, ~5 px at 2x), so a face never hides inside a cell counted as unchanged."""

CHANGE_LEVEL = 10
"""Grey levels (0-255) between the picture and its reference, after a 3x3 blur of the half-size
frame, for a cell to count as changed. H.264 noise on a still street stays under 6; a face
turning, a head entering or a shadow moving is 20-100."""

CONTEXT = 32
"""Pixels searched around a changed part. YuNet's score for a small face depends on what
surrounds it: with 16 px, crops missed 3 of the 79 faces the whole-frame search finds in 60 PETS
frames and 1 of 178 in 40 TUD-Stadtmitte frames (no person boxes); with 32 px, none. A larger
face is a remembered box, and a remembered box touched by a change is searched whole."""

REFRESH_FRAMES = 50
"""Search the whole frame at least every 50 frames (5 s at 10 fps): a face the search missed
once, on pixels that have not changed since, gets a new chance as often as this."""

FULL_SEARCH_SHARE = 0.5
"""When more than half of the cells changed (a camera that moved, a light switched on), one
whole-frame search costs less than many crops."""


def _grey(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)


def _iou(a: PixelBox, b: PixelBox) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Changes:
    """Where this frame differs from the reference: changed cells, and the regions to search."""

    cells: np.ndarray
    """bool, one per CELL x CELL block of the frame."""
    regions: list[PixelBox]
    """Frame regions (full-frame pixels) that cover every changed cell with CONTEXT around it
    and every remembered box that a change touches."""

    def touches(self, box: PixelBox) -> bool:
        """Whether any pixel of `box` lies in a changed cell."""
        ch, cw = self.cells.shape
        x0, y0 = max(0, box[0] // CELL), max(0, box[1] // CELL)
        x1, y1 = min(cw, -(-box[2] // CELL)), min(ch, -(-box[3] // CELL))
        if x1 <= x0 or y1 <= y0:
            return False
        return bool(self.cells[y0:y1, x0:x1].any())


class FrameMemory:
    """The search results of the frames already anonymised in one stream of one camera's frames.

    One per stream (a playback, an export), used by one `DefaultAnonymizer` call at a time; never
    shared between cameras. It holds boxes only while the stream is rendered, never writes them.

    >>> memory = FrameMemory()
    >>> out = anonymizer.anonymize(frame, people, vehicles, memory=memory)  # doctest: +SKIP
    """

    def __init__(self, refresh_frames: int = REFRESH_FRAMES) -> None:
        self._refresh = max(1, refresh_frames)
        self.clear()

    def clear(self) -> None:
        """Forget everything: the next frame is searched whole."""
        self._reference: np.ndarray | None = None
        self._size: tuple[int, int] | None = None
        self._since_full = 0
        self._faces: list[PixelBox] = []
        self._plates: list[PixelBox] = []
        self._searched_vehicles: list[PixelBox] = []
        self.full_searches = 0
        self.partial_searches = 0

    def changes(self, image: np.ndarray) -> tuple[np.ndarray, _Changes | None]:
        """The frame's comparison picture and its changes against the reference; None when the
        whole frame must be searched."""
        grey = _grey(image)
        h, w = image.shape[:2]
        ref = self._reference
        if ref is None or self._size != (w, h) or self._since_full + 1 >= self._refresh:
            return grey, None
        changed = cv2.absdiff(grey, ref) > CHANGE_LEVEL
        half = CELL // 2
        ch, cw = -(-changed.shape[0] // half), -(-changed.shape[1] // half)
        padded = np.zeros((ch * half, cw * half), dtype=bool)
        padded[: changed.shape[0], : changed.shape[1]] = changed
        cells = padded.reshape(ch, half, cw, half).any(axis=(1, 3))
        if cells.mean() > FULL_SEARCH_SHARE:
            return grey, None
        return grey, _Changes(cells, self._regions(cells, (w, h)))

    def _regions(self, cells: np.ndarray, size: tuple[int, int]) -> list[PixelBox]:
        w, h = size
        if not cells.any():
            return []
        grow = -(-CONTEXT // CELL)
        kernel = np.ones((2 * grow + 1, 2 * grow + 1), dtype=np.uint8)
        grown = cv2.dilate(cells.astype(np.uint8), kernel)
        probe = _Changes(cells, [])
        for x0, y0, x1, y1 in self._faces + self._plates:
            # A remembered box that a change touches is searched whole, with its margin.
            if probe.touches((x0, y0, x1, y1)):
                mx, my = (x1 - x0) // 4 + 1, (y1 - y0) // 4 + 1
                grown[
                    max(0, (y0 - my) // CELL) : -(-(y1 + my) // CELL),
                    max(0, (x0 - mx) // CELL) : -(-(x1 + mx) // CELL),
                ] = 1
        n, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
        regions = []
        for i in range(1, n):
            cx, cy, cwid, chei = (int(v) for v in stats[i, :4])
            regions.append((cx * CELL, cy * CELL, min(w, (cx + cwid) * CELL), min(h, (cy + chei) * CELL)))
        return regions

    def searched_whole(self, grey: np.ndarray, size: tuple[int, int]) -> None:
        self._reference = grey
        self._size = size
        self._since_full = 0
        self.full_searches += 1

    def searched_changes(self, grey: np.ndarray, changes: _Changes) -> None:
        """The changed cells were searched: they are the reference for the next frames."""
        assert self._reference is not None
        mask = np.repeat(np.repeat(changes.cells, CELL // 2, axis=0), CELL // 2, axis=1)
        mask = mask[: grey.shape[0], : grey.shape[1]]
        self._reference[mask] = grey[mask]
        self._since_full += 1
        self.partial_searches += 1

    def vehicle_searched(self, region: PixelBox, changes: _Changes) -> bool:
        """Whether this vehicle region was searched before and has not changed since."""
        return not changes.touches(region) and any(_iou(region, s) >= 0.8 for s in self._searched_vehicles)

    @staticmethod
    def kept(boxes: list[PixelBox], changes: _Changes) -> list[PixelBox]:
        return [b for b in boxes if not changes.touches(b)]
