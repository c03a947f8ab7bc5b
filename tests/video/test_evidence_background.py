"""Evidence written off the camera thread: analysis never waits for an encoder."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
from lanterne.video.evidence.background import BackgroundEvidenceWriter
from lanterne.video.evidence.writer import EvidenceWriter
from tests.support.evidence import PERSON, decode, event, frame


class Slow:
    """The real anonymiser, slowed down to what a big frame with faces costs on a busy CPU."""

    def __init__(self, delay: float) -> None:
        self.inner = DefaultAnonymizer(faces=False, plates=False)
        self.delay = delay

    def anonymize(
        self, image: np.ndarray, person_boxes: Sequence = (), vehicle_boxes: Sequence = ()
    ) -> np.ndarray:
        time.sleep(self.delay)
        return self.inner.anonymize(image, person_boxes, vehicle_boxes)


def test_camera_thread_does_not_wait_and_the_clip_is_complete(tmp_path: Path) -> None:
    bg = BackgroundEvidenceWriter(
        EvidenceWriter(tmp_path / "ev", Slow(0.05), None, pre_seconds=1, post_seconds=1)
    )
    started = time.perf_counter()
    for i in range(26):  # 5 s at 5 fps, an event from 1 s to 3 s
        t = i / 5
        bg.push("cam1", t, frame(i), [PERSON], [])
        if t == 1.0:
            bg.on_event(event(1.0, 1.0, True))
        if t == 3.0:
            bg.on_event(event(1.0, 3.0, False))
    enqueue_seconds = time.perf_counter() - started
    bg.close()
    assert enqueue_seconds < 0.5, "pushing 26 frames must not wait for ~1 s of anonymisation"
    clips = list((tmp_path / "ev").rglob("*-clip.mp4"))
    snaps = list((tmp_path / "ev").rglob("*-snapshot.jpg"))
    assert len(clips) == 1 and len(snaps) == 1
    times, _ = decode(clips[0])
    assert times[0] == 0.0 and abs(times[-1] - 4.0) < 0.01  # pre 1 s, event 1..3 s, post 1 s
    assert bg.dropped_frames == 0 and bg.failures == 0


def test_a_writer_that_cannot_keep_up_drops_clip_frames_not_events(tmp_path: Path) -> None:
    bg = BackgroundEvidenceWriter(
        EvidenceWriter(tmp_path / "ev", Slow(0.2), None, pre_seconds=0, post_seconds=0), max_queued_frames=3
    )
    bg.on_event(event(0.0, 0.0, True))
    for i in range(20):
        bg.push("cam1", i / 5, frame(i), [PERSON], [])
    bg.on_event(event(0.0, 3.8, False))
    bg.close()
    assert bg.dropped_frames > 0
    assert len(list((tmp_path / "ev").rglob("*-clip.mp4"))) == 1, "the event still has its clip"
