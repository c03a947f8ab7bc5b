"""Per-call cost of the detector at 416 vs 320 and of the crowd flow, Farneback vs DIS, side by side.

    .venv/bin/python benchmarks/per_frame_costs.py [--every 2] [--frames 795] [--threads 1]

On `vtest.avi` (PETS09 S2.L1, 768x576) every `--every`-th decoded frame (2 = the 5 fps analysis
rate) goes through every variant in turn, the order alternating frame by frame, so a machine
shared with other jobs slows all variants alike: the ratios are the result, the absolute ms are
not. The clock is the calling thread's CPU time (onnxruntime runs in the calling thread with one
intra-op thread). Person recall and precision of each detector size use the matching of
`benchmarks/detector_accuracy.py` (greedy one-to-one at IoU >= 0.5 against the MOT ground truth;
boxes on unannotated walkers count neither way). The flow rows give the whole
`FlowEstimator.update` (resize to 160 px and grey conversion included) and the dense flow alone,
with the mean per-pixel difference between the two methods.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from detector_accuracy import CLIPS, Tally, decode, load_gt, score  # noqa: E402
from lanterne.config.schema import DetectorSettings  # noqa: E402
from lanterne.video.detectors import create_detector  # noqa: E402
from lanterne.video.motion.flow import WIDTH, FlowEstimator  # noqa: E402

WARMUP = 3
"""First frames not timed: onnxruntime and OpenCV allocate on their first calls."""


def timed(spent: list[float], fn: Callable[..., object], *args: object) -> object:
    start = time.thread_time()
    out = fn(*args)
    spent.append(time.thread_time() - start)
    return out


def small_grey(image: np.ndarray) -> np.ndarray:
    """What FlowEstimator hands to the flow (same resize, same conversion)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (WIDTH, round(WIDTH * h / w)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=2, help="analyse every n-th decoded frame")
    parser.add_argument("--frames", type=int, default=795, help="decoded frames to read")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    video, gt_path = CLIPS["vtest"]
    assert gt_path is not None
    gt = load_gt(gt_path)
    sizes = (416, 320)
    detectors = {
        s: create_detector(DetectorSettings(input_size=s, threads=args.threads), None) for s in sizes
    }
    tallies = {s: Tally() for s in sizes}
    detect_s: dict[str, list[float]] = {f"YOLOX-Nano {s}": [] for s in sizes}
    methods = ("farneback", "dis")
    estimators = {m: FlowEstimator(method=m) for m in methods}  # type: ignore[arg-type]
    update_s: dict[str, list[float]] = {m: [] for m in methods}
    dense_s: dict[str, list[float]] = {m: [] for m in methods}
    differences: list[float] = []
    prev: np.ndarray | None = None
    analysed = 0
    for i, t, image in decode(video):
        if i >= args.frames:
            break
        if i % args.every:
            continue
        analysed += 1
        warm = analysed > WARMUP
        order = list(sizes) if analysed % 2 else list(reversed(sizes))
        for s in order:
            spent: list[float] = []
            det = timed(spent, detectors[s].detect, image)
            if warm:
                detect_s[f"YOLOX-Nano {s}"] += spent
            if i in gt:
                score(tallies[s], gt[i], det)  # type: ignore[arg-type]
        grey = small_grey(image)
        flows = {}
        for m in methods if analysed % 2 else reversed(methods):
            spent = []
            timed(spent, estimators[m].update, image, t)
            flows[m] = timed(spent, estimators[m].dense, prev, grey) if prev is not None else None
            if warm and prev is not None:
                update_s[m].append(spent[0])
                dense_s[m].append(spent[1])
        if prev is not None:
            differences.append(
                float(np.hypot(*(flows["farneback"] - flows["dis"]).transpose(2, 0, 1)).mean())
            )
        prev = grey

    def ms(values: list[float]) -> str:
        return f"{1000 * float(np.median(values)):.2f}"

    print("`" + " ".join([".venv/bin/python benchmarks/per_frame_costs.py", *sys.argv[1:]]) + "`")
    print()
    print(
        f"vtest.avi, {analysed} analysed frames (every {args.every} of {args.frames} decoded), "
        f"onnxruntime {args.threads} thread(s); CPU ms per call, median over frames."
    )
    print()
    print("| step | variant | CPU ms/call | speed-up | person recall | person precision |")
    print("|---|---|---|---|---|---|")
    base = float(np.median(detect_s["YOLOX-Nano 416"]))
    for s in sizes:
        name, tally = f"YOLOX-Nano {s}", tallies[s]
        recall = tally.tp / max(tally.tp + tally.fn, 1)
        precision = tally.tp / max(tally.tp + tally.fp, 1)
        print(
            f"| detector | {name} (`detector.input_size: {s}`) | {ms(detect_s[name])} "
            f"| {base / float(np.median(detect_s[name])):.2f}x | {recall:.3f} | {precision:.3f} |"
        )
    for label, table in (("flow update (resize + flow + grid)", update_s), ("dense flow alone", dense_s)):
        ref = float(np.median(table["farneback"]))
        for m in methods:
            print(
                f"| {label} | {m} (`motion.flow: {m}`) | {ms(table[m])} "
                f"| {ref / float(np.median(table[m])):.2f}x | - | - |"
            )
    print()
    print(
        f"Mean per-pixel difference between the two flows: {np.mean(differences):.2f} px "
        f"(at {WIDTH} px wide, between analysed frames)."
    )


if __name__ == "__main__":
    main()
