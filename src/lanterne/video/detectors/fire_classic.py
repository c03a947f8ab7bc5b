"""Classical flame cues on a coarse grid (experimental `fire` event).

No trained fire model with a usable licence exists for us, so this is the textbook method of
colour, brightness and flicker (Chen et al. 2004, Çelik & Demirel 2009), made cheap and
reinforced with time. Each cue is there because it removes a known false alarm, and each still
lets some through; the measured false alarms on real clips and on built hard negatives are in
`docs/events/fire.md` (`benchmarks/fire_false_alarms.py` reproduces them).

Per analysed frame, at 320 px wide:

1. colour — a flame is red-to-yellow: R ≥ G > B, with a wide R − B gap (saturation) and
   Cr > Cb in YCrCb. This removes grey, white, blue and green lights, skies and most skin.
   Alone it keeps every orange thing: signs, coats, sodium lamps, brake lights.
2. brightness — a flame emits light: luma above `Y_MIN` and above the frame's mean luma. This
   removes dark red paint, clothes in shade and brick walls; lit signs, lamps and reflections of
   the sun pass.
3. flicker — between two analysed frames a flame changes shape while staying in place: part of
   its coloured pixels appear or vanish (XOR over union of the two masks) and the brightness of
   the rest jumps. Counted only when the cell held flame colour in *both* frames, so that a light
   blinking on and off (a beacon, a turn signal: all or nothing) gives no flicker, and a static
   sign or lamp (same mask, same brightness) gives none either.
4. persistence — a fire stays where it is for seconds; a reflection sliding on a wet road, a
   car's headlights or a person in an orange coat walking only pass through a cell. Colour
   presence and flicker are averaged per cell over `TAU` seconds of real time (exponential
   average with the true time step), and the likelihood needs both.

likelihood = persistence x min(1, flicker / `FLICKER_FULL`) x min(1, colour share / `SHARE_FULL`)

The last factor is instantaneous on purpose: a flame's covered share of a cell jumps from frame to
frame, which is the cell-level flicker that `lanterne.rules.fire` checks.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

WIDTH = 320
ROWS, COLS = 18, 24

R_MIN = 220
"""Red channel floor. Flames saturate the red channel of CCTV sensors. At 170 the brick walls of
PETS09 and the sunlit parquet of the Intel room clip passed; 220 keeps them out, and keeps dim
embers and small flames far away out too (a known miss, the trade-off we chose)."""
RB_GAP = 80
"""Minimum R − B: pale skin, beige walls and white lights have little of it."""
CRCB_GAP = 20
Y_MIN = 150
"""Luma floor for an emitter, and in any case above the frame's mean luma."""

MIN_SHARE = 0.04
"""Share of a cell's pixels with flame colour for the cell to count as holding flame colour."""
SHARE_FULL = 0.08
FLICKER_FULL = 0.15
"""Per-cell flicker (0..1) that counts as a fully flickering flame. Burning flames measured on
the synthetic positive give 0.3–0.6; compression noise on a static orange sign stays below 0.05."""
DY_NOISE = 8.0
"""Luma jitter of compressed video on a static light (grey levels), ignored."""
FOREIGN_FULL = 0.15
"""Share of a cell's *non-flame* pixels changing brightness at which the cell's flicker is
ignored entirely. When something moves in front of a warm light (people passing a shop window
lit by tungsten lamps, TUD-Stadtmitte), the light's mask changes by occlusion, but the passer-by
also changes many pixels that are not flame-coloured. A flame changes its own pixels and little
around it. Limit: a fire with people running in front of it is suppressed while they pass."""
DY_FULL = 40.0
"""A mean luma jump of this many grey levels (beyond the noise) over the flame pixels counts as
full flicker."""
TAU = 1.0
"""Seconds of the per-cell averages. Longer rejects slower reflections but delays the event."""


def flame_mask(small_bgr: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """Cues 1 and 2, per pixel."""
    b, g, r = (small_bgr[..., i].astype(np.int16) for i in range(3))
    ycc = cv2.cvtColor(small_bgr, cv2.COLOR_BGR2YCrCb)
    cr, cb = ycc[..., 1].astype(np.int16), ycc[..., 2].astype(np.int16)
    colour = (r >= R_MIN) & (r >= g) & (g > b) & (r - b >= RB_GAP) & (cr - cb >= CRCB_GAP)
    bright = (luma >= Y_MIN) & (luma >= float(luma.mean()))
    return colour & bright


class FireEstimator:
    """One instance per camera; keeps the previous frame's mask and luma and the per-cell
    averages. `update` returns the rows x cols likelihood grid (float32, 0..1)."""

    def __init__(self, rows: int = ROWS, cols: int = COLS, width: int = WIDTH) -> None:
        self.rows = rows
        self.cols = cols
        self.width = width
        self._prev_mask: np.ndarray | None = None
        self._prev_luma: np.ndarray | None = None
        self._prev_t = 0.0
        self._presence = np.zeros((rows, cols), np.float32)
        self._flicker = np.zeros((rows, cols), np.float32)
        self.last_flicker = np.zeros((rows, cols), np.float32)
        """Instantaneous per-cell flicker of the last update, for diagnostics and benchmarks."""

    def _cells(self, values: np.ndarray) -> np.ndarray:
        """Mean of a per-pixel map over each cell."""
        return cv2.resize(values.astype(np.float32), (self.cols, self.rows), interpolation=cv2.INTER_AREA)

    def update(self, image_bgr: np.ndarray, t: float) -> np.ndarray:
        h, w = image_bgr.shape[:2]
        # Height rounded to a multiple of the grid so that INTER_AREA averages whole cells.
        height = max(self.rows, round(self.width * h / w / self.rows) * self.rows)
        width = self.cols * max(1, round(self.width / self.cols))
        small = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_AREA)
        luma = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        mask = flame_mask(small, luma)
        share = self._cells(mask)

        prev_mask, prev_luma, prev_t = self._prev_mask, self._prev_luma, self._prev_t
        self._prev_mask, self._prev_luma, self._prev_t = mask, luma, t
        if prev_mask is None or prev_luma is None or prev_mask.shape != mask.shape or t <= prev_t:
            flicker = np.zeros_like(share)
            dt = 0.0
        else:
            dt = t - prev_t
            union = self._cells(mask | prev_mask)
            either = mask | prev_mask
            dy = np.abs(luma.astype(np.float32) - prev_luma.astype(np.float32))
            # A pixel that hovers at a colour threshold toggles the mask on compression noise
            # alone (seen on the sunlit streaks of a parquet floor): it counts as changed only
            # if its brightness really moved too.
            xor = self._cells((mask ^ prev_mask) & (dy > DY_NOISE))
            dy_flame = dy * either
            dy_cell = self._cells(dy_flame) / np.maximum(union, 1e-6)
            prev_share = self._cells(prev_mask)
            # Both frames must hold flame colour in the cell: an on/off blink is not flicker.
            both = (share >= MIN_SHARE) & (prev_share >= MIN_SHARE)
            shape_change = xor / np.maximum(union, 1e-6)
            foreign = self._cells(~either & (dy > 2 * DY_NOISE)) / np.maximum(1.0 - union, 1e-6)
            own = np.maximum(shape_change, np.clip((dy_cell - DY_NOISE) / DY_FULL, 0.0, 1.0))
            occlusion = np.clip(1.0 - foreign / FOREIGN_FULL, 0.0, 1.0)
            flicker = np.where(both, own * occlusion, 0.0)
        self.last_flicker = flicker.astype(np.float32)

        # Exponential averages over real time: a dropped frame weighs its true duration.
        a = 1.0 - math.exp(-dt / TAU) if dt > 0 else 0.0
        self._presence += a * ((share >= MIN_SHARE).astype(np.float32) - self._presence)
        self._flicker += a * (flicker.astype(np.float32) - self._flicker)

        # A flame flickers at its edges and tips while its core stays solid: the core's cells
        # borrow the strongest flicker of their 3x3 neighbourhood.
        near = cv2.dilate(self._flicker, np.ones((3, 3), np.uint8))
        likelihood = (
            self._presence * np.minimum(near / FLICKER_FULL, 1.0) * np.minimum(share / SHARE_FULL, 1.0)
        )
        return np.clip(likelihood, 0.0, 1.0).astype(np.float32)
