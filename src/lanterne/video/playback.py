"""The one read path from recordings to pixels a person sees (issue 11, LG-02, LB-06).

Everything that shows or exports recorded video comes through `Renderer`: it decrypts the
camera's segments (`lanterne.video.recording`, which verifies each segment's hash and
authentication tag on the way), decodes them, paints the camera's privacy masks, finds the people
and vehicles in the frame and anonymises faces, plates and heads, then encodes for the browser.
No other module opens a segment (an architecture test holds it to that), so forgetting a step is
impossible by construction.

Anonymisation happens here, when someone looks, and no longer while the camera is analysed: the
camera's path only copies packets into encrypted segments, which costs a fraction of one per cent
of a core, while anonymising every frame an event's clip covered cost the analysing process ten
times its analysis (docs/performance.md). The price is paid per view, for the frames viewed.

Fail closed: when detection or anonymisation cannot run on a frame, the whole frame is pixelated
and one line is logged; a picture with an unblurred face is never produced by mistake.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import cv2
import numpy as np

from lanterne.config.schema import Camera
from lanterne.core.masks import paint, pixel_polygons
from lanterne.core.params import VEHICLE_CLASSES
from lanterne.core.types import Box
from lanterne.store import Store
from lanterne.video.anonymize.base import Anonymizer
from lanterne.video.anonymize.memory import FrameMemory
from lanterne.video.anonymize.pixelate import pixelate
from lanterne.video.detectors.base import Detector, PixelBox
from lanterne.video.evidence.writer import JPEG_QUALITY, default_codec
from lanterne.video.recording import KeyRing, open_segment, segments
from lanterne.video.watermark import burn

log = logging.getLogger(__name__)

_TIME_BASE = Fraction(1, 1000)
_SLACK = timedelta(milliseconds=1)
"""Forgiven on the frame grid: timestamps are rounded by containers, and a frame due at 0.4 s
must not be skipped for arriving at 0.3999 s."""
DEFAULT_FPS = 10.0
"""Frames rendered per second of recording: what an operator needs to follow a scene, and what
one core can anonymise at real time for a 720p camera."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One decrypted, verified recording segment: its first frame's wall time and its bytes (a
    Matroska file holding the camera's own packets)."""

    start: datetime
    data: bytes
    segment_id: int | None = None
    sha256: str | None = None
    """The segment file's sha256 as the index chained it when it was written (exports list it)."""


class Pieces(Protocol):
    """Where the renderer gets verified, decrypted segments from (the recording index). All of a
    range's segments are checked before the first frame is rendered, so a tampered or missing
    segment is named before anything is shown, never halfway through a stream."""

    def __call__(self, camera: str, start: datetime, end: datetime) -> list[Piece]: ...


def recorded(store: Store, recordings_dir: Path, keys: KeyRing) -> Pieces:
    """The camera's recording as pieces: every sealed segment overlapping the range, opened by
    `open_segment` (size, sha256 and authentication checked). Lost segments are skipped: the
    timeline shows them as lost, and they hold nothing readable."""

    def pieces(camera: str, start: datetime, end: datetime) -> list[Piece]:
        return [
            Piece(row.start, open_segment(row, recordings_dir, keys), row.id, row.sha256)
            for row in segments(store, camera, start, end)
            if row.state != "lost"
        ]

    return pieces


@dataclass(frozen=True, slots=True)
class Reveal:
    """Render without anonymisation: granted by a permission whose use is already on the record.
    Who removed the protection, why and under which reference is burned into every frame."""

    user: str
    reason: str
    reference: str

    def text(self) -> str:
        return f"PRIVACY PROTECTION REMOVED by {self.user} | {self.reason} | ref {self.reference}"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A frame made fit to be seen: masked and anonymised. `at` is its wall time (UTC)."""

    at: datetime
    image: np.ndarray


class Renderer:
    """Decrypt → decode → privacy masks → anonymise → (encode). One per process; thread-safe.

    `detector` finds the people and vehicles whose heads and plates are blurred (the same model
    as the analysis); `anonymizer_factory` makes one anonymiser per thread (their OpenCV
    detectors keep state)."""

    def __init__(
        self, pieces: Pieces, detector: Detector, anonymizer_factory: Callable[[], Anonymizer]
    ) -> None:
        self._pieces = pieces
        self._detector = detector
        self._factory = anonymizer_factory
        self._local = threading.local()

    def open(
        self,
        camera: Camera,
        start: datetime,
        end: datetime,
        reveal: Reveal | None = None,
        keep: Box | None = None,
    ) -> View:
        """The camera's recording between `start` and `end` (UTC), every segment of it decrypted
        and verified now: a tampered, missing or wrongly keyed segment raises `RecordingError`
        naming it before a single frame is rendered. `reveal`: render without anonymisation, for
        a recorded use of a permission (`lanterne.accountability.privacy`); masks stay. `keep`:
        answer an access request, showing only the person whose box is centred in this region
        (frame fractions) on the first frame, followed from frame to frame (`Requester`), and
        hiding everyone else whole."""
        return View(self, camera, start, end, self._pieces(camera.id, start, end), reveal, keep)

    def _anonymizer(self) -> Anonymizer:
        anon = getattr(self._local, "anonymizer", None)
        if anon is None:
            anon = self._local.anonymizer = self._factory()
        return anon

    def _anonymised(
        self,
        camera: str,
        image: np.ndarray,
        requester: Requester | None = None,
        memory: FrameMemory | None = None,
    ) -> np.ndarray:
        try:
            dets = self._detector.detect(image)
            names = dets.data.get("class_name", np.array([], dtype=object))
            people: list[PixelBox] = []
            vehicles: list[PixelBox] = []
            for box, name in zip(dets.xyxy, names, strict=True):
                px = (int(box[0]), int(box[1]), int(box[2]), int(box[3]))
                if name == "person":
                    people.append(px)
                elif name in VEHICLE_CLASSES:
                    vehicles.append(px)
            anonymizer = self._anonymizer()
            if memory is not None and getattr(anonymizer, "remembers_frames", False):
                # Consecutive frames of one camera: faces and plates are searched where the
                # picture changed (`FrameMemory`); people and vehicles on every frame.
                out = anonymizer.anonymize(image, people, vehicles, memory=memory)  # type: ignore[call-arg]
            else:
                out = anonymizer.anonymize(image, people, vehicles)
            if requester is not None:
                out = _only(image, out, people, requester)
            return out
        except Exception as exc:  # any failure: nothing identifiable may leave
            log.error(
                "camera %s: anonymisation failed (%s); the frame is shown fully pixelated",
                camera,
                type(exc).__name__,
            )
            h, w = image.shape[:2]
            pixelate(image, (0, 0, w, h))
            return image


@dataclass(frozen=True, slots=True)
class View:
    """A verified range of one camera's recording, ready to render."""

    renderer: Renderer
    camera: Camera
    start: datetime
    end: datetime
    pieces: list[Piece]
    reveal: Reveal | None = None
    keep: Box | None = None
    rendered: list[int] = field(default_factory=lambda: [0])
    """Frames rendered so far (one counter, shared by whoever holds the view): what a use of a
    permission records when it ends."""

    @property
    def segment_ids(self) -> list[int]:
        """The segments the range is made of, for the audit record of the view."""
        return [p.segment_id for p in self.pieces if p.segment_id is not None]

    def frames(self, fps: float = DEFAULT_FPS) -> Iterator[Rendered]:
        """The anonymised frames of the range, at most `fps` per second of recording, in order. A
        gap in the recording (camera offline, segment lost) is a jump in `at`, never a frame
        invented to fill it."""
        period = timedelta(seconds=1.0 / fps) if fps > 0 else timedelta(0)
        polygons = [m.polygon for m in self.camera.privacy_masks]
        masks_at: tuple[tuple[int, int], Any] | None = None
        # One memory per stream of frames, never shared between views or cameras.
        memory = FrameMemory()
        # Likewise the requester's region, which follows them from the region the agent marked.
        requester = Requester(self.keep) if self.keep is not None else None
        next_due = self.start
        for piece in self.pieces:
            for at, picture in _decode(piece):
                if at < self.start or at + _SLACK < next_due:
                    continue
                if at > self.end:
                    return
                # A regular grid, restarted after a gap so that a hole is not followed by a burst.
                next_due = next_due + period if at < next_due + period else at + period
                # Pixels only for the frames shown: a 25 fps camera played at 10 keeps 15 in 25 as
                # decoded pictures, never converted.
                image = picture.to_ndarray(format="bgr24")
                size = (image.shape[1], image.shape[0])
                if masks_at is None or masks_at[0] != size:
                    masks_at = (size, pixel_polygons(polygons, size))
                paint(image, masks_at[1])
                self.rendered[0] += 1
                if self.reveal is not None:
                    yield Rendered(at, burn(image, self.reveal.text(), top=True))
                else:
                    yield Rendered(at, self.renderer._anonymised(self.camera.id, image, requester, memory))

    def mp4(self, fps: float = DEFAULT_FPS) -> Iterator[bytes]:
        """The rendered frames as a fragmented MP4 (H.264 where available), yielded in pieces as
        it is encoded, so that a browser starts playing before the whole range is rendered."""
        sink = _Sink()
        out: Any = None
        stream: Any = None
        first: datetime | None = None
        last_ms = -1
        for frame in self.frames(fps):
            if out is None:
                h, w = frame.image.shape[0] & ~1, frame.image.shape[1] & ~1
                out, stream = open_encoder(sink, (w, h), fps)
                first = frame.at
            assert first is not None
            ms = round((frame.at - first).total_seconds() * 1000)
            if ms <= last_ms:
                continue
            last_ms = ms
            w, h = stream.width, stream.height
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame.image[:h, :w]), format="bgr24")
            vf.pts, vf.time_base = ms, _TIME_BASE
            for packet in stream.encode(vf):
                out.mux(packet)
            chunk = sink.take()
            if chunk:
                yield chunk
        if out is not None:
            for packet in stream.encode():
                out.mux(packet)
            out.close()
            chunk = sink.take()
            if chunk:
                yield chunk

    def snapshot(self, region: Sequence[float] | None = None) -> bytes | None:
        """The range's first anonymised frame as a JPEG, with the event's region outlined when
        given; None when nothing was recorded in the range."""
        for frame in self.frames(fps=0):
            image = frame.image
            if region is not None:
                h, w = image.shape[:2]
                x0, y0, x1, y1 = region
                cv2.rectangle(
                    image, (round(x0 * w), round(y0 * h)), (round(x1 * w), round(y1 * h)), (0, 0, 255), 2
                )
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            return buf.tobytes() if ok else None
        return None


FOLLOW_MARGIN = 0.5
"""How far around the requester's last box (as a share of its width and height, each side) their
box is looked for in the next frame: a person walking at 2 m/s moves well under half their
width between frames 0.1 s apart, and a margin this small rarely takes in a neighbour."""


@dataclass(slots=True)
class Requester:
    """Where the requester of an access request is expected in the next frame (frame fractions).

    The agent marks them once; from then on the region follows their box from frame to frame
    by position alone (no appearance: nothing here could tell one person from another by how they
    look), so a requester who walks across the scene stays the one person shown. Only one person
    is kept in a frame: the one whose box is centred in the region, nearest its centre. When
    nobody is there (hidden, out of view), the region stays and they are anonymised like
    everyone else. Two people who cross closely can swap: the agent checks the export and answers
    in shorter ranges, marking the requester again after a crossing (docs/recording.md)."""

    region: Box

    def pick(self, people: list[PixelBox], w: int, h: int) -> PixelBox | None:
        x0, y0, x1, y1 = self.region[0] * w, self.region[1] * h, self.region[2] * w, self.region[3] * h
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        inside = [b for b in people if x0 <= (b[0] + b[2]) / 2 <= x1 and y0 <= (b[1] + b[3]) / 2 <= y1]
        if not inside:
            return None
        box = min(inside, key=lambda b: ((b[0] + b[2]) / 2 - cx) ** 2 + ((b[1] + b[3]) / 2 - cy) ** 2)
        mx, my = (box[2] - box[0]) * FOLLOW_MARGIN, (box[3] - box[1]) * FOLLOW_MARGIN
        self.region = (
            max(0.0, (box[0] - mx) / w),
            max(0.0, (box[1] - my) / h),
            min(1.0, (box[2] + mx) / w),
            min(1.0, (box[3] + my) / h),
        )
        return box


def _only(original: np.ndarray, out: np.ndarray, people: list[PixelBox], requester: Requester) -> np.ndarray:
    """The requester alone: their box is shown as recorded, and every other person is pixelated
    whole, even where they overlap the requester's box."""
    h, w = original.shape[:2]
    kept = requester.pick(people, w, h)
    if kept is not None:
        bx0, by0 = max(0, kept[0]), max(0, kept[1])
        bx1, by1 = min(w, kept[2]), min(h, kept[3])
        out[by0:by1, bx0:bx1] = original[by0:by1, bx0:bx1]
    for box in people:
        if box is not kept:
            pixelate(out, box)
    return out


def _decode(piece: Piece) -> Iterator[tuple[datetime, av.VideoFrame]]:
    """Every frame of a segment with its wall time: the segment's start plus the frame's offset
    from the segment's first frame (the camera's own timestamps, never a frame count)."""
    with av.open(io.BytesIO(piece.data), mode="r") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first: float | None = None
        last = -1.0
        for vf in container.decode(stream):
            t = vf.time
            if t is None:
                t = last + 1e-3 if last >= 0 else 0.0
            if first is None:
                first = t
            offset = max(t - first, last + 1e-3 if last >= 0 else 0.0)
            last = offset
            yield piece.start + timedelta(seconds=offset), vf


def open_encoder(
    target: Any,
    size: tuple[int, int],
    fps: float,
    *,
    live: bool = True,
    metadata: dict[str, str] | None = None,
) -> tuple[Any, Any]:
    """An MP4 encoder for rendered frames: `live` writes a fragmented file to a sink that cannot
    seek (a browser plays it while it is written); otherwise a plain MP4 file at `target` (an
    export), with `metadata` in its header."""
    codec = default_codec()
    if not live:
        out = av.open(str(target), mode="w", format="mp4")
        out.metadata.update(metadata or {})
        stream = out.add_stream(codec, rate=max(1, round(fps or DEFAULT_FPS)))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.time_base = _TIME_BASE
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "20"}
        else:
            stream.bit_rate = 4_000_000
        return out, stream
    out = av.open(
        target,
        mode="w",
        format="mp4",
        # Fragmented: playable while it is still being written, on a socket that cannot seek.
        # One fragment per frame: the browser can show the first frame as soon as the second one
        # is rendered (the muxer closes a fragment when the next frame arrives). With a fragment
        # per keyframe it waited for a whole second of frames, each one anonymised first: 22
        # frames, 5 s at 250 ms a frame. The cost is a ~100-byte header per frame.
        options={"movflags": "frag_every_frame+empty_moov+default_base_moof"},
    )
    stream = out.add_stream(codec, rate=max(1, round(fps or DEFAULT_FPS)))
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.codec_context.time_base = _TIME_BASE
    if codec == "libx264":
        # A keyframe a second, so that a player can seek in what it has buffered.
        # No B-frames: a fragmented file has no edit list to hide their delay, so playback would
        # start 0.4 s late and frames would be shown out of step with their times.
        # zerolatency: no lookahead and no frame threads, so each frame's packet leaves the
        # encoder when the frame goes in, instead of 10 frames later (x264's veryfast lookahead).
        stream.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "crf": "23",
            "bf": "0",
            "g": str(max(1, round(fps or DEFAULT_FPS))),
        }
    else:
        stream.bit_rate = 2_000_000
    return out, stream


class _Sink(io.RawIOBase):
    """A write-only byte sink the encoder fills and the HTTP response drains."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out
