"""A few seconds of a camera, read the way the runner reads it, for its envelope check (EV-05).

The check must see what the detectors will see: the same source code (PyAV, privacy masks painted
first, frames selected at the camera's analysis rate) and the same detector. Person heights come
from the detector on the whole frame, without the motion gate's zoom: the gate would enlarge small
people and so report heights the rules never get on a still scene. The figures are plain numbers;
`lanterne.rules.envelope` compares them with each type's envelope.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

from lanterne.config.schema import Camera
from lanterne.core.errors import SourceError
from lanterne.rules.envelope import PersonBox
from lanterne.video.capture.source import open_source
from lanterne.video.detectors import Detector

DETECT_EVERY = 0.5
"""Seconds of stream between two detector runs: people move little in half a second, and ten
runs per five seconds keep the check to a few seconds of CPU."""


@dataclass(frozen=True, slots=True)
class Sample:
    frames: int
    seconds: float
    """Stream time between the first and the last frame read."""
    fps: float
    """Frames analysed per second over the sample (the camera's rate, or what its source gives)."""
    frame_width: int
    frame_height: int
    luma: float
    """Median over the frames of each frame's mean luma."""
    persons: tuple[PersonBox, ...]
    detector_runs: int


def sample_camera(camera: Camera, detector: Detector, seconds: float = 10.0, timeout: float = 60.0) -> Sample:
    """Read `seconds` of the camera's stream at its analysis rate, with its masks painted; give
    up reading after `timeout` seconds of wall time (a live camera that stalls)."""
    source = open_source(
        camera.id, camera.source, camera.fps, masks=[m.polygon for m in camera.privacy_masks]
    )
    lumas: list[float] = []
    pts: list[float] = []
    persons: list[PersonBox] = []
    next_detect = float("-inf")
    runs = 0
    size = (0, 0)
    deadline = time.monotonic() + timeout
    frames = source.frames()
    try:
        for frame in frames:
            pts.append(frame.pts)
            size = frame.size
            lumas.append(float(np.mean(frame.grey)))
            if frame.pts >= next_detect:
                next_detect = frame.pts + DETECT_EVERY
                runs += 1
                persons.extend(_persons(detector, frame.image, size))
            if pts[-1] - pts[0] >= seconds or time.monotonic() > deadline:
                break
    finally:
        frames.close()
    if not pts:
        raise SourceError(f"camera {camera.id}: no frame read from its source; check that it plays")
    span = pts[-1] - pts[0]
    # n frames span n - 1 intervals; one frame says nothing of the rate, so the configured one stands.
    fps = (len(pts) - 1) / span if span > 0 else camera.fps
    return Sample(
        frames=len(pts),
        seconds=round(span, 2),
        fps=round(min(fps, camera.fps), 1),
        frame_width=size[0],
        frame_height=size[1],
        luma=round(float(statistics.median(lumas)), 1),
        persons=tuple(persons),
        detector_runs=runs,
    )


def _persons(detector: Detector, image: np.ndarray, size: tuple[int, int]) -> list[PersonBox]:
    found = detector.detect(image)
    names = found.data.get("class_name", [])
    w, h = size
    return [
        PersonBox(float((x0 + x1) / 2 / w), float(y1 / h), float(y1 - y0))
        for (x0, y0, x1, y1), name in zip(found.xyxy, names, strict=True)
        if name == "person"
    ]
