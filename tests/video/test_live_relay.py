"""The live wall's fallback (issue 14, item 2): the anonymised RTP stream the camera's process sends
becomes JPEG pictures in the console. Real parts: the `LiveEncoder` sending PETS frames over UDP,
the `JpegRelay` receiving, depacketising and decoding them with FFmpeg. The pictures must be what
the WebRTC viewer gets (heads pixelated, the whole picture when the boxes are stale): the relay
only carries what the camera's process already anonymised."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

import av
import cv2
import numpy as np
import pytest

from lanterne.core.types import Frame
from lanterne.video.anonymize.anonymizer import head_region
from lanterne.video.detectors.base import PixelBox
from lanterne.video.live import JpegRelay, LiveEncoder
from lanterne.video.live.encoder import Fit, anonymise_tile, shrink
from lanterne.video.live.relay import START_CODE, Depacketiser
from tests.support.video import VIDEO

FRAMES = 30
SIZE = (768, 576)
TILE = (640, 360)
FIT = Fit.of(SIZE, TILE)


@pytest.fixture(scope="module")
def pets() -> tuple[list[np.ndarray], dict[int, list[PixelBox]]]:
    with av.open(str(VIDEO / "vtest.avi")) as c:
        frames = [
            f.to_ndarray(format="bgr24") for _, f in zip(range(FRAMES), c.decode(video=0), strict=False)
        ]
    people: dict[int, list[PixelBox]] = {}
    for row in np.loadtxt(VIDEO / "vtest.PETS09-S2L1.gt.txt", delimiter=","):
        f, _, x, y, w, h = row[:6]
        people.setdefault(int(f) - 1, []).append((int(x), int(y), int(x + w), int(y + h)))
    return frames, people


def _tile(image: np.ndarray, boxes: list[PixelBox] | None) -> np.ndarray:
    tile = np.zeros((TILE[1], TILE[0], 3), np.uint8)
    tile[FIT.y : FIT.y + FIT.height, FIT.x : FIT.x + FIT.width] = shrink(image, (FIT.width, FIT.height))
    if boxes is not None:
        anonymise_tile(tile, FIT, boxes, [])
    return tile


def _relay_pictures(
    relay: JpegRelay, push: Callable[[LiveEncoder, int], None], want: int
) -> tuple[list[np.ndarray], LiveEncoder]:
    """Push frames to an encoder aimed at the relay until `want` pictures came out of it."""
    got: list[np.ndarray] = []
    came = threading.Event()
    stop = relay.listen(came.set)
    enc = LiveEncoder("pets", "127.0.0.1", relay.port)
    try:
        deadline = time.monotonic() + 30
        i = 0
        while len(got) < want and time.monotonic() < deadline:
            push(enc, i)
            i += 1
            if came.wait(0.2):
                came.clear()
                _, jpeg, _ = relay.latest()
                assert jpeg is not None
                got.append(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    finally:
        enc.close()
        stop()
    assert len(got) >= want, f"the relay gave {len(got)} of {want} pictures ({relay.stats}, {enc.stats})"
    return got, enc


def _nearest(picture: np.ndarray, references: list[np.ndarray]) -> tuple[int, float]:
    errors = [float(np.abs(picture.astype(np.int16) - r).mean()) for r in references]
    best = int(np.argmin(errors))
    return best, errors[best]


def test_the_relay_shows_what_the_webrtc_viewer_sees_heads_pixelated(pets) -> None:
    frames, people = pets
    anonymised = [_tile(f, people.get(k, [])) for k, f in enumerate(frames)]
    relay = JpegRelay("pets").start()
    try:

        def push(enc: LiveEncoder, i: int) -> None:
            k = i % FRAMES
            now = time.monotonic()
            enc.push(Frame("pets", i / 10, frames[k], i), people.get(k, []), [], now - 0.05, now)

        got, _ = _relay_pictures(relay, push, 8)
    finally:
        relay.close()
    for picture in got:
        assert picture.shape == (360, 640, 3)
        k, error = _nearest(picture, anonymised)
        assert error < 6, f"the relayed picture is not the anonymised tile ({error:.1f})"
        # And not the picture with faces: in the head bands it is far from the raw tile.
        raw = _tile(frames[k], None)
        heads = [head_region(FIT.box(b)) for b in people.get(k, []) if b[3] - b[1] >= 60 and b[1] >= 0]
        assert heads
        for x0, y0, x1, y1 in heads:
            band = (slice(max(0, y0), y1), slice(max(0, x0), x1))
            assert (
                np.abs(picture[band].astype(np.int16) - anonymised[k][band]).mean()
                < np.abs(picture[band].astype(np.int16) - raw[band]).mean()
            ), "a head band looks like the unpixelated picture"
    assert relay.stats.decode_errors == 0
    # Its own thread's CPU, what the console's log gives as the fallback's cost per camera.
    assert 0 < relay.stats.cpu_seconds < 30


def test_stale_boxes_reach_the_fallback_pixelated_whole(pets) -> None:
    frames, people = pets
    relay = JpegRelay("pets").start()
    try:

        def push(enc: LiveEncoder, i: int) -> None:
            k = i % FRAMES
            now = time.monotonic()
            enc.push(Frame("pets", i / 10, frames[k], i), people.get(k, []), [], now - 5.0, now)

        got, enc = _relay_pictures(relay, push, 4)
    finally:
        relay.close()
    assert enc.stats.fail_closed_frames >= 4
    raw = [_tile(f, None) for f in frames]
    for picture in got:
        grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
        k, _ = _nearest(picture, raw)
        detail = cv2.Laplacian(cv2.cvtColor(raw[k], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
        assert cv2.Laplacian(grey, cv2.CV_64F).var() < detail / 4, (
            "the fallback picture is not pixelated whole"
        )


def test_garbage_on_the_port_is_ignored_and_close_is_prompt() -> None:
    relay = JpegRelay("cam").start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for payload in (b"", b"\x00" * 5, b"\x80" * 40, bytes(range(256)) * 4):
            s.sendto(payload, ("127.0.0.1", relay.port))
    time.sleep(0.3)
    assert relay.latest()[1] is None
    started = time.monotonic()
    relay.close()
    assert time.monotonic() - started < 2.0
    assert relay.closed


def _rtp(seq: int, ts: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 96, seq, ts, 1) + payload


def test_fragmented_units_are_joined_and_a_lost_packet_waits_for_the_next_keyframe() -> None:
    d = Depacketiser()
    idr = bytes([0x65]) + bytes(range(1, 200))
    # FU-A: indicator keeps F/NRI with type 28, header carries S/E and the original type.
    first = bytes([0x7C, 0x85]) + idr[1:100]
    last = bytes([0x7C, 0x45]) + idr[100:]
    assert d.push(_rtp(1, 3000, first)) == []
    assert d.push(_rtp(2, 3000, last, marker=True)) == [START_CODE + bytes([0x65]) + idr[1:]]
    # A non-keyframe after a gap in the sequence is not given out; the next keyframe is.
    assert d.push(_rtp(5, 6000, bytes([0x41, 9, 9]), marker=True)) == []
    assert d.lost == 2
    assert d.push(_rtp(6, 9000, bytes([0x41, 8]), marker=True)) == []
    stap = (
        bytes([0x78]) + struct.pack("!H", 3) + bytes([0x67, 1, 2]) + struct.pack("!H", 2) + bytes([0x65, 7])
    )
    assert d.push(_rtp(7, 12000, stap, marker=True)) == [
        START_CODE + bytes([0x67, 1, 2]) + START_CODE + bytes([0x65, 7])
    ]
