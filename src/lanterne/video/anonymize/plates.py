"""Licence-plate detection for pixelation only (LPD-YuNet, opencv_zoo 2023mar).

The network takes a fixed 320x240 input, so a plate in a wide CCTV shot shrinks to a few
pixels when the whole frame is fed to it. We therefore run it on each vehicle box from the object
detector, letterboxed up to 320x240 (where a plate becomes large enough to find), plus once on the
whole frame for vehicles the object detector missed. The model was trained on Chinese plates;
European plates share the shape (a light rectangle with dark glyphs) but recall on them is not
measured (docs/anonymisation.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from lanterne.core.assets import resolve_model
from lanterne.video.detectors.base import PixelBox, session_options

INPUT_W, INPUT_H = 320, 240
_MIN_SIZES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
_STEPS = (8, 16, 32, 64)
_VARIANCE = 0.1

VEHICLE_MARGIN = 0.1
"""Vehicle boxes are widened by 10 % per side before cropping: a plate sits on the bumper,
right at the box edge, and the box may come from the previous frame."""

MAX_PLATE_WIDTH = 0.6
"""A plate is narrower than 60 % of the region searched (a vehicle is wider than its plate). Wider
hits were false positives on buildings and bonnets that would hide a fifth of the scene."""
MIN_ASPECT, MAX_ASPECT = 1.0, 8.0
"""Plates are wider than tall (EU 4.7:1, Chinese 3.1:1, square US/moto plates ~2:1), less so
seen at an angle; a tall box is not a plate."""


@functools.cache
def _priors() -> np.ndarray:
    """The 4385 SSD priors (cx, cy, w, h as input fractions), built once per process: the
    pure-Python loop of the reference implementation cost more than the network itself."""
    # Feature-map sizes follow the reference implementation's integer halvings of the input.
    fh, fw = ((INPUT_H + 1) // 2) // 2, ((INPUT_W + 1) // 2) // 2
    out = []
    for k, step in enumerate(_STEPS):
        fh, fw = fh // 2, fw // 2
        ii, jj = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = ((jj + 0.5) * step / INPUT_W).reshape(-1, 1)
        cy = ((ii + 0.5) * step / INPUT_H).reshape(-1, 1)
        sizes = np.asarray(_MIN_SIZES[k], dtype=np.float64)
        n = cx.shape[0]
        # Order: cell-major, then min size, as in the reference `product(range(fh), range(fw))`.
        block = np.stack(
            [
                np.repeat(cx, len(sizes), axis=1),
                np.repeat(cy, len(sizes), axis=1),
                np.broadcast_to(sizes / INPUT_W, (n, len(sizes))),
                np.broadcast_to(sizes / INPUT_H, (n, len(sizes))),
            ],
            axis=-1,
        ).reshape(-1, 4)
        out.append(block)
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True, slots=True)
class _PlateSettings:
    score: float = 0.7
    """The zoo's demo uses 0.9 on close-ups; at CCTV distance scores are lower, and a false
    positive only costs a pixelated patch."""
    nms: float = 0.3
    threads: int = 1


class _PlateDetector:
    def __init__(self, models_dir: Path | None, settings: _PlateSettings = _PlateSettings()) -> None:
        self._settings = settings
        opts = session_options(settings.threads)
        self._session = ort.InferenceSession(
            str(resolve_model("lpd_yunet", models_dir)), opts, providers=["CPUExecutionProvider"]
        )
        self._priors = _priors()

    def _run(self, canvas: np.ndarray) -> np.ndarray:
        """Plate quadrilaterals' bounding boxes (x0, y0, x1, y1, score) in 320x240 input pixels."""
        blob = canvas.transpose(2, 0, 1)[np.newaxis].astype(np.float32)
        loc, conf, iou = self._session.run(None, {"input": blob})
        scores = np.sqrt(conf[:, 1] * np.clip(iou[:, 0], 0.0, 1.0))
        keep = scores >= self._settings.score
        if not keep.any():
            return np.zeros((0, 5), dtype=np.float32)
        loc, scores, priors = loc[keep], scores[keep], self._priors[keep]
        scale = np.array([INPUT_W, INPUT_H], dtype=np.float32)
        corners = np.stack(
            [
                (priors[:, 0:2] + loc[:, c : c + 2] * _VARIANCE * priors[:, 2:4]) * scale
                for c in (4, 6, 10, 12)
            ],
            axis=1,
        )
        lo, hi = corners.min(axis=1), corners.max(axis=1)
        xywh = np.concatenate([lo, hi - lo], axis=1)
        idx = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self._settings.score, self._settings.nms)
        idx = np.asarray(idx, dtype=int).reshape(-1)
        return np.concatenate([lo[idx], hi[idx], scores[idx, None]], axis=1)

    def _detect_in(self, image: np.ndarray, region: PixelBox) -> list[PixelBox]:
        """Letterbox `region` of `image` into the network input (upscaling small vehicles) and
        map plates back to full-frame pixels."""
        x0, y0, x1, y1 = region
        crop = image[y0:y1, x0:x1]
        ch, cw = crop.shape[:2]
        if ch < 4 or cw < 4:
            return []
        s = min(INPUT_W / cw, INPUT_H / ch)
        nw, nh = max(1, round(cw * s)), max(1, round(ch * s))
        canvas = np.zeros((INPUT_H, INPUT_W, 3), dtype=np.uint8)
        canvas[:nh, :nw] = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_LINEAR)
        boxes: list[PixelBox] = []
        for bx0, by0, bx1, by1, _ in self._run(canvas):
            # Corners are extrapolated from priors and can overshoot the crop; clip them to
            # the pixels that came from the image (not the letterbox padding).
            bx0, bx1 = max(0.0, bx0), min(float(nw), bx1)
            by0, by1 = max(0.0, by0), min(float(nh), by1)
            bw, bh = bx1 - bx0, by1 - by0
            if bw < 2 or bh < 1 or bw > MAX_PLATE_WIDTH * nw or not MIN_ASPECT <= bw / bh <= MAX_ASPECT:
                continue
            boxes.append(
                (
                    x0 + int(np.floor(bx0 / s)),
                    y0 + int(np.floor(by0 / s)),
                    x0 + int(np.ceil(bx1 / s)),
                    y0 + int(np.ceil(by1 / s)),
                )
            )
        return boxes

    def _boxes(self, image: np.ndarray, vehicle_boxes: Sequence[PixelBox] = ()) -> list[PixelBox]:
        h, w = image.shape[:2]
        boxes = self._detect_in(image, (0, 0, w, h))
        for vehicle in vehicle_boxes:
            boxes += self._detect_in(image, vehicle_region(vehicle, (w, h)))
        return boxes


def vehicle_region(vehicle: PixelBox, size: tuple[int, int]) -> PixelBox:
    """The part of the frame searched for a vehicle's plate: its box widened by VEHICLE_MARGIN."""
    w, h = size
    vx0, vy0, vx1, vy1 = vehicle
    mx, my = (vx1 - vx0) * VEHICLE_MARGIN, (vy1 - vy0) * VEHICLE_MARGIN
    return (
        max(0, int(vx0 - mx)),
        max(0, int(vy0 - my)),
        min(w, int(np.ceil(vx1 + mx))),
        min(h, int(np.ceil(vy1 + my))),
    )
