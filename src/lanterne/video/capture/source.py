"""Video sources through PyAV (FFmpeg): files and RTSP cameras.

Time is the presentation timestamp in seconds from the stream start, never a frame count: RTSP
drops frames and cameras vary their rate, and every rule counts seconds. Only the video stream
is demuxed and decoded; an audio track is never decoded (EV-06 of the legal requirements: no
sound is processed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.error

from lanterne.core.errors import SourceError
from lanterne.core.types import Frame

log = logging.getLogger(__name__)

RTSP_OPTIONS = {
    # TCP survives packet loss on city networks; UDP would hand us grey smeared frames.
    "rtsp_transport": "tcp",
    # Socket timeout in microseconds: a dead camera must be noticed in seconds, not minutes.
    "timeout": "5000000",
}

MAX_BAD_PACKETS = 50
"""Consecutive undecodable packets after which a source is declared corrupt. A few bad packets
are normal on a damaged file or a lossy stream; fifty in a row means nothing useful follows."""


def is_live(uri: str) -> bool:
    return uri.startswith(("rtsp://", "rtsps://"))


@dataclass(frozen=True, slots=True)
class SourceInfo:
    width: int
    height: int
    fps: float | None
    duration: float | None
    codec: str


def _open(uri: str) -> av.container.InputContainer:
    target = uri.removeprefix("file://")
    if not is_live(uri):
        p = Path(target)
        if not p.exists():
            raise SourceError(f"{target}: file not found; check the camera's source path")
        if p.stat().st_size == 0:
            raise SourceError(f"{target}: file is empty; record or copy the clip again")
    try:
        container = av.open(target, options=RTSP_OPTIONS if is_live(uri) else None, timeout=10.0)
    except av.error.FileNotFoundError:
        raise SourceError(f"{target}: file not found; check the camera's source path") from None
    except av.error.InvalidDataError:
        raise SourceError(
            f"{target}: not a video file FFmpeg can read (corrupt, truncated or unknown format)"
        ) from None
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(
            f"{_redact(uri)}: cannot open ({_reason(exc)}); check the address and the network"
        ) from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{_redact(uri)}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.name is None:
        container.close()
        raise SourceError(f"{_redact(uri)}: unknown video codec; transcode it to H.264")
    return container


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or type(exc).__name__)


def _redact(uri: str) -> str:
    """RTSP addresses often carry a password (`rtsp://user:pass@host`); logs must not."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return uri


def probe(uri: str) -> SourceInfo:
    container = _open(uri)
    try:
        v = container.streams.video[0]
        fps = float(v.average_rate) if v.average_rate else None
        duration = float(container.duration / av.time_base) if container.duration else None
        return SourceInfo(
            width=v.codec_context.width,
            height=v.codec_context.height,
            fps=fps,
            duration=duration,
            codec=v.codec_context.name,
        )
    finally:
        container.close()


@dataclass(slots=True)
class DecodeStats:
    frames_decoded: int = 0
    frames_selected: int = 0
    bad_packets: int = 0
    reconnects: int = 0


class FileSource:
    """Decode a file once. `fps` selects frames for analysis by timestamp: frames are decoded
    (the codec needs them) but only selected ones are converted to arrays, which is most of the
    cost saved at 5 fps analysis of a 25 fps camera."""

    def __init__(self, camera_id: str, uri: str, fps: float | None = None) -> None:
        self.camera_id = camera_id
        self.uri = uri
        self.fps = fps
        self.stats = DecodeStats()
        self.error: SourceError | None = None
        """Set when decoding stopped on a fault after some frames were delivered."""

    def frames(self) -> Iterator[Frame]:
        container = _open(self.uri)
        try:
            yield from self._decode(container, t_offset=0.0)
        finally:
            container.close()

    def _decode(self, container: av.container.InputContainer, t_offset: float) -> Iterator[Frame]:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        period = 1.0 / self.fps if self.fps else 0.0
        first_pts: float | None = None
        next_due = 0.0
        last_t = -1.0
        bad = 0
        fallback_rate = float(stream.average_rate or 25)
        try:
            for packet in container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    bad += 1
                    self.stats.bad_packets += 1
                    if bad >= MAX_BAD_PACKETS:
                        raise SourceError(
                            f"{_redact(self.uri)}: {bad} consecutive corrupt packets after "
                            f"{self.stats.frames_decoded} frames; the file is damaged"
                        ) from None
                    continue
                bad = 0
                for vf in decoded:
                    idx = self.stats.frames_decoded
                    self.stats.frames_decoded += 1
                    raw = vf.time
                    if raw is None:
                        raw = idx / fallback_rate
                    if first_pts is None:
                        first_pts = raw
                    t = raw - first_pts
                    if t <= last_t:
                        # Broken timestamps (B-frame reordering glitches, wrapped clocks) must not
                        # make time run backwards for the rules.
                        t = last_t + 1e-3
                    last_t = t
                    if period and t + 1e-6 < next_due:
                        continue
                    if period:
                        # Keep a regular grid, but restart it after a hole in the stream so
                        # that we do not then analyse a burst of frames to "catch up".
                        next_due += period
                        if t + 1e-6 >= next_due:
                            next_due = t + period
                    self.stats.frames_selected += 1
                    image = vf.to_ndarray(format="bgr24")
                    yield Frame(camera_id=self.camera_id, pts=t_offset + t, image=image, index=idx)
        except av.error.EOFError:
            pass
        except av.error.FFmpegError as exc:
            if self.stats.frames_decoded == 0:
                raise SourceError(f"{_redact(self.uri)}: cannot decode ({_reason(exc)})") from None
            self.error = SourceError(
                f"{_redact(self.uri)}: decoding stopped after {self.stats.frames_decoded} frames "
                f"({_reason(exc)}); the file is truncated or damaged"
            )
            return
        declared = stream.frames
        if not is_live(self.uri) and declared and self.stats.frames_decoded < 0.98 * declared:
            self.error = SourceError(
                f"{_redact(self.uri)}: only {self.stats.frames_decoded} of the {declared} frames the "
                "file declares could be decoded; the file is truncated"
            )


class LiveSource(FileSource):
    """An RTSP camera. A dropped stream is reopened with exponential backoff while other cameras
    go on; timestamps continue from the wall-clock time elapsed, so rule timers stay honest
    across a gap."""

    def __init__(
        self,
        camera_id: str,
        uri: str,
        fps: float | None = None,
        stop: threading.Event | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__(camera_id, uri, fps)
        self.stop = stop or threading.Event()
        self.max_backoff = max_backoff
        self.last_error: str | None = None

    def frames(self) -> Iterator[Frame]:
        started = time.monotonic()
        backoff = 1.0
        while not self.stop.is_set():
            try:
                container = _open(self.uri)
            except SourceError as exc:
                self.last_error = str(exc)
                log.warning("camera %s: %s; retrying in %.0f s", self.camera_id, exc, backoff)
                self.stats.reconnects += 1
                if self.stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.max_backoff)
                continue
            try:
                delivered = self.stats.frames_selected
                for frame in self._decode(container, t_offset=time.monotonic() - started):
                    if self.stop.is_set():
                        return
                    yield frame
                if self.stats.frames_selected > delivered:
                    backoff = 1.0
            finally:
                container.close()
            self.last_error = "stream ended"
            log.warning("camera %s: stream lost; reconnecting in %.0f s", self.camera_id, backoff)
            self.stats.reconnects += 1
            if self.stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff)


def open_source(
    camera_id: str, uri: str, fps: float | None, stop: threading.Event | None = None
) -> FileSource:
    if is_live(uri):
        return LiveSource(camera_id, uri, fps, stop=stop)
    return FileSource(camera_id, uri, fps)
