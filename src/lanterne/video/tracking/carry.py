"""Carry tracked boxes from one analysed frame to the next by sparse optical flow.

The detector is most of the CPU a camera costs (issue 10: one YOLOX call per analysed frame is
about 60 % of the whole analysis). Running it only every `detector.interval_seconds` and moving
the boxes in between keeps most of the recall: on PETS at 5 fps, Lucas-Kanade flow of a few
corners inside each box kept person recall at 0.86 / 0.83 / 0.79 with the detector every 2nd /
3rd / 5th frame, where holding the boxes still kept 0.63 / 0.43 / 0.32 and a constant-velocity
(Kalman) prediction 0.80 / 0.67 / 0.38.

Only pixel motion is used: corners are picked afresh inside a box and followed to the next
frame, and nothing describing what the box contains (colour, shape, a learnt embedding) is
kept. The carried box therefore cannot recognise anybody again once it is lost (EV-02), and
everything here is forgotten with the track.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

CARRY_WIDTH = 384
"""Width of the grey picture the flow runs on. Half of a 768-px camera picture: a walker moves a
few pixels between analysed frames there, well inside the pyramid's reach, and corners survive
the downscale."""
MAX_POINTS = 30
"""Corners followed per box, at most. Ground-truth boxes carried over three analysed frames
(0.6 s) still matched their true position at IoU >= 0.5 in 86 % (PETS) and 68 % (TUD-Stadtmitte)
of cases with 30 corners, against 85 % and 58 % with 12: large, near people need more corners to
outvote the background in their box. Small far walkers never yield that many."""
MIN_POINTS = 3
"""Fewer consistent corners than this and the box's motion is not trusted: it is held."""
QUALITY = 0.01
"""`goodFeaturesToTrack` quality level, relative to the strongest corner in the box: low, so
that dull clothing still yields corners."""
MIN_DISTANCE = 2.0
"""Minimum spacing of corners (carry pixels)."""
TRIM_WIDTH = 30
TRIM_X = 0.2
TRIM_Y = 0.1
"""In a box at least `TRIM_WIDTH` carry pixels wide, corners are picked only inside its inner
part (`TRIM_X` of the width and `TRIM_Y` of the height left out on each side): a near person's
box holds much still background, whose corners pull the median displacement towards zero
(TUD-Stadtmitte, 30 corners: 68 % matched with the trim, 60 % without). Smaller boxes keep their
margins: far walkers are a dozen carry pixels wide, and trimmed they had too few corners left
(PETS, first 30 s, detector every 1 s: person recall 0.68 with every box trimmed, 0.77 with
none)."""
WINDOW = (11, 11)
LEVELS = 2
"""Lucas-Kanade window and pyramid levels: with 2 levels an 11-px window follows motions up to
about 20 carry pixels (40 camera pixels) between analysed frames."""
FB_MAX = 2.0
"""Forward-backward error (carry pixels) above which a corner is dropped: a corner followed to
the next frame and back must land where it started, or the match was spurious (occlusion, a
corner on a boundary that slid along it, texture that changed). PETS, first 30 s, detector every
1 s: person recall 0.774 at 1 px, 0.780 at 2 px, 0.776 with no check."""


@dataclass(slots=True)
class _Entry:
    box: np.ndarray
    """`x0, y0, x1, y1` in camera pixels (float)."""
    points: np.ndarray
    """Corners to follow, `(n, 2)` float32 in carry pixels; empty when none were found."""
    held_since: float | None = None
    """Stream time from which the box could not be moved and was held still."""


@dataclass(frozen=True, slots=True)
class Carried:
    """A box moved (or held) to the current frame. `key` is the caller's track id."""

    key: int
    box: tuple[float, float, float, float]
    """Camera pixels."""
    moved: bool
    """False when the box was held where it was because its corners were lost."""


class BoxCarrier:
    """Move boxes between analysed frames of one camera. Not thread-safe (one camera worker).

    The caller seeds the boxes a detector run found (`seed`), then on each later frame asks
    where they are now (`carry`). A box whose corners are lost is held still for at most
    `hold_seconds`, the tracker's own loss time, and then forgotten, so that the tracker lets it
    go as it would any object the detector stopped seeing.

    >>> rng = np.random.default_rng(0)
    >>> scene = cv2.GaussianBlur(rng.integers(0, 255, (300, 400), np.uint8), (5, 5), 0)
    >>> carrier = BoxCarrier((400, 300), hold_seconds=2.0, width=400)
    >>> carrier.seed(carrier.prepare(scene), {7: (100, 100, 160, 200)})
    >>> moved = carrier.carry(carrier.prepare(np.roll(scene, 5, axis=1)), 0.2)
    >>> [(c.key, c.moved, [round(v) for v in c.box]) for c in moved]
    [(7, True, [105, 100, 165, 200])]
    """

    def __init__(self, frame_size: tuple[int, int], hold_seconds: float, width: int = CARRY_WIDTH) -> None:
        self.width, self.height = frame_size
        self.small_w = min(width, self.width)
        self.small_h = max(round(self.height * self.small_w / self.width), 1)
        self.scale = self.small_w / self.width
        """Carry pixels per camera pixel."""
        self.hold_seconds = hold_seconds
        self._entries: dict[int, _Entry] = {}
        self._prev: np.ndarray | None = None

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The grey picture the flow runs on, from a BGR picture or a grey (Y) plane."""
        if image.shape[1] != self.width or image.shape[0] != self.height:
            raise ValueError(
                f"frame is {image.shape[1]}x{image.shape[0]}, carrier was built for {self.width}x{self.height}"
            )
        if (self.small_w, self.small_h) != (self.width, self.height):
            # Shrink first, then convert: the conversion then touches a quarter of the pixels.
            # INTER_AREA: at an exact 2:1 it is a cheap box filter, and it keeps fine texture from
            # aliasing into corners that do not exist.
            image = cv2.resize(image, (self.small_w, self.small_h), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image

    def seed(self, grey: np.ndarray, boxes: Mapping[int, tuple[float, float, float, float]]) -> None:
        """Follow exactly these boxes (camera pixels, keyed by the caller) from the frame `grey`
        (from `prepare`) on, with corners picked afresh; forget the others. Called on detector
        frames: the boxes are new measurements and end every hold."""
        self._entries = {
            key: _Entry(b, self._corners(grey, b))
            for key, b in ((k, np.asarray(box, dtype=np.float32)) for k, box in boxes.items())
        }
        self._prev = grey

    def carry(self, grey: np.ndarray, t: float) -> list[Carried]:
        """Where the seeded boxes are on the frame `grey` (from `prepare`) at stream time `t`.

        Boxes move by the median displacement of their corners that pass the forward-backward
        check. A box with too few such corners is held where it was, for `hold_seconds` at most;
        after that it is forgotten. Corners that were followed are kept for the next frame; a
        box left with too few gets new ones, picked inside its box on this frame."""
        if self._prev is None or not self._entries:
            self._prev = grey
            return []
        keys = [k for k, e in self._entries.items() if len(e.points)]
        moves: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if keys:
            p0 = np.concatenate([self._entries[k].points for k in keys]).reshape(-1, 1, 2)
            owner = np.repeat(np.arange(len(keys)), [len(self._entries[k].points) for k in keys])
            p1, st, _ = cv2.calcOpticalFlowPyrLK(self._prev, grey, p0, None, winSize=WINDOW, maxLevel=LEVELS)
            back, st_back, _ = cv2.calcOpticalFlowPyrLK(
                grey, self._prev, p1, None, winSize=WINDOW, maxLevel=LEVELS
            )
            fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
            good = (st.ravel() == 1) & (st_back.ravel() == 1) & (fb < FB_MAX)
            p0, p1 = p0.reshape(-1, 2), p1.reshape(-1, 2)
            for i, key in enumerate(keys):
                mine = good & (owner == i)
                moves[key] = (p1[mine], p1[mine] - p0[mine])
        out: list[Carried] = []
        for key, entry in list(self._entries.items()):
            found, shift = moves.get(key, (np.empty((0, 2), np.float32), None))
            moved = shift is not None and len(found) >= MIN_POINTS
            if moved:
                d = np.median(shift, axis=0) / self.scale
                entry.box = self._clip(entry.box + np.array([d[0], d[1], d[0], d[1]], np.float32))
                entry.points = self._inside(found, entry.box)
                entry.held_since = None
            else:
                if entry.held_since is None:
                    entry.held_since = t
                if t - entry.held_since > self.hold_seconds:
                    del self._entries[key]
                    continue
                entry.points = found
            if len(entry.points) < MIN_POINTS:
                entry.points = self._corners(grey, entry.box)
            out.append(Carried(key, self._tuple(entry.box), moved))
        self._prev = grey
        return out

    def _corners(self, grey: np.ndarray, box: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = (float(v) * self.scale for v in box)
        if x1 - x0 >= TRIM_WIDTH:
            w, h = x1 - x0, y1 - y0
            x0, x1, y0, y1 = x0 + TRIM_X * w, x1 - TRIM_X * w, y0 + TRIM_Y * h, y1 - TRIM_Y * h
        ix0, iy0 = max(int(x0), 0), max(int(y0), 0)
        ix1, iy1 = min(int(np.ceil(x1)), grey.shape[1]), min(int(np.ceil(y1)), grey.shape[0])
        if ix1 - ix0 < 3 or iy1 - iy0 < 3:
            return np.empty((0, 2), np.float32)
        found = cv2.goodFeaturesToTrack(grey[iy0:iy1, ix0:ix1], MAX_POINTS, QUALITY, MIN_DISTANCE)
        if found is None:
            return np.empty((0, 2), np.float32)
        return (found.reshape(-1, 2) + np.array([ix0, iy0], np.float32)).astype(np.float32)

    def _inside(self, points: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Corners that drifted out of their box (onto the background) stop counting for it."""
        x0, y0, x1, y1 = box * self.scale
        keep = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
        return points[keep].astype(np.float32)

    def _clip(self, box: np.ndarray) -> np.ndarray:
        return np.clip(box, 0, [self.width, self.height, self.width, self.height]).astype(np.float32)

    @staticmethod
    def _tuple(box: np.ndarray) -> tuple[float, float, float, float]:
        return float(box[0]), float(box[1]), float(box[2]), float(box[3])

    def forget(self) -> None:
        """Drop every box and the previous picture (the source restarted or the camera stopped)."""
        self._entries.clear()
        self._prev = None
