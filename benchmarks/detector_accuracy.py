"""Person precision/recall of YOLOX-Nano, full frame vs motion-gated, and what the gate saves.

Run: `.venv/bin/python benchmarks/detector_accuracy.py [--threads 1] [--clips vtest,tud,intel]`

Matching: greedy one-to-one at IoU >= 0.5 against MOT ground truth with `considered=1`; a
detection that matches only a `considered=0` box is neither a TP nor an FP. PETS leaves the
far-background walkers unannotated, so its precision is a lower bound.

Gated modes emulate the pipeline: the gate decides per frame; on a skipped frame the previous
detections stand (the tracker would keep its tracks); `keep` is the boxes of the previous
detector output (what a tracker would pass), or nothing in the `motion-only` mode.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import supervision as sv

from lanterne.config.schema import DetectorSettings, MotionSettings
from lanterne.video.detectors import create_detector
from lanterne.video.detectors.base import Detector, PixelBox
from lanterne.video.motion.gate import MotionGate

VIDEO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video"
CLIPS: dict[str, tuple[Path, Path | None]] = {
    "vtest": (VIDEO / "vtest.avi", VIDEO / "vtest.PETS09-S2L1.gt.txt"),
    "tud": (VIDEO / "TUD-Stadtmitte.mp4", VIDEO / "TUD-Stadtmitte.gt.txt"),
    # No ground truth: an indoor room, one person at a time; shows what the gate skips.
    "intel": (VIDEO / "intel_one-by-one-person-detection.mp4", None),
}


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    frames: int = 0
    calls: int = 0
    passes: int = 0
    skipped: int = 0
    full: int = 0
    detect_s: float = 0.0
    full_call_s: list[float] = field(default_factory=list)
    region_call_s: list[float] = field(default_factory=list)
    region_passes: int = 0
    gate_s: float = 0.0


def decode(path: Path) -> Iterator[tuple[int, float, np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 10)
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else i / rate
            yield i, t, frame.to_ndarray(format="bgr24")


def load_gt(path: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(considered boxes, ignored boxes) by 0-based frame; MOT frame N is decoded frame N-1."""
    rows = np.loadtxt(path, delimiter=",")
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for f in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == f]
        boxes = np.column_stack((r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]))
        out[f - 1] = (boxes[r[:, 6] == 1], boxes[r[:, 6] == 0])
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def greedy(gt: np.ndarray, det: np.ndarray, thr: float = 0.5) -> tuple[int, np.ndarray]:
    """Matches, and a mask of the detections left unmatched."""
    free = np.ones(len(det), bool)
    if len(gt) == 0 or len(det) == 0:
        return 0, free
    m = iou(gt, det)
    n = 0
    while m.size and m.max() >= thr:
        i, j = np.unravel_index(int(m.argmax()), m.shape)
        m[i, :] = 0
        m[:, j] = 0
        free[j] = False
        n += 1
    return n, free


def score(tally: Tally, gt: tuple[np.ndarray, np.ndarray], det: sv.Detections) -> None:
    considered, ignored = gt
    people = det.xyxy[det.data["class_name"] == "person"]
    tp, free = greedy(considered, people)
    _, still_free = greedy(ignored, people[free])
    tally.tp += tp
    tally.fn += len(considered) - tp
    tally.fp += int(still_free.sum())


def run(detector: Detector, clip: str, mode: str, motion: MotionSettings) -> Tally:
    path, gt_path = CLIPS[clip]
    gt = load_gt(gt_path) if gt_path else {}
    tally = Tally()
    gate: MotionGate | None = None
    last = sv.Detections.empty()
    last["class_name"] = np.array([], dtype=str)
    for i, t, image in decode(path):
        tally.frames += 1
        regions: tuple[PixelBox, ...] | None = None
        run_it = True
        if mode != "full":
            if gate is None:
                gate = MotionGate(motion, (image.shape[1], image.shape[0]))
            keep: list[PixelBox] = []
            if mode == "gated":
                keep = [(int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in last.xyxy]
            start = time.perf_counter()
            decision = gate.update(image, t, keep)
            tally.gate_s += time.perf_counter() - start
            run_it = decision.run_detector
            if run_it and not decision.full_frame:
                regions = decision.regions
        if run_it:
            start = time.perf_counter()
            last = detector.detect(image, regions)
            spent = time.perf_counter() - start
            tally.detect_s += spent
            tally.calls += 1
            if regions is None:
                tally.full += 1
                tally.passes += 1
                tally.full_call_s.append(spent)
            else:
                tally.passes += len(regions)
                tally.region_passes += len(regions)
                tally.region_call_s.append(spent)
        else:
            tally.skipped += 1
        if i in gt:
            score(tally, gt[i], last)
    return tally


def fmt_ms(values: list[float]) -> str:
    return f"{1000 * float(np.mean(values)):.1f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clips", default="vtest,tud,intel")
    parser.add_argument("--modes", default="full,gated,motion-only")
    parser.add_argument(
        "--max-regions", type=int, default=MotionSettings().max_regions, help="motion.max_regions"
    )
    args = parser.parse_args()
    detector = create_detector(DetectorSettings(threads=args.threads), None)
    motion = MotionSettings(max_regions=args.max_regions)
    print(
        f"YOLOX-Nano 416, onnxruntime CPU, {args.threads} thread(s); motion {motion}; "
        f"max regions {motion.max_regions}"
    )
    header = (
        "| clip | mode | frames | TP | FP | FN | precision | recall | detector calls | network passes "
        "| ms/call full | ms/call region (passes/call) | detector ms/frame | skipped | gate ms/frame |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for clip in args.clips.split(","):
        has_gt = CLIPS[clip][1] is not None
        modes = [m for m in args.modes.split(",") if has_gt or m != "full"]
        for mode in modes:
            tally = run(detector, clip, mode, motion)
            precision = tally.tp / max(tally.tp + tally.fp, 1)
            recall = tally.tp / max(tally.tp + tally.fn, 1)
            per_call = (
                f"{fmt_ms(tally.region_call_s)} ({tally.region_passes / len(tally.region_call_s):.2f})"
                if tally.region_call_s
                else "-"
            )
            acc = (
                f"{tally.tp} | {tally.fp} | {tally.fn} | {precision:.3f} | {recall:.3f}"
                if has_gt
                else "- | - | - | - | -"
            )
            gate_ms = f"{1000 * tally.gate_s / tally.frames:.2f}" if mode != "full" else "-"
            print(
                f"| {clip} | {mode} | {tally.frames} | {acc} | {tally.calls} | {tally.passes} "
                f"| {fmt_ms(tally.full_call_s)} | {per_call} | {1000 * tally.detect_s / tally.frames:.1f} "
                f"| {tally.skipped / tally.frames:.1%} | {gate_ms} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
