"""Anonymised evidence for events: a JPEG snapshot at once, an MP4 clip around the situation.

Every picture that reaches the disk goes through the `Anonymizer` the writer was built with; the
writer has no method that writes a frame as it came from the camera, and it takes the detector's
person and vehicle boxes with each frame so that the anonymiser can cover what its own face and
plate detectors miss.

Cost per camera, not per event: a frame is anonymised at most once, the first time a clip or a
snapshot needs it, and its anonymised copy takes the raw frame's place in the ring buffer, so every
overlapping clip, every later event's pre-roll and every snapshot that covers it reuse that copy.
A camera with no open event anonymises nothing. Clips hold the frames `push` is given, that is the
analysis rate, with their real timestamps.

Memory: each camera keeps a ring buffer of its most recent frames (raw, or anonymised in their
place once needed: never both) for the clip's pre-roll, bounded by BOTH `buffer_seconds` (default
`pre_seconds + 5`) and `max_buffer_bytes` (default 200 MiB per camera), whichever is reached
first. At the analysis rate of 5 fps a 720p camera needs about 110 MB for 8 s; a 1080p one reaches
the byte cap at about 6.4 s, so its pre-roll is shorter than asked when the event started long
before it was raised. Clips are encoded frame by frame as frames arrive, so a long event costs
encoder state, not frames in memory; an event that never closes is cut at `max_clip_seconds`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np

from lanterne.core.types import Event
from lanterne.store.repository import Store
from lanterne.video.anonymize.base import Anonymizer
from lanterne.video.detectors.base import PixelBox

log = logging.getLogger(__name__)

EvidenceKind = Literal["snapshot", "clip"]

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TIME_BASE = Fraction(1, 1000)
"""Clip timestamps in milliseconds: frames keep their real spacing (RTSP drops frames, analysis
rates vary), so the clip plays at true speed instead of assuming a constant rate."""
REGION_COLOUR = (0, 0, 255)
"""BGR red: the region an operator should look at."""
JPEG_QUALITY = 90
PRE_SECONDS = 3.0
"""What an event's clip shows before the event started: how the situation arose."""
POST_SECONDS = 3.0
"""What an event's clip shows after the event ended."""
SNAPSHOT_SECONDS = 2.0
"""Frames kept for a recorded camera: an event's snapshot is the frame nearest the moment its
rule fired, which is at most one analysis interval old when the event is handed over."""
_REMEMBERED_EVENTS = 4096
"""Ids of finished events remembered per camera, so that a late closing update does not write a
second snapshot. Bounded so that a camera running for months does not grow a set forever."""


def default_codec() -> str:
    """H.264 where the PyAV build has an encoder for it (every browser plays it), MPEG-4 part 2
    otherwise (always built into FFmpeg, plays in VLC and most desktop players)."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    event_id: str
    kind: EvidenceKind
    path: Path
    relative: str
    """POSIX path relative to the evidence root, as recorded in the store."""
    sha256: str
    size: int


@dataclass(slots=True)
class _Buffered:
    pts: float
    image: np.ndarray
    """The camera's frame until a clip or snapshot first needs it, then its anonymised copy (read
    only) in its place: the raw pixels are no longer needed, and holding one image per frame keeps
    the buffer's byte bound unchanged."""
    person_boxes: tuple[PixelBox, ...]
    vehicle_boxes: tuple[PixelBox, ...]
    anonymised: bool = False


@dataclass(slots=True)
class _Clip:
    event_id: str
    final: Path
    part: Path
    container: Any
    stream: Any
    start: float
    """Stream time of the clip's first wanted instant (`event.start - pre_seconds`)."""
    end: float | None
    """Stream time after which no frame is wanted; None while the event is ongoing."""
    size: tuple[int, int] | None = None
    first_pts: float | None = None
    last_ms: int = -1
    frames: int = 0


@dataclass(slots=True)
class _Camera:
    clips: bool
    """Whether this writer makes the camera's clips (False: the recording holds them)."""
    keep_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    frames: deque[_Buffered] = field(default_factory=deque)
    bytes: int = 0
    open: dict[str, _Clip] = field(default_factory=dict)
    """The clips being written, by event id."""
    done: OrderedDict[str, None] = field(default_factory=OrderedDict)


class EvidenceWriter:
    """Writes anonymised snapshots and clips for events, one ring buffer per camera.

    Call `push` with every analysed frame (after detection, so its boxes are known) and
    `on_event` with every update of an event: the first one writes the snapshot and starts the
    clip, the closing one (`ongoing=False`) fixes where the clip ends. Call the store's
    `upsert_event` before `on_event`: evidence rows reference the event. `push`, `on_event` and
    `close` return the evidence files they completed. Safe to share between camera threads.

    >>> import numpy as np, tempfile
    >>> class Grey:
    ...     def anonymize(self, image, person_boxes=(), vehicle_boxes=()):
    ...         return np.full_like(image, 128)
    >>> w = EvidenceWriter(Path(tempfile.mkdtemp()), Grey(), store=None)
    >>> w.push("cam", 0.0, np.zeros((48, 64, 3), np.uint8))
    []
    """

    def __init__(
        self,
        root: Path,
        anonymizer: Anonymizer,
        store: Store | None,
        pre_seconds: float = PRE_SECONDS,
        post_seconds: float = POST_SECONDS,
        buffer_seconds: float | None = None,
        max_buffer_bytes: int = 200 * 1024 * 1024,
        max_clip_seconds: float = 120.0,
        codec: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        clips_for: Callable[[str], bool] = lambda camera: True,
    ) -> None:
        if not callable(getattr(anonymizer, "anonymize", None)):
            raise TypeError("EvidenceWriter needs an Anonymizer: no frame is written without one")
        if pre_seconds < 0 or post_seconds < 0 or max_clip_seconds <= 0:
            raise ValueError("pre_seconds and post_seconds must be >= 0, max_clip_seconds > 0")
        self.root = Path(root)
        self._anonymizer = anonymizer
        self.store = store
        self.pre_seconds = float(pre_seconds)
        self.post_seconds = float(post_seconds)
        self.buffer_seconds = float(buffer_seconds) if buffer_seconds is not None else self.pre_seconds + 5.0
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.max_clip_seconds = float(max_clip_seconds)
        self.codec = codec or default_codec()
        self._clock = clock
        self.clips_for = clips_for
        """False for a camera that is recorded: its events' clips are time ranges of the recording,
        rendered through the read path when someone looks (`lanterne.video.playback`), so only
        the snapshot is written here and the buffer holds just enough frames to pick it."""
        self._cameras: dict[str, _Camera] = {}
        self._lock = threading.Lock()
        self._anonymizer_lock = threading.Lock()

    # --- public API ---------------------------------------------------------------------------

    def push(
        self,
        camera: str,
        pts: float,
        image: np.ndarray,
        person_boxes: Sequence[PixelBox] = (),
        vehicle_boxes: Sequence[PixelBox] = (),
    ) -> list[EvidenceFile]:
        """Add an analysed frame (BGR uint8). The writer keeps a reference: do not draw on `image`
        afterwards. A `pts` that goes backwards means the stream restarted: the camera's open clips
        are finished and its buffer emptied, since the old frames belong to another timeline."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a BGR uint8 H x W x 3 image, got {image.dtype} {image.shape}")
        _check_name(camera, "camera id")
        frame = _Buffered(float(pts), image, tuple(person_boxes), tuple(vehicle_boxes))
        cam = self._camera(camera)
        out: list[EvidenceFile] = []
        with cam.lock:
            if cam.frames and frame.pts <= cam.frames[-1].pts:
                out += self._finish_all(cam)
                cam.frames.clear()
                cam.bytes = 0
            cam.frames.append(frame)
            cam.bytes += image.nbytes
            self._evict(cam)
            for clip in list(cam.open.values()):
                out += self._feed(cam, clip, frame)
        return out

    def on_event(self, event: Event) -> list[EvidenceFile]:
        """Handle an event update: the first update of an id writes the snapshot immediately and
        starts the clip (pre-roll from the buffer); later updates move the clip's end."""
        _check_name(event.id, "event id")
        cam = self._camera(event.camera)
        out: list[EvidenceFile] = []
        with cam.lock:
            clip = cam.open.get(event.id)
            if clip is None:
                if event.id in cam.done:
                    return out
                snap = self._snapshot(cam, event)
                if snap is not None:
                    out.append(snap)
                if not cam.clips:
                    self._remember(cam, event.id)
                    return out
                clip = self._open_clip(event, snap.path.parent if snap else self._day_dir(event.camera))
                if not event.ongoing:
                    clip.end = event.end + self.post_seconds
                cam.open[event.id] = clip
                for frame in list(cam.frames):
                    out += self._feed(cam, clip, frame)
                    if event.id not in cam.open:
                        break
            elif not event.ongoing:
                clip.end = event.end + self.post_seconds
                if cam.frames and cam.frames[-1].pts > clip.end:
                    out += self._finish(cam, clip)
        return out

    def close(self) -> list[EvidenceFile]:
        """Finish every open clip with the frames it has (the stream ended) and free the buffers."""
        out: list[EvidenceFile] = []
        with self._lock:
            cameras = list(self._cameras.values())
        for cam in cameras:
            with cam.lock:
                out += self._finish_all(cam)
                cam.frames.clear()
                cam.bytes = 0
        return out

    def buffered_seconds(self, camera: str) -> float:
        """Span of the camera's ring buffer, for monitoring the memory cap."""
        cam = self._cameras.get(camera)
        if cam is None or not cam.frames:
            return 0.0
        return cam.frames[-1].pts - cam.frames[0].pts

    def buffered_bytes(self, camera: str) -> int:
        """Bytes of frames held for the camera (raw or anonymised, one image per frame): at most
        `max_buffer_bytes` (or one frame, if larger)."""
        cam = self._cameras.get(camera)
        return 0 if cam is None else cam.bytes

    # --- internals ----------------------------------------------------------------------------

    def _camera(self, camera: str) -> _Camera:
        with self._lock:
            cam = self._cameras.get(camera)
            if cam is None:
                clips = self.clips_for(camera)
                cam = self._cameras[camera] = _Camera(
                    clips=clips, keep_seconds=self.buffer_seconds if clips else SNAPSHOT_SECONDS
                )
            return cam

    def _evict(self, cam: _Camera) -> None:
        newest = cam.frames[-1].pts
        while len(cam.frames) > 1 and (
            newest - cam.frames[0].pts > cam.keep_seconds or cam.bytes > self.max_buffer_bytes
        ):
            cam.bytes -= cam.frames.popleft().image.nbytes

    def _anonymized(self, frame: _Buffered) -> np.ndarray:
        """The frame's anonymised image, computed on first need and kept in the buffer in place of
        the raw one: overlapping events (two people walking the wrong way together), a later
        event's pre-roll and the snapshot all reuse it, so a frame is anonymised once whatever the
        number of events that show it. Called with the camera's lock held."""
        if frame.anonymised:
            return frame.image
        # One writer serves every camera thread, and the default anonymiser's OpenCV detectors are
        # not thread-safe; anonymisation only runs during events, so serialising it costs little.
        with self._anonymizer_lock:
            out = self._anonymizer.anonymize(frame.image, frame.person_boxes, frame.vehicle_boxes)
        if (
            not isinstance(out, np.ndarray)
            or np.may_share_memory(out, frame.image)
            or out.shape != frame.image.shape
            or out.dtype != frame.image.dtype
        ):
            # An anonymiser that edits in place would also alter the buffered frame other clips
            # read; one that changes the shape is broken. Neither may reach the disk silently.
            raise RuntimeError("the anonymiser must return a new image of the same shape")
        # Read only: the copy is shared by every clip and snapshot that covers the frame, so a
        # region drawn for one event must go on a copy, never into what the others reuse.
        out.flags.writeable = False
        frame.image, frame.anonymised = out, True
        return out

    def _day_dir(self, camera: str) -> Path:
        _check_name(camera, "camera id")
        return self.root / camera / self._clock().astimezone(UTC).date().isoformat()

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _record(self, event_id: str, kind: EvidenceKind, path: Path, digest: str, size: int) -> EvidenceFile:
        rel = self._relative(path)
        if self.store is not None:
            self.store.add_evidence(event_id, kind, rel, digest, size)
        return EvidenceFile(event_id, kind, path, rel, digest, size)

    def _snapshot(self, cam: _Camera, event: Event) -> EvidenceFile | None:
        if not cam.frames:
            log.warning("event %s on camera %s: no buffered frame, no snapshot", event.id, event.camera)
            return None
        # The frame nearest to the moment the rule fired shows what the rule saw.
        frame = min(cam.frames, key=lambda f: abs(f.pts - event.end))
        image = self._anonymized(frame).copy()
        h, w = image.shape[:2]
        x0, y0, x1, y1 = event.region
        thickness = max(2, round(min(h, w) / 240))
        cv2.rectangle(
            image,
            (round(x0 * w), round(y0 * h)),
            (round(x1 * w), round(y1 * h)),
            REGION_COLOUR,
            thickness,
        )
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        data = buf.tobytes()
        path = self._day_dir(event.camera) / f"{event.id}-snapshot.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        part.write_bytes(data)
        os.replace(part, path)
        return self._record(event.id, "snapshot", path, hashlib.sha256(data).hexdigest(), len(data))

    def _open_clip(self, event: Event, directory: Path) -> _Clip:
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{event.id}-clip.mp4"
        part = final.with_name(final.name + ".part")
        return _Clip(
            event_id=event.id,
            final=final,
            part=part,
            container=None,
            stream=None,
            start=event.start - self.pre_seconds,
            end=None,
        )

    def _start_encoder(self, clip: _Clip, image: np.ndarray) -> None:
        # yuv420p needs even dimensions; dropping one edge row/column is invisible.
        h, w = image.shape[0] & ~1, image.shape[1] & ~1
        clip.size = (w, h)
        clip.container = av.open(str(clip.part), mode="w", format="mp4")
        stream = clip.container.add_stream(self.codec, rate=5)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = _TIME_BASE
        if self.codec == "libx264":
            # veryfast: the encoder runs on the camera worker's thread during an event.
            stream.options = {"preset": "veryfast", "crf": "23"}
        else:
            stream.bit_rate = 2_000_000
        clip.stream = stream

    def _feed(self, cam: _Camera, clip: _Clip, frame: _Buffered) -> list[EvidenceFile]:
        if clip.end is not None and frame.pts > clip.end:
            return self._finish(cam, clip)
        if frame.pts < clip.start:
            return []
        if clip.container is None:
            self._start_encoder(clip, frame.image)
            clip.first_pts = frame.pts
        assert clip.size is not None and clip.first_pts is not None
        if frame.pts - clip.first_pts > self.max_clip_seconds:
            log.info("event %s: clip cut at %.0f s (event still open)", clip.event_id, self.max_clip_seconds)
            return self._finish(cam, clip)
        ms = round((frame.pts - clip.first_pts) * 1000)
        if ms <= clip.last_ms:
            return []
        image = self._anonymized(frame)
        w, h = clip.size
        if image.shape[1] != w or image.shape[0] != h:
            image = (
                image[:h, :w]
                if image.shape[0] in (h, h + 1) and image.shape[1] in (w, w + 1)
                else cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            )
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        vf.pts, vf.time_base = ms, _TIME_BASE
        for packet in clip.stream.encode(vf):
            clip.container.mux(packet)
        clip.last_ms = ms
        clip.frames += 1
        return []

    def _remember(self, cam: _Camera, event_id: str) -> None:
        cam.done[event_id] = None
        while len(cam.done) > _REMEMBERED_EVENTS:
            cam.done.popitem(last=False)

    def _finish(self, cam: _Camera, clip: _Clip) -> list[EvidenceFile]:
        cam.open.pop(clip.event_id, None)
        self._remember(cam, clip.event_id)
        if clip.container is None:
            return []
        for packet in clip.stream.encode():
            clip.container.mux(packet)
        clip.container.close()
        os.replace(clip.part, clip.final)
        digest = hashlib.sha256()
        with clip.final.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return [
            self._record(clip.event_id, "clip", clip.final, digest.hexdigest(), clip.final.stat().st_size)
        ]

    def _finish_all(self, cam: _Camera) -> list[EvidenceFile]:
        out: list[EvidenceFile] = []
        for clip in list(cam.open.values()):
            out += self._finish(cam, clip)
        return out


def _check_name(value: str, what: str) -> None:
    # Camera and event ids become path components: refuse anything that could climb out of root.
    if not _SAFE_NAME.match(value) or value in {".", ".."}:
        raise ValueError(f"{what} {value!r} cannot be used in a file name (letters, digits, _ . - only)")
