"""The detector plugin interface. A backend is one small module that registers a factory under
its name; the configuration's `detector.backend` picks it. Backends return
`supervision.Detections` in full-frame pixel coordinates with `class_id` as COCO indices and
`data["class_name"]` as names, so tracking and rules never see a backend-specific type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import onnxruntime as ort
import supervision as sv

from lanterne.config.schema import DetectorSettings

PixelBox = tuple[int, int, int, int]
"""`(x0, y0, x1, y1)` in pixels of the full frame."""


class Detector(Protocol):
    model_name: str
    model_sha256: str

    def detect(self, image: np.ndarray, regions: Sequence[PixelBox] | None = None) -> sv.Detections:
        """Detect objects in a BGR image. With `regions`, only those crops are examined (motion
        gating) and the boxes are mapped back to full-frame pixels; duplicates across
        overlapping regions are merged. Score thresholds per class are already applied."""
        ...


DetectorFactory = Callable[[DetectorSettings, "Path"], Detector]  # noqa: F821

REGISTRY: dict[str, DetectorFactory] = {}


def register(name: str) -> Callable[[DetectorFactory], DetectorFactory]:
    def deco(factory: DetectorFactory) -> DetectorFactory:
        REGISTRY[name] = factory
        return factory

    return deco


def session_options(threads: int) -> ort.SessionOptions:
    """onnxruntime options for one camera worker's model. Every camera has its own session on
    shared cores, so a thread that spin-waits for work between calls takes CPU another camera
    needs: spinning is off, and the operators of one call run in `threads` threads (one by
    default: cameras, not operators, are what a city runs in parallel).

    >>> session_options(1).get_session_config_entry("session.intra_op.allow_spinning")
    '0'
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts
