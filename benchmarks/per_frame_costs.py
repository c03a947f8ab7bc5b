"""Per-call cost of the detector at 416 vs 320, square vs frame-shaped input, and of the crowd
flow, Farneback vs DIS, side by side; with `--clock`, where one camera's analysis CPU goes on the
live wall's clock camera.

    .venv/bin/python benchmarks/per_frame_costs.py [--every 2] [--frames 795] [--threads 1]
        [--shapes square,frame]
    .venv/bin/python benchmarks/per_frame_costs.py --clock [--fps 10] [--seconds 30]

On `vtest.avi` (PETS09 S2.L1, 768x576) every `--every`-th decoded frame (2 = the 5 fps analysis
rate) goes through every variant in turn, the order rotating frame by frame, so a machine
shared with other jobs slows all variants alike: the ratios are the result, the absolute ms are
not. The clock is the calling thread's CPU time (onnxruntime runs in the calling thread with one
intra-op thread). Each detector variant (`detector.input_size` 416 and 320 for each
`detector.input_shape` in `--shapes`) is timed twice per frame: on the PETS frame itself (4:3,
416x320 with the frame shape) and on the same frame cut to 16:9 and resized to 640x360, the live
wall's cameras, where the square input is mostly padding (416x256 with the frame shape). Person
recall and precision of each variant, on the PETS frame, use the matching of
`benchmarks/detector_accuracy.py` (greedy one-to-one at IoU >= 0.5 against the MOT ground truth;
boxes on unannotated walkers count neither way). The flow rows give the whole
`FlowEstimator.update` (resize to 160 px and grey conversion included) and the dense flow alone,
with the mean per-pixel difference between the two methods.

`--clock` profiles one camera of `benchmarks/live_wall.py` as `lanterne run` analyses it
(statistics mode, YOLOX-Nano 416, motion gate, ByteTrack; the product's `FileSource` and
`CameraAnalyser`) on clips drawn by the clock camera's own code (`tests/support/rtsp_clock_server.py`:
640x360, grey texture, a bar sweeping below the clock, x264 zerolatency with its settings), with
and without the clock, with and without the bar, and with the clock as a motion mask drawn
around its blocks as a user would. Process CPU per analysed frame, split into decoding (FFmpeg's
threads included), motion gate, detector, tracker and the rest. Last, the detector's network
alone at 416x416 (the letterboxed square, `detector.input_shape: square`) against 416x256 (the
same 640x360 frame at the same scale without the padding rows, what `detector.input_shape: frame`
runs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import av  # noqa: E402
import onnxruntime as ort  # noqa: E402
from tests.support.rtsp_clock_server import Frames, cells  # noqa: E402

from detector_accuracy import CLIPS, Tally, decode, load_gt, score  # noqa: E402
from lanterne.config import config_hash, parse_config  # noqa: E402
from lanterne.config.schema import Config, DetectorSettings  # noqa: E402
from lanterne.core.assets import resolve_model  # noqa: E402
from lanterne.video.analyser import CameraAnalyser  # noqa: E402
from lanterne.video.capture.source import FileSource  # noqa: E402
from lanterne.video.detectors import create_detector  # noqa: E402
from lanterne.video.detectors.onnx_yolox import session_options  # noqa: E402
from lanterne.video.motion import gate as motion_gate  # noqa: E402
from lanterne.video.motion.flow import WIDTH, FlowEstimator  # noqa: E402

WARMUP = 3
"""First frames not timed: onnxruntime and OpenCV allocate on their first calls."""
WALL_SIZE = (640, 360)
"""The live wall's cameras: the frame the square input pads most (44 % at 416)."""


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


def shapes_arg(value: str) -> str:
    known = ("square", "frame")
    if not value or any(v not in known for v in value.split(",")):
        raise argparse.ArgumentTypeError(f"{value!r}: give square, frame or square,frame")
    return value


def wall_frame(image: np.ndarray) -> np.ndarray:
    """The PETS frame as a live-wall camera sends it: cut to 16:9 around its middle, 640x360."""
    h, w = image.shape[:2]
    keep = round(w * 9 / 16)
    top = (h - keep) // 2
    return cv2.resize(image[top : top + keep], WALL_SIZE, interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=2, help="analyse every n-th decoded frame")
    parser.add_argument("--frames", type=int, default=795, help="decoded frames to read")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--shapes",
        default="square,frame",
        type=shapes_arg,
        help="detector.input_shape values to compare, each at 416 and 320 (square: the 416/320 table alone)",
    )
    parser.add_argument("--clock", action="store_true", help="profile one live-wall clock camera instead")
    parser.add_argument("--fps", type=float, default=10.0, help="--clock: analysis rate")
    parser.add_argument("--seconds", type=float, default=30.0, help="--clock: length of each clip")
    args = parser.parse_args()
    if args.clock:
        clock_profile(args.fps, args.seconds)
        return

    video, gt_path = CLIPS["vtest"]
    assert gt_path is not None
    gt = load_gt(gt_path)
    shapes = args.shapes.split(",")
    variants = [(s, shape) for shape in shapes for s in (416, 320)]
    detectors = {
        v: create_detector(DetectorSettings(input_size=v[0], input_shape=v[1], threads=args.threads), None)
        for v in variants
    }
    tallies = {v: Tally() for v in variants}
    detect_s: dict[tuple[int, str], list[float]] = {v: [] for v in variants}
    wide_s: dict[tuple[int, str], list[float]] = {v: [] for v in variants}
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
        wide = wall_frame(image)
        turn = analysed % len(variants)
        for v in variants[turn:] + variants[:turn]:
            spent: list[float] = []
            det = timed(spent, detectors[v].detect, image)
            timed(spent, detectors[v].detect, wide)
            if warm:
                detect_s[v].append(spent[0])
                wide_s[v].append(spent[1])
            if i in gt:
                score(tallies[v], gt[i], det)  # type: ignore[arg-type]
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
    print(
        "| step | variant | CPU ms/call | speed-up | CPU ms/call at 640×360 | speed-up at 640×360 "
        "| person recall | person precision |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base, wide_base = (float(np.median(t[variants[0]])) for t in (detect_s, wide_s))
    for v in variants:
        size, shape = v
        tally = tallies[v]
        recall = tally.tp / max(tally.tp + tally.fn, 1)
        precision = tally.tp / max(tally.tp + tally.fp, 1)
        print(
            f"| detector | YOLOX-Nano {size} {shape} (`input_size: {size}`, `input_shape: {shape}`) "
            f"| {ms(detect_s[v])} | {base / float(np.median(detect_s[v])):.2f}x "
            f"| {ms(wide_s[v])} | {wide_base / float(np.median(wide_s[v])):.2f}x "
            f"| {recall:.3f} | {precision:.3f} |"
        )
    for label, table in (("flow update (resize + flow + grid)", update_s), ("dense flow alone", dense_s)):
        ref = float(np.median(table["farneback"]))
        for m in methods:
            print(
                f"| {label} | {m} (`motion.flow: {m}`) | {ms(table[m])} "
                f"| {ref / float(np.median(table[m])):.2f}x | - | - | - | - |"
            )
    print()
    print(
        f"Mean per-pixel difference between the two flows: {np.mean(differences):.2f} px "
        f"(at {WIDTH} px wide, between analysed frames)."
    )


# --- the live wall's clock camera, one camera's analysis ----------------------------------------

CLOCK_SIZE = (640, 360)
CLOCK_FPS = 10


def clock_mask_polygon(size: tuple[int, int] = CLOCK_SIZE, margin: int = 4) -> list[list[float]]:
    """The clock's blocks plus `margin` pixels, in frame fractions: the rectangle a user draws
    around a camera's on-screen clock."""
    c = cells(*size)
    w, h = size
    x0, y0 = max(min(b[0] for b in c) - margin, 0), max(min(b[1] for b in c) - margin, 0)
    x1, y1 = min(max(b[2] for b in c) + margin, w), min(max(b[3] for b in c) + margin, h)
    return [[x0 / w, y0 / h], [x1 / w, y0 / h], [x1 / w, y1 / h], [x0 / w, y1 / h]]


def clock_clip(path: Path, seconds: float, clock: bool, bar: bool) -> Path:
    """What the clock camera sends (its `Frames`, its x264 settings), with or without its clock
    and its sweeping bar, as a file."""
    w, h = CLOCK_SIZE
    frames = Frames(w, h)
    plain = bytes(frames.luma + frames.chroma)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=CLOCK_FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {
            "g": str(CLOCK_FPS),
            "bf": "0",
            "preset": "veryfast",
            "tune": "zerolatency",
            "profile": "baseline",
            "b": "1500k",
        }
        for i in range(int(seconds * CLOCK_FPS)):
            data = frames.background_frame() if bar else bytearray(plain)
            picture = frames.stamp(data, 1_000_000 + 100 * i + i % 7) if clock else bytes(data)
            image = np.frombuffer(picture, np.uint8).reshape(h * 3 // 2, w)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@dataclass
class Costs:
    """Process CPU seconds by step over one run, and what the gate decided."""

    steps: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("decode", "gate", "detector", "tracker", "other"), 0.0)
    )
    frames: int = 0
    runs: int = 0
    region_runs: int = 0
    total: float = 0.0


class TimedDetector:
    """The camera's detector, its calls timed (the analyser's own `detector_seconds` counts the
    calling thread only)."""

    def __init__(self, inner: Any, costs: Costs) -> None:
        self.inner, self.costs = inner, costs
        self.model_sha256 = inner.model_sha256

    def detect(self, image: np.ndarray, regions: Any = None) -> Any:
        start = time.process_time()
        try:
            return self.inner.detect(image, regions)
        finally:
            self.costs.steps["detector"] += time.process_time() - start


@contextmanager
def timed_gate(costs: Costs) -> Iterator[None]:
    update = motion_gate.MotionGate.update

    def timed(self: motion_gate.MotionGate, *args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return update(self, *args, **kwargs)
        finally:
            costs.steps["gate"] += time.process_time() - start

    motion_gate.MotionGate.update = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        motion_gate.MotionGate.update = update  # type: ignore[method-assign]


def clock_site(clip: Path, fps: float, masked: bool) -> Config:
    """A live-wall camera as `benchmarks/live_wall.py` configures it."""
    camera: dict[str, Any] = {
        "id": "clock",
        "source": str(clip),
        "fps": fps,
        "location": {"lat": 48.88, "lon": 2.355},
    }
    if masked:
        camera["motion_masks"] = [
            {"id": "clock", "polygon": clock_mask_polygon(), "reason": "on-screen clock"}
        ]
    return parse_config({"mode": "statistics", "site": "per-frame costs", "cameras": [camera]})


def analyse_clip(clip: Path, fps: float, masked: bool) -> Costs:
    cfg = clock_site(clip, fps, masked)
    camera = cfg.cameras[0]
    costs = Costs()
    detector = TimedDetector(create_detector(cfg.detector, cfg.models_dir), costs)
    analyser = CameraAnalyser(camera, cfg, detector, config_hash=config_hash(cfg))  # type: ignore[arg-type]
    track = analyser.tracker.update

    def timed_track(*args: Any) -> Any:
        start = time.process_time()
        try:
            return track(*args)
        finally:
            costs.steps["tracker"] += time.process_time() - start

    analyser.tracker.update = timed_track  # type: ignore[method-assign]
    frames = FileSource(camera.id, camera.source, fps=camera.fps).frames()
    with timed_gate(costs):
        begin = time.process_time()
        while True:
            start = time.process_time()
            frame = next(frames, None)
            costs.steps["decode"] += time.process_time() - start
            if frame is None:
                break
            analyser.process(frame)
            costs.frames += 1
        costs.total = time.process_time() - begin
    measured = sum(v for k, v in costs.steps.items() if k != "other")
    costs.steps["other"] = costs.total - measured
    costs.runs, costs.region_runs = analyser.stats.detector_runs, analyser.stats.detector_region_runs
    return costs


def letterbox_costs(rounds: int = 30) -> tuple[float, float]:
    """CPU ms of one network pass at 416x416 and at 416x256 (the open-input model file)."""
    session = ort.InferenceSession(
        str(resolve_model("yolox_nano_dynamic", None)), session_options(1), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    shapes = ((416, 416), (256, 416))
    blobs = {s: rng.integers(0, 255, (1, 3, *s)).astype(np.float32) for s in shapes}
    spent: dict[tuple[int, int], list[float]] = {s: [] for s in shapes}
    for k in range(rounds + 2):
        for s in shapes if k % 2 else reversed(shapes):
            start = time.process_time()
            session.run(None, {name: blobs[s]})
            if k >= 2:
                spent[s].append(time.process_time() - start)
    return 1000 * float(np.median(spent[shapes[0]])), 1000 * float(np.median(spent[shapes[1]]))


def clock_profile(fps: float, seconds: float) -> None:
    variants = (
        ("clock camera as the live wall has it (texture, bar, clock)", True, True, False),
        ("same, clock as a motion mask", True, True, True),
        ("same picture without the clock", False, True, False),
        ("still scene with the clock (no bar)", True, False, False),
        ("still scene, clock as a motion mask", True, False, True),
        ("still scene without the clock", False, False, False),
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="clock-costs-") as work:
        clips: dict[tuple[bool, bool], Path] = {}
        for clock in (True, False):
            for bar in (True, False):
                name = f"{'clock' if clock else 'plain'}-{'bar' if bar else 'still'}.mp4"
                clips[clock, bar] = clock_clip(Path(work) / name, seconds, clock, bar)
        for label, clock, bar, masked in variants:
            rows.append((label, masked, analyse_clip(clips[clock, bar], fps, masked)))
    square, tight = letterbox_costs()

    print("`" + " ".join([".venv/bin/python benchmarks/per_frame_costs.py", *sys.argv[1:]]) + "`")
    print()
    print(
        f"One live-wall camera ({CLOCK_SIZE[0]}x{CLOCK_SIZE[1]}, {seconds:g} s at {CLOCK_FPS} fps, analysed at "
        f"{fps:g} fps, statistics mode, YOLOX-Nano 416, motion gate defaults); process CPU ms per "
        "analysed frame; cores for 16 such cameras = 16 x fps x total."
    )
    print()
    print(
        "| scene | motion mask | detector runs / frames (on crops) | decode | gate | detector | tracker "
        "| other | total ms | 16 cameras, cores |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, masked, c in rows:
        per = {k: 1000 * v / max(c.frames, 1) for k, v in c.steps.items()}
        total = 1000 * c.total / max(c.frames, 1)
        print(
            f"| {label} | {'clock' if masked else '-'} | {c.runs} / {c.frames} ({c.region_runs}) "
            f"| {per['decode']:.2f} | {per['gate']:.2f} | {per['detector']:.2f} | {per['tracker']:.2f} "
            f"| {per['other']:.2f} | {total:.2f} | {16 * fps * total / 1000:.2f} |"
        )
    print()
    print(
        f"Network alone (yolox_nano_dynamic, 1 thread): 416x416 letterboxed square {square:.1f} ms, "
        f"416x256 (the 640x360 frame at the same scale, padding rows left out) {tight:.1f} ms: "
        f"{square / tight:.2f}x (`detector.input_shape: frame`)."
    )


if __name__ == "__main__":
    main()
