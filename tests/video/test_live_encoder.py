"""The live tile (issue 14): what a viewer of the video wall receives, decoded back with PyAV from
the real RTP stream the encoder sends over UDP, set beside the PETS frames that were pushed.

Person boxes are the PETS ground truth. In the heads of its people the received picture keeps
almost none of the camera's fine detail (the correlation of Laplacians, as the browser test of
playback measures it), while the lawn, where no one walks, keeps it: the test fails if nothing is
pixelated and if everything is. Stale or missing boxes and the whole tile is pixelated; the raw
stream a privacy permission allows keeps the heads, the privacy mask and carries its banner."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lanterne.core.errors import ConfigError
from lanterne.core.masks import MASK_VALUE, pixel_polygons
from lanterne.core.types import Frame
from lanterne.video.anonymize.anonymizer import head_region
from lanterne.video.detectors.base import PixelBox
from lanterne.video.live import LiveEncoder, LiveSettings, sdp
from lanterne.video.live.encoder import FAIL_CLOSED_BLOCKS, Fit, anonymise_tile, shrink
from lanterne.video.watermark import burn
from tests.support.video import VIDEO

FRAMES = 40
"""The first 4 s of PETS (10 fps): people in view from the first frame."""
SIZE = (768, 576)
TILE = (640, 360)
FIT = Fit.of(SIZE, TILE)
LAWN = (slice(420, 560), slice(150, 450))
"""Rows and columns of textured lawn no one crosses in the first 20 s of PETS (source pixels)."""
WINDOWS = [[(0.42, 0.1), (0.75, 0.1), (0.75, 0.19), (0.42, 0.19)]]
"""A privacy mask over the row of windows across the top of the PETS view."""
BANNER = "PRIVACY PROTECTION REMOVED by op-nord | requisition | ref PV 2026/123"


@pytest.fixture(scope="module")
def pets() -> tuple[list[np.ndarray], dict[int, list[tuple[PixelBox, bool]]]]:
    """The first FRAMES frames of PETS (BGR) and their ground-truth people by 0-based frame:
    the box in pixels and whether the annotation counts it."""
    with av.open(str(VIDEO / "vtest.avi")) as c:
        frames = [
            f.to_ndarray(format="bgr24") for _, f in zip(range(FRAMES), c.decode(video=0), strict=False)
        ]
    people: dict[int, list[tuple[PixelBox, bool]]] = {}
    for row in np.loadtxt(VIDEO / "vtest.PETS09-S2L1.gt.txt", delimiter=","):
        f, _, x, y, w, h, considered = row[:7]
        box = (int(x), int(y), int(x + w), int(y + h))
        people.setdefault(int(f) - 1, []).append((box, bool(considered)))
    return frames, people


def _port() -> int:
    """A free even UDP port on the loopback (RTP takes even ports)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port % 2 == 0:
            return port
    raise AssertionError("no free even UDP port")


def _reference(image: np.ndarray) -> np.ndarray:
    """The source frame as the tile shows it before anonymisation: scaled into the pillar box."""
    tile = np.zeros((TILE[1], TILE[0], 3), np.uint8)
    tile[FIT.y : FIT.y + FIT.height, FIT.x : FIT.x + FIT.width] = shrink(image, (FIT.width, FIT.height))
    return tile


def _tile_region(box: PixelBox) -> tuple[slice, slice]:
    x0, y0, x1, y1 = FIT.box(box)
    return slice(y0, y1), slice(x0, x1)


def _laplacian(image: np.ndarray) -> np.ndarray:
    return cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F)


def _kept(received: np.ndarray, original: np.ndarray, region: tuple[slice, slice]) -> float:
    """How much of the original's fine detail the received picture keeps in `region`: the
    correlation of their Laplacians (1 the same detail, about 0 none of it). Not a ratio of
    variances: block edges are strong edges, but none of the original's detail."""
    a, b = _laplacian(received)[region], _laplacian(original)[region]
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _heads(people: list[tuple[PixelBox, bool]]) -> list[tuple[slice, slice]]:
    """The head bands of the counted ground-truth people at least 60 px tall and whole in the
    view, in tile pixels: where the encoder must have pixelated."""
    out = []
    for (x0, y0, x1, y1), considered in people:
        if considered and y1 - y0 >= 60 and x0 >= 0 and y0 >= 0 and x1 <= SIZE[0] and y1 <= SIZE[1]:
            hx0, hy0, hx1, hy1 = head_region(FIT.box((x0, y0, x1, y1)))
            out.append((slice(hy0, hy1), slice(hx0, hx1)))
    return out


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


@contextmanager
def _receiver(tmp_path: Path, port: int, want: int) -> Iterator[list[np.ndarray]]:
    """Decode the RTP stream arriving at `port` (PyAV reading an SDP file) in a thread, until
    `want` frames came or the stream went quiet for 3 s; yields the list it fills."""
    path = tmp_path / f"live-{port}.sdp"
    path.write_text(sdp("127.0.0.1", port))
    got: list[np.ndarray] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with av.open(
                str(path), format="sdp", options={"protocol_whitelist": "file,udp,rtp"}, timeout=(20, 3)
            ) as c:
                for f in c.decode(video=0):
                    got.append(f.to_ndarray(format="bgr24"))
                    if len(got) >= want:
                        return
        except av.error.ExitError:
            return  # quiet for 3 s: the sender stopped
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        thread.join(30)
    assert not thread.is_alive(), "the receiver did not stop"
    assert not failures, failures


def _stream(
    tmp_path: Path,
    encoder: Callable[[int], LiveEncoder],
    push: Callable[[LiveEncoder, int, float], None],
    want: int,
) -> tuple[list[np.ndarray], LiveEncoder]:
    """Push frames (the i-th at stream time i/10 s) until the receiver holds `want` of them; the
    receiver may join late and starts at the first keyframe it sees, so frames are not counted by
    index but matched to the source by their picture."""
    port = _port()
    enc = encoder(port)
    with _receiver(tmp_path, port, want) as got:
        deadline = time.monotonic() + 60
        i = 0
        while len(got) < want and time.monotonic() < deadline:
            push(enc, i, time.monotonic())
            i += 1
            time.sleep(0.03)  # a camera's pace, not a burst the receiver's socket would drop
        enc.close()
    assert len(got) >= want, f"received {len(got)} of {want} frames ({enc.stats})"
    return got, enc


def _match(received: np.ndarray, references: list[np.ndarray]) -> int:
    """The source frame a received one shows: the nearest (people walk, frames differ)."""
    errors = [float(np.abs(received.astype(np.int16) - r).mean()) for r in references]
    best = int(np.argmin(errors))
    assert errors[best] < 8, f"no pushed frame looks like the received one: {min(errors):.1f}"
    return best


def _frame(image: np.ndarray, i: int, masks: tuple[np.ndarray, ...] = ()) -> Frame:
    return Frame("pets", i / 10, image, i, masks=masks)


def test_heads_are_pixelated_and_the_lawn_is_kept(tmp_path: Path, pets) -> None:
    frames, people = pets
    references = [_reference(f) for f in frames]

    def push(enc: LiveEncoder, i: int, now: float) -> None:
        k = i % FRAMES
        enc.push(_frame(frames[k], i), [b for b, _ in people.get(k, [])], [], now - 0.1, now)

    got, enc = _stream(tmp_path, lambda port: LiveEncoder("pets", "127.0.0.1", port), push, 12)
    assert enc.stats.fail_closed_frames == 0 and enc.stats.encode_errors == 0, enc.stats
    counted = 0
    kept: list[float] = []
    for received in got:
        assert received.shape == (360, 640, 3)
        k = _match(received, references)
        original = references[k]
        boxes = [b for b, _ in people.get(k, [])]
        pixelated = original.copy()
        anonymise_tile(pixelated, FIT, boxes, [])
        heads = _heads(people.get(k, []))
        assert len(heads) >= 3, f"frame {k}: PETS has people in view"
        counted += len(heads)
        for r in heads:
            # Each head band is the pixelated picture, not the camera's, after the codec...
            assert _mad(received[r], pixelated[r]) < _mad(received[r], original[r]), (k, r)
            kept.append(_kept(received, original, r))
        lawn = _tile_region((LAWN[1].start, LAWN[0].start, LAWN[1].stop, LAWN[0].stop))
        # ...while the lawn went through the encoder and back untouched by the anonymisation.
        assert _kept(received, original, lawn) > 0.75 and _mad(received[lawn], original[lawn]) < 6, k
        assert received[:, : FIT.x - 2].max() < 30, "the pillar box is black"
    # Four blocks across a band: none of the hair, face or collar's detail is left. (A head two
    # blocks wide keeps the contrast of a light head on a dark coat, which correlates with the
    # original's edges: single bands reach 0.5 where the encoder worked as designed.)
    assert float(np.median(kept)) < 0.1 and max(kept) < 0.7, sorted(kept)[-5:]
    assert counted >= 36


@pytest.mark.parametrize("detected", ["none", "stale"])
def test_stale_or_missing_boxes_pixelate_the_whole_tile(tmp_path: Path, pets, detected: str) -> None:
    frames, people = pets
    references = [_reference(f) for f in frames]

    def push(enc: LiveEncoder, i: int, now: float) -> None:
        k = i % FRAMES
        at = None if detected == "none" else now - 0.8  # older than stale_after (0.5 s)
        enc.push(_frame(frames[k], i), [b for b, _ in people.get(k, [])], [], at, now)

    got, enc = _stream(tmp_path, lambda port: LiveEncoder("pets", "127.0.0.1", port), push, 6)
    assert enc.stats.fail_closed_frames == enc.stats.frames_sent > 0
    block = TILE[0] // FAIL_CLOSED_BLOCKS
    for received in got:
        # Nothing of any frame's detail is left anywhere in the picture (the pillar box's edges
        # are edges in both)...
        picture = (slice(4, TILE[1] - 4), slice(FIT.x + 4, FIT.x + FIT.width - 4))
        kept = max(abs(_kept(received, r, picture)) for r in references)
        assert kept < 0.15, kept
        # ...and the picture is flat blocks: inside each, the codec's ripples only.
        grey = cv2.cvtColor(received, cv2.COLOR_BGR2GRAY).astype(np.float64)
        spreads = [
            grey[y + 4 : y + block - 4, x + 4 : x + block - 4].std()
            for y in range(0, TILE[1], block)
            for x in range(0, TILE[0], block)
        ]
        assert float(np.median(spreads)) < 2.5 and max(spreads) < 8, max(spreads)


def test_raw_keeps_heads_and_masks_and_burns_the_banner(tmp_path: Path, pets) -> None:
    frames, people = pets
    masks = pixel_polygons(WINDOWS, SIZE)
    references = [_reference(f) for f in frames]
    masked_refs = [_reference(_frame(f, 0, masks).image) for f in frames]
    band = 24  # rows the banner takes at 640 px wide (watermark.burn: the text's height + 8)

    def push(enc: LiveEncoder, i: int, now: float) -> None:
        k = i % FRAMES
        # No detection at all: a raw stream does not fail closed, it was never anonymised.
        enc.push(_frame(frames[k], i, masks), [b for b, _ in people.get(k, [])], [], None, now)

    got, enc = _stream(
        tmp_path,
        lambda port: LiveEncoder("pets", "127.0.0.1", port, anonymise=False, banner=BANNER),
        push,
        8,
    )
    assert enc.stats.fail_closed_frames == 0
    x0, y0, x1, y1 = FIT.box(
        (round(0.42 * 767) + 4, round(0.1 * 575) + 4, round(0.75 * 767) - 4, round(0.19 * 575) - 4)
    )
    window = (slice(y0, y1), slice(x0, x1))
    for received in got:
        k = _match(received[band:], [r[band:] for r in masked_refs])
        heads = [h for h in _heads(people.get(k, [])) if h[0].start >= band]
        kept = [_kept(received, references[k], r) for r in heads]
        assert len(heads) >= 3 and min(kept) > 0.8, kept
        # The masked windows stay flat grey, though the camera saw detail there.
        assert references[k][window].std() > 20
        assert received[window].std() < 3 and abs(received[window].mean() - MASK_VALUE) < 6
        # Who and why across the top: the source darkened with the banner's text in it.
        expected = burn(masked_refs[k].copy(), BANNER, top=True)
        with_text = float(np.abs(received[:band].astype(np.int16) - expected[:band]).mean())
        without = float(np.abs(received[:band].astype(np.int16) - masked_refs[k][:band]).mean())
        assert with_text < 8 and without > 3 * with_text, (with_text, without)


def test_raw_needs_a_banner() -> None:
    with pytest.raises(ConfigError, match="banner"):
        LiveEncoder("pets", "127.0.0.1", _port(), anonymise=False)


def test_a_faster_camera_is_decimated_and_a_dead_port_never_raises(pets) -> None:
    frames, _ = pets
    enc = LiveEncoder("pets", "127.0.0.1", _port())  # nothing listens there
    t0 = time.monotonic()
    for i in range(50):  # 2 s of a 25 fps camera
        enc.push(Frame("pets", i / 25, frames[i % FRAMES], i), [], [], t0, t0)
        time.sleep(0.002)
    assert enc.stats.frames_sent == 20 and enc.stats.frames_skipped == 30, enc.stats
    assert enc.stats.encode_errors == 0
    # The kernel reports the refused datagrams on the connected socket: counted, never raised.
    assert enc.stats.send_errors > 0
    # The source restarts, its time back to 0: its first frame is sent, stamped after the last.
    before = enc._last_rtp
    enc.push(Frame("pets", 0.0, frames[0], 0), [], [], 0.0, 0.0)
    assert enc.stats.frames_sent == 21 and enc._last_rtp == before + 9000
    enc.close()
    enc.close()
    sent = enc.stats.frames_sent
    enc.push(_frame(frames[0], 60), [], [], t0, t0)
    assert enc.stats.frames_sent == sent and enc.closed


def test_an_unreachable_host_never_raises(pets) -> None:
    frames, _ = pets
    # TEST-NET-1 (RFC 5737): routed nowhere; with no route at all the sends fail and are counted.
    enc = LiveEncoder("pets", "192.0.2.1", 5004, LiveSettings(fps=25))
    now = time.monotonic()
    for i in range(5):
        enc.push(_frame(frames[i], i), [], [], now, now)
    assert enc.stats.frames_sent == 5 and enc.stats.encode_errors == 0, enc.stats
    enc.close()


def test_frames_analysis_skipped_play_at_the_tile_rate_only_just_behind_their_boxes(pets) -> None:
    """A camera analysed at 5 fps plays at the tile's 10 fps: each frame in between is shown with
    the boxes of the analysed frame just before it. At 2.5 fps the boxes would be three frames
    behind: only the frame right after each analysed one is shown. Stale boxes (detection
    stopped): the analysed frames only, pixelated whole, never a clear frame between them."""
    frames, people = pets

    def play(every: int, stale: bool) -> LiveEncoder:
        enc = LiveEncoder("pets", "127.0.0.1", _port(), LiveSettings(fps=10))
        analysed_at = 0.0
        for i in range(20):
            t = i / 10
            analysed = i % every == 0
            if analysed:
                analysed_at = t - (0.8 if stale else 0.0)
            boxes = [b for b, _ in people.get(i, [])]
            enc.push(_frame(frames[i], i), boxes, [], analysed_at, t, analysed=analysed)
        enc.close()
        return enc

    five = play(2, stale=False)
    assert five.stats.frames_sent == 20 and five.stats.fail_closed_frames == 0, five.stats
    sparse = play(4, stale=False)
    assert sparse.stats.frames_sent == 10, sparse.stats
    stopped = play(2, stale=True)
    assert stopped.stats.frames_sent == stopped.stats.fail_closed_frames == 10, stopped.stats


def test_boxes_one_frame_behind_grow_enough_to_hide_every_tracked_head() -> None:
    """On all of PETS (10 fps, ground-truth people), each odd frame pixelated with the boxes of
    the even frame before it, grown for their 0.1 s of age: every head band of a person already
    in view is wholly pixelated. Without growing, a fifth of them show an edge of the head."""
    people: dict[int, dict[int, PixelBox]] = {}
    for row in np.loadtxt(VIDEO / "vtest.PETS09-S2L1.gt.txt", delimiter=","):
        f, ident, x, y, w, h, considered = row[:7]
        if considered:
            people.setdefault(int(f) - 1, {})[int(ident)] = (int(x), int(y), int(x + w), int(y + h))
    # Pixelation changes nearly every pixel of noise; a pixel left as it was was not pixelated.
    noise = np.random.default_rng(0).integers(0, 256, (TILE[1], TILE[0], 3), dtype=np.uint8)
    whole = {0.0: 0, 0.1: 0}
    counted = 0
    for k in range(0, max(people), 2):
        before, after = people.get(k, {}), people.get(k + 1, {})
        bands = []
        for ident, box in after.items():
            if ident in before:  # one who walked in since is the next analysed frame's
                x0, y0, x1, y1 = head_region(FIT.box(box))
                bands.append((slice(max(y0, 0), min(y1, TILE[1])), slice(max(x0, 0), min(x1, TILE[0]))))
        counted += len(bands)
        for age in whole:
            tile = noise.copy()
            anonymise_tile(tile, FIT, list(before.values()), [], age)
            changed = (tile != noise).any(axis=2)
            whole[age] += sum(changed[band].mean() > 0.99 for band in bands)
    assert counted > 2000
    assert whole[0.1] == counted, (whole, counted)
    assert whole[0.0] < 0.9 * counted, (whole, counted)


def _drain(sock: socket.socket, into: list[bytes]) -> None:
    """Every datagram waiting on `sock`, read as it comes so that no frame overflows its buffer."""
    sock.settimeout(0.2)
    while True:
        try:
            into.append(sock.recv(2000))
        except TimeoutError:
            return


def _idr_frames(packets: list[bytes]) -> list[bool]:
    """Per frame in `packets` (RTP, H.264 in single NAL units, STAP-A or FU-A), in order: whether
    it holds an IDR slice (NAL type 5)."""
    frames: list[bool] = []
    idr = False
    for packet in packets:
        payload = packet[12:]
        kind = payload[0] & 0x1F
        if kind == 28:  # FU-A: the fragment's own type is in the second byte
            idr |= payload[1] & 0x1F == 5
        elif kind == 24:  # STAP-A: 16-bit sizes, each followed by a NAL unit
            at = 1
            while at + 2 < len(payload):
                size = int.from_bytes(payload[at : at + 2], "big")
                idr |= payload[at + 2] & 0x1F == 5
                at += 2 + size
        else:
            idr |= kind == 5
        if packet[1] & 0x80:  # the marker: the frame's last packet
            frames.append(idr)
            idr = False
    return frames


def test_a_keyframe_request_from_the_gateway_gets_an_idr_at_the_next_frame(pets) -> None:
    """Janus passes a viewer's keyframe request (a PLI when it starts watching, or when its browser
    lost a packet) to the address that announced itself on the mountpoint's RTCP port: the next
    frame is an IDR, not the one a GOP later. A FIR asks the same; other RTCP asks nothing."""
    frames, _ = pets
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp.bind(("127.0.0.1", 0))
    enc = LiveEncoder("pets", "127.0.0.1", rtp.getsockname()[1], rtcp_port=rtcp.getsockname()[1])
    now = time.monotonic()
    packets: list[bytes] = []
    enc.push(_frame(frames[0], 0), [], [], now, now)
    _drain(rtp, packets)
    announcement, stream = rtcp.recvfrom(100)
    assert announcement[0] >> 6 == 2 and len(announcement) == 12  # an empty RTP header
    pli = bytes([0x81, 206, 0, 2]) + bytes(8)
    fir = bytes([0x84, 206, 0, 4]) + bytes(16)
    receiver_report = bytes([0x80, 201, 0, 1]) + bytes(4)
    asks = {3: [pli, pli], 5: [receiver_report], 6: [receiver_report + fir]}
    for i in range(1, 8):
        for packet in asks.get(i, []):
            rtcp.sendto(packet, stream)
        time.sleep(0.01)  # the datagrams are in the encoder's socket before its next frame
        enc.push(_frame(frames[i], i), [], [], now + i / 10, now + i / 10)
        _drain(rtp, packets)
    enc.close()
    # Two PLIs before frame 3 make one keyframe; the receiver report alone makes none.
    got = _idr_frames(packets)
    assert got == [True, False, False, True, False, False, True, False], got
    assert enc.stats.keyframes_requested == 2, enc.stats
    rtp.close()
    rtcp.close()
