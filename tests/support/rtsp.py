"""Start the real RTSP camera of `rtsp_server.py` for a test, and make it misbehave."""

from __future__ import annotations

import os
import signal
import subprocess
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
