"""Aggregate optical flow on a coarse grid, for the `crowd_movement` rule.

The crowd is treated as a fluid: we measure how the picture moves cell by cell and never look
for, count or follow a person. A cell of the grid is several people wide at typical CCTV
distances, so the output cannot describe an individual's path.

Example:

    >>> import numpy as np
    >>> est = FlowEstimator()
    >>> img = np.zeros((240, 320, 3), np.uint8)
    >>> est.update(img, 0.0) is None  # the first frame has nothing to compare with
    True
    >>> est.update(img, 0.2).moving.any()
    np.False_
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from lanterne.core.types import MotionField

WIDTH = 160
"""Analysis width in pixels. Farneback costs about 1 ms per analysed frame at 160x120 on one core,
and a crowd rush moves whole regions of the picture, so finer detail buys nothing."""

ROWS, COLS = 12, 16

NOISE_PX = 0.4
"""Per-pixel displacement (analysis pixels between two analysed frames) below which a pixel is
taken as still. Compression noise and sensor grain give Farneback flows of 0.1–0.3 px on static
walls; a walking person at 5 fps gives 1–3 px."""

DIS_NOISE_PX = 0.8
"""The same threshold for DIS flow. DIS (ultrafast preset) spreads a moving edge's flow over its
8-px patches: on vtest.avi at 5 fps, pixels Farneback reads as still (< 0.2 px) read up to 0.71 px
(95th percentile) next to walkers. At 0.8 the moving share of the frame is Farneback's (0.202 vs
0.204) and the crowd_movement tests on PETS09 raise the same events; at 0.4 DIS saw half as much
again moving and a 4x-accelerated crowd was caught 5 s late."""

FlowMethod = Literal["farneback", "dis"]

MIN_MOVING_PIXELS = 0.15
"""Share of a cell's pixels that must move for the cell to count as moving. Below that the cell
holds only a limb or noise."""


class FlowEstimator:
    """Keeps the previous small grey frame and its timestamp; one instance per camera.

    The speed is divided by the real time between the two frames (`t` in seconds), never by a
    frame count: RTSP drops frames and the analysis rate varies, and a rush must read as the
    same speed either way.

    `method` is the configuration's `motion.flow`. Farneback stays the default until the
    end-to-end benchmark has re-validated crowd_movement with DIS; DIS computes the flow 13-20
    times cheaper, and the resize to 160 px then dominates (1.3 ms a frame instead of 2.9 ms,
    benchmarks/per_frame_costs.py).
    """

    def __init__(
        self, rows: int = ROWS, cols: int = COLS, width: int = WIDTH, method: FlowMethod = "farneback"
    ) -> None:
        self.rows = rows
        self.cols = cols
        self.width = width
        self.method = method
        # One DIS instance per camera: it keeps buffers sized for the frame between calls.
        self._dis = (
            cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) if method == "dis" else None
        )
        self._noise_px = DIS_NOISE_PX if method == "dis" else NOISE_PX
        self._prev: np.ndarray | None = None
        self._prev_t = 0.0

    def reset(self) -> None:
        self._prev = None

    def update(self, image: np.ndarray, t: float) -> MotionField | None:
        """Motion since the previous call, or None for the first frame or when time did not
        advance (a duplicated timestamp would make the speed infinite). A 2-D image is taken as
        the grey picture already (the Y plane of a yuv420p decode): the BGR conversion and a
        three-channel resize are then not paid."""
        h, w = image.shape[:2]
        height = max(self.rows, round(self.width * h / w))
        small = cv2.resize(image, (self.width, height), interpolation=cv2.INTER_AREA)
        grey = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        prev, prev_t = self._prev, self._prev_t
        if prev is not None and t <= prev_t:
            return None
        self._prev, self._prev_t = grey, t
        if prev is None or prev.shape != grey.shape:
            return None
        dt = t - prev_t
        return self._grid(self.dense(prev, grey), dt)

    def dense(self, prev: np.ndarray, grey: np.ndarray) -> np.ndarray:
        """Per-pixel displacement (h x w x 2, analysis pixels) between two small grey frames."""
        if self._dis is not None:
            return self._dis.calc(prev, grey, None)
        # Cheap parameters: 3 pyramid levels cover the larger displacements of a run at low
        # analysis rates; a 15 px window smooths the noise of small compressed frames.
        return cv2.calcOpticalFlowFarneback(prev, grey, None, 0.5, 3, 15, 2, 5, 1.1, 0)

    def _grid(self, flow: np.ndarray, dt: float) -> MotionField:
        h, w = flow.shape[:2]
        mag = np.hypot(flow[..., 0], flow[..., 1])
        on = mag > self._noise_px
        # Cell edges by integer division so every pixel belongs to exactly one cell whatever
        # the frame size.
        ry = (np.arange(h) * self.rows) // h
        cx = (np.arange(w) * self.cols) // w
        cell = (ry[:, None] * self.cols + cx[None, :]).ravel()
        n = self.rows * self.cols
        count = np.bincount(cell, minlength=n).astype(np.float32)
        on_f = on.ravel().astype(np.float32)
        moving_count = np.bincount(cell, weights=on_f, minlength=n)
        # The speed of a cell is that of its moving pixels only: a person filling a third of a
        # cell moves at their own speed, not at a third of it.
        sx = np.bincount(cell, weights=flow[..., 0].ravel() * on_f, minlength=n)
        sy = np.bincount(cell, weights=flow[..., 1].ravel() * on_f, minlength=n)
        denom = np.maximum(moving_count, 1.0)
        out = np.zeros((n, 2), np.float32)
        out[:, 0] = sx / denom / w / dt
        out[:, 1] = sy / denom / h / dt
        moving = moving_count / np.maximum(count, 1.0) >= MIN_MOVING_PIXELS
        out[~moving] = 0.0
        return MotionField(
            flow=out.reshape(self.rows, self.cols, 2), moving=moving.reshape(self.rows, self.cols)
        )
