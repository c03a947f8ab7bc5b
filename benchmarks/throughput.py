"""Real-time camera streams per CPU core, measured side by side in one run.

For `vtest.avi` (768x576, 10 fps) analysed at 5 fps with every available rule on, compare:
  (a) decode-only: the floor, what FFmpeg costs to read the stream;
  (b) naive: the detector on every analysed frame, then the same tracker and rules;
  (c) Lanterne: motion-gated detection, tracker, rules.
Streams per core = seconds of video / CPU seconds spent (onnxruntime pinned to one thread, so
CPU time is one core's time). Each pipeline runs in this process one after the other.

    .venv/bin/python benchmarks/throughput.py [--video PATH ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lanterne.config import config_hash, parse_config
from lanterne.runtime.demo import DEMO_CONFIG
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector

ROOT = Path(__file__).resolve().parents[1]


def all_rules_config(gated: bool) -> dict:
    cfg = {**DEMO_CONFIG, "motion": {"enabled": gated}}
    cam = dict(cfg["cameras"][0])
    zones = [dict(z) for z in cam["zones"]]
    zones[1] = {
        **zones[1],
        "events": {
            **zones[1]["events"],
            "crowd_movement": {"min_speed": 0.3, "min_seconds": 1},
            "fire": {"experimental": True, "min_seconds": 3},
        },
    }
    cam["zones"] = zones
    cfg["cameras"] = [cam]
    return cfg


def decode_only(video: Path, fps: float) -> tuple[float, float]:
    src = FileSource("bench", str(video), fps=fps)
    c0 = time.process_time()
    last = 0.0
    for f in src.frames():
        last = f.pts
    return time.process_time() - c0, last + 0.1


def pipeline(video: Path, gated: bool) -> tuple[float, float, int, int]:
    cfg = parse_config(all_rules_config(gated))
    det = create_detector(cfg.detector, cfg.models_dir)
    cam = cfg.cameras[0]
    an = CameraAnalyser(cam, cfg, det, config_hash=config_hash(cfg))
    src = FileSource(cam.id, str(video), fps=cam.fps)
    c0 = time.process_time()
    last = 0.0
    for f in src.frames():
        an.process(f)
        last = f.pts
    an.finish()
    return time.process_time() - c0, last + 0.1, an.stats.detector_runs, an.stats.frames_analysed


def static_clip(dst: Path, seconds: float = 60.0) -> Path:
    """A static scene from real pixels: the empty room of Intel's clip (frame 900) held for a
    minute, re-encoded at 10 fps so the encoder's noise is there as on a real camera."""
    import av

    src = ROOT.parent / "shared" / "data" / "video" / "intel_one-by-one-person-detection.mp4"
    with av.open(str(src)) as inp:
        frame = next(f for i, f in enumerate(inp.decode(video=0)) if i == 900).to_ndarray(format="bgr24")
    with av.open(str(dst), "w") as out:
        s = out.add_stream("mpeg4", rate=10)
        s.height, s.width = frame.shape[:2]
        s.pix_fmt = "yuv420p"
        s.bit_rate = 2_000_000
        for i in range(int(seconds * 10)):
            vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser()
    data = ROOT.parent / "shared" / "data" / "video"
    ap.add_argument(
        "--video",
        type=Path,
        action="append",
        help="clip(s) to measure (default: vtest.avi, busy; intel_one-by-one-person-detection.mp4, often empty)",
    )
    args = ap.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    videos = args.video or [
        data / "vtest.avi",
        data / "intel_one-by-one-person-detection.mp4",
        static_clip(tmp / "static-room.mp4"),
    ]
    fps = 5.0
    print(f"analysed at {fps:g} fps, all rules on, onnxruntime 1 thread; streams/core = video s / CPU s")
    print(f"{'clip':40} {'pipeline':36} {'cpu s':>7} {'streams/core':>13} {'detector runs':>14}")
    for video in videos:
        dec_cpu, secs = decode_only(video, fps)
        naive_cpu, _, naive_runs, frames = pipeline(video, gated=False)
        gated_cpu, _, gated_runs, _ = pipeline(video, gated=True)
        rows = [
            ("decode only", dec_cpu, "-"),
            ("naive (detector every analysed frame)", naive_cpu, f"{naive_runs}/{frames}"),
            ("lanterne (motion-gated)", gated_cpu, f"{gated_runs}/{frames}"),
        ]
        name = f"{video.name} ({secs:.0f} s)"
        for label, cpu, runs in rows:
            print(f"{name:40} {label:36} {cpu:7.2f} {secs / cpu:13.1f} {runs:>14}")
        print(
            f"{'':40} lanterne vs naive: {naive_cpu / gated_cpu:.2f}x, "
            f"lanterne / decode-only cost: {gated_cpu / dec_cpu:.1f}x"
        )


if __name__ == "__main__":
    main()
