"""The clock camera the live wall's latency is measured with (issue 14): a real RTSP server whose
every frame shows the wall-clock time it was pushed at. Read back with PyAV, every frame's clock
reads, one frame interval after the last, and no later than the moment it is decoded; it still
reads after a second H.264 encode at the live tile's sizes; a frame without the clock, or with a
block the codec smeared, reads as None, never as a wrong time. The camera hangs and resumes on
request, as `rtsp_camera` does."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from fractions import Fraction

import av
import av.error
import cv2
import numpy as np
import pytest

from tests.support.clock import MODULO, elapsed_ms, now_ms, pattern, read_clock
from tests.support.rtsp import clock_camera
from tests.support.rtsp_clock_server import cells
from tests.support.video import VIDEO

LEAN = {"rtsp_transport": "tcp", "fflags": "nobuffer", "analyzeduration": "0", "probesize": "32"}
"""FFmpeg's default stream probe reads about three seconds of a 10 fps camera before `av.open`
returns, then hands those frames over late; the SDP already says what the stream is, so this test
skips the probe and every frame it sees is a fresh one."""


def synthetic(value: int, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """A grey BGR picture with `value`'s blocks drawn as the server draws them."""
    w, h = size
    picture = np.full((h, w, 3), 128, np.uint8)
    for (x0, y0, x1, y1), white in zip(cells(w, h), pattern(value), strict=True):
        picture[y0:y1, x0:x1] = 255 if white else 0
    return picture


@pytest.mark.parametrize("value", [0, 1, 5, 123_456_789, MODULO - 1, MODULO + 7])
@pytest.mark.parametrize("size", [(640, 360), (320, 180), (1280, 720)])
def test_the_blocks_read_back_at_every_scale(value: int, size: tuple[int, int]) -> None:
    assert read_clock(synthetic(value, size)) == value % MODULO
    grey = cv2.cvtColor(synthetic(value, size), cv2.COLOR_BGR2GRAY)
    assert read_clock(grey) == value % MODULO


def test_no_clock_or_a_smeared_block_reads_as_none() -> None:
    assert read_clock(np.full((360, 640, 3), 128, np.uint8)) is None
    assert read_clock(np.zeros((360, 640), np.uint8)) is None
    flipped = synthetic(123_456_789)
    x0, y0, x1, y1 = cells(640, 360)[5]
    flipped[y0:y1, x0:x1] = 255 - flipped[y0:y1, x0:x1]  # one bit wrong: the parity says so
    assert read_clock(flipped) is None
    grey = synthetic(123_456_789)
    grey[y0:y1, x0:x1] = 128  # a block neither black nor white
    assert read_clock(grey) is None


def test_elapsed_is_taken_modulo_the_clock() -> None:
    assert elapsed_ms(MODULO - 50, 50) == 100
    assert elapsed_ms(50, MODULO - 50) == -100
    assert 0 <= elapsed_ms(now_ms()) < 1000


def _frames(url: str, count: int) -> Iterator[tuple[av.VideoFrame, int]]:
    """`count` decoded frames of `url`, each with the wall clock (ms, modulo) it was decoded at."""
    with av.open(url, options=LEAN, timeout=(10.0, 5.0)) as container:
        for seen, frame in enumerate(container.decode(video=0), start=1):
            yield frame, now_ms()
            if seen == count:
                return


def _reencoded(frames: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """The frames scaled to `size` and through a second H.264 encode, as the live tile makes them."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = size[0], size[1], "yuv420p"
    codec.time_base = Fraction(1, 10)
    codec.options = {"preset": "veryfast", "tune": "zerolatency", "g": "10", "bf": "0"}
    decoder = av.CodecContext.create("h264", "r")
    out = []
    for i, image in enumerate([*frames, None]):
        if image is None:
            packets = codec.encode(None)
        else:
            tile = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(tile, format="bgr24").reformat(format="yuv420p")
            frame.pts = i
            packets = codec.encode(frame)
        for packet in packets:
            out += [f.to_ndarray(format="bgr24") for f in decoder.decode(packet)]
    out += [f.to_ndarray(format="bgr24") for f in decoder.decode(None)]
    return out


def test_pyav_reads_the_clock_of_every_frame() -> None:
    with clock_camera() as camera:
        decoded = list(_frames(camera.url, 20))
    clocks = [read_clock(frame.to_ndarray(format="bgr24")) for frame, _ in decoded]
    assert None not in clocks, f"every frame shows its clock: {clocks}"
    readings = [c for c in clocks if c is not None]
    steps = [elapsed_ms(a, b) for a, b in itertools.pairwise(readings)]
    # 10 fps: 100 ms apart; the server paces on an absolute schedule, so a late frame on a loaded
    # machine is followed by an early one, and a frame it had to skip shows as 200 ms.
    assert all(50 <= step <= 250 for step in steps), steps
    assert 80 <= sum(steps) / len(steps) <= 120, steps
    ages = [elapsed_ms(clock, at) for clock, (_, at) in zip(readings, decoded, strict=True)]
    assert all(0 <= age < 1000 for age in ages), f"decoded after it was sent, and soon: {ages}"

    pictures = [frame.to_ndarray(format="bgr24") for frame, _ in decoded]
    for size in [(640, 360), (320, 180)]:
        again = _reencoded(pictures, size)
        assert [read_clock(p) for p in again] == readings, f"the clock survives a second encode at {size}"


def test_a_clip_background_at_another_size() -> None:
    with clock_camera(size=(320, 180), background=VIDEO / "vtest.avi") as camera:
        decoded = list(_frames(camera.url, 10))
    assert {(frame.width, frame.height) for frame, _ in decoded} == {(320, 180)}
    clocks = [read_clock(frame.to_ndarray(format="bgr24")) for frame, _ in decoded]
    assert None not in clocks, f"the clock reads over PETS at 320x180: {clocks}"


def test_the_clock_camera_hangs_and_resumes() -> None:
    with clock_camera() as camera:
        after_hang = 0
        started = time.monotonic()
        # A hung camera keeps the session open and sends nothing: only the read timeout ends it.
        with (
            pytest.raises(av.error.FFmpegError),
            av.open(camera.url, options=LEAN, timeout=(10.0, 1.0)) as container,
        ):
            for seen, _ in enumerate(container.decode(video=0)):
                if seen == 2:
                    camera.hang()
                elif seen > 2:
                    after_hang += 1
                    if after_hang > 20:
                        break  # still flowing two seconds on: the hang did nothing
        assert after_hang <= 3, "at most the frames already on their way arrive after the hang"
        assert time.monotonic() - started < 20
        camera.resume()
        (frame, at), *_ = _frames(camera.url, 1)
        clock = read_clock(frame.to_ndarray(format="bgr24"))
        assert clock is not None
        assert 0 <= elapsed_ms(clock, at) < 1000, "after resuming, the frames are the present"
