"""What recording costs per camera: remux + encryption + index, beside decoding the same stream.

The goal of issue 11 is at most 0.02 core per 1080p 4 Mbit/s camera. Measured on two clips: a
1080p H.264 clip at about 4 Mbit/s, 25 fps, a keyframe every 2 s (made once from vtest.avi,
upscaled, with PyAV/libx264, cached under /tmp), and vtest.avi itself (768x576 MPEG-4 part 2,
0.8 Mbit/s). For each: CPU seconds per second of video for demuxing only (what the camera source
does anyway), for demux + recording, and for demux + decoding; the recording's share is the
difference with demux-only, printed as cores per camera and as a ratio to decoding. Storage per
camera-day is the bytes written per second of video times 86,400. Accuracy beside speed: the
segments are read back through `open_segment` and their frames counted against the source's.

    .venv/bin/python benchmarks/recording.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
VTEST = ROOT.parent / "shared" / "data" / "video" / "vtest.avi"
CACHE = Path(tempfile.gettempdir()) / "lanterne-bench"
CLIP_1080 = CACHE / "recording-1080p-4mbit-h264.mp4"


def make_1080p(path: Path) -> Path:
    """750 frames of vtest.avi at 1920x1080, 25 fps (30 s), x264 at 4 Mbit/s, keyframe every 2 s."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(VTEST)) as src, av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=25, options={"preset": "veryfast", "g": "50", "keyint_min": "50"})
        s.width, s.height, s.pix_fmt = 1920, 1080, "yuv420p"
        s.bit_rate = 4_000_000
        for i, frame in enumerate(src.decode(video=0)):
            if i == 750:
                break
            f = frame.reformat(width=1920, height=1080, format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    tmp.rename(path)
    return path


def demux_only(clip: Path) -> tuple[float, int]:
    t = time.process_time()
    with av.open(str(clip)) as src:
        n = sum(1 for p in src.demux(src.streams.video[0]) if p.size)
    return time.process_time() - t, n


def decode(clip: Path) -> tuple[float, int]:
    t = time.process_time()
    with av.open(str(clip)) as src:
        st = src.streams.video[0]
        st.thread_type = "AUTO"
        n = sum(1 for _ in src.decode(st))
    return time.process_time() - t, n


def record(clip: Path, work: Path) -> tuple[float, int, int]:
    """CPU of demux + recording, bytes written, frames read back."""
    from lanterne.audit import AuditLog
    from lanterne.config.schema import RecordingSettings
    from lanterne.runtime.recording import open_recorder
    from lanterne.store import Store
    from lanterne.video.recording import KeyRing, open_segment, segments

    store = Store.open(f"sqlite:///{work / 'db.sqlite'}")
    settings = RecordingSettings(dir=work / "rec", key_file=work / "keys.json", segment_seconds=10)
    keys = KeyRing.load_or_create(settings.key_file)
    rec = open_recorder(settings, store, AuditLog(store.engine), keys=keys)
    origin = datetime(2026, 5, 1, tzinfo=UTC)
    t = time.process_time()
    with av.open(str(clip)) as src:
        cam = rec.open("bench", src.streams.video[0], origin)
        for p in src.demux(src.streams.video[0]):
            cam.push(p)
        cam.close()
    cpu = time.process_time() - t
    rows = segments(store, "bench", origin, datetime(2027, 1, 1, tzinfo=UTC))
    size = sum(r.size for r in rows)
    frames = 0
    for r in rows:
        with av.open(io.BytesIO(open_segment(r, settings.dir, keys))) as c:
            frames += sum(1 for _ in c.decode(video=0))
    store.close()
    return cpu, size, frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    clips = {"1080p H.264 ~4 Mbit/s": make_1080p(CLIP_1080), "vtest.avi 768x576 MPEG-4": VTEST}
    print(
        "| clip | Mbit/s | video s | demux only (core) | recording (core/camera) | decode only (core) | recording / decode | storage per camera-day | frames read back / source |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, clip in clips.items():
        with av.open(str(clip)) as c:
            st = c.streams.video[0]
            seconds = float(st.duration * st.time_base) if st.duration else float(c.duration / av.time_base)
        dm = min(demux_only(clip)[0] for _ in range(args.repeat))
        dec_runs = [decode(clip) for _ in range(args.repeat)]
        dec = min(r[0] for r in dec_runs) - dm
        src_frames = dec_runs[0][1]
        recs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                recs.append(record(clip, Path(tmp)))
        cpu = min(r[0] for r in recs) - dm
        _, size, frames = recs[0]
        mbit = clip.stat().st_size * 8 / seconds / 1e6
        print(
            f"| {name} | {mbit:.1f} | {seconds:.1f} | {dm / seconds:.4f} | {cpu / seconds:.4f} | {dec / seconds:.3f} "
            f"| {cpu / dec:.3f} | {size / seconds * 86400 / 1e9:.1f} GB | {frames} / {src_frames} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
