"""A real RTSP "clock camera" for latency measurements (issue 14): GStreamer's RTSP server serving a
live H.264 stream whose every frame shows, as a row of black and white blocks, the wall-clock time
at which it was pushed into the pipeline. Whoever decodes a frame (PyAV, or the browser at the far
end of the video wall, see `tests/support/clock.py`) reads the time back and subtracts it from its
own clock: the difference is the camera-to-here latency, with no clock to synchronise because every
process runs on the same machine.

Run with the system Python, which has the GObject bindings (`python3-gi`,
`gir1.2-gst-rtsp-server-1.0`), not the project's virtual environment (and without numpy, which the
system Python need not have):

    /usr/bin/python3 tests/support/rtsp_clock_server.py PORT [--fps 10] [--size 640x360] [--background RAW]

It serves rtsp://127.0.0.1:PORT/cam: H.264 constrained baseline, no B-frames, a keyframe every
second, x264's `zerolatency` tune, as a camera sends it. Signals make it misbehave as cameras do:
SIGUSR1 hangs it (sessions stay open, no video flows), SIGUSR2 resumes, SIGTERM stops it. It prints
`ready` once it listens.

The clock's layout is defined here, once, in pure Python: `clock.py` imports `cells` and `pattern`
from this module, and builds its JavaScript reader from the same constants.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

COLUMNS = 16
ROWS = 2
"""Two rows of sixteen blocks: a white marker, 15 bits; a black marker, 13 bits, 2 parity bits."""
BITS = 28
MODULO = 1 << BITS
"""The clock is milliseconds since the Unix epoch modulo 2^28 (about 74 hours): readers compare
times modulo the same number."""
ORIGIN = (16 / 640, 48 / 360)
"""Top-left corner of the blocks, as a share of the frame's width and height. 48 px down at 640x360
clears the banner the live tile burns along its top (21 px at 640x360, 20 px at 320x180, that is
40 px of the camera's 360), and keeps every block edge on the 8-pixel grid of H.264's transform."""
CELL = (24 / 640, 24 / 360)
"""One block, as a share of the frame: 24 px at 640x360, still 12 px at 320x180. Readers sample the
middle half of each block, so the ringing two H.264 encodes and a scale leave at its edges never
counts."""
BLACK, WHITE = 16, 235
"""Video-range luma: what decodes to RGB 0 and 255."""


def _edge(size: int, start: float, step: float, i: int) -> int:
    # floor(x + 0.5), not round(): Python rounds halves to even, JavaScript's Math.round up, and the
    # reader in the browser must find exactly the pixels this one does.
    return int(size * (start + i * step) + 0.5)


def cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The blocks of a `width` x `height` frame as (x0, y0, x1, y1), row by row: the first of each
    row is its marker (white, then black), then the bits, most significant first, then the parity.

    >>> cells(640, 360)[0], cells(640, 360)[17]
    ((16, 48, 40, 72), (40, 72, 64, 96))
    """
    out = []
    for row in range(ROWS):
        y0, y1 = _edge(height, ORIGIN[1], CELL[1], row), _edge(height, ORIGIN[1], CELL[1], row + 1)
        for col in range(COLUMNS):
            x0, x1 = _edge(width, ORIGIN[0], CELL[0], col), _edge(width, ORIGIN[0], CELL[0], col + 1)
            out.append((x0, y0, x1, y1))
    return out


def pattern(value: int) -> list[bool]:
    """The 32 blocks showing `value` (modulo 2^28), True for white, in the order of `cells`.

    Two parity bits (even parity of the upper and of the lower 14 bits) let a reader reject a frame
    a decoding error has smeared, rather than report a wrong time.

    >>> "".join("1" if b else "0" for b in pattern(5))
    '10000000000000000000000000010100'
    """
    value %= MODULO
    bits = [bool(value >> (BITS - 1 - i) & 1) for i in range(BITS)]
    high, low = bits[:14], bits[14:]
    per_row = COLUMNS - 1
    return [True, *bits[:per_row], False, *bits[per_row:], sum(high) % 2 == 1, sum(low) % 2 == 1]


def now_ms() -> int:
    """The wall clock as the blocks show it: milliseconds since the epoch, modulo 2^28."""
    return time.time_ns() // 1_000_000 % MODULO


class Frames:
    """I420 frames of the clock over a background: a soft grey texture with a bar sweeping across
    below the blocks (so the encoder codes motion, as on a real scene), or a `Clip`'s frames."""

    def __init__(self, width: int, height: int, background: Any = None) -> None:
        self.width, self.height = width, height
        self.background = background
        self.cells = cells(width, height)
        self.count = 0
        chroma = (width // 2) * (height // 2)
        # A texture is built once, in pure Python (~0.1 s): a diagonal ramp from 96 to 160.
        self.luma = bytes(96 + ((x + y) // 4) % 64 for y in range(height) for x in range(width))
        self.chroma = bytes([128]) * (2 * chroma)

    def background_frame(self) -> bytearray:
        """The next frame without its clock: drawn before the time is read, so that the time the
        blocks show is as near as can be to the moment the frame is pushed."""
        w, h = self.width, self.height
        if self.background is not None:
            data = bytearray(self.background.next())
        else:
            data = bytearray(self.luma + self.chroma)
            bar = 32
            x = (self.count * 8) % (w - bar)
            top = self.cells[-1][3] + 8
            for y in range(top, h):
                data[y * w + x : y * w + x + bar] = b"\xc8" * bar
        self.count += 1
        return data

    def stamp(self, data: bytearray, clock: int) -> bytes:
        """Draw `clock`'s blocks over a frame from `background_frame`."""
        w = self.width
        u_plane, v_plane = w * self.height, w * self.height + (w // 2) * (self.height // 2)
        for (x0, y0, x1, y1), white in zip(self.cells, pattern(clock), strict=True):
            luma = bytes([WHITE if white else BLACK]) * (x1 - x0)
            for y in range(y0, y1):
                data[y * w + x0 : y * w + x1] = luma
            if self.background is not None:  # a clip's colours would tint the blocks
                grey = b"\x80" * (x1 // 2 - x0 // 2)
                for y in range(y0 // 2, y1 // 2):
                    for plane in (u_plane, v_plane):
                        data[plane + y * (w // 2) + x0 // 2 : plane + y * (w // 2) + x1 // 2] = grey
        return bytes(data)


class Clip:
    """Raw I420 frames at the camera's size, read from a file in turn and looped. The file is
    decoded beforehand (`tests.support.rtsp.clock_camera` does it with PyAV): Debian's GStreamer
    here has no H.264 or MPEG-4 decoder (gst-libav is not installed), and reading raw frames costs
    the camera's pacing nothing."""

    def __init__(self, path: str, width: int, height: int) -> None:
        self.path = path
        self.size = width * height * 3 // 2
        self.file = open(path, "rb")  # noqa: SIM115 - read for the server's whole life
        if len(self.file.read(self.size)) < self.size:
            raise SystemExit(f"--background {path}: not one {width}x{height} I420 frame; decode it at --size")
        self.file.seek(0)

    def next(self) -> bytes:
        frame = self.file.read(self.size)
        if len(frame) < self.size:  # the end of the clip: start again from its first frame
            self.file.seek(0)
            frame = self.file.read(self.size)
        return frame


SOURCES: list[Any] = []
VALVES: list[Any] = []
HUNG = {"on": False}


def size_arg(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    width, height = int(w), int(h)
    # Tightly packed I420 (GStreamer's default strides) needs a width multiple of 8, height even.
    if width % 8 or height % 2 or width < 128 or height < 72:
        raise argparse.ArgumentTypeError(
            f"--size {text}: use WIDTHxHEIGHT, width a multiple of 8, height even"
        )
    return width, height


def main() -> None:
    # Imported here: the project's environment (pytest collects this file) has no GObject bindings.
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    parser = argparse.ArgumentParser(description="An RTSP camera whose frames show the wall clock.")
    parser.add_argument("port", type=int)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--size", type=size_arg, default=(640, 360), help="WIDTHxHEIGHT, default 640x360")
    parser.add_argument("--background", help="raw I420 frames at --size drawn under the clock, looped")
    args = parser.parse_args()
    width, height = args.size
    fps: int = args.fps

    Gst.init(None)
    loop = GLib.MainLoop()
    frames = Frames(width, height, Clip(args.background, width, height) if args.background else None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    # The appsrc is live and stamps each buffer with the pipeline's running time as it is pushed;
    # it keeps at most two frames, dropping the oldest, so a stalled consumer is shown the present.
    # x264 with `zerolatency` has no lookahead and no B-frames: a frame leaves the encoder as soon
    # as it is pushed (measured: on the wire 4 ms after the push). One slice per frame, not
    # zerolatency's sliced threads: FFmpeg's RTSP reader split a two-slice keyframe into two
    # frames, the second decoded without its top half, and every frame until the next keyframe
    # inherited the hole. The valve drops every encoded frame while the camera "hangs".
    factory.set_launch(
        "( appsrc name=clock is-live=true do-timestamp=true format=time max-buffers=2 leaky-type=downstream "
        f'caps="video/x-raw,format=I420,width={width},height={height},framerate={fps}/1,pixel-aspect-ratio=1/1" '
        "! videoconvert ! x264enc tune=zerolatency sliced-threads=false threads=1 speed-preset=veryfast "
        f"bitrate=1500 key-int-max={fps} bframes=0 ! video/x-h264,profile=constrained-baseline "
        "! h264parse config-interval=-1 ! video/x-h264,alignment=au "
        "! valve name=hang drop=false ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(True)

    def configured(_factory: Any, media: Any) -> None:
        pipeline = media.get_element()
        valve = pipeline.get_by_name("hang")
        valve.set_property("drop", HUNG["on"])
        source = pipeline.get_by_name("clock")
        VALVES.append(valve)
        SOURCES.append(source)

        def unprepared(_media: Any) -> None:
            for held, item in ((VALVES, valve), (SOURCES, source)):
                if item in held:
                    held.remove(item)

        media.connect("unprepared", unprepared)

    factory.connect("media-configure", configured)
    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)

    stop = threading.Event()

    def pump() -> None:
        """Push one frame every 1/fps s on an absolute schedule. The clock is read after the
        background is drawn and just before the blocks are (~0.5 ms, then the push)."""
        period = 1.0 / fps
        due = time.monotonic()
        while not stop.is_set():
            due += period
            wait = due - time.monotonic()
            if wait > 0:
                stop.wait(wait)
            elif wait < -period:  # fell behind (a loaded machine): skip, never burst
                due = time.monotonic()
            if not SOURCES:
                continue
            picture = frames.background_frame()
            picture = frames.stamp(picture, now_ms())
            buffer = Gst.Buffer.new_wrapped(picture)
            for source in list(SOURCES):
                source.emit("push-buffer", buffer)

    pusher = threading.Thread(target=pump, name="clock", daemon=True)
    pusher.start()

    def hang(on: bool) -> bool:
        HUNG["on"] = on
        for valve in VALVES:
            valve.set_property("drop", on)
        return True

    def quit_() -> bool:
        stop.set()
        loop.quit()
        return False

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, lambda: hang(True))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR2, lambda: hang(False))
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, quit_)
    print("ready", flush=True)
    loop.run()
    pusher.join(timeout=2)


if __name__ == "__main__":
    sys.exit(main())
