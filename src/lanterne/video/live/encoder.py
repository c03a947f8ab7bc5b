"""One camera's live picture for the video wall: anonymised, small, H.264 over RTP to Janus.

The process that already decodes and analyses a camera makes its live stream too, and only while
someone watches: Janus's streaming mountpoint fans one RTP stream out to every viewer, so a camera
costs one encode however many people watch it. The picture is anonymised here, before it leaves
the process, from the boxes the camera's own detector and tracker found for this frame; there is
no second detector pass (a face or plate network on every frame would cost more than the whole
tile, see `benchmarks/live_tile.py`). Instead every person's head band and every vehicle's whole
box are pixelated, which is safe by construction where a detector could miss a small face.

Fail closed: when the boxes are older than `LiveSettings.stale_after` (detection stopped, or the
camera runs without it) the whole picture is pixelated coarsely; people are shapes, the scene
still reads.

The order is scale → pixelate → encode → send: pixelating the 640x360 tile costs a third of
pixelating the camera's frame, and a block averaged from averaged pixels hides exactly as much.
"""

from __future__ import annotations

import io
import logging
import math
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
import cv2
import numpy as np
from av.video.frame import PictureType

from lanterne.core.errors import ConfigError, LanterneError
from lanterne.core.types import Frame
from lanterne.video.anonymize.anonymizer import HEAD_MARGIN, head_region
from lanterne.video.anonymize.pixelate import pixelate
from lanterne.video.anonymize.plates import vehicle_region
from lanterne.video.detectors.base import PixelBox
from lanterne.video.watermark import burn

log = logging.getLogger(__name__)

CLOCK_RATE = 90_000
"""RTP's clock for video (RFC 6184): frame times are stamped in 1/90,000 s."""
RTP_PACKET_SIZE = 1200
"""Largest RTP packet, header included: fits a 1500-byte Ethernet MTU with room for the IP, UDP
and any tunnel headers, so no packet is fragmented on the way to Janus."""
FAIL_CLOSED_BLOCKS = 16
"""Blocks across the picture's width when it is pixelated whole (40 px at 640): a face shows at
most four blocks across, as `pixelate` promises for any face it hides, unless it is wider than a
quarter of the picture, which no street camera sees; people stay visible as moving shapes."""
SLACK = 0.1
"""Share of a frame interval forgiven on the tile's frame grid: a 10 fps camera's frames jitter
by a few milliseconds over RTSP, and one arriving a little early must not be dropped."""
CARRY_FRAMES = 1.5
"""Tile frames of age up to which a frame that analysis skipped is shown with the boxes of the
last analysed one: one tile frame, plus jitter. A camera analysed at 5 fps thus plays at the
tile's 10 fps; one analysed more sparsely (shedding load) plays at its analysis rate, since boxes
further behind than that would need a margin that hides the scene."""
PERSON_HEIGHTS_PER_SECOND = 1.5
"""How far a person may move, in their own box heights a second, between the frame their box
comes from and the frame it hides a head on: a jogger (2.5 m/s for a 1.7 m person), with margin.
A brisk walk is 0.8. The head band grows by this times its age on every side."""
VEHICLE_LENGTHS_PER_SECOND = 3.0
"""The same for a vehicle, in its box's longer side a second: a 4.5 m car at 50 km/h."""
LOG_EVERY = 60.0
"""Seconds between two log lines about the same failing stream: a dead Janus must not flood the
camera's log at ten lines a second."""
ANNOUNCE_SECONDS = 1.0
"""How often a stream announces itself on the gateway's RTCP port. Janus sends keyframe requests
to the address its last packet there came from, and a restarted Janus has forgotten it: within
this many seconds of coming back, its viewers' requests reach the stream again. Twelve bytes a
second per watched camera."""
RTCP_PSFB = 206
"""RTCP payload-specific feedback (RFC 4585), whose formats 1 (PLI, RFC 4585) and 4 (FIR,
RFC 5104) ask the sender for a keyframe."""
KEYFRAME_FORMATS = (1, 4)
READ_AT_MOST = 32
"""RTCP packets read per frame: Janus sends a few a second (its keyframe requests, at most one a
second, and bandwidth estimates); a flood must not hold the camera's thread."""


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """The tile's picture and stream. A tile is the size one cell of a video wall shows."""

    width: int = 640
    height: int = 360
    fps: float = 10.0
    """What an operator needs to follow a scene; a faster camera is decimated to it."""
    gop_seconds: float = 1.0
    """A keyframe every second: Janus cannot ask this sender for one, so a new viewer's first
    picture waits for the next keyframe."""
    stale_after: float = 0.5
    """Boxes older than this (or none) and the whole picture is pixelated: a person who walked in
    since the last detection would otherwise be shown unblurred."""
    payload_type: int = 96
    scaler: Literal["linear", "area"] = "linear"
    """`linear` (after an exact integer shrink when the camera is twice the tile or more) costs
    a third of OpenCV's `area` averaging at 768x576 → 480x360, at 41 dB from it (PETS); `area`
    is kept to compare in `benchmarks/live_tile.py`."""

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ConfigError(
                f"live tile {self.width}x{self.height}: width and height must be even and at least 16"
            )
        if not 0 < self.fps <= 60:
            raise ConfigError(f"live fps {self.fps}: give a rate between 0 and 60 frames per second")
        if self.gop_seconds <= 0 or self.stale_after <= 0:
            raise ConfigError("live gop_seconds and stale_after must be above 0 seconds")
        if not 96 <= self.payload_type <= 127:
            raise ConfigError(f"live payload type {self.payload_type}: use a dynamic type, 96 to 127")

    @property
    def keyint(self) -> int:
        """Frames between two keyframes."""
        return max(1, round(self.fps * self.gop_seconds))


@dataclass(slots=True)
class LiveStats:
    """What one live stream did. Counts and times, never pictures or boxes."""

    frames_sent: int = 0
    frames_skipped: int = 0
    """Frames above the tile's rate, not encoded."""
    fail_closed_frames: int = 0
    """Frames pixelated whole because their boxes were stale or missing."""
    encode_seconds: float = 0.0
    """CPU seconds of this stream's work (scale, anonymise, encode, send), in the camera thread;
    the encoder runs one thread, so this is the tile's whole cost."""
    send_errors: int = 0
    """RTP packets the network refused (nothing listening, no route, a full socket buffer)."""
    encode_errors: int = 0
    """Frames dropped because scaling, anonymising or encoding failed: nothing was sent for them."""
    bytes_sent: int = 0
    keyframes_requested: int = 0
    """Keyframes sent ahead of schedule because the gateway asked (a viewer started, or its browser
    lost a packet)."""


def sdp(host: str, port: int, payload_type: int = 96) -> str:
    """A session description a receiver (FFmpeg, PyAV) reads this stream with, at `host:port`.

    SPS and PPS are not in it: the encoder repeats them in-band before every keyframe, which is
    also what Janus needs to pass a stream joined midway to a browser.

    >>> print(sdp("127.0.0.1", 5004).splitlines()[-2])
    a=rtpmap:96 H264/90000
    """
    family = "IP6" if ":" in host else "IP4"
    return (
        "\r\n".join(
            [
                "v=0",
                f"o=- 0 0 IN {family} {host}",
                "s=Lanterne live",
                f"c=IN {family} {host}",
                "t=0 0",
                f"m=video {port} RTP/AVP {payload_type}",
                f"a=rtpmap:{payload_type} H264/90000",
                f"a=fmtp:{payload_type} packetization-mode=1;profile-level-id=42e01f",
            ]
        )
        + "\r\n"
    )


@dataclass(frozen=True, slots=True)
class Fit:
    """Where a camera's picture sits in the tile: scaled by `scale`, its top-left corner at
    (`x`, `y`), `width` x `height` pixels; the rest of the tile is black. The aspect ratio is
    kept: a 4:3 camera in a 16:9 tile is pillar-boxed, never stretched."""

    scale: float
    x: int
    y: int
    width: int
    height: int

    @classmethod
    def of(cls, source: tuple[int, int], tile: tuple[int, int]) -> Fit:
        """The fit of a `source` (width, height) picture in a `tile`; offsets are even, so that
        the picture's chroma samples line up with the tile's in yuv420p.

        >>> Fit.of((768, 576), (640, 360))
        Fit(scale=0.625, x=80, y=0, width=480, height=360)
        """
        sw, sh = source
        tw, th = tile
        scale = min(tw / sw, th / sh)
        w, h = min(tw, max(2, round(sw * scale))), min(th, max(2, round(sh * scale)))
        return cls(scale, (tw - w) // 4 * 2, (th - h) // 4 * 2, w, h)

    def box(self, box: PixelBox) -> PixelBox:
        """A source box in tile pixels, rounded outwards: what it hides never shrinks.

        >>> Fit.of((768, 576), (640, 360)).box((10, 10, 21, 21))
        (86, 6, 94, 14)
        """
        x0, y0, x1, y1 = box
        s = self.scale
        return (
            self.x + math.floor(x0 * s),
            self.y + math.floor(y0 * s),
            self.x + math.ceil(x1 * s),
            self.y + math.ceil(y1 * s),
        )


def shrink(image: np.ndarray, size: tuple[int, int], scaler: str = "linear") -> np.ndarray:
    """`image` resized to `size` (width, height) for a tile.

    `linear` first averages whole blocks of k x k pixels when the picture is at least twice the
    tile (OpenCV's fast path for an integer factor, so a 1080p camera does not alias), then
    interpolates the rest of the way, which is under 2x and aliases little."""
    if scaler == "area":
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    k = min(w // size[0], h // size[1])
    if k >= 2:
        image = cv2.resize(image, (w // k, h // k), interpolation=cv2.INTER_AREA)
    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def reach(box: PixelBox, extent: float) -> PixelBox:
    """`box` grown by `extent` pixels on every side (not clamped: `pixelate` clamps)."""
    x0, y0, x1, y1 = box
    e = math.ceil(extent)
    return x0 - e, y0 - e, x1 + e, y1 + e


def anonymise_tile(
    tile: np.ndarray,
    fit: Fit,
    persons: Sequence[PixelBox],
    vehicles: Sequence[PixelBox],
    age: float = 0.0,
) -> None:
    """Pixelate, in place on the tile, each person's head band and each vehicle's whole box.

    Why a vehicle's whole box and not the band where plates usually are: live runs no plate
    detector, and a plate is not always low on the box (a lorry's, a motorcycle's under the seat,
    a car seen from a high mast at an angle, a box carried a frame behind a moving car); the faces
    of its driver and passengers are behind the windscreen, in no person box. The box widened as
    the plate search widens it (`vehicle_region`) covers all of them; a vehicle stays a vehicle,
    four blocks across.

    `age`: seconds between the frame the boxes come from and this one (a frame analysis skipped):
    each region grows by how far its person or vehicle may have moved meanwhile."""
    size = (tile.shape[1], tile.shape[0])
    for person in persons:
        box = fit.box(person)
        band = head_region(box)
        if age > 0:
            band = reach(band, age * PERSON_HEIGHTS_PER_SECOND * (box[3] - box[1]))
        pixelate(tile, band, margin=HEAD_MARGIN)
    for vehicle in vehicles:
        box = fit.box(vehicle)
        region = vehicle_region(box, size)
        if age > 0:
            region = reach(region, age * VEHICLE_LENGTHS_PER_SECOND * max(box[2] - box[0], box[3] - box[1]))
        pixelate(tile, region, margin=0.0)


def pixelate_whole(tile: np.ndarray) -> None:
    """Pixelate the whole tile in place, FAIL_CLOSED_BLOCKS across."""
    h, w = tile.shape[:2]
    pixelate(tile, (0, 0, w, h), margin=0.0, blocks_across=FAIL_CLOSED_BLOCKS)


class _Udp(io.RawIOBase):
    """Where the RTP muxer writes: each write is one RTP packet (the muxer flushes after every
    packet, and packets are at most RTP_PACKET_SIZE), sent as one UDP datagram.

    Our own socket rather than FFmpeg's `rtp://` output: a failed send is counted here instead of
    surfacing as an error from the muxer in the camera thread, and the socket never blocks (a
    full buffer drops the packet: a late live frame is worth nothing). The socket is connected, so
    that a Janus that is not listening shows up as refused sends in `LiveStats.send_errors`."""

    def __init__(
        self, family: socket.AddressFamily, address: tuple[str | int, ...], stats: LiveStats, name: str
    ) -> None:
        super().__init__()
        self._address = address
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._stats = stats
        self._name = name
        self._connected = False
        self._logged_at = -math.inf

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(data)
        try:
            if not self._connected:
                self._sock.connect(self._address)
                self._connected = True
            self._sock.send(data)
            self._stats.bytes_sent += n
        except OSError as exc:
            self._stats.send_errors += 1
            if not isinstance(exc, BlockingIOError):
                self._connected = False  # no route may come back: connect again on the next packet
            now = time.monotonic()
            if now - self._logged_at >= LOG_EVERY:
                self._logged_at = now
                log.warning(
                    "live %s: RTP not sent (%s; %d packets so far); is the Janus mountpoint up?",
                    self._name,
                    exc.strerror or type(exc).__name__,
                    self._stats.send_errors,
                )
        # Always "written": the muxer must never see a network error.
        return n

    def close(self) -> None:
        self._sock.close()
        super().close()


def asks_keyframe(packet: bytes) -> bool:
    """Whether an RTCP (compound) packet holds a keyframe request, a PLI or a FIR.

    >>> asks_keyframe(bytes([0x81, 206, 0, 2]) + bytes(8))  # PLI
    True
    >>> asks_keyframe(bytes([0x80, 201, 0, 1]) + bytes(4))  # an empty receiver report
    False
    """
    at = 0
    while at + 4 <= len(packet):
        first, kind = packet[at], packet[at + 1]
        if first >> 6 != 2:
            return False  # not RTCP version 2: not from a gateway
        if kind == RTCP_PSFB and first & 0x1F in KEYFRAME_FORMATS:
            return True
        at += 4 * (int.from_bytes(packet[at + 2 : at + 4], "big") + 1)
    return False


class KeyframeRequests:
    """The gateway's keyframe requests for one stream, over RTCP.

    Janus's streaming plugin sends a PLI to an RTP source when a viewer starts watching, and
    passes on a viewer's own PLI or FIR (its browser lost a packet and cannot decode on), but
    only to an address it learnt from a packet on the mountpoint's RTCP port. So the stream
    announces itself there (an empty RTP header, which Janus takes to learn the address and
    relays to no one) every `ANNOUNCE_SECONDS`, and reads what comes back on each frame. Without
    this a new viewer's first clean picture, or a browser's recovery from a lost packet, waits for
    the next scheduled keyframe, up to a GOP.

    Never blocks and never raises: a gateway that is down makes the stream wait for its scheduled
    keyframes, as without RTCP."""

    def __init__(self, family: socket.AddressFamily, address: tuple[str | int, ...]) -> None:
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._address = address
        self._announced = -math.inf
        self._connected = False

    def pending(self, now: float) -> bool:
        """Announce the stream when due, then whether a keyframe was asked for since the last
        call (several requests make one keyframe). `now`: `time.monotonic()`."""
        try:
            if not self._connected:
                # Connected: the system then passes on only what comes from the gateway's port.
                self._sock.connect(self._address)
                self._connected = True
            if now - self._announced >= ANNOUNCE_SECONDS:
                self._announced = now
                self._sock.send(bytes([0x80]) + bytes(11))
        except OSError:
            self._connected = False
            return False
        asked = False
        for _ in range(READ_AT_MOST):
            try:
                asked = asks_keyframe(self._sock.recv(1500)) or asked
            except OSError:  # nothing more to read, or a refused announcement reported late
                break
        return asked

    def close(self) -> None:
        self._sock.close()


class LiveEncoder:
    """One camera's live stream for a Janus mountpoint: anonymise (unless raw), scale, encode
    H.264 baseline, send RTP to `host:port`.

    `push` is called from the camera's thread with every analysed frame and never raises for a
    network or encoding problem: it counts it (`stats`) and logs one line a minute. `close` may
    come from another thread (the last viewer left); a push after it does nothing.

    `anonymise=False` is the raw stream a privacy permission allows: faces are shown, the privacy
    masks stay (they are painted in `frame.image` already), and `banner` (who, why, under which
    reference) is burned across the top of every frame, as playback does for recordings.

    `rtcp_port`: the gateway's RTCP port for this stream, from which it asks for keyframes
    (`KeyframeRequests`); None and the stream keeps to its keyframe schedule.

    >>> enc = LiveEncoder("quai-nord", "127.0.0.1", 5004)  # doctest: +SKIP
    >>> enc.push(frame, persons, vehicles, detected_at)  # doctest: +SKIP
    >>> enc.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        camera: str,
        host: str,
        port: int,
        settings: LiveSettings = LiveSettings(),
        *,
        anonymise: bool = True,
        banner: str | None = None,
        rtcp_port: int | None = None,
    ) -> None:
        if not anonymise and not banner:
            raise ConfigError(
                f"live {camera}: a stream without anonymisation needs a banner naming who removed "
                "the protection, why and under which reference"
            )
        if "libx264" not in av.codecs_available:
            raise LanterneError("live video needs FFmpeg's libx264 encoder: install a PyAV build that has it")
        try:
            # Resolved once, here: the camera thread never waits on a name lookup.
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (OSError, UnicodeError) as exc:
            raise ConfigError(
                f"live {camera}: cannot resolve the Janus host {host!r}; give its address"
            ) from exc
        self.camera = camera
        self.settings = settings
        self.anonymise = anonymise
        self.banner = banner
        self.stats = LiveStats()
        self._lock = threading.Lock()
        self._closed = False
        self._due: float | None = None
        self._last_pts: float | None = None
        self._origin: float | None = None
        self._last_rtp = -1
        self._last_now = -math.inf
        self._fit: Fit | None = None
        self._fit_for: tuple[int, int] = (0, 0)
        self._logged_at = -math.inf
        self._udp = _Udp(family, address, self.stats, camera)
        self._requests = (
            KeyframeRequests(family, (address[0], rtcp_port, *address[2:])) if rtcp_port else None
        )
        try:
            self._out, self._stream = self._open(settings)
        except BaseException:
            self._udp.close()
            if self._requests is not None:
                self._requests.close()
            raise
        log.info(
            "live %s: streaming %dx%d at %g fps to %s port %d (%s)",
            camera,
            settings.width,
            settings.height,
            settings.fps,
            host,
            port,
            "anonymised" if anonymise else "privacy protection removed",
        )

    def _open(self, settings: LiveSettings) -> tuple[av.container.OutputContainer, av.VideoStream]:
        """The RTP muxer over our socket and its H.264 stream."""
        out = av.open(
            self._udp,
            "w",
            format="rtp",
            options={
                "packetsize": str(RTP_PACKET_SIZE),
                "payload_type": str(settings.payload_type),
                # Janus does not need sender reports, and they would share the RTP port.
                "rtpflags": "skip_rtcp",
            },
        )
        n = settings.keyint
        stream = out.add_stream(
            "libx264",
            rate=Fraction(settings.fps).limit_denominator(1000),
            options={
                "preset": "ultrafast",
                "tune": "zerolatency",
                "profile": "baseline",
                # One thread: a wall of tiles is many streams, each cheapest on its own thread, and
                # the tile's cost is then the camera thread's time. Headers before each keyframe:
                # SPS/PPS are not in Janus's SDP, and a viewer joins at any keyframe.
                "x264-params": (
                    f"keyint={n}:min-keyint={n}:scenecut=0:bframes=0:repeat-headers=1:level=3.1:threads=1"
                ),
            },
        )
        stream.width, stream.height = settings.width, settings.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, CLOCK_RATE)
        stream.time_base = Fraction(1, CLOCK_RATE)
        return out, stream

    def push(
        self,
        frame: Frame,
        persons: Sequence[PixelBox],
        vehicles: Sequence[PixelBox],
        detected_at: float | None,
        now: float | None = None,
        *,
        analysed: bool = True,
    ) -> None:
        """Send `frame` to the live stream if it is due on the tile's frame grid.

        `persons` and `vehicles`: this frame's boxes in the pixels of `frame.image`.
        `detected_at`: when a detector last refreshed them, on the same clock as `now`
        (`time.monotonic()` when None); None when nothing detects on this camera. Boxes older
        than `stale_after`, or none, and the frame is pixelated whole.

        `analysed=False`: a frame analysis skipped, the boxes being the last analysed frame's
        (`now` is then the frame's stream time). It is shown only when they are at most
        `CARRY_FRAMES` tile frames old, each region grown by how far its object may have moved
        since; further behind, or with no boxes, it is left out: the tile then plays the analysed
        frames (pixelated whole when their boxes are stale), never alternating between a clear
        picture and a whole pixelated one."""
        with self._lock:
            if self._closed:
                return
            now = time.monotonic() if now is None else now
            age = 0.0
            if not analysed:
                age = math.inf if detected_at is None else max(0.0, now - detected_at)
                if age > CARRY_FRAMES / self.settings.fps:
                    return
            if not self._due_now(frame.pts):
                return
            started = time.thread_time()
            try:
                tile = self._picture(frame, persons, vehicles, detected_at, now, age)
                self._send(tile, now)
                self.stats.frames_sent += 1
            except Exception as exc:  # nothing is sent for this frame, and the camera goes on
                self.stats.encode_errors += 1
                self._note(f"frame dropped ({type(exc).__name__})")
            finally:
                self.stats.encode_seconds += time.thread_time() - started

    def close(self) -> None:
        """Stop the stream (the last viewer left). Idempotent; a later push does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._out.close()
            except Exception as exc:  # closing must not fail a viewer's departure
                log.warning("live %s: closing the encoder failed (%s)", self.camera, type(exc).__name__)
            finally:
                self._udp.close()
                if self._requests is not None:
                    self._requests.close()
        s = self.stats
        # What the stream did and cost, once at its end: how often it failed closed is what tells
        # an operator whether the live picture was usable, and the CPU what one tile costs.
        log.info(
            "live %s: %s stream stopped after %d frames (%d pixelated whole, %d skipped above the "
            "tile's rate, %d encode errors, %d send errors, %d keyframes asked for; %.2f CPU s, "
            "%.1f ms a frame)",
            self.camera,
            "anonymised" if self.anonymise else "unmasked",
            s.frames_sent,
            s.fail_closed_frames,
            s.frames_skipped,
            s.encode_errors,
            s.send_errors,
            s.keyframes_requested,
            s.encode_seconds,
            1000 * s.encode_seconds / max(1, s.frames_sent + s.encode_errors),
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def _due_now(self, pts: float) -> bool:
        """Whether a frame at stream time `pts` is on the tile's grid: one frame per 1/fps of
        stream time. Stream time, not arrival time: a camera's frames arrive in bursts over RTSP.
        A source that restarted (time going back) or paused starts the grid again."""
        step = 1.0 / self.settings.fps
        due = self._due
        if due is not None and self._last_pts is not None and pts < self._last_pts:
            due = None
        if due is not None and pts < due - SLACK * step:
            self.stats.frames_skipped += 1
            return False
        self._last_pts = pts
        self._due = pts + step if due is None or pts > due + step else due + step
        return True

    def _picture(
        self,
        frame: Frame,
        persons: Sequence[PixelBox],
        vehicles: Sequence[PixelBox],
        detected_at: float | None,
        now: float,
        age: float = 0.0,
    ) -> np.ndarray:
        """The tile as it will be seen: scaled, anonymised (or pixelated whole), banner burned."""
        image = frame.image
        size = (image.shape[1], image.shape[0])
        if self._fit is None or size != self._fit_for:
            self._fit, self._fit_for = Fit.of(size, (self.settings.width, self.settings.height)), size
        fit = self._fit
        # A fresh tile each frame: the bars around a picture of another shape must be black
        # again, not what the last frame's pixelation or banner left there.
        tile = np.zeros((self.settings.height, self.settings.width, 3), np.uint8)
        tile[fit.y : fit.y + fit.height, fit.x : fit.x + fit.width] = shrink(
            image, (fit.width, fit.height), self.settings.scaler
        )
        if self.anonymise:
            fresh = detected_at is not None and abs(now - detected_at) <= self.settings.stale_after
            if fresh:
                anonymise_tile(tile, fit, persons, vehicles, age)
            else:
                pixelate_whole(tile)
                self.stats.fail_closed_frames += 1
        if self.banner:
            burn(tile, self.banner, top=True)
        return tile

    def _send(self, tile: np.ndarray, now: float) -> None:
        """Encode the tile, stamped with `now` (the wall clock, or the stream's time) so that
        frames arriving irregularly play at the pace they happened, and send its packets."""
        step = CLOCK_RATE / self.settings.fps
        if self._origin is None:
            self._origin = now
        elif now < self._last_now:
            # The clock went back (a caller stamping with stream time whose source restarted):
            # carry on one frame after the last, never backwards or stuck.
            self._origin = now - (self._last_rtp + step) / CLOCK_RATE
        self._last_now = now
        rtp = max(self._last_rtp + 1, round((now - self._origin) * CLOCK_RATE))
        self._last_rtp = rtp
        # OpenCV's BGR → I420 is one pass and cheaper than letting the encoder's swscale do it.
        picture = av.VideoFrame.from_ndarray(cv2.cvtColor(tile, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        picture.pts = rtp
        picture.time_base = Fraction(1, CLOCK_RATE)
        if self._requests is not None and self._requests.pending(time.monotonic()):
            # An IDR with its SPS and PPS (`repeat-headers`): a viewer decodes from this frame on.
            picture.pict_type = PictureType.I
            self.stats.keyframes_requested += 1
        for packet in self._stream.encode(picture):
            self._out.mux(packet)

    def _note(self, what: str) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.error("live %s: %s; %d so far", self.camera, what, self.stats.encode_errors)
