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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import av.error

from lanterne.core.errors import SourceError
from lanterne.core.masks import PixelPolygon, pixel_polygons
from lanterne.core.types import Frame

log = logging.getLogger(__name__)

RTSP_OPTIONS = {
    # TCP survives packet loss on city networks; UDP would hand us grey smeared frames.
    "rtsp_transport": "tcp",
    # Socket timeout in microseconds: a dead camera must be noticed in seconds, not minutes.
    "timeout": "5000000",
}
LIVE_OPTIONS: dict[str, str] = {
    **RTSP_OPTIONS,
    # No stream probe: FFmpeg's default reads about 3 s of a 10 fps camera before `open` returns,
    # then hands those frames over late, so analysis and the live wall start 3 s behind, and the
    # lag (stream time counted from the open) reads 3 s early for the whole connection. The
    # camera's SDP already says what the stream is (codec, and the picture size from its
    # sprop-parameter-sets); `PROBED_OPTIONS` covers a camera whose SDP does not. The first
    # frame is then the camera's next keyframe: open in 0.2 s, first frame within a GOP.
    "fflags": "nobuffer",
    "analyzeduration": "0",
    "probesize": "32",
}
PROBED_OPTIONS: dict[str, str] | None = RTSP_OPTIONS
"""A camera is opened again with these, FFmpeg's probe, when its SDP left the picture size unknown
(the recorder copies the stream's parameters); None never probes."""
LIVE_THREAD_TYPE = "SLICE"
"""Decoder threads of a live camera. FFmpeg's frame threads (what `AUTO` picks, cores + 1 of
them) hold every frame back one frame interval per extra thread: 200 ms at 10 fps on 2 cores,
two thirds of the live wall's latency budget (`benchmarks/live_wall.py`). A site decodes each
camera on its own thread anyway, so frame threads buy it no throughput (they cost 5-10 % more
CPU per frame); slice threads still split a camera that sends several slices a frame. Files
keep `AUTO`: nobody watches them live."""

OPEN_TIMEOUT = 10.0
"""Seconds to open a source (RTSP handshake and stream probe)."""
READ_TIMEOUT = 5.0
"""Seconds without a packet after which a live camera is declared lost and reopened: a hung
camera keeps its session open, so only the read timeout notices it."""
EARLY = 0.1
"""Share of the analysis period by which a frame may come before its due time and still be
analysed. A live camera's timestamps jitter by milliseconds: a 10 fps camera analysed at 5 fps
whose due frame came 1 ms early would wait for the next one, the analysis would slip a frame, and
the live tile, which shows the frames in between with the boxes of the analysed one just before
(`lanterne.video.live.encoder.CARRY_FRAMES`), would lose one."""
MAX_BAD_PACKETS = 50
"""Consecutive undecodable packets after which a source is declared corrupt. A few bad packets
are normal on a damaged file or a lossy stream; fifty in a row means nothing useful follows."""


def is_live(uri: str) -> bool:
    return uri.startswith(("rtsp://", "rtsps://"))


class PacketSink(Protocol):
    """Where a connection's packets go besides the decoder (the recorder)."""

    def push(self, packet: av.Packet) -> None: ...

    def close(self) -> None: ...


Recording = Callable[[av.video.stream.VideoStream, float], PacketSink]
"""Opens the recording of one connection: given its video stream and stream-time offset."""


class Between(Protocol):
    """Where the frames that analysis skips go, when something wants them: the live wall shows a
    camera at its tile's rate (10 fps) while the camera is analysed at its own (5 fps by default),
    so the frames in between are shown with the last analysed frame's boxes
    (`lanterne.runtime.live_feed`). Asked on every skipped frame: nothing watched, nothing done."""

    def wanted(self) -> bool: ...

    def push(self, frame: Frame) -> None: ...


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
        return _checked(uri, _container(uri, target, None))
    container = _container(uri, target, LIVE_OPTIONS)
    if container.streams.video and PROBED_OPTIONS is not None:
        ctx = container.streams.video[0].codec_context
        if ctx is None or not (ctx.width and ctx.height):
            container.close()
            log.info("%s: the SDP gives no picture size; probing the stream", _redact(uri))
            container = _container(uri, target, PROBED_OPTIONS)
    return _checked(uri, container)


def _container(uri: str, target: str, options: dict[str, str] | None) -> av.container.InputContainer:
    try:
        return av.open(target, options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT))
    except av.error.FileNotFoundError:
        raise SourceError(f"{target}: file not found; check the camera's source path") from None
    except av.error.InvalidDataError:
        if is_live(uri):
            # A camera that accepts the session but sends no picture (hung encoder, frozen relay)
            # leaves FFmpeg nothing to probe: that is not a bad file.
            raise SourceError(
                f"{_redact(uri)}: the camera answered but sent no decodable video; check the camera"
            ) from None
        raise SourceError(
            f"{target}: not a video file FFmpeg can read (corrupt, truncated or unknown format)"
        ) from None
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(
            f"{_redact(uri)}: cannot open ({_reason(exc)}); check the address and the network"
        ) from None


def _checked(uri: str, container: av.container.InputContainer) -> av.container.InputContainer:
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
    frames_dropped: int = 0
    """Packets skipped undecoded to catch up with real time (see `FileSource.skip_until`)."""


class FileSource:
    """Decode a file once. `fps` selects frames for analysis by timestamp: frames are decoded
    (the codec needs them) but only selected ones are handed on, still in the decoder's pixel
    format: each step converts only what it reads (`Frame`), which is most of the cost saved at 5
    fps analysis of a 25 fps camera."""

    def __init__(
        self,
        camera_id: str,
        uri: str,
        fps: float | None = None,
        pace: bool = False,
        stop: threading.Event | None = None,
        *,
        masks: Sequence[Sequence[tuple[float, float]]] = (),
        record: Recording | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.uri = uri
        self.fps = fps
        """Analysis rate; the consumer may lower it mid-stream to shed load (read on every frame)."""
        self.masks = tuple(masks)
        """The camera's privacy masks (frame fractions): painted on every frame's pixels (LB-06)."""
        self.record = record
        """Called on each connection with the video stream and its stream-time offset; every packet
        of that connection is then pushed to what it returns, before decoding (the recorder keeps
        the camera's own packets, never re-encoded), and it is closed when the connection ends."""
        self._recording: PacketSink | None = None
        self.stats = DecodeStats()
        self.error: SourceError | None = None
        """Set when decoding stopped on a fault after some frames were delivered."""
        # --- pacing and catching up (`lanterne run`): a file stands for a live camera ----------
        self.pace = pace
        """Deliver each frame no earlier than its stream time on the wall clock, as a camera would."""
        self.stop = stop or threading.Event()
        """Interrupts a pacing wait (and, for a live source, a reconnection wait)."""
        self.wall_origin: float | None = None
        """`time.monotonic()` of stream time 0 for a paced or live source (None for an unpaced
        file, which has no real time to fall behind): lag = now - wall_origin - frame.pts."""
        self.between: Between | None = None
        """Takes the decoded frames that analysis skips while it wants them (paced like the
        others); None when nothing does."""
        self.skip_until: float | None = None
        """Set by a consumer that even its lowest rate cannot keep up: packets are dropped
        undecoded (counted in `stats.frames_dropped`) up to the first keyframe at or after this
        stream time, since a frame between keyframes cannot be decoded without those before it."""

    def frames(self) -> Iterator[Frame]:
        container = _open(self.uri)
        try:
            yield from self._decode(container, t_offset=0.0)
        finally:
            self._end_recording()
            container.close()

    def _end_recording(self) -> None:
        if self._recording is not None:
            recording, self._recording = self._recording, None
            recording.close()

    def _decode(
        self, container: av.container.InputContainer, t_offset: float, origin: float | None = None
    ) -> Iterator[Frame]:
        """The frames of one connection, each at stream time `t_offset` plus its own time since
        the connection's first frame.

        `origin` (a live camera: the `time.monotonic()` of its stream time 0) sets `t_offset` when
        the first frame is decoded, not when the connection opened. Opened without a probe, a
        camera's first decodable frame is its next keyframe, up to a GOP after the open: stamped
        from the open, every frame of the connection would look that much late, and the lag
        (`wall_origin`) would never fall under `runner.LAG_CLEAR_SECONDS` with a 1 s GOP."""
        stream = container.streams.video[0]
        stream.thread_type = LIVE_THREAD_TYPE if is_live(self.uri) else "AUTO"
        period = 1.0 / self.fps if self.fps else 0.0
        first_pts: float | None = None
        next_due = 0.0
        last_t = -1.0
        bad = 0
        fallback_rate = float(stream.average_rate or 25)
        here = 0
        """Frames decoded on this connection."""
        masks: tuple[tuple[int, int], tuple[PixelPolygon, ...]] | None = None
        """The privacy masks in pixels, for the size they were computed at (a stream may change size)."""
        self._end_recording()
        self._recording = self.record(stream, t_offset) if self.record is not None else None
        try:
            for packet in container.demux(stream):
                if self._recording is not None:
                    # Everything the camera sent is kept, including what analysis skips to catch up.
                    self._recording.push(packet)
                if self.skip_until is not None and self._dropped(packet, t_offset, first_pts):
                    continue
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
                    here += 1
                    raw = vf.time
                    if raw is None:
                        # Counted on this connection: the cumulative count would put a reconnected
                        # camera's first frame far ahead, and analysis would wait that long.
                        raw = (here - 1) / fallback_rate
                    if first_pts is None:
                        first_pts = raw
                        if origin is not None:
                            t_offset = time.monotonic() - origin
                    t = raw - first_pts
                    if t <= last_t:
                        # Broken timestamps (B-frame reordering glitches, wrapped clocks) must not
                        # make time run backwards for the rules.
                        t = last_t + 1e-3
                    last_t = t
                    period = 1.0 / self.fps if self.fps else 0.0  # shed load lowers `fps` mid-stream
                    if masks is None or masks[0] != (vf.width, vf.height):
                        masks = ((vf.width, vf.height), pixel_polygons(self.masks, (vf.width, vf.height)))
                    if period and t + EARLY * period < next_due:
                        between = self.between
                        if between is not None and between.wanted():
                            if self.pace:
                                self._pace(t_offset + t)
                            between.push(
                                Frame(self.camera_id, t_offset + t, index=idx, picture=vf, masks=masks[1])
                            )
                        continue
                    if period:
                        # Keep a regular grid, but restart it after a hole in the stream so
                        # that we do not then analyse a burst of frames to "catch up".
                        next_due += period
                        if t + 1e-6 >= next_due:
                            next_due = t + period
                    if self.pace:
                        self._pace(t_offset + t)
                    self.stats.frames_selected += 1
                    # Pixels stay in the decoder's format until a step asks for them (Frame).
                    yield Frame(self.camera_id, t_offset + t, index=idx, picture=vf, masks=masks[1])
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
        decodable = self.stats.frames_decoded + self.stats.frames_dropped  # dropped were readable
        if not is_live(self.uri) and declared and decodable < 0.98 * declared:
            self.error = SourceError(
                f"{_redact(self.uri)}: only {self.stats.frames_decoded} of the {declared} frames the "
                "file declares could be decoded; the file is truncated"
            )

    def _dropped(self, packet: av.Packet, t_offset: float, first_pts: float | None) -> bool:
        """Whether `packet` is dropped undecoded while catching up (`skip_until`). Decoding
        resumes at a keyframe, the first picture the decoder can rebuild on its own."""
        if packet.size == 0:
            return False  # the demuxer's final flush packet, not a picture
        at = None
        stamp = packet.pts if packet.pts is not None else packet.dts  # AVI packets carry only dts
        if stamp is not None and packet.time_base is not None and first_pts is not None:
            at = t_offset + float(stamp * packet.time_base) - first_pts
        if packet.is_keyframe and (at is None or self.skip_until is None or at >= self.skip_until):
            self.skip_until = None
            return False
        self.stats.frames_dropped += 1
        return True

    def _pace(self, pts: float) -> None:
        """Hold the frame of stream time `pts` until it is due on the wall clock, as a live camera
        would deliver it. A consumer that is behind finds it due already and is not held."""
        now = time.monotonic()
        if self.wall_origin is None:
            self.wall_origin = now - pts
        delay = self.wall_origin + pts - now
        if delay > 0:
            self.stop.wait(delay)


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
        *,
        masks: Sequence[Sequence[tuple[float, float]]] = (),
        record: Recording | None = None,
    ) -> None:
        super().__init__(camera_id, uri, fps, masks=masks, record=record)
        self.stop = stop or threading.Event()
        self.max_backoff = max_backoff
        self.last_error: str | None = None

    def frames(self) -> Iterator[Frame]:
        started = time.monotonic()
        self.wall_origin = started  # frame.pts counts wall time from here, across reconnections
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
                for frame in self._decode(container, time.monotonic() - started, origin=started):
                    if self.stop.is_set():
                        return
                    yield frame
                if self.stats.frames_selected > delivered:
                    backoff = 1.0
            finally:
                self._end_recording()
                container.close()
            self.last_error = "stream ended"
            log.warning("camera %s: stream lost; reconnecting in %.0f s", self.camera_id, backoff)
            self.stats.reconnects += 1
            if self.stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.max_backoff)


def open_source(
    camera_id: str,
    uri: str,
    fps: float | None,
    stop: threading.Event | None = None,
    pace: bool = False,
    masks: Sequence[Sequence[tuple[float, float]]] = (),
    record: Recording | None = None,
) -> FileSource:
    """`pace` applies to files only: a live camera delivers at real time by itself."""
    if is_live(uri):
        return LiveSource(camera_id, uri, fps, stop=stop, masks=masks, record=record)
    return FileSource(camera_id, uri, fps, pace=pace, stop=stop, masks=masks, record=record)
