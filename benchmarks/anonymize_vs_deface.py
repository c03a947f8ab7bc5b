"""Our `anonymize_clip` beside the `deface` tool (PyPI deface 1.5.0, CenterFace) on the same excerpts.

Two figures per clip:
- wall time (ours / deface), each tool timed end to end including model loading;
- residual faces: faces that an *independent* detector (OpenCV's Haar frontal-face cascade, neither
  YuNet nor CenterFace) still finds in the output at the place where it found one in the source,
  as a share of the faces it finds in the source. Source detections count only inside the head
  band of a ground-truth person (MOT annotations), because Haar also fires on posters and clothes. Haar runs on a 2x upscale of frames narrower
  than 1000 px, like our face pass, so that 10-20 px faces are within its reach.

Usage (needs the `bench` extra: `pip install -e .[bench]`):

    .venv/bin/python benchmarks/anonymize_vs_deface.py --frames 100

Excerpts are written to a temporary directory and never into the repository.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from lanterne.config.schema import DetectorSettings
from lanterne.core.assets import default_data_dir
from lanterne.video.anonymize import DefaultAnonymizer, anonymize_clip
from lanterne.video.detectors import create_detector

CLIPS = {"TUD-Stadtmitte.mp4": "TUD-Stadtmitte.gt.txt", "vtest.avi": "vtest.PETS09-S2L1.gt.txt"}


def head_bands(gt: Path, step: int) -> dict[int, list[tuple[int, int, int, int]]]:
    """Top 30 % of each ground-truth person box, keyed by evaluated-frame number. Haar fires on
    posters, shop windows and trouser folds; a source "face" only counts inside a real head."""
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for line in gt.read_text().splitlines():
        f, _, left, top, w, h = (float(v) for v in line.split(",")[:6])
        i = int(f) - 1
        if i % step == 0:
            band = (int(left), int(top), int(left + w), int(top + 0.3 * h))
            out.setdefault(i // step, []).append(band)
    return out


def excerpt(src: Path, dst: Path, frames: int) -> None:
    """First `frames` frames, near-lossless H.264, so both tools read the same pixels."""
    with av.open(str(src)) as cin, av.open(str(dst), "w") as cout:
        vin = cin.streams.video[0]
        rate = vin.average_rate or Fraction(25)
        vout = cout.add_stream("libx264", rate=rate, options={"crf": "12", "preset": "fast"})
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        for i, frame in enumerate(cin.decode(vin)):
            if i >= frames:
                break
            f = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            f.pts, f.time_base = i, 1 / rate
            for p in vout.encode(f):
                cout.mux(p)
        for p in vout.encode(None):
            cout.mux(p)


def frames_of(path: Path, step: int) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for i, f in enumerate(c.decode(video=0)) if i % step == 0]


_HAAR = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def haar(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    scale = 2.0 if image.shape[1] < 1000 else 1.0
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if scale != 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    found = _HAAR.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4, minSize=(16, 16))
    return [
        (int(x / scale), int(y / scale), int((x + w) / scale), int((y + h) / scale)) for x, y, w, h in found
    ]


def iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def inside(box: tuple[int, ...], band: tuple[int, ...]) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return band[0] <= cx <= band[2] and band[1] <= cy <= band[3]


@dataclass
class Residual:
    source: int
    """Haar detections in the source whose centre lies in a ground-truth head band (real faces)."""
    kept: int
    """Output detections overlapping a source detection (IoU >= 0.3): a face still found where it was."""
    anywhere: int
    """All output detections, including Haar false positives on pixel blocks and background."""


def residual(src: Path, out: Path, step: int, heads: dict[int, list[tuple[int, int, int, int]]]) -> Residual:
    a, b = frames_of(src, step), frames_of(out, step)
    n = min(len(a), len(b))
    source = kept = anywhere = 0
    for k, (fa, fb) in enumerate(zip(a[:n], b[:n], strict=True)):
        bands = heads.get(k, [])
        sa = [x for x in haar(fa) if any(inside(x, band) for band in bands)]
        sb = haar(fb)
        source += len(sa)
        anywhere += len(sb)
        kept += sum(any(iou(x, y) >= 0.3 for y in sa) for x in sb)
    return Residual(source, kept, anywhere)


def run_ours(src: Path, dst: Path, upscale: bool) -> float:
    t0 = time.perf_counter()
    detector = create_detector(DetectorSettings())
    anonymize_clip(src, dst, detector, DefaultAnonymizer(upscale_small_frames=upscale))
    return time.perf_counter() - t0


def run_deface(src: Path, dst: Path) -> float:
    exe = shutil.which("deface", path=str(Path(sys.executable).parent))
    if exe is None:
        sys.exit("deface is not installed: pip install -e .[bench]")
    t0 = time.perf_counter()
    subprocess.run(
        [exe, str(src), "-o", str(dst), "--backend", "onnxrt", "--ffmpeg-config", '{"codec": "libx264"}'],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100, help="frames per excerpt")
    ap.add_argument("--step", type=int, default=2, help="evaluate residual faces on every Nth frame")
    args = ap.parse_args()
    data = default_data_dir()
    if data is None:
        sys.exit("shared data directory not found (../shared/data)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, gt in CLIPS.items():
            heads = head_bands(data / "video" / gt, args.step)
            src = Path(tmp) / f"{Path(name).stem}.mp4"
            excerpt(data / "video" / name, src, args.frames)
            variants = {
                "lanterne (2x face pass)": lambda s, d: run_ours(s, d, True),
                "lanterne (1x face pass)": lambda s, d: run_ours(s, d, False),
                "deface 1.5.0": run_deface,
            }
            times: dict[str, float] = {}
            for label, fn in variants.items():
                dst = Path(tmp) / f"{Path(name).stem}.{len(times)}.mp4"
                times[label] = fn(src, dst)
                r = residual(src, dst, args.step, heads)
                rows.append((name, label, times[label], times[label] / args.frames * 1000, r))
            base = times["deface 1.5.0"]
            for i in range(len(rows) - len(variants), len(rows)):
                rows[i] = (*rows[i], rows[i][2] / base)
    print(
        f"\n{args.frames} frames per clip, residual faces on every {args.step}th frame (Haar, independent)\n"
    )
    hdr = f"{'clip':<20} {'tool':<25} {'wall s':>7} {'ms/frame':>9} {'x deface':>9} {'Haar src':>9} {'kept':>5} {'kept %':>7} {'any out':>8}"
    print(hdr)
    print("-" * len(hdr))
    for name, label, wall, ms, r, ratio in rows:
        share = 100 * r.kept / r.source if r.source else float("nan")
        print(
            f"{name:<20} {label:<25} {wall:7.1f} {ms:9.0f} {ratio:9.2f} {r.source:9d} {r.kept:5d} {share:6.1f}% {r.anywhere:8d}"
        )


if __name__ == "__main__":
    main()
