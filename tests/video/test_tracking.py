"""Tracking: random short-lived ids, nothing kept after the object leaves."""

from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from lanterne.video.tracking.tracker import MAX_MEMORY_SECONDS, Tracker


def dets(boxes: list[tuple[float, float, float, float]], label: str = "person") -> sv.Detections:
    n = len(boxes)
    return sv.Detections(
        xyxy=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.full(n, 0.8, np.float32),
        class_id=np.zeros(n, int),
        data={"class_name": np.array([label] * n, dtype=object)},
    )


def walk(tracker: Tracker, t0: float, t1: float, fps: float, x0: float = 100) -> list:
    out = []
    t = t0
    while t < t1:
        x = x0 + 40 * (t - t0)
        out.append(tracker.update(dets([(x, 100, x + 40, 200)]), t, (640, 480)))
        t += 1 / fps
    return out


def test_one_walker_keeps_one_random_id() -> None:
    tr = Tracker(fps=5)
    seen = walk(tr, 0, 5, 5)
    ids = {o.track_id for frame in seen for o in frame}
    assert len(ids) == 1
    (tid,) = ids
    assert tid > 1000, "ids are random, not the sequential ids of ByteTrack"
    box = seen[-1][0].box
    assert all(0 <= v <= 1 for v in box)


def test_ids_differ_between_trackers() -> None:
    a, b = Tracker(fps=5), Tracker(fps=5)
    ida = {o.track_id for f in walk(a, 0, 2, 5) for o in f}
    idb = {o.track_id for f in walk(b, 0, 2, 5) for o in f}
    assert ida.isdisjoint(idb), "two cameras seeing the same scene get unrelated ids"


@pytest.mark.parametrize("fps", [2, 5, 10])
def test_forgotten_after_leaving(fps: float) -> None:
    tr = Tracker(fps=fps, lost_seconds=2.0)
    walk(tr, 0, 3, fps)
    assert tr.known_ids() == 1
    t = 3.0
    while t < 3.0 + 4.0:
        tr.update(dets([]), t, (640, 480))
        t += 1 / fps
    assert tr.known_ids() == 0
    assert tr.coast(t) == ()


def test_coast_keeps_last_objects_until_forgotten() -> None:
    tr = Tracker(fps=5, lost_seconds=2.0)
    walk(tr, 0, 2, 5)
    assert len(tr.coast(2.5)) == 1
    assert tr.coast(10.0) == ()


def test_memory_is_capped_by_law() -> None:
    with pytest.raises(ValueError):
        Tracker(fps=5, lost_seconds=MAX_MEMORY_SECONDS + 1)


def test_detection_that_outgrew_the_kalman_box_is_kept() -> None:
    """A walker stepping in at the frame edge: the box widens from 40 to 90 px in one update.
    ByteTrack still matches it to the track (IoU 0.44 with the prediction), but the Kalman box,
    slow to follow a change of aspect ratio, overlaps it by less than 0.5; the detection must
    still come out, with its own box and the track's id (issue 10)."""
    tr = Tracker(fps=5)
    t = 0.0
    for _ in range(5):
        before = tr.update(dets([(600, 300, 640, 400)]), t, (640, 480))
        t += 0.2
    (walker,) = before
    (now,) = tr.update(dets([(550, 300, 640, 400)]), t, (640, 480))
    assert now.track_id == walker.track_id
    assert now.box == pytest.approx((550 / 640, 300 / 480, 1.0, 400 / 480))
