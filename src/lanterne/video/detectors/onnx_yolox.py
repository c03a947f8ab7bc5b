"""YOLOX-Nano on onnxruntime (CPU): the default detector backend.

The published file has a static 416x416 input, so a small or distant person is only a few
network pixels tall on a full 768-px frame. With `regions` (motion gating) each moving area is
cropped and letterboxed to the network size instead, which zooms into it the way Frigate does; the
boxes are mapped back to full-frame pixels and de-duplicated across crops.

`detector.input_size: 320` runs the same graph from `yolox_nano_dynamic` (open input dims): 1.6
times cheaper per call on a 2-core AVX2 CPU, person recall 0.90 instead of 0.91 and precision
0.87 instead of 0.78 on PETS09 at 5 fps (benchmarks/per_frame_costs.py). The output then has 2100
anchors instead of 3549; the grid is built for the input's shape.

`detector.input_shape: frame` runs the `yolox_nano_dynamic` file at either size on an input cut
to the frame's aspect: the long side at the configured size, the short side padded only up to
the next multiple of 32 (the largest stride), at the scale of the square letterbox, so the same
pixels reach the network without the padding rows: a 640x360 frame runs at 416x256 instead of
416x416. Per call on one thread (benchmarks/per_frame_costs.py, loaded 2-core machine, ratios
against the 416 square): 1.57 times cheaper on a 640x360 frame at 416, 2.56 times at 320; on
PETS09's 768x576 (416x320 instead of 416x416) 1.29 and 1.96 times. Person recall/precision on
PETS09: 0.909/0.777 against 0.910/0.778 at 416, 0.901/0.883 against
0.902/0.874 at 320. A motion-gated crop is then the region itself, not a square around it
(`clipped`): the same scale, without the context the square adds on the region's short side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv

from lanterne.config.schema import DetectorSettings
from lanterne.core.assets import MODELS, detector_file, resolve_model
from lanterne.core.errors import ModelError
from lanterne.core.params import COCO_CLASSES
from lanterne.video.detectors.base import PixelBox, register, session_options

NMS_IOU = 0.45
"""Per-class NMS overlap, as in YOLOX's own demo."""
CROSS_REGION_CONTAINMENT = 0.7
"""Across crops, a box lying this much inside another box of the same class is the same object
seen cut by a crop edge; plain IoU misses it because the cut box is much smaller."""
EDGE_MARGIN = 2.0
"""Pixels from an inner crop edge within which a box counts as cut by that edge."""
PAD_VALUE = 114
STRIDES = (8, 16, 32)


@dataclass(frozen=True, slots=True)
class _Raw:
    """Detections before the final packaging, in full-frame pixels."""

    xyxy: np.ndarray
    """float32, n x 4."""
    score: np.ndarray
    """float32, n."""
    class_id: np.ndarray
    """int64, n."""
    cut: np.ndarray
    """bool, n: touches an inner crop edge (the object may continue outside the crop)."""
    crop: np.ndarray
    """int64, n: index of the crop the box came from (0 for a full frame)."""


def _grids(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Anchor-free grid offsets in the model's output order: stride 8 first, then row-major, y
    then x (the head flattens its h x w maps), so a non-square input has h // s rows of w // s.

    >>> grid, stride = _grids(64, 96)
    >>> len(grid) == 8 * 12 + 4 * 6 + 2 * 3
    True
    >>> grid[:2].tolist(), grid[12].tolist(), stride[-1].tolist()
    ([[0.0, 0.0], [1.0, 0.0]], [0.0, 1.0], [32.0])
    """
    grids, strides = [], []
    for s in STRIDES:
        rows, cols = h // s, w // s
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        grids.append(np.stack((xs.ravel(), ys.ravel()), axis=1))
        strides.append(np.full((rows * cols, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def input_shape(h: int, w: int, size: int, shape: str) -> tuple[int, int]:
    """The network input (height, width) for an h x w image. Both shapes scale the image alike,
    its long side to `size`; `square` pads it to size x size, `frame` only up to the next
    multiple of the largest stride, which the network needs to divide its input.

    >>> input_shape(360, 640, 416, "square"), input_shape(360, 640, 416, "frame")
    ((416, 416), (256, 416))
    >>> input_shape(576, 768, 320, "frame"), input_shape(300, 300, 320, "frame")
    ((256, 320), (320, 320))
    """
    if shape == "square":
        return size, size
    r = min(size / h, size / w)
    step = STRIDES[-1]
    return tuple(-(-max(round(n * r), 1) // step) * step for n in (h, w))  # type: ignore[return-value]


def nms(xyxy: np.ndarray, order: np.ndarray, iou: float, containment: float | None = None) -> np.ndarray:
    """Greedy suppression in the given priority order; returns the kept indices. With
    `containment`, a box whose intersection covers that share of the smaller box is suppressed too."""
    x0, y0, x1, y1 = xyxy.T
    area = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
    keep: list[int] = []
    order = order.copy()
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0)
        h = np.maximum(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0)
        inter = w * h
        overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-6)
        drop = overlap > iou
        if containment is not None:
            drop |= inter / np.maximum(np.minimum(area[i], area[rest]), 1e-6) > containment
        order = rest[~drop]
    return np.asarray(keep, dtype=np.int64)


def square_crop(region: PixelBox, frame_w: int, frame_h: int) -> PixelBox:
    """The crop examined for a region: a square around it (the network input is square, so a
    square crop wastes no pixels on padding), shifted inside the frame, clipped where the frame
    is smaller than the square."""
    x0, y0, x1, y1 = region
    side = max(x1 - x0, y1 - y0, 1)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    out = []
    for c, limit in ((cx, frame_w), (cy, frame_h)):
        lo = round(c - side / 2)
        lo = min(max(lo, 0), max(limit - side, 0))
        out.append((lo, min(lo + side, limit)))
    (ax0, ax1), (ay0, ay1) = out
    return ax0, ay0, ax1, ay1


def clipped(region: PixelBox, frame_w: int, frame_h: int) -> PixelBox:
    """The crop examined for a region when the input follows the image's shape: the region
    itself, inside the frame. Squaring it would only add context rows that the network pays
    for and the region does not need (the motion gate already pads each region): a walker's
    tall region at the same scale costs a third of its square, a sweeping bar's a fifth.

    >>> clipped((-3.2, 10.6, 50.1, 700.0), 640, 360)
    (0, 10, 51, 360)
    """
    x0, y0, x1, y1 = region
    return (
        max(math.floor(x0), 0),
        max(math.floor(y0), 0),
        min(math.ceil(x1), frame_w),
        min(math.ceil(y1), frame_h),
    )


@register("onnxruntime")
class YoloxOnnxDetector:
    """YOLOX-Nano, official COCO export, decoded here (no third-party post-processing code).

    >>> from lanterne.config.schema import DetectorSettings
    >>> det = YoloxOnnxDetector(DetectorSettings(), None)
    >>> det.detect(np.zeros((480, 640, 3), np.uint8)).xyxy.shape
    (0, 4)
    """

    def __init__(self, settings: DetectorSettings, models_dir: Path | None = None) -> None:
        # The name and sha256 of the file actually loaded (GV-05): at 320 that is the derived
        # file, whose bytes differ from the published one.
        self.model_name = detector_file(settings.model, settings.input_size, settings.input_shape)
        self.model_sha256 = MODELS[self.model_name].sha256
        path = resolve_model(self.model_name, models_dir)
        opts = session_options(settings.threads)
        # The model is loaded once per camera worker; errors from onnxruntime are long C++
        # traces, so a file that passed the checksum but still fails to load (a registry entry
        # pointing at the wrong file) is reported on one line naming the file.
        try:
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"{path}: onnxruntime cannot load this model ({first[:160]}); "
                f"delete the file so that a checked copy of {self.model_name} is fetched again"
            ) from None
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self.size = settings.input_size
        self.shape = settings.input_shape
        # A symbolic dim (a str, or None) accepts any size; a fixed one must be the configured size.
        expected = [1, 3, self.size, self.size]
        shape = list(inp.shape)
        if len(shape) != 4 or any(
            isinstance(d, int) and d != e for d, e in zip(shape, expected, strict=True)
        ):
            raise ModelError(
                f"{path}: input shape {inp.shape} does not match input_size {self.size}; "
                f"set detector.input_size to the model's size"
            )
        if self.shape == "frame" and any(isinstance(d, int) for d in shape[2:]):
            raise ModelError(
                f"{path}: input shape {inp.shape} is fixed, but input_shape frame needs open height "
                f"and width; set detector.input_shape: square"
            )
        # Anchor grids per input shape, made once and only read after: the frame's, the square
        # crops' or (frame shape) the crops' own, at most 2 * size / 32 of them.
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        thresholds = np.full(len(COCO_CLASSES), settings.default_threshold, dtype=np.float32)
        for name, value in settings.class_thresholds.items():
            thresholds[COCO_CLASSES.index(name)] = value
        self._thresholds = thresholds
        self._names = np.asarray(COCO_CLASSES)

    # -- one network pass -------------------------------------------------------------------

    def _grid(self, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        found = self._grids.get(key)
        if found is None:
            found = self._grids[key] = _grids(*key)
        return found

    def _infer(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes (pixels of `image`), scores and class ids above the class thresholds, after
        per-class NMS."""
        h, w = image.shape[:2]
        r = min(self.size / h, self.size / w)
        nh, nw = max(round(h * r), 1), max(round(w * r), 1)
        ih, iw = input_shape(h, w, self.size, self.shape)
        grid, strides = self._grid((ih, iw))
        # The network's input is made anew each call, straight in its own layout: one process's
        # camera threads share this detector, and cv2 and numpy release the GIL while they fill
        # it, so a buffer kept between calls could hand one camera's call another's picture.
        blob = np.full((1, 3, ih, iw), PAD_VALUE, np.float32)
        # INTER_LINEAR, not INTER_AREA: at 768 -> 416 AREA costs ~2 ms (a seventh of the network)
        # and changed no measured recall; the accuracy figures in the research notes used LINEAR.
        blob[0, :, :nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
        out = self._session.run(None, {self._input_name: blob})[0][0]
        if out.shape != (len(grid), 85):
            # A model with other strides or classes would be decoded against the wrong anchors
            # and give boxes anywhere: refuse rather than signal on garbage.
            raise ModelError(
                f"{self.model_name}: output shape {out.shape} at input {ih}x{iw} "
                f"does not match the YOLOX grid ({len(grid)} anchors x 85)"
            )

        # Multi-label: every (anchor, class) pair above its own threshold is a candidate, so a
        # bag overlapping a person (second-best class of the anchor) survives its low threshold.
        scores = out[:, 4:5] * out[:, 5:]
        anchor, cls = np.nonzero(scores >= self._thresholds)
        if anchor.size == 0:
            empty = np.zeros((0, 4), np.float32)
            return empty, np.zeros(0, np.float32), np.zeros(0, np.int64)
        sel = out[anchor]
        stride = strides[anchor]
        cxcy = (sel[:, :2] + grid[anchor]) * stride
        wh = np.exp(sel[:, 2:4]) * stride
        xyxy = np.concatenate((cxcy - wh / 2, cxcy + wh / 2), axis=1) / r
        xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, w)
        xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, h)
        score = scores[anchor, cls]
        # Per-class NMS in one pass: offsetting each class far apart keeps classes from
        # suppressing each other (a handbag inside a person box must survive).
        offset = cls[:, None].astype(np.float32) * (4 * max(w, h))
        keep = nms(xyxy + offset, np.argsort(-score, kind="stable"), NMS_IOU)
        return xyxy[keep].astype(np.float32), score[keep].astype(np.float32), cls[keep].astype(np.int64)

    # -- public -----------------------------------------------------------------------------

    def detect(self, image: np.ndarray, regions: Sequence[PixelBox] | None = None) -> sv.Detections:
        """Detect on the full frame, or only inside `regions` (full-frame pixel boxes)."""
        fh, fw = image.shape[:2]
        if regions is None:
            xyxy, score, cls = self._infer(image)
            raw = _Raw(xyxy, score, cls, np.zeros(len(score), bool), np.zeros(len(score), np.int64))
        else:
            raw = self._detect_regions(image, regions, fw, fh)
        return sv.Detections(
            xyxy=raw.xyxy.reshape(-1, 4).astype(np.float32),
            confidence=raw.score.astype(np.float32),
            class_id=raw.class_id.astype(int),
            data={"class_name": self._names[raw.class_id] if len(raw.class_id) else np.array([], dtype=str)},
        )

    def _detect_regions(self, image: np.ndarray, regions: Sequence[PixelBox], fw: int, fh: int) -> _Raw:
        parts: list[_Raw] = []
        for k, region in enumerate(regions):
            cx0, cy0, cx1, cy1 = (
                square_crop(region, fw, fh) if self.shape == "square" else clipped(region, fw, fh)
            )
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:
                continue
            xyxy, score, cls = self._infer(image[cy0:cy1, cx0:cx1])
            # A box touching a crop side that is not also a frame side may be a cut object.
            cut = np.zeros(len(score), bool)
            if cx0 > 0:
                cut |= xyxy[:, 0] <= EDGE_MARGIN
            if cy0 > 0:
                cut |= xyxy[:, 1] <= EDGE_MARGIN
            if cx1 < fw:
                cut |= xyxy[:, 2] >= cx1 - cx0 - EDGE_MARGIN
            if cy1 < fh:
                cut |= xyxy[:, 3] >= cy1 - cy0 - EDGE_MARGIN
            xyxy = xyxy + np.array([cx0, cy0, cx0, cy0], np.float32)
            parts.append(_Raw(xyxy, score, cls, cut, np.full(len(score), k, np.int64)))
        if not parts:
            return _Raw(
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32),
                np.zeros(0, np.int64),
                np.zeros(0, bool),
                np.zeros(0, np.int64),
            )
        raw = _Raw(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Raw.__slots__))
        if len(parts) == 1 or len(raw.score) == 0:
            return raw
        return self._merge_across_crops(raw)

    @staticmethod
    def _merge_across_crops(raw: _Raw) -> _Raw:
        """One object seen in two overlapping crops gives two boxes. Each crop already ran NMS,
        so only pairs from different crops are compared. An uncut box wins over a cut one, and
        among equals the bigger box wins: a cut object's box is the smaller part of it."""
        keep_all: list[np.ndarray] = []
        x0, y0, x1, y1 = raw.xyxy.T
        area = (x1 - x0) * (y1 - y0)
        for c in np.unique(raw.class_id):
            idx = np.nonzero(raw.class_id == c)[0]
            order = idx[np.lexsort((-area[idx], raw.cut[idx]))]
            kept: list[int] = []
            remaining = list(order)
            while remaining:
                i = remaining.pop(0)
                kept.append(i)
                survivors = []
                for j in remaining:
                    if raw.crop[j] == raw.crop[i]:
                        survivors.append(j)
                        continue
                    pair = raw.xyxy[[i, j]]
                    if nms(pair, np.array([0, 1]), NMS_IOU, CROSS_REGION_CONTAINMENT).size == 2:
                        survivors.append(j)
                remaining = survivors
            keep_all.append(np.asarray(kept, np.int64))
        keep = np.sort(np.concatenate(keep_all))
        return _Raw(raw.xyxy[keep], raw.score[keep], raw.class_id[keep], raw.cut[keep], raw.crop[keep])
