"""The live wall's fallback transport: the anonymised RTP stream turned into JPEG pictures for a
browser that cannot play WebRTC (issue 14, item 2).

WebRTC fails where UDP between the operator's browser and the gateway is blocked, where a browser
has WebRTC switched off by policy, or while the gateway is missing. The console then receives the
same anonymised stream the camera's process already makes for Janus (a second destination of the
same `LiveEncoder`, never another source: what a fallback carries was pixelated in the camera's
process, like every live picture), decodes it and keeps the newest picture as a JPEG, which every
fallback viewer of the camera shares as a multipart (MJPEG) HTTP response, the one video format
every browser shows in an `<img>` without a plugin or a media API.

The RTP is depacketised here (RFC 6184: single NAL unit, STAP-A and FU-A packets, the three
FFmpeg's muxer sends in packetisation mode 1) rather than by FFmpeg's SDP demuxer, which would
own the socket: this way a dead sender is a timeout we see, closing never blocks, and a lost
packet drops the frames up to the next keyframe instead of showing a smeared picture.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import cv2

from lanterne.core.errors import LanterneError

log = logging.getLogger(__name__)

START_CODE = b"\x00\x00\x00\x01"
NAL_IDR = 5
NAL_SPS = 7
STAP_A = 24
FU_A = 28
JPEG_QUALITY = 75
"""Enough to read a scene on a tile; a 640x360 picture is 25-40 kB, about 3 Mbit/s at 10 fps."""
RECV_TIMEOUT = 0.5
"""How long the receiving thread waits for a packet before looking whether it should stop."""


@dataclass(slots=True)
class RelayStats:
    """What a relay did: counts, never pictures."""

    packets: int = 0
    lost: int = 0
    """Packets missing from the sequence (each one drops frames up to the next keyframe)."""
    frames: int = 0
    """Pictures decoded and made JPEG."""
    decode_errors: int = 0
    cpu_seconds: float = 0.0
    """CPU seconds of the relay's thread (depacketise, decode, JPEG): what the fallback costs the
    console per watched camera, whatever the number of its viewers."""


class Depacketiser:
    """RTP packets of one H.264 stream in, whole access units (Annex B) out.

    >>> d = Depacketiser()
    >>> sps = bytes([0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x67, 1, 2])
    >>> d.push(sps)
    []
    >>> idr = bytes([0x80, 0xE0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0x65, 9])
    >>> d.push(idr) == [b"\\x00\\x00\\x00\\x01\\x67\\x01\\x02\\x00\\x00\\x00\\x01\\x65\\x09"]
    True
    """

    def __init__(self) -> None:
        self._unit = bytearray()
        self._timestamp: int | None = None
        self._seq: int | None = None
        self._broken = True
        """Waiting for a keyframe: at the start, and after a lost packet."""
        self._fragment = False
        self.lost = 0

    def push(self, packet: bytes) -> list[bytes]:
        """The access units `packet` completes (none, or one; two when a timestamp changed
        without the previous unit's marker)."""
        if len(packet) < 12 or packet[0] >> 6 != 2:
            return []
        cc = packet[0] & 0x0F
        marker = bool(packet[1] & 0x80)
        seq, timestamp = struct.unpack_from("!HI", packet, 2)
        start = 12 + 4 * cc
        if packet[0] & 0x10:  # header extension
            if len(packet) < start + 4:
                return []
            (words,) = struct.unpack_from("!H", packet, start + 2)
            start += 4 + 4 * words
        end = len(packet)
        if packet[0] & 0x20:  # padding
            end -= packet[-1]
        payload = packet[start:end]
        if not payload:
            return []
        done: list[bytes] = []
        if self._seq is not None and seq != (self._seq + 1) & 0xFFFF:
            self.lost += (seq - self._seq - 1) & 0xFFFF
            self._broken = True
            self._unit.clear()
            self._fragment = False
        self._seq = seq
        if self._timestamp is not None and timestamp != self._timestamp and self._unit:
            done += self._finish()
        self._timestamp = timestamp
        self._add(payload)
        if marker:
            done += self._finish()
        return done

    def _add(self, payload: bytes) -> None:
        kind = payload[0] & 0x1F
        if 1 <= kind <= 23:
            self._nal(payload)
        elif kind == STAP_A:
            at = 1
            while at + 2 <= len(payload):
                (size,) = struct.unpack_from("!H", payload, at)
                at += 2
                if size == 0 or at + size > len(payload):
                    break
                self._nal(payload[at : at + size])
                at += size
        elif kind == FU_A and len(payload) > 2:
            header = payload[1]
            if header & 0x80:  # start of a fragmented NAL unit
                self._nal(bytes([(payload[0] & 0xE0) | (header & 0x1F)]) + payload[2:])
                self._fragment = True
            elif self._fragment:
                self._unit += payload[2:]
            if header & 0x40:
                self._fragment = False

    def _nal(self, nal: bytes) -> None:
        kind = nal[0] & 0x1F
        if self._broken and kind in (NAL_IDR, NAL_SPS):
            self._broken = False
        self._unit += START_CODE + nal

    def _finish(self) -> list[bytes]:
        unit, self._unit = bytes(self._unit), bytearray()
        self._fragment = False
        return [] if self._broken or not unit else [unit]


class JpegRelay:
    """One camera's fallback picture: receives its anonymised RTP on a UDP port of this machine,
    keeps the newest decoded picture as a JPEG, and tells its listeners (from its own thread) that
    a new one is there. `port` is what the camera's process is told to send to.

    Decoding happens only while the relay runs, and a relay runs only while someone watches the
    camera through it (the console stops it after its last viewer)."""

    def __init__(
        self,
        camera: str,
        bind: str = "127.0.0.1",
        *,
        quality: int = JPEG_QUALITY,
    ) -> None:
        if "h264" not in av.codecs_available:
            raise LanterneError(
                "the live fallback needs FFmpeg's H.264 decoder: install a PyAV build that has it"
            )
        self.camera = camera
        self.quality = quality
        self.stats = RelayStats()
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.bind((bind, 0))
        except OSError as exc:
            self._sock.close()
            raise LanterneError(
                f"live fallback for {camera}: cannot listen on {bind} ({exc.strerror}); "
                "set live.relay_host to an address of this machine"
            ) from exc
        self._sock.settimeout(RECV_TIMEOUT)
        self.port: int = self._sock.getsockname()[1]
        self._latest: bytes | None = None
        self._seq = 0
        self._received_at = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"live-relay-{camera}", daemon=True)

    def start(self) -> JpegRelay:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * RECV_TIMEOUT + 1)
        self._sock.close()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def latest(self) -> tuple[int, bytes | None, float]:
        """(sequence number, newest JPEG or None, `time.monotonic()` when it came)."""
        with self._lock:
            return self._seq, self._latest, self._received_at

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from the relay's thread, so it must be quick: setting an event) at
        each new picture; returns what stops it."""
        with self._lock:
            self._listeners.append(callback)

        def stop() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return stop

    @property
    def listeners(self) -> int:
        with self._lock:
            return len(self._listeners)

    def _run(self) -> None:
        depacketiser = Depacketiser()
        decoder = av.CodecContext.create("h264", "r")
        # One thread: frame threading would hold back a picture per thread, a tile's latency.
        decoder.thread_count = 1
        while not self._stop.is_set():
            try:
                packet = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            started = time.thread_time()
            self.stats.packets += 1
            for unit in depacketiser.push(packet):
                self._decode(decoder, unit)
            self.stats.lost = depacketiser.lost
            self.stats.cpu_seconds += time.thread_time() - started

    def _decode(self, decoder: av.CodecContext, unit: bytes) -> None:
        try:
            pictures = decoder.decode(av.Packet(unit))
        except av.FFmpegError:
            self.stats.decode_errors += 1
            return
        for picture in pictures:
            ok, jpeg = cv2.imencode(
                ".jpg", picture.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
            )
            if not ok:
                self.stats.decode_errors += 1
                continue
            with self._lock:
                self._latest = jpeg.tobytes()
                self._seq += 1
                self._received_at = time.monotonic()
                listeners = list(self._listeners)
            self.stats.frames += 1
            for listener in listeners:
                listener()
