"""Evidence writing off the camera threads.

Anonymising and encoding a clip costs tens of milliseconds a frame; done on a camera's thread it
stalls analysis for seconds whenever an event opens, and a live stream falls behind. Here the
camera threads only enqueue; one writer thread does the work. When the writer cannot keep up, it
is frames for clips that are dropped (counted and logged), never events, and never analysis.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence

import numpy as np

from lanterne.core.types import Event
from lanterne.video.detectors.base import PixelBox
from lanterne.video.evidence.writer import EvidenceWriter

log = logging.getLogger(__name__)

_STOP = object()


class BackgroundEvidenceWriter:
    """Same calls as `EvidenceWriter` (`push`, `on_event`, `close`), returning nothing."""

    def __init__(
        self, writer: EvidenceWriter, max_queued_frames: int = 100, block_when_full: bool = False
    ) -> None:
        self.writer = writer
        self.block_when_full = block_when_full
        """True for recorded files, which have no real-time constraint: analysis then waits for
        the writer rather than lose clip frames. Live cameras never wait."""
        self.dropped_frames = 0
        self.failures = 0
        self._frames_room = threading.BoundedSemaphore(max_queued_frames)
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="evidence-writer", daemon=True)
        self._thread.start()

    def push(
        self,
        camera: str,
        pts: float,
        image: np.ndarray,
        person_boxes: Sequence[PixelBox],
        vehicle_boxes: Sequence[PixelBox],
    ) -> None:
        if not self._frames_room.acquire(blocking=self.block_when_full):
            self.dropped_frames += 1
            if self.dropped_frames % 100 == 1:
                log.warning(
                    "evidence writer behind: %d frames dropped from clips so far", self.dropped_frames
                )
            return
        self._queue.put(("push", (camera, pts, image, tuple(person_boxes), tuple(vehicle_boxes))))

    def on_event(self, event: Event) -> None:
        self._queue.put(("event", event))

    def close(self, timeout: float = 120.0) -> None:
        """Finish what is queued (clips are completed), then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("evidence writer did not finish within %.0f s", timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            kind, payload = item  # type: ignore[misc]
            try:
                if kind == "push":
                    self._frames_room.release()
                    self.writer.push(*payload)
                else:
                    self.writer.on_event(payload)
            except Exception:
                self.failures += 1
                log.exception("evidence writer: %s failed", kind)
        try:
            self.writer.close()
        except Exception:
            self.failures += 1
            log.exception("evidence writer: closing failed")
