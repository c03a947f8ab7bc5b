"""Anonymise a whole video file: every frame that is written has been through the anonymiser.

Only the video stream is demuxed; audio packets are never decoded and the output has no audio
stream (no sound is processed or kept). The output is H.264 (libx264) when PyAV's FFmpeg has it,
else MPEG-4 part 2, at the source rate and with the source timestamps, so an excerpt lines up
with the original recording second for second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
import supervision as sv

from lanterne.core.errors import SourceError
from lanterne.video.anonymize.base import Anonymizer
from lanterne.video.detectors.base import Detector, PixelBox

PERSON_CLASSES = frozenset({"person"})
VEHICLE_CLASSES = frozenset({"car", "bus", "truck", "motorcycle"})

MAX_REUSE_SECONDS = 0.05
"""Object boxes may be reused for the next frame when it is at most this much later.

At 25 fps (0.04 s) detection then runs on every other frame. In 0.04 s a walker moves ~6 cm, i.e.
2-4 px on a street camera, while the head band is widened by 15 % of its width per side (6-9 px
for a 40-60 px wide person): the reused band still covers the head. At 10 fps (PETS, 0.1 s) a
walker moves as much as that margin, so detection runs on every frame. Faces and plates are
detected on every frame regardless."""

TRUNCATION_TOLERANCE = 0.02
"""Containers often declare a frame count one or two off; more than 2 % missing means the file
stops early."""


@dataclass(frozen=True, slots=True)
class ClipStats:
    frames: int
    seconds: float
    """Duration of the written video (last minus first timestamp plus one frame)."""
    faces_blurred: int
    plates_blurred: int
    heads_blurred: int
    cpu_seconds: float
    """Process CPU time (all threads) spent in the call."""
    wall_seconds: float
    detector_frames: int
    """Frames on which the object detector actually ran (the others reused the last boxes)."""


def _open(src: Path) -> av.container.InputContainer:
    if not src.is_file():
        raise SourceError(f"{src}: file not found; check the path of the clip to anonymise")
    if src.stat().st_size == 0:
        raise SourceError(f"{src}: file is empty; copy or export the clip again")
    try:
        container = av.open(str(src))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        raise SourceError(
            f"{src}: not a video file FFmpeg can read (corrupt, truncated or unknown format)"
        ) from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{src}: has no video stream; give a video file")
    return container


def _encoder() -> str:
    try:
        av.codec.Codec("libx264", "w")
    except (av.error.FFmpegError, ValueError):
        return "mpeg4"
    return "libx264"


def _boxes(det: sv.Detections, classes: frozenset[str]) -> list[PixelBox]:
    names = det.data.get("class_name")
    if names is None or len(det) == 0:
        return []
    return [
        (int(b[0]), int(b[1]), int(np.ceil(b[2])), int(np.ceil(b[3])))
        for b, n in zip(det.xyxy, names, strict=True)
        if n in classes
    ]


def anonymize_clip(
    src: Path,
    dst: Path,
    detector: Detector,
    anonymizer: Anonymizer,
    progress: Callable[[float], None] | None = None,
    *,
    max_frames: int | None = None,
) -> ClipStats:
    """Write `dst`, an anonymised H.264 copy of the video stream of `src`.

    Counts of blurred faces, plates and heads are read from `anonymizer.last_counts` when the
    anonymiser keeps them (`DefaultAnonymizer` does); they are counts, never boxes. `max_frames`
    stops early (a clip excerpt); a file that ends before its declared length raises
    `SourceError` and leaves no output behind.
    """
    cpu0, wall0 = time.process_time(), time.perf_counter()
    container = _open(src)
    try:
        vin = container.streams.video[0]
        declared = vin.frames or 0
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        time_base = vin.time_base or Fraction(1, round(rate))
        total = min(declared, max_frames) if max_frames and declared else (max_frames or declared)
        dst.parent.mkdir(parents=True, exist_ok=True)
        out = av.open(str(dst), "w")
        try:
            stats = _transcode(
                container, vin, out, rate, time_base, detector, anonymizer, progress, total, max_frames
            )
        finally:
            out.close()
    except SourceError:
        dst.unlink(missing_ok=True)
        raise
    except av.error.FFmpegError as exc:
        dst.unlink(missing_ok=True)
        raise SourceError(
            f"{src}: cannot decode ({type(exc).__name__}); the file is corrupt or truncated"
        ) from None
    finally:
        container.close()
    frames, seconds, faces, plates, heads, detected = stats
    if max_frames is None and declared and frames < declared * (1 - TRUNCATION_TOLERANCE):
        dst.unlink(missing_ok=True)
        raise SourceError(f"{src}: ends after {frames} of {declared} frames; the file is truncated")
    if frames == 0:
        dst.unlink(missing_ok=True)
        raise SourceError(f"{src}: no decodable video frame; the file is corrupt or truncated")
    return ClipStats(
        frames=frames,
        seconds=seconds,
        faces_blurred=faces,
        plates_blurred=plates,
        heads_blurred=heads,
        cpu_seconds=time.process_time() - cpu0,
        wall_seconds=time.perf_counter() - wall0,
        detector_frames=detected,
    )


def _transcode(
    container: av.container.InputContainer,
    vin: av.video.stream.VideoStream,
    out: av.container.OutputContainer,
    rate: Fraction,
    time_base: Fraction,
    detector: Detector,
    anonymizer: Anonymizer,
    progress: Callable[[float], None] | None,
    total: int,
    max_frames: int | None,
) -> tuple[int, float, int, int, int, int]:
    vout = out.add_stream(_encoder(), rate=rate)
    w, h = vin.codec_context.width, vin.codec_context.height
    # yuv420p needs even sides; dropping the odd last row/column loses nothing a viewer needs.
    vout.width, vout.height = w - w % 2, h - h % 2
    vout.pix_fmt = "yuv420p"
    vout.time_base = time_base
    if vout.codec_context.name == "libx264":
        vout.options = {"crf": "23", "preset": "veryfast"}
    else:
        vout.bit_rate = 4_000_000

    frames = faces = plates = heads = detected = 0
    first_t = last_t = None
    last_det_t: float | None = None
    persons: list[PixelBox] = []
    vehicles: list[PixelBox] = []
    frame_dt = float(1 / rate)
    # demux(vin) reads only the video stream's packets: audio is skipped at the container level
    # and never reaches a decoder.
    for packet in container.demux(vin):
        for frame in packet.decode():
            if max_frames is not None and frames >= max_frames:
                break
            t = float(frame.pts * frame.time_base) if frame.pts is not None else frames * frame_dt
            image = frame.to_ndarray(format="bgr24")[: vout.height, : vout.width]
            if last_det_t is None or t - last_det_t > MAX_REUSE_SECONDS + 1e-6 or t < last_det_t:
                det = detector.detect(image)
                persons, vehicles = _boxes(det, PERSON_CLASSES), _boxes(det, VEHICLE_CLASSES)
                last_det_t = t
                detected += 1
            clean = anonymizer.anonymize(image, persons, vehicles)
            counts = getattr(anonymizer, "last_counts", None)
            if counts is not None:
                faces += counts.faces
                plates += counts.plates
                heads += counts.heads
            new = av.VideoFrame.from_ndarray(np.ascontiguousarray(clean), format="bgr24")
            new.pts = frame.pts if frame.pts is not None else round(frames * frame_dt / time_base)
            new.time_base = time_base
            for p in vout.encode(new):
                out.mux(p)
            frames += 1
            first_t = t if first_t is None else first_t
            last_t = t
            if progress is not None and total:
                progress(min(1.0, frames / total))
        if max_frames is not None and frames >= max_frames:
            break
    for p in vout.encode(None):
        out.mux(p)
    seconds = (last_t - first_t + frame_dt) if first_t is not None and last_t is not None else 0.0
    return frames, seconds, faces, plates, heads, detected
