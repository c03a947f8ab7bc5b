"""The camera side of the live wall: feed the streams the console asked for (issue 14, item 3).

The process that decodes and analyses a camera (`lanterne run`, or a `lanterne worker` holding
its lease) is the only one that has its frames and its detections, so it makes the live picture:
each analysed frame goes to the camera's encoders, which pixelate the heads of the people it just
tracked and the plates of its vehicles, scale, encode once and send RTP to the gateway. A camera
analysed more slowly than the tile's rate also sends the frames in between, with the last
analysed frame's boxes grown by how far their objects may have moved (`LiveEncoder.push`). The
console says which cameras to feed by writing `live_streams` rows when a first viewer arrives and
deleting them after the last leaves; this class reads them every `POLL_SECONDS`, so no viewer
means no encoding, and one stream serves every viewer of the camera.

The wall's fallback (a `relay` stream to the console, for browsers without WebRTC) is another
anonymised encoder for the same frames, to another address.

A raw stream (protection removed under a permission) is a second encoder for the same frames,
without the pixelation, with who/why burned in, and ends with its row at the grant's end. The
privacy masks are painted on the frames before anything here sees them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from lanterne.accountability.live import Stream, streams
from lanterne.config.schema import LiveSettings as LiveConfig
from lanterne.core.errors import LanterneError
from lanterne.core.types import Frame
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.live import LiveEncoder, LiveSettings

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
"""How often the streams to feed are read: a new tile waits up to this long for its camera's
encoder, out of the 1.5 s it may take to start (a 16-camera wall's slowest start was 1.59 s with
0.25). One indexed read of a small table each time."""


def encoder_settings(cfg: LiveConfig) -> LiveSettings:
    return LiveSettings(
        width=cfg.width, height=cfg.height, fps=cfg.fps, stale_after=cfg.stale_after_ms / 1000.0
    )


@dataclass(slots=True)
class _Feed:
    stream: Stream
    encoder: LiveEncoder
    lock: threading.Lock


@dataclass(frozen=True, slots=True)
class _Between:
    """Frames analysis skipped, for a camera's tiles: wanted only while someone watches it."""

    feeds: LiveFeeds
    camera: str
    analyser: CameraAnalyser

    def wanted(self) -> bool:
        return bool(self.feeds._feeds.get(self.camera))

    def push(self, frame: Frame) -> None:
        self.feeds.push(self.camera, frame, self.analyser, analysed=False)


class LiveFeeds:
    """The live encoders of the cameras this process runs, kept in step with `live_streams`.

    `push` runs on each camera's thread after its frame is analysed; the poll thread opens and
    closes encoders. Each encoder has its own lock, so closing one never waits for another
    camera's frame.
    """

    def __init__(
        self,
        engine: Engine,
        cfg: LiveConfig,
        cameras: Callable[[], list[str]],
        *,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.engine = engine
        self.settings = encoder_settings(cfg)
        self.cameras = cameras
        self.poll = poll
        self._feeds: dict[str, tuple[_Feed, ...]] = {}
        self._by_id: dict[int, _Feed] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_reads = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="live-feeds", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with self._lock:
            feeds = list(self._by_id.values())
            self._by_id.clear()
            self._feeds = {}
        for feed in feeds:
            self._close(feed)

    # --- camera threads ----------------------------------------------------------------------

    def push(self, camera: str, frame: Frame, analyser: CameraAnalyser, *, analysed: bool = True) -> None:
        """Send the frame to the camera's live streams, if anybody watches it: an analysed one, or
        (`analysed=False`) one that analysis skipped, shown with the last analysed frame's boxes."""
        feeds = self._feeds.get(camera)
        if not feeds:
            return
        persons, vehicles = analyser.pixel_boxes
        for feed in feeds:
            with feed.lock:
                feed.encoder.push(
                    frame, persons, vehicles, analyser.objects_at, now=frame.pts, analysed=analysed
                )

    def between(self, camera: str, analyser: CameraAnalyser) -> _Between:
        """The camera source's taker of the frames its analysis skips (`FileSource.between`)."""
        return _Between(self, camera, analyser)

    def watched(self) -> dict[str, int]:
        """Streams fed now, per camera."""
        return {camera: len(feeds) for camera, feeds in self._feeds.items() if feeds}

    # --- the poll thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.sync()
            except Exception:
                # A database hiccup must not end live view for good; the next poll tries again.
                self._failed_reads += 1
                if self._failed_reads % 40 == 1:
                    log.exception("live: streams not read; retrying")

    def sync(self) -> None:
        """Open encoders for new rows of the cameras run here, close those whose row is gone."""
        mine = self.cameras()
        wanted = {s.id: s for s in streams(self.engine, mine)} if mine else {}
        with self._lock:
            gone = [f for i, f in self._by_id.items() if i not in wanted or wanted[i] != f.stream]
            for f in gone:
                del self._by_id[f.stream.id]
        for f in gone:
            self._close(f)
        for stream_id, s in wanted.items():
            if stream_id in self._by_id:
                continue
            try:
                encoder = LiveEncoder(
                    s.camera,
                    s.rtp_host,
                    s.rtp_port,
                    self.settings,
                    anonymise=s.kind != "raw",
                    banner=s.banner,
                    rtcp_port=s.rtcp_port,
                )
            except (LanterneError, OSError, ValueError) as exc:
                log.error("camera %s: live stream %d not started (%s)", s.camera, s.id, exc)
                continue
            with self._lock:
                self._by_id[stream_id] = _Feed(s, encoder, threading.Lock())
            log.info("camera %s: live %s stream %d started", s.camera, s.kind, s.id)
        with self._lock:
            by_camera: dict[str, list[_Feed]] = {}
            for f in self._by_id.values():
                by_camera.setdefault(f.stream.camera, []).append(f)
            self._feeds = {c: tuple(fs) for c, fs in by_camera.items()}

    def _close(self, feed: _Feed) -> None:
        with feed.lock:
            feed.encoder.close()
        log.info("camera %s: live %s stream %d ended", feed.stream.camera, feed.stream.kind, feed.stream.id)
