"""Detector rate: what running YOLOX only every `detector.interval_seconds` (boxes carried by optical
flow in between) costs in person recall, precision and track identity, and what it saves in CPU.

For each clip with MOT ground truth, analysed at 5 fps in `statistics` mode (no rules: the
detector, motion gate, carry step and tracker are what differ), one `CameraAnalyser` per interval
takes its turn on every decoded frame, so all variants share the same decode and the same machine
load. Columns:

- recall / precision of the tracked person boxes on every analysed frame (greedy one-to-one at
  IoU >= 0.5 against `considered=1` boxes; a box matching only a `considered=0` one is neither a
  TP nor an FP, as in `benchmarks/detector_accuracy.py`; PETS leaves far walkers unannotated, so
  its precision is a lower bound);
- ID switches, MOTA-style: a ground-truth person matched to a different track id than at its
  previous match; also per 100 ground-truth tracks, and the number of person track ids made;
- CPU ms per analysed frame of `CameraAnalyser.process` (`time.process_time`; onnxruntime on
  one thread), detector calls per frame, and analyser-only streams per core at 5 fps (decode is
  not counted; it is the same for every variant). Pixel conversions are counted: each variant
  gets its own `Frame` over the shared decoded picture (`Frame.unconverted`), and `--pixels
  yuv,bgr` adds, per interval, the earlier path that made every frame BGR at decode (`bgr`) beside
  today's, where BGR is made only for the detector and grey steps read the Y plane (`yuv`).

    .venv/bin/python benchmarks/detection_rate.py [--quick] [--intervals 0,0.4,0.6,1.0] [--clips pets,tud]
        [--pixels yuv,bgr] [--input-size 416]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lanterne.config import config_hash, parse_config
from lanterne.config.schema import Config
from lanterne.core.types import Frame, TrackedObject
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector
from lanterne.video.evaluation import GroundTruth, load_mot

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detector_accuracy import iou, load_gt

VIDEO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video"
CLIPS: dict[str, tuple[Path, Path]] = {
    "pets": (VIDEO / "vtest.avi", VIDEO / "vtest.PETS09-S2L1.gt.txt"),
    "tud": (VIDEO / "TUD-Stadtmitte.mp4", VIDEO / "TUD-Stadtmitte.gt.txt"),
}
FPS = 5.0
QUICK_SECONDS = 30.0


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    frames: int = 0
    cpu_s: float = 0.0
    switches: int = 0
    last_match: dict[int, int] = field(default_factory=dict)
    track_ids: set[int] = field(default_factory=set)


def truth_of(gt: GroundTruth, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Considered ground-truth boxes (camera pixels) of a decoded frame, and their ids."""
    w, h = gt.size
    objects = gt.frames.get(index, ())
    boxes = np.array([(o.box[0] * w, o.box[1] * h, o.box[2] * w, o.box[3] * h) for o in objects])
    return boxes.reshape(-1, 4), np.array([o.track_id for o in objects], int)


def pairs(gt: np.ndarray, det: np.ndarray, thr: float = 0.5) -> list[tuple[int, int]]:
    """Greedy one-to-one matches (gt index, det index) at IoU >= thr, best first."""
    if len(gt) == 0 or len(det) == 0:
        return []
    m = iou(gt, det)
    out = []
    while m.size and m.max() >= thr:
        i, j = np.unravel_index(int(m.argmax()), m.shape)
        m[i, :] = 0
        m[:, j] = 0
        out.append((int(i), int(j)))
    return out


def score(
    tally: Tally,
    objects: tuple[TrackedObject, ...],
    size: tuple[int, int],
    considered: tuple[np.ndarray, np.ndarray],
    ignored: np.ndarray,
) -> None:
    people = [o for o in objects if o.label == "person"]
    w, h = size
    boxes = np.array([(o.box[0] * w, o.box[1] * h, o.box[2] * w, o.box[3] * h) for o in people]).reshape(
        -1, 4
    )
    gt_boxes, gt_ids = considered
    matched = pairs(gt_boxes, boxes)
    tally.tp += len(matched)
    tally.fn += len(gt_boxes) - len(matched)
    for i, j in matched:
        gid, tid = int(gt_ids[i]), people[j].track_id
        if gid in tally.last_match and tally.last_match[gid] != tid:
            tally.switches += 1
        tally.last_match[gid] = tid
    used = {j for _, j in matched}
    free = np.array([j not in used for j in range(len(people))], bool)
    left = boxes[free]
    ignored_hits = len(pairs(ignored, left)) if len(left) else 0
    tally.fp += int(free.sum()) - ignored_hits
    tally.track_ids.update(o.track_id for o in people)


def config(clip: str, video: Path, interval: float, input_size: int) -> Config:
    return parse_config(
        {
            "mode": "statistics",
            "detector": {"interval_seconds": interval, "input_size": input_size},
            "cameras": [
                {
                    "id": clip,
                    "source": str(video),
                    "location": {"lat": 48.85, "lon": 2.35},
                    "fps": FPS,
                    "zones": [{"id": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
                }
            ],
        }
    )


def run_clip(
    clip: str, variants: list[tuple[float, str]], seconds: float | None, input_size: int
) -> tuple[list[tuple[float, str, Tally, int]], int]:
    """Per (interval, pixels) variant: the variant, its tally and detector calls; and the number of
    ground-truth tracks seen."""
    video, gt_path = CLIPS[clip]
    ignored = {f: b[1] for f, b in load_gt(gt_path).items()}
    cfgs = [config(clip, video, i, input_size) for i, _ in variants]
    detector = create_detector(cfgs[0].detector, cfgs[0].models_dir)
    analysers = [
        CameraAnalyser(c.cameras[0], c, detector, config_hash=config_hash(c), on_counts=lambda _: None)
        for c in cfgs
    ]
    tallies = [Tally() for _ in variants]
    gt_tracks: set[int] = set()
    gt: GroundTruth | None = None
    for frame in FileSource(clip, str(video), fps=FPS).frames():
        if seconds is not None and frame.pts >= seconds:
            break
        if gt is None:
            gt = load_mot(gt_path, frame.size, FPS)
        truth = truth_of(gt, frame.index)
        gt_tracks.update(int(i) for i in truth[1])
        for analyser, tally, (_, pixels) in zip(analysers, tallies, variants, strict=True):
            started = time.process_time()
            own = frame.unconverted()
            if pixels == "bgr":
                own = Frame(own.camera_id, own.pts, own.image, own.index)
            analyser.process(own)
            tally.cpu_s += time.process_time() - started
            tally.frames += 1
            score(tally, analyser.objects, frame.size, truth, ignored.get(frame.index, np.empty((0, 4))))
    for analyser in analysers:
        analyser.finish()
    rows = [
        (interval, pixels, tally, analyser.stats.detector_runs)
        for (interval, pixels), tally, analyser in zip(variants, tallies, analysers, strict=True)
    ]
    return rows, len(gt_tracks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"only the first {QUICK_SECONDS:.0f} s of each clip"
    )
    parser.add_argument("--intervals", default="0,0.4,0.6,1.0", help="detector.interval_seconds values")
    parser.add_argument("--clips", default="pets,tud")
    parser.add_argument("--pixels", default="yuv", help="yuv (today), bgr (BGR made at decode), or both")
    parser.add_argument("--input-size", type=int, default=416, choices=(320, 416))
    args = parser.parse_args()
    variants = [(float(v), p) for v in args.intervals.split(",") for p in args.pixels.split(",")]
    print(f"`.venv/bin/python {' '.join(['benchmarks/detection_rate.py', *sys.argv[1:]])}`")
    print()
    print(
        f"Analysis at {FPS:g} fps, statistics mode, YOLOX-Nano at {args.input_size} px, onnxruntime 1 thread."
    )
    print()
    header = (
        "| clip | interval (s) | pixels | frames | detector calls / frame | recall | precision | ID switches "
        "| switches / 100 GT tracks | person ids (GT tracks) | CPU ms / frame | streams / core (analyser) |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for clip in args.clips.split(","):
        rows, gt_tracks = run_clip(clip, variants, QUICK_SECONDS if args.quick else None, args.input_size)
        for interval, pixels, t, calls in rows:
            recall = t.tp / max(t.tp + t.fn, 1)
            precision = t.tp / max(t.tp + t.fp, 1)
            ms = 1000 * t.cpu_s / max(t.frames, 1)
            streams = 1000 / (FPS * ms) if ms else float("inf")
            print(
                f"| {clip} | {interval:g} | {pixels} | {t.frames} | {calls / max(t.frames, 1):.2f} | {recall:.3f} "
                f"| {precision:.3f} | {t.switches} | {100 * t.switches / max(gt_tracks, 1):.1f} "
                f"| {len(t.track_ids)} ({gt_tracks}) | {ms:.1f} | {streams:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
