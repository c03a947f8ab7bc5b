"""Evidence cost of overlapping events, before and after anonymising each frame once (issue 10).

Real 768x576 frames of `vtest.avi` at the 5 fps analysis rate, with the detector's person boxes
(computed beforehand, not timed), go through three evidence writers in turn, each with the full
`DefaultAnonymizer` (faces, plates, head bands) and one OpenCV thread:

  per event  the writer of `--before` with its shared cache switched off: every event's clip and
             snapshot anonymises its own copy of every frame (what issue 10 measured);
  before     the writer of `--before` as committed (48 anonymised frames shared by all cameras);
  now        this checkout's writer: each frame anonymised at most once, kept in the camera's
             ring buffer in place of the raw frame.

Each camera gets `--events` events raised a second apart, each open for 5 s (3 s pre- and
post-roll), all over the same ~10 s. Printed per writer: anonymiser calls, CPU seconds of the
anonymiser and of the whole writer (encoding included), and whether its clips decode to the same
pixels as the per-event path (the old content). Run from a git checkout:

    .venv/bin/python benchmarks/evidence_overlap.py [--cameras 1] [--events 5] [--paths per-event,before,now]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import av
import cv2
import numpy as np

from lanterne.config.schema import DetectorSettings
from lanterne.core.types import Event, EventType
from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector
from lanterne.video.detectors.base import PixelBox
from lanterne.video.evidence.writer import EvidenceWriter

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "779ea2a86bf32c97be992fb06ff806c249cc308d"
"""The last commit whose writer anonymised per clip (with a 48-frame cache shared by cameras)."""
FPS = 5.0
DAY = datetime(2026, 5, 1, 12, tzinfo=UTC)


class Counting:
    """The real anonymiser, with its calls and CPU time counted."""

    def __init__(self) -> None:
        self.inner = DefaultAnonymizer()
        self.calls = 0
        self.cpu = 0.0

    def anonymize(
        self, image: np.ndarray, person_boxes: Sequence[PixelBox] = (), vehicle_boxes: Sequence[PixelBox] = ()
    ) -> np.ndarray:
        c0 = time.thread_time()
        out = self.inner.anonymize(image, person_boxes, vehicle_boxes)
        self.cpu += time.thread_time() - c0
        self.calls += 1
        return out


def load_writer(rev: str) -> ModuleType:
    """The writer module as it was at `rev`, imported under its own name beside today's."""
    try:
        src = subprocess.run(
            ["git", "show", f"{rev}:src/lanterne/video/evidence/writer.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.exit(f"cannot read the writer at {rev} (needs a git checkout): {exc}")
    path = Path(tempfile.mkdtemp()) / "writer_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("writer_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def scene(video: Path, seconds: float) -> list[tuple[np.ndarray, tuple[PixelBox, ...]]]:
    """Frames at the analysis rate with the detector's person boxes, as the analyser pushes them."""
    detector = create_detector(DetectorSettings())
    out: list[tuple[np.ndarray, tuple[PixelBox, ...]]] = []
    for f in FileSource("bench", str(video), fps=FPS).frames():
        if f.pts > seconds:
            break
        det = detector.detect(f.image)
        names = det.data.get("class_name", [])
        boxes = tuple(
            (int(x0), int(y0), int(x1), int(y1))
            for (x0, y0, x1, y1), name in zip(det.xyxy, names, strict=True)
            if name == "person"
        )
        out.append((f.image, boxes))
    return out


def events(camera: str, n: int) -> dict[float, list[Event]]:
    """`n` events raised a second apart from 3 s, each open 5 s: all overlap between 7 s and 8 s."""
    updates: dict[float, list[Event]] = {}
    for i in range(n):
        e = Event(
            id=f"{camera}{i:04d}",
            type=EventType.ZONE_INTRUSION,
            camera=camera,
            zone="quay",
            start=2.0 + i,
            end=3.0 + i,
            confidence=0.7,
            region=(0.3, 0.2, 0.6, 0.9),
            ongoing=True,
            object_class="person",
        )
        updates.setdefault(e.end, []).append(e)
        updates.setdefault(8.0 + i, []).append(replace(e, end=8.0 + i, ongoing=False))
    return updates


def run(
    writer_cls: type,
    root: Path,
    frames: Sequence[tuple[np.ndarray, tuple[PixelBox, ...]]],
    cameras: int,
    n: int,
) -> tuple[Counting, float, dict[str, list[np.ndarray]]]:
    anonymizer = Counting()
    w = writer_cls(root, anonymizer, None, pre_seconds=3, post_seconds=3, clock=lambda: DAY)
    names = [f"cam{k}" for k in range(cameras)]
    updates = [events(name, n) for name in names]
    c0 = time.process_time()
    for i, (image, boxes) in enumerate(frames):
        t = round(i / FPS, 6)
        for name, ups in zip(names, updates, strict=True):
            # Each camera has its own frame object, as it would from its own stream.
            w.push(name, t, image.copy(), boxes, ())
            for e in ups.get(t, []):
                w.on_event(e)
    w.close()
    cpu = time.process_time() - c0
    clips: dict[str, list[np.ndarray]] = {}
    for path in sorted(root.rglob("*-clip.mp4")):
        with av.open(str(path)) as c:
            clips[path.name] = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    return anonymizer, cpu, clips


def same(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> str:
    if a.keys() != b.keys():
        return "different clips"
    pairs = [(x, y) for k in a for x, y in zip(a[k], b[k], strict=False)]
    if any(len(a[k]) != len(b[k]) for k in a):
        return "different frame counts"
    differing = sum(not np.array_equal(x, y) for x, y in pairs)
    return "identical" if differing == 0 else f"{differing}/{len(pairs)} frames differ"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=ROOT.parent / "shared" / "data" / "video" / "vtest.avi")
    ap.add_argument("--cameras", type=int, default=1)
    ap.add_argument("--events", type=int, default=5, help="overlapping events per camera")
    ap.add_argument("--before", default=BEFORE, help="git revision of the writer to compare with")
    ap.add_argument("--paths", default="per-event,before,now")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    paths = args.paths.split(",")
    seconds = 8.0 + args.events - 1 + 3.0 + 1.0  # the last event's close, post-roll, one frame more
    frames = scene(args.video, seconds)
    h, w = frames[0][0].shape[:2]
    print(
        f"{args.video.name} {w}x{h}, {len(frames)} frames at {FPS:g} fps per camera, {args.cameras} camera(s), "
        f"{args.events} overlapping events each (3 s pre/post), full DefaultAnonymizer, 1 OpenCV thread"
    )
    before = load_writer(args.before) if {"per-event", "before"} & set(paths) else None
    results: dict[str, tuple[Counting, float, dict[str, list[np.ndarray]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label in paths:
            if label == "now":
                cls = EvidenceWriter
            else:
                assert before is not None
                before.ANON_CACHE_FRAMES = 0 if label == "per-event" else 48
                cls = before.EvidenceWriter
            results[label] = run(cls, Path(tmp) / label, frames, args.cameras, args.events)
    pushed = len(frames) * args.cameras
    print(f"{'writer':10} {'anonymiser calls':>17} {'per pushed frame':>17} {'anonymiser cpu s':>17} "
          f"{'writer cpu s':>13}  clips vs per-event")  # fmt: skip
    ref = results.get("per-event")
    for label, (anon, cpu, clips) in results.items():
        check = "-" if ref is None or label == "per-event" else same(ref[2], clips)
        print(
            f"{label:10} {anon.calls:17d} {anon.calls / pushed:17.2f} {anon.cpu:17.2f} {cpu:13.2f}  {check}"
        )
    if "now" in results:
        now_anon, now_cpu, _ = results["now"]
        for label in ("per-event", "before"):
            if label in results:
                anon, cpu, _ = results[label]
                print(
                    f"{label} / now: anonymiser calls {anon.calls / now_anon.calls:.1f}x, "
                    f"writer CPU {cpu / now_cpu:.1f}x"
                )


if __name__ == "__main__":
    main()
