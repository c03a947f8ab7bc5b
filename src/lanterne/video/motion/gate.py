"""Motion gating: decide, for each analysed frame, whether and where the detector runs.

The detector is the dearest step of the pipeline (about 10-20 ms per call on one core); a
grey 180-px difference against a running background costs well under a millisecond. So, as in
Frigate, a static scene runs the detector only every `refresh_seconds`, and a scene with a few
movers runs it only on crops around them, which the detector zooms to its input size (small,
distant people get more network pixels than on the full frame).

What the gate cannot do: in a crowded plaza motion is everywhere, and it falls back to full
frames (no saving); and an object that stops becomes background after a few seconds, which is
why the caller passes the tracker's current boxes as `keep`.

Motion masks (`cameras[].motion_masks`, Frigate's name for the same thing) are parts of the
picture whose changes are not motion: a clock burned into the picture changes every frame, and
without a mask it alone keeps the detector running on every frame of an empty street (measured on
the clock camera of `benchmarks/live_wall.py`, `benchmarks/per_frame_costs.py --clock`). Masked
pixels are dropped from the change mask only; the detector still sees them whenever it runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lanterne.config.schema import MotionSettings
from lanterne.core.masks import pixel_polygons
from lanterne.video.detectors.base import PixelBox

MOTION_WIDTH = 180
"""Width of the grey picture compared. Frigate works at a similar size: enough for a person of
a few pixels, and noise-averaging for free."""
BACKGROUND_SECONDS = 5.0
"""Time constant of the running background. Longer keeps a stopped object visible as motion
for longer but leaves the ghost of a departed one for longer too; `keep` boxes cover the first
case, so we choose a short memory (Frigate's 0.01 per frame at 5 fps is 20 s)."""
RECALIBRATE_SHARE = 0.8
"""More changed than this is a lighting switch, an IR mode change or a camera knock, not
movers: the background is reset to the current picture and the frame runs full."""
MAX_COVERAGE = 0.5
"""Regions covering more of the frame than this gain no zoom worth their extra calls."""
MIN_REGION = 160
"""Smallest crop side in full-frame pixels: the detector letterboxes each crop to 416, and a
tinier crop would be magnified into a blur with no context around the object."""
PAD_SHARE = 0.2
"""Each box grows by this share of its size on every side: motion boxes cover only the
changed part of a mover, and a tracked box lags a moving object by one frame."""
PAD_PIXELS = 8
MASK_GROWTH = 2
"""Pixels of the grey picture (about 1% of its width) a motion mask is grown by on every side:
the 5x5 blur spreads a changing clock's edge 2 pixels beyond it, and the compression's ringing
around sharp blocks does the same; a mask drawn tight around the clock would leak that fringe as
motion on every frame."""


@dataclass(frozen=True, slots=True)
class MotionResult:
    """The gate's decision for one frame.

    `run_detector=False`: reuse nothing, detect nothing. `full_frame=True`: detect on the whole
    picture (`regions` is then empty). Otherwise detect only inside `regions` (full-frame
    pixels, disjoint)."""

    changed_share: float
    """Share of the (downscaled) picture outside the motion masks that differs from the
    background; 0 when the gate is disabled and nothing was measured."""
    regions: tuple[PixelBox, ...]
    run_detector: bool
    full_frame: bool


def _union(a: PixelBox, b: PixelBox) -> PixelBox:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _touch(a: PixelBox, b: PixelBox) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def merge_boxes(boxes: Sequence[PixelBox]) -> list[PixelBox]:
    """Union overlapping or touching boxes until none overlap (the result is disjoint), so that
    one object is never split across two crops by the gate itself.

    >>> merge_boxes([(0, 0, 10, 10), (5, 5, 20, 20), (50, 50, 60, 60)])
    [(0, 0, 20, 20), (50, 50, 60, 60)]
    """
    out = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                if _touch(out[i], out[j]):
                    out[i] = _union(out[i], out[j])
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out


class MotionGate:
    """One per camera; keeps the running background. Not thread-safe (one camera worker).

    >>> from lanterne.config.schema import MotionSettings
    >>> gate = MotionGate(MotionSettings(), (640, 480))
    >>> still = np.full((480, 640, 3), 90, np.uint8)
    >>> [gate.update(still, t).run_detector for t in (0.0, 1.0, 2.0, 5.0)]
    [True, False, False, True]

    A clock in the top-left corner wakes the detector on every frame, unless it is masked:

    >>> def ticking(t):
    ...     frame = still.copy()
    ...     frame[20:60, 20:200] = 40 + 50 * round(t * 10)  # a new time, new digits
    ...     return frame
    >>> gate = MotionGate(MotionSettings(), (640, 480))
    >>> [gate.update(ticking(t), t).run_detector for t in (0.0, 0.1, 0.2, 0.3)]
    [True, True, True, True]
    >>> clock = [[(0.02, 0.03), (0.33, 0.03), (0.33, 0.14), (0.02, 0.14)]]
    >>> gate = MotionGate(MotionSettings(), (640, 480), ignore=clock)
    >>> [gate.update(ticking(t), t).run_detector for t in (0.0, 0.1, 0.2, 0.3)]
    [True, False, False, False]
    """

    def __init__(
        self,
        settings: MotionSettings,
        frame_size: tuple[int, int],
        ignore: Sequence[Sequence[tuple[float, float]]] = (),
    ) -> None:
        """`ignore`: the camera's motion masks, polygons in frame fractions."""
        self.settings = settings
        self.width, self.height = frame_size
        self.small_w = min(MOTION_WIDTH, self.width)
        self.small_h = max(round(self.height * self.small_w / self.width), 1)
        self._sx = self.width / self.small_w
        self._sy = self.height / self.small_h
        self._kernel = np.ones((3, 3), np.uint8)
        self._min_contour = max(settings.min_area * self.small_w * self.small_h, 2.0)
        self._watched: np.ndarray | None = None
        """255 where a change counts, 0 under a motion mask (None: no mask, nothing to clear)."""
        self._watched_pixels = self.small_w * self.small_h
        if ignore:
            masked = np.zeros((self.small_h, self.small_w), np.uint8)
            polygons = list(pixel_polygons(ignore, (self.small_w, self.small_h)))
            cv2.fillPoly(masked, polygons, 255)
            cv2.polylines(masked, polygons, True, 255, 1)
            grow = 2 * MASK_GROWTH + 1
            masked = cv2.dilate(masked, np.ones((grow, grow), np.uint8))
            self._watched = cv2.bitwise_not(masked)
            self._watched_pixels = cv2.countNonZero(self._watched)
        self._background: np.ndarray | None = None
        self._last_t: float | None = None
        self._last_full: float = -math.inf

    def _grey(self, image: np.ndarray) -> np.ndarray:
        if image.shape[1] != self.width or image.shape[0] != self.height:
            raise ValueError(
                f"frame is {image.shape[1]}x{image.shape[0]}, gate was built for {self.width}x{self.height}"
            )
        # Shrink first, then convert: the colour conversion then touches 1/20 of the pixels.
        # INTER_LINEAR as in Frigate: INTER_AREA would average out more noise but costs ~1.6 ms
        # at 768 -> 180 (30x more); the Gaussian blur below does most of that smoothing anyway.
        small = cv2.resize(image, (self.small_w, self.small_h), interpolation=cv2.INTER_LINEAR)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def _full(self, t: float, share: float) -> MotionResult:
        self._last_full = t
        return MotionResult(share, (), True, True)

    def update(self, image: np.ndarray, t: float, keep: Sequence[PixelBox] = ()) -> MotionResult:
        """Decide for the frame at `t` seconds. `keep`: boxes the tracker currently follows, in
        full-frame pixels, so that objects that stopped moving stay examined."""
        if not self.settings.enabled:
            return self._full(t, 0.0)
        grey = self._grey(image)
        if self._last_t is not None and t < self._last_t:
            # Time went backwards: the source restarted (a file looped, an RTSP reconnect that
            # reset its clock). Start over rather than wait for the old clock to be caught up.
            self._background = None
        dt = 0.0 if self._last_t is None else t - self._last_t
        self._last_t = t
        if self._background is None:
            self._background = grey.astype(np.float32)
            return self._full(t, 0.0)

        diff = cv2.absdiff(grey, cv2.convertScaleAbs(self._background))
        _, mask = cv2.threshold(diff, self.settings.threshold, 255, cv2.THRESH_BINARY)
        if self._watched is not None:
            cv2.bitwise_and(mask, self._watched, dst=mask)
        # A share of what is watched: with half the view masked, a lighting switch still changes
        # more than RECALIBRATE_SHARE of it. Everything masked: nothing is ever motion.
        share = cv2.countNonZero(mask) / self._watched_pixels if self._watched_pixels else 0.0
        if share > RECALIBRATE_SHARE:
            self._background = grey.astype(np.float32)
            return self._full(t, share)
        # Time-based learning rate: the same background memory whatever the analysis rate.
        alpha = 1.0 - math.exp(-dt / BACKGROUND_SECONDS)
        if alpha > 0:
            cv2.accumulateWeighted(grey, self._background, alpha)

        if t - self._last_full >= self.settings.refresh_seconds:
            return self._full(t, share)

        boxes: list[PixelBox] = []
        if share >= self.settings.min_area and share > 0:
            mask = cv2.dilate(mask, self._kernel, iterations=2)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for c in contours:
                if cv2.contourArea(c) < self._min_contour:
                    continue
                x, y, w, h = cv2.boundingRect(c)
                boxes.append(
                    (
                        math.floor(x * self._sx),
                        math.floor(y * self._sy),
                        math.ceil((x + w) * self._sx),
                        math.ceil((y + h) * self._sy),
                    )
                )
        if not boxes and not keep:
            return MotionResult(share, (), False, False)

        regions = self._regions([*boxes, *keep])
        # Coverage of the square crops the detector will examine, not of the regions: a wide
        # strip of walkers becomes a near-full-frame square with no zoom left to gain.
        covered = sum(self._square_area(r) for r in regions) / (self.width * self.height)
        if len(regions) > self.settings.max_regions or covered > MAX_COVERAGE:
            return self._full(t, share)
        return MotionResult(share, tuple(regions), True, False)

    def _regions(self, boxes: Sequence[PixelBox]) -> list[PixelBox]:
        padded = [self._grow(b) for b in boxes]
        regions = merge_boxes(padded)
        # Growing to the minimum size can make neighbours overlap again: merge once more.
        return merge_boxes([self._at_least(r) for r in regions])

    def _square_area(self, box: PixelBox) -> int:
        side = max(box[2] - box[0], box[3] - box[1])
        return min(side, self.width) * min(side, self.height)

    def _grow(self, box: PixelBox) -> PixelBox:
        x0, y0, x1, y1 = box
        px = round((x1 - x0) * PAD_SHARE) + PAD_PIXELS
        py = round((y1 - y0) * PAD_SHARE) + PAD_PIXELS
        return (
            max(int(x0) - px, 0),
            max(int(y0) - py, 0),
            min(int(x1) + px, self.width),
            min(int(y1) + py, self.height),
        )

    def _at_least(self, box: PixelBox) -> PixelBox:
        x0, y0, x1, y1 = box
        out: list[int] = []
        for lo, hi, limit in ((x0, x1, self.width), (y0, y1, self.height)):
            side = min(max(hi - lo, MIN_REGION), limit)
            start = min(max(round((lo + hi - side) / 2), 0), limit - side)
            out += [start, start + side]
        return out[0], out[2], out[1], out[3]
