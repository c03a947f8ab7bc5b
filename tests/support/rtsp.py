"""Start the real RTSP camera of `rtsp_server.py` for a test, and make it misbehave."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av

from tests.support.browser import free_port
from tests.support.video import VIDEO

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
"""Debian's Python, which has the GStreamer bindings (`.ci/run` installs them)."""


def h264_clip(path: Path, frames: int = 200) -> Path:
    """PETS in H.264 with a keyframe every second and no B-frames, as a camera sends it."""
    with av.open(str(VIDEO / "vtest.avi")) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options = {"g": "10", "bf": "0", "preset": "veryfast"}
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            frame.pts = None
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _serve(clip: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, str(SERVER), str(clip), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"the RTSP test server did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc


def _end(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class Camera:
    url: str
    process: subprocess.Popen[str]
    clip: Path
    port: int

    def hang(self) -> None:
        """Keep the session open and send nothing, as a frozen encoder does."""
        os.kill(self.process.pid, signal.SIGUSR1)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGUSR2)

    def die(self) -> None:
        """The camera loses power: the server is killed, its connections drop, nothing listens."""
        self.process.kill()
        self.process.wait(timeout=5)

    def revive(self) -> None:
        """The camera boots again at the same address."""
        self.process = _serve(self.clip, self.port)


@contextmanager
def rtsp_camera(clip: Path) -> Iterator[Camera]:
    port = free_port()
    camera = Camera(f"rtsp://127.0.0.1:{port}/cam", _serve(clip, port), clip, port)
    try:
        yield camera
    finally:
        _end(camera.process)


CLOCK_SERVER = Path(__file__).with_name("rtsp_clock_server.py")
BACKGROUND_FRAMES = 100
"""Frames of a background clip the clock camera loops (10 s at 10 fps, 35 MB raw at 640x360)."""


def raw_background(clip: Path, size: tuple[int, int], path: Path, frames: int = BACKGROUND_FRAMES) -> Path:
    """The first `frames` of `clip` scaled to `size` as raw I420 in `path`: what the clock server
    draws its clock over (it cannot decode the clip itself, see `rtsp_clock_server.Clip`)."""
    with av.open(str(clip)) as src, path.open("wb") as out:
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            out.write(frame.reformat(width=size[0], height=size[1], format="yuv420p").to_ndarray().tobytes())
    return path


def _serve_clock(port: int, fps: int, size: tuple[int, int], raw: Path | None) -> subprocess.Popen[str]:
    args = [SYSTEM_PYTHON, str(CLOCK_SERVER), str(port), "--fps", str(fps), "--size", f"{size[0]}x{size[1]}"]
    if raw is not None:
        args += ["--background", str(raw)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(
            f"the RTSP clock camera did not start: {proc.stderr.read() if proc.stderr else ''}"
        )
    return proc


@dataclass
class ClockCamera(Camera):
    """The clock camera of `rtsp_clock_server.py`: every frame shows the wall-clock time it was
    pushed at (read it with `tests.support.clock`). `clip` is the background clip, or the server
    script when it draws its own background; `raw` is the clip's frames as the server reads them."""

    fps: int
    size: tuple[int, int]
    raw: Path | None

    def revive(self) -> None:
        self.process = _serve_clock(self.port, self.fps, self.size, self.raw)


@contextmanager
def clock_camera(
    fps: int = 10, size: tuple[int, int] = (640, 360), background: Path | None = None
) -> Iterator[Camera]:
    """A live RTSP camera on a free port whose frames carry the wall clock, for latency tests.

    `background`: a clip (any format PyAV reads) whose first frames, scaled to `size`, are looped
    under the clock; by default a grey texture with a moving bar. People in the clip are detected
    and their heads pixelated downstream: keep them away from the clock's top-left corner."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="clock-camera-") as work:
        raw = raw_background(background, size, Path(work) / "background.i420") if background else None
        camera = ClockCamera(
            f"rtsp://127.0.0.1:{port}/cam",
            _serve_clock(port, fps, size, raw),
            background or CLOCK_SERVER,
            port,
            fps,
            size,
            raw,
        )
        try:
            yield camera
        finally:
            _end(camera.process)
