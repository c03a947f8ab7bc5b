"""Sources: time from timestamps, audio never decoded, bad input named."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import lanterne.video.capture.source as source_mod
from lanterne.core.errors import SourceError
from lanterne.core.masks import MASK_VALUE
from lanterne.video.capture.source import FileSource, LiveSource

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"


def write_clip(
    path: Path,
    times: list[float],
    audio: bool = False,
    size: tuple[int, int] = (160, 120),
    rate: int = 25,
) -> None:
    """A small real encoded clip whose frames sit at the given times (seconds), rounded to
    1/`rate` s by the codec's clock."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=rate)
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        v.time_base = Fraction(1, 1000)
        a = out.add_stream("aac", rate=16000) if audio else None
        for i, t in enumerate(times):
            img = np.full((size[1], size[0], 3), (i * 7) % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = round(t * 1000)
            frame.time_base = Fraction(1, 1000)
            for p in v.encode(frame):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            samples = np.sin(np.linspace(0, 2000, 16000 * 2)).astype(np.float32)[None, :]
            af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            af.sample_rate = 16000
            af.pts = 0
            for p in a.encode(af):
                out.mux(p)
            for p in a.encode():
                out.mux(p)


def test_vtest_times_come_from_timestamps() -> None:
    src = FileSource("c", str(VIDEO / "vtest.avi"), fps=5)
    times = [f.pts for f in src.frames()]
    assert src.stats.frames_decoded == 795
    assert len(times) == 398  # every other frame of a 10 fps clip
    assert times[:3] == pytest.approx([0.0, 0.2, 0.4])
    assert times[-1] == pytest.approx(79.4)


def test_variable_rate_selects_by_time(tmp_path: Path) -> None:
    # 25 fps with a 2-second hole (a stream that dropped frames): time must jump, not drift.
    times = [i / 25 for i in range(50)] + [4 + i / 25 for i in range(50)]
    clip = tmp_path / "vfr.mkv"
    write_clip(clip, times)
    got = [f.pts for f in FileSource("c", str(clip), fps=5).frames()]
    assert got[0] == 0.0
    assert any(abs(t - 4.0) < 0.05 for t in got), "the frame after the hole carries its real time"
    gaps = np.diff(got)
    assert gaps.min() > 0.15 and max(gaps) > 1.9
    assert len(got) == 20


def test_a_jittered_camera_is_analysed_on_a_regular_grid(tmp_path: Path) -> None:
    """A 10 fps camera whose frames come a few milliseconds early or late is analysed at 5 fps
    every other frame, never slipping a frame because its due one came 3 ms early."""
    clip = tmp_path / "jitter.mp4"
    times = [i / 10 + (-0.003 if i % 4 == 2 else 0.002 * (i % 2)) for i in range(40)]
    write_clip(clip, times, size=(64, 48), rate=1000)
    got = [f.index for f in FileSource("c", str(clip), fps=5).frames()]
    assert got == list(range(0, 40, 2)), got


class _Taker:
    """Takes the frames analysis skips, from a given time on, noting when each arrived."""

    def __init__(self, after: float) -> None:
        self.after = after
        self.origin = time.monotonic()
        self.got: list[tuple[float, float, int]] = []

    def wanted(self) -> bool:
        return time.monotonic() - self.origin >= self.after

    def push(self, frame) -> None:  # type: ignore[no-untyped-def]
        self.got.append((frame.pts, time.monotonic() - self.origin, int(frame.image[0, 0, 0])))


def test_frames_analysis_skips_go_to_a_taker_only_while_it_wants_them_paced(tmp_path: Path) -> None:
    """The live wall shows a 10 fps camera analysed at 5 fps at 10 fps: the skipped frames go to
    the source's `between` taker, each held to its time like the analysed ones, with the privacy
    masks painted; none before it wants them, and the analysed frames are the same either way."""
    clip = tmp_path / "ten.mp4"
    write_clip(clip, [i / 10 for i in range(20)], size=(64, 48))
    src = FileSource("c", str(clip), fps=5, pace=True, masks=[[(0, 0), (0.5, 0), (0.5, 0.5), (0, 0.5)]])
    taker = _Taker(after=0.95)
    src.between = taker
    analysed = [f.pts for f in src.frames()]
    assert analysed == pytest.approx([i / 5 for i in range(10)])
    assert [round(t, 1) for t, _, _ in taker.got] == [1.1, 1.3, 1.5, 1.7, 1.9]
    assert all(arrived >= t - 0.02 for t, arrived, _ in taker.got), taker.got  # paced
    assert {masked for _, _, masked in taker.got} == {MASK_VALUE}  # the mask's corner is painted


def test_audio_is_never_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "with_audio.mkv"
    write_clip(clip, [i / 25 for i in range(25)], audio=True)
    with av.open(str(clip)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
    demuxed: list[list[str]] = []
    real_open = av.open

    class Spy:
        def __init__(self, c: av.container.InputContainer) -> None:
            self._c = c

        def __getattr__(self, name: str) -> object:
            return getattr(self._c, name)

        def demux(self, *streams: object) -> object:
            demuxed.append([s.type for s in streams])  # type: ignore[attr-defined]
            return self._c.demux(*streams)

    monkeypatch.setattr(source_mod.av, "open", lambda *a, **k: Spy(real_open(*a, **k)))
    frames = list(FileSource("c", str(clip), fps=None).frames())
    assert len(frames) == 25
    assert demuxed == [["video"]]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "file is empty"),
        (lambda p: p.write_text("not a video at all\n" * 100), "not a video file FFmpeg can read"),
        (
            lambda p: p.write_bytes((VIDEO / "TUD-Campus.mp4").read_bytes()[:200_000]),
            "not a video file FFmpeg can read",
        ),
    ],
)
def test_bad_files_are_named(tmp_path: Path, make: object, message: str) -> None:
    p = tmp_path / "clip.mp4"
    make(p)  # type: ignore[operator]
    with pytest.raises(SourceError, match=message) as exc:
        list(FileSource("c", str(p), fps=5).frames())
    assert str(p) in str(exc.value)


def test_truncated_file_keeps_frames_and_reports(tmp_path: Path) -> None:
    p = tmp_path / "trunc.avi"
    p.write_bytes((VIDEO / "vtest.avi").read_bytes()[:2_000_000])
    src = FileSource("c", str(p), fps=5)
    frames = list(src.frames())
    assert 50 < len(frames) < 398
    assert src.error is not None and "truncated" in str(src.error)


def test_dead_rtsp_retries_with_backoff_and_stops() -> None:
    stop = threading.Event()
    src = LiveSource("c", "rtsp://user:secret@127.0.0.1:9/stream", fps=5, stop=stop, max_backoff=0.2)
    got: list[object] = []
    th = threading.Thread(target=lambda: got.extend(src.frames()))
    th.start()
    time.sleep(2.5)
    stop.set()
    th.join(timeout=10)
    assert not th.is_alive()
    assert got == []
    assert src.stats.reconnects >= 2
    assert src.last_error is not None and "secret" not in src.last_error and "***@127.0.0.1" in src.last_error
