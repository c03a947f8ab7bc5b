"""The recorder: each camera's own stream, as it arrives, into encrypted segments.

Packets are copied, never decoded or re-encoded (PyAV remux into Matroska), so recording costs a
memory copy, the muxer and AES-GCM: a small fraction of decoding the same stream
(`benchmarks/recording.py`). Only the video stream is opened for output; an audio track never has
an output stream to go to (EV-06). A segment starts on a keyframe, so every segment decodes on
its own, and a new one begins at the first keyframe after `segment_seconds`.

The muxer writes into memory; its clusters are capped at one second and 256 KiB, and every
cluster it emits is sealed as one encrypted record and appended to the file at once. A recorder
killed at any instant therefore leaves at most the last second of the open segment unreadable,
and `Recorder.recover` (run at start-up) keeps the rest, records its hash and end, and marks the
segment `recovered` (or `lost` if nothing could be read).

A full disk (`ENOSPC`) calls the `free` function the recorder was given (the retention's
`lanterne.accountability.recordings.free_oldest`: the oldest segments no legal hold covers, of any
camera, deleted and recorded as every deletion is) and retries the write once: recording goes on.
Deletion is the retention's job, so there is one way to delete a segment.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import av.error

from lanterne.audit import AuditLog
from lanterne.config.schema import Config, Mode, RecordingSettings
from lanterne.core.errors import RecordingError
from lanterne.store import Store
from lanterne.video.recording.index import (
    SegmentRow,
    all_segments,
    inside,
    open_row,
    seal_row,
    segment,
)
from lanterne.video.recording.keys import KeyRing
from lanterne.video.recording.segment_file import SegmentWriter, parse

log = logging.getLogger(__name__)

T = TypeVar("T")

MUX_OPTIONS = {
    # A cluster closes after one second of video or 256 KiB: what a crash can lose at most.
    "cluster_time_limit": "1000",
    "cluster_size_limit": str(256 * 1024),
    # Hand each finished cluster to the sink at once instead of holding it in the I/O buffer.
    "flush_packets": "1",
}

DISK_FULL_FREE_SHARE = 0.02
"""On a full disk, free at least this share of the file system (at least one segment): enough
that the next minutes of every camera fit, little enough to keep what can be kept."""


def recording_mode(cfg: Config, camera_id: str) -> str:
    """What the camera records: its `record` setting, and `off` in statistics mode, which never
    keeps a picture."""
    if cfg.mode is Mode.STATISTICS:
        return "off"
    for cam in cfg.cameras:
        if cam.id == camera_id:
            return cam.record
    raise RecordingError(f"camera {camera_id!r} is not in the configuration; check its id")


class _Sink(io.RawIOBase):
    """Where the muxer writes: memory only, so nothing in clear reaches the disk."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)

    def take(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        return data


@dataclass(slots=True)
class _Open:
    row: SegmentRow
    writer: SegmentWriter
    sink: _Sink
    out: av.container.OutputContainer
    ostream: av.video.stream.VideoStream
    offset: int
    """Stream ticks subtracted from every packet, so the segment's first frame is at time 0."""
    start_rel: float
    end_rel: float
    """Stream seconds (from the first packet pushed) covered so far."""


class CameraRecorder:
    """One camera's stream since it was (re)opened. `push` every demuxed video packet, `close` at
    the end or on reconnect; a reconnect opens a new one, and the time between is a gap."""

    def __init__(
        self, recorder: Recorder, camera: str, stream: av.video.stream.VideoStream, origin: datetime
    ) -> None:
        self._r = recorder
        self.camera = camera
        self.stream = stream
        self.origin = origin.astimezone(UTC)
        self._tb: Fraction = stream.time_base or Fraction(1, 90000)
        self._first: int | None = None
        self._seg: _Open | None = None
        self._lock = threading.Lock()
        self.closed = False
        self.packets = 0
        self.bad_packets = 0
        self.segments = 0
        self.waiting_for_keyframe = 0

    # --- the per-packet path ------------------------------------------------------------------

    def push(self, packet: av.Packet) -> None:
        """Record one packet. Never raises: a bad packet is counted and logged, and a failing
        segment is ended (kept as far as written) so the next keyframe starts a clean one."""
        with self._lock:
            if self.closed:
                return
            try:
                self._push(packet)
            except Exception as exc:  # one bad packet must not stop the camera
                self.bad_packets += 1
                if self.bad_packets in (1, 10, 100) or self.bad_packets % 1000 == 0:
                    log.warning(
                        "camera %s: packet not recorded (%s: %s); %d so far",
                        self.camera,
                        type(exc).__name__,
                        str(exc).splitlines()[0] if str(exc) else "",
                        self.bad_packets,
                    )
                # A write that failed even after freeing space: end the segment where it stands.
                # A packet the muxer refused (bad timestamps) leaves the segment usable.
                if (
                    isinstance(exc, OSError)
                    and not isinstance(exc, av.error.FFmpegError)
                    and self._seg is not None
                ):
                    self._abort()

    def _push(self, packet: av.Packet) -> None:
        if packet.size == 0:
            return  # the demuxer's flush packet
        if packet.stream is not None and packet.stream.type != "video":
            raise RecordingError("only video packets are recorded (no audio, EV-06)")
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None:
            raise RecordingError("packet without a timestamp")
        tb = packet.time_base or self._tb
        if self._first is None:
            self._first = stamp
        rel = float((stamp - self._first) * tb)
        seg = self._seg
        if seg is None:
            if not packet.is_keyframe:
                self.waiting_for_keyframe += 1
                return
            seg = self._open_segment(stamp, rel)
        elif packet.is_keyframe and rel - seg.start_rel >= self._r.settings.segment_seconds:
            self._seal()
            seg = self._open_segment(stamp, rel)
        copy = av.Packet(packet)
        copy.pts = None if packet.pts is None else packet.pts - seg.offset
        copy.dts = None if packet.dts is None else packet.dts - seg.offset
        copy.duration = packet.duration
        copy.time_base = tb
        copy.is_keyframe = packet.is_keyframe
        copy.stream = seg.ostream
        seg.out.mux(copy)
        self.packets += 1
        seg.end_rel = max(seg.end_rel, rel + float((packet.duration or 0) * tb))
        if seg.sink.buf:
            data = seg.sink.take()
            self._r._write(lambda: seg.writer.seal(data))

    def _open_segment(self, stamp: int, rel: float) -> _Open:
        r = self._r
        start = self.origin + timedelta(seconds=rel)
        key_id, key = r.keys.newest
        row = open_row(r.store, self.camera, start, key_id, _path_for(self.camera))
        try:
            writer = r._write(lambda: SegmentWriter(inside(r.root, row.path), row.id, key_id, key))
        except BaseException:
            r._recover_row(row)
            raise
        sink = _Sink()
        out = av.open(sink, "w", format="matroska", options=MUX_OPTIONS)
        ostream = out.add_stream_from_template(self.stream)
        self._seg = _Open(row, writer, sink, out, ostream, stamp, rel, rel)
        return self._seg

    def _seal(self) -> None:
        seg, self._seg = self._seg, None
        if seg is None:
            return
        try:
            seg.out.close()
            data = seg.sink.take()
            self._r._write(lambda: seg.writer.seal(data, last=True))
            sha = seg.writer.close()
        except Exception:
            seg.writer.abandon()
            self._r._recover_row(seg.row)
            raise
        end = self.origin + timedelta(seconds=seg.end_rel)
        if not seal_row(self._r.store, seg.row.id, end, seg.writer.size, sha, "complete"):
            # Only a second writer of this camera gets here: the one that recovered our segment.
            log.error(
                "camera %s: segment %d was sealed by another process while this one still wrote it; "
                "`lanterne recordings verify` will show its end; run one worker per camera",
                self.camera,
                seg.row.id,
            )
        self.segments += 1

    def _abort(self) -> None:
        """End the open segment where it stands after a failure: what was written is kept through
        the crash-recovery path, and the next keyframe opens a new segment."""
        seg, self._seg = self._seg, None
        if seg is None:
            return
        try:
            seg.out.close()
        except Exception:  # the muxer may be in any state after the failure
            log.debug("camera %s: muxer not closed cleanly", self.camera)
        seg.writer.abandon()
        try:
            self._r._recover_row(seg.row)
        except Exception as exc:  # recover( at the next start retries it)
            log.warning(
                "camera %s: segment %d left open (%s); recover() will seal it", self.camera, seg.row.id, exc
            )

    def abandon(self) -> None:
        """Stop recording without another byte or index write: a cluster worker that lost the
        camera's lease calls this, because the camera's new owner may already have recovered the
        open segment, and a late seal would change a file whose hash is sealed. The segment stays
        as the new owner recovered it (or open, for it to recover). Safe to call twice."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            seg, self._seg = self._seg, None
            if seg is not None:
                seg.writer.abandon()
                try:
                    seg.out.close()  # writes only to its in-memory sink, which goes with it
                except Exception:
                    log.debug("camera %s: muxer not closed cleanly", self.camera)
            self._r._closed(self)

    def close(self) -> None:
        """Seal the open segment. Safe to call twice."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                self._seal()
            except Exception as exc:  # closing must not fail the caller's shutdown
                log.warning("camera %s: last segment kept as recovered (%s)", self.camera, exc)
            self._r._closed(self)


def _path_for(camera: str) -> Callable[[int, datetime], str]:
    def path(seq: int, start: datetime) -> str:
        return f"{camera}/{start:%Y-%m-%d}/{camera}-{seq:08d}-{start:%H%M%S}.lseg"

    return path


class Recorder:
    """Writes every camera's stream into the recordings directory and the segment index.

    >>> import tempfile
    >>> from lanterne.audit import AuditLog
    >>> from lanterne.config.schema import RecordingSettings
    >>> from lanterne.store import Store
    >>> tmp = Path(tempfile.mkdtemp())
    >>> store = Store.open("sqlite://")
    >>> keys = KeyRing.load_or_create(tmp / "keys.json")
    >>> rec = Recorder(RecordingSettings(dir=tmp / "rec"), keys, store, AuditLog(store.engine), free=lambda n: 0)
    >>> rec.recover()
    []
    """

    def __init__(
        self,
        settings: RecordingSettings,
        keys: KeyRing,
        store: Store,
        audit: AuditLog,
        *,
        free: Callable[[int], int],
    ) -> None:
        """`free(target_bytes)` deletes old segments on a full disk and returns the bytes freed."""
        self.settings = settings
        self.keys = keys
        self.store = store
        self.audit = audit
        self._free = free
        self.root = Path(settings.dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cameras: dict[str, CameraRecorder] = {}
        self._lock = threading.Lock()
        self._free_lock = threading.Lock()
        self.disk_full_events = 0

    def open(self, camera_id: str, stream: av.video.stream.VideoStream, origin: datetime) -> CameraRecorder:
        """Start recording `stream`; `origin` is the UTC wall time of the first packet pushed.
        A camera still open here is closed first (a reconnect)."""
        if origin.tzinfo is None:
            raise ValueError("origin must be timezone-aware (e.g. datetime.now(UTC))")
        if stream.type != "video":
            raise RecordingError(
                f"camera {camera_id}: only a video stream is recorded, not {stream.type} (EV-06)"
            )
        with self._lock:
            old = self._cameras.pop(camera_id, None)
        if old is not None:
            old.close()
        for row in all_segments(self.store, camera_id, states=("open",)):
            self._recover_row(row)
        cam = CameraRecorder(self, camera_id, stream, origin)
        with self._lock:
            self._cameras[camera_id] = cam
        return cam

    def _closed(self, cam: CameraRecorder) -> None:
        with self._lock:
            if self._cameras.get(cam.camera) is cam:
                del self._cameras[cam.camera]

    def close(self) -> None:
        """Seal every camera's open segment (the runner's shutdown)."""
        with self._lock:
            cams = list(self._cameras.values())
        for cam in cams:
            cam.close()

    # --- crash recovery -----------------------------------------------------------------------

    def recover(self) -> list[SegmentRow]:
        """Seal the segments a crash left open: run once at start-up, before any `open`. Returns
        them as sealed (`recovered`, `lost`, or `complete` if only the index update was missed).
        A segment whose key is not in the ring stays open and the `RecordingError` says which."""
        with self._lock:
            busy = {c.camera for c in self._cameras.values()}
        return [
            self._recover_row(row)
            for row in all_segments(self.store, states=("open",))
            if row.camera not in busy
        ]

    def _recover_row(self, row: SegmentRow) -> SegmentRow:
        path = inside(self.root, row.path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        state, keep, end_rel = "lost", len(data), 0.0
        try:
            parsed = parse(data, self.keys) if data else None
        except ValueError:
            parsed = None  # killed while writing the header: nothing to read
        if parsed is not None and parsed.chunks:
            end_rel = _media_end(b"".join(parsed.chunks))
            if end_rel is not None:
                state = "complete" if parsed.problem is None else "recovered"
                keep = parsed.valid_length
        if keep < len(data):
            # Only ever after a record authenticated (the key is right): what goes is a torn tail.
            with path.open("r+b") as f:
                f.truncate(keep)
            data = data[:keep]
        end = row.start + timedelta(seconds=end_rel or 0.0)
        if seal_row(self.store, row.id, end, len(data), hashlib.sha256(data).hexdigest(), state):
            log.warning("camera %s: segment %d left open by a crash, sealed as %s", row.camera, row.id, state)
        sealed = segment(self.store, row.id)
        assert sealed is not None
        return sealed

    # --- a full disk --------------------------------------------------------------------------

    def _write(self, fn: Callable[[], T]) -> T:
        """Run a file write; on a full disk free space once and retry once."""
        try:
            return fn()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        self.free_space()
        return fn()

    def free_space(self) -> int:
        """Free a share of the file system (`DISK_FULL_FREE_SHARE`) through `free`; one caller at
        a time, since every camera's writer hits the same full disk. Returns the bytes freed."""
        with self._free_lock:
            try:
                target = max(1, int(shutil.disk_usage(self.root).total * DISK_FULL_FREE_SHARE))
            except OSError:
                target = 1
            self.disk_full_events += 1
            return self._free(target)


def _media_end(plain: bytes) -> float | None:
    """Seconds from the segment's start to the end of its last complete packet, or None when the
    bytes hold no packet (a crash before the first cluster)."""
    try:
        with av.open(io.BytesIO(plain), "r", format="matroska") as c:
            if not c.streams.video:
                return None
            s = c.streams.video[0]
            end: float | None = None
            for p in c.demux(s):
                if p.size == 0 or p.pts is None or p.time_base is None:
                    continue
                t = float((p.pts + (p.duration or 0)) * p.time_base)
                end = t if end is None else max(end, t)
            return end
    except (av.error.FFmpegError, OSError):
        return None
