from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lanterne.core.types import Event, EventType
from lanterne.store import Store
from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
from lanterne.video.evidence import EvidenceWriter
from lanterne.video.evidence.writer import EvidenceFile
from tests.support.evidence import CONTROL, DAY, HEAD, PERSON, W, decode, event, frame


class Spy:
    """Counts the frames handed to a real anonymiser, to prove nothing bypasses it."""

    def __init__(self, inner: DefaultAnonymizer) -> None:
        self.inner = inner
        self.calls = 0
        self.seen: list[int] = []
        """`id` of each raw image handed over: the caller keeps its frames alive to map them back."""

    def anonymize(
        self, image: np.ndarray, person_boxes: Sequence = (), vehicle_boxes: Sequence = ()
    ) -> np.ndarray:
        self.calls += 1
        self.seen.append(id(image))
        assert tuple(person_boxes) == (PERSON,)
        return self.inner.anonymize(image, person_boxes, vehicle_boxes)


def sharpness(img: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].astype(np.float32)
    return float(np.abs(np.diff(grey, axis=1)).mean())


def run_stream(
    w: EvidenceWriter,
    fps: float,
    until: float,
    updates: dict[float, Event],
) -> list[EvidenceFile]:
    """Push frames at `fps` up to `until` seconds, sending each update right after its frame."""
    out: list[EvidenceFile] = []
    for i in range(round(until * fps) + 1):
        t = round(i / fps, 6)
        out += w.push("cam1", t, frame(i), [PERSON], [])
        if t in updates:
            out += w.on_event(updates[t])
    return out + w.close()


@pytest.fixture
def fast_anonymizer() -> Spy:
    # Head bands only: the face and plate detectors cost ~60 ms a frame and see nothing in a
    # synthetic checkerboard; one test below runs the full anonymiser.
    return Spy(DefaultAnonymizer(faces=False, plates=False))


def test_files_and_database_agree(db_url: str, tmp_path: Path, fast_anonymizer: Spy) -> None:
    store = Store.open(db_url)
    origin = datetime(2026, 5, 1, 8, tzinfo=UTC)
    opened, closed = event(2.0, 3.0, True), event(2.0, 4.0, False)
    root = tmp_path / "evidence"
    w = EvidenceWriter(root, fast_anonymizer, store, pre_seconds=1, post_seconds=1, clock=lambda: DAY)

    def upsert_then_write(e: Event) -> Event:
        store.upsert_event(e, origin, "alerts")
        return e

    files = run_stream(w, 5, 8.0, {3.0: upsert_then_write(opened), 4.0: upsert_then_write(closed)})
    assert [f.kind for f in files] == ["snapshot", "clip"]
    assert [f.relative for f in files] == [
        "cam1/2026-05-01/0123abcd4567ef89-snapshot.jpg",
        "cam1/2026-05-01/0123abcd4567ef89-clip.mp4",
    ]
    rows = store.evidence_for(opened.id)
    assert [(r.kind, r.path) for r in rows] == [(f.kind, f.relative) for f in files]
    for r in rows:
        data = (root / r.path).read_bytes()
        assert r.sha256 == hashlib.sha256(data).hexdigest()
        assert r.bytes == len(data)
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == sorted(p.path.name for p in files)
    store.close()


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
@pytest.mark.parametrize(
    ("name", "updates", "until", "max_clip", "span"),
    [
        # opened at 6 s for a situation that began at 5 s, closed at 9 s: 5-3 .. 9+3
        ("opened and closed", {6.0: event(5, 6, True), 9.0: event(5, 9, False)}, 20.0, 120.0, (2.0, 12.0)),
        # never closed: the stream end (close()) ends the clip
        ("stream ends first", {6.0: event(5, 6, True)}, 14.0, 120.0, (2.0, 14.0)),
        # never closed, long stream: cut at max_clip_seconds
        ("cut at the cap", {6.0: event(5, 6, True)}, 20.0, 5.0, (2.0, 7.0)),
        # an update that arrives already closed still gets its pre- and post-roll
        ("arrives closed", {7.0: event(5, 7, False)}, 20.0, 120.0, (2.0, 10.0)),
    ],
)
def test_clip_spans_pre_event_and_post(
    tmp_path: Path, fast_anonymizer: Spy, codec: str, name: str, updates: dict, until: float,
    max_clip: float, span: tuple[float, float],
) -> None:  # fmt: skip
    fps = 5.0
    w = EvidenceWriter(tmp_path, fast_anonymizer, None, pre_seconds=3, post_seconds=3,
                       max_clip_seconds=max_clip, codec=codec)  # fmt: skip
    files = run_stream(w, fps, until, updates)
    (clip,) = [f for f in files if f.kind == "clip"]
    times, _ = decode(clip.path)
    expected_frames = round((span[1] - span[0]) * fps) + 1
    assert len(times) == expected_frames, name
    assert times[0] == pytest.approx(0.0, abs=1e-3)
    assert times[-1] == pytest.approx(span[1] - span[0], abs=0.01)  # real spacing, true speed
    with av.open(str(clip.path)) as c:
        assert c.streams.video[0].codec_context.name == ("h264" if codec == "libx264" else "mpeg4")


def test_every_written_picture_went_through_the_anonymizer(tmp_path: Path) -> None:
    spy = Spy(DefaultAnonymizer())  # the full product anonymiser, face and plate detectors included
    w = EvidenceWriter(tmp_path, spy, None, pre_seconds=1, post_seconds=1, clock=lambda: DAY)
    files = run_stream(w, 5, 5.0, {2.0: event(2.0, 2.0, True), 3.0: event(2.0, 3.0, False)})
    snap, clip = (next(f for f in files if f.kind == k) for k in ("snapshot", "clip"))
    _, frames = decode(clip.path)
    assert len(frames) == 16  # 1 s .. 4 s at 5 fps
    # Each clip frame once; the snapshot's frame (2 s) is in the clip and anonymised only once.
    assert spy.calls == len(frames)
    raw = frame(0)
    assert sharpness(raw, HEAD) > 50  # the checkerboard is there to be hidden
    pictures = [cv2.imread(str(snap.path)), *frames]
    for pic in pictures:
        assert sharpness(pic, HEAD) < 15
        assert sharpness(pic, CONTROL) > 40


def test_region_is_drawn_after_anonymisation(tmp_path: Path, fast_anonymizer: Spy) -> None:
    w = EvidenceWriter(tmp_path, fast_anonymizer, None)
    w.push("cam1", 0.0, frame(0), [PERSON], [])
    hx0, hy0, hx1, hy1 = HEAD
    x = (hx0 + hx1) // 2
    region = (x / W, 0.0, 0.95, 0.95)
    (snap,) = w.on_event(Event("cd34", EventType.FIRE, "cam1", "z", 0.0, 0.0, 0.9, region))
    img = cv2.imread(str(snap.path)).astype(int)
    # The region's left edge crosses the head band: red there means it was drawn over the blocks.
    line = img[hy0 + 3 : hy1 - 3, x]
    assert (line[..., 2] > 180).all() and (line[..., :2] < 90).all()


def test_memory_is_bounded_by_seconds_and_bytes(tmp_path: Path, fast_anonymizer: Spy) -> None:
    w = EvidenceWriter(tmp_path, fast_anonymizer, None, pre_seconds=2, buffer_seconds=4)
    img = frame(0)
    for i in range(300):
        w.push("cam1", i / 10, img, [PERSON], [])
    assert w.buffered_seconds("cam1") <= 4.0
    assert w.buffered_bytes("cam1") == 41 * img.nbytes
    small = EvidenceWriter(tmp_path, fast_anonymizer, None, max_buffer_bytes=10 * img.nbytes)
    for i in range(300):
        small.push("cam1", i / 10, img, [PERSON], [])
    assert small.buffered_bytes("cam1") <= 10 * img.nbytes
    assert small.buffered_seconds("cam1") == pytest.approx(0.9)
    assert fast_anonymizer.calls == 0  # buffering alone anonymises (and writes) nothing


def test_stream_restart_closes_the_clip(tmp_path: Path, fast_anonymizer: Spy) -> None:
    w = EvidenceWriter(tmp_path, fast_anonymizer, None, pre_seconds=1, post_seconds=1)
    for i in range(11):
        w.push("cam1", i / 5, frame(i), [PERSON], [])
    w.on_event(event(1.0, 2.0, True))
    done = w.push("cam1", 0.0, frame(0), [PERSON], [])  # pts went back: the camera reconnected
    assert [f.kind for f in done] == ["clip"]
    assert w.buffered_seconds("cam1") == 0.0
    assert w.on_event(event(1.0, 5.0, False)) == []  # late close of a finished clip: nothing new
    assert w.close() == []


def test_there_is_no_way_around_the_anonymizer(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Anonymizer"):
        EvidenceWriter(tmp_path, None, None)  # type: ignore[arg-type]

    class InPlace:
        def anonymize(self, image: np.ndarray, person_boxes: Sequence = (), vehicle_boxes: Sequence = ()):
            return image  # "anonymised" without copying: the raw frame itself

    w = EvidenceWriter(tmp_path / "ev", InPlace(), None)
    w.push("cam1", 0.0, frame(0), [PERSON], [])
    with pytest.raises(RuntimeError, match="new image"):
        w.on_event(event(0.0, 0.0, True))
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    public = {n for n in dir(EvidenceWriter) if not n.startswith("_")}
    assert public == {"push", "on_event", "close", "buffered_seconds", "buffered_bytes"}


@pytest.mark.parametrize("camera", ["../etc", "a/b", "", ".."])
def test_unsafe_camera_ids_are_refused(tmp_path: Path, fast_anonymizer: Spy, camera: str) -> None:
    w = EvidenceWriter(tmp_path, fast_anonymizer, None)
    with pytest.raises(ValueError, match="file name"):
        w.push(camera, 0.0, frame(0), [], [])


class Copy:
    """Writes what it is given: the reference path below hands it frames anonymised beforehand."""

    def anonymize(
        self, image: np.ndarray, person_boxes: Sequence = (), vehicle_boxes: Sequence = ()
    ) -> np.ndarray:
        return image.copy()


def overlapping(n: int) -> dict[float, list[Event]]:
    """`n` events on one camera, raised a second apart and each open for 5 s: 0 .. 11 s + n."""
    updates: dict[float, list[Event]] = {}
    for i in range(n):
        eid = f"{i:016x}"
        updates.setdefault(3.0 + i, []).append(event(2.0 + i, 3.0 + i, True, eid))
        updates.setdefault(8.0 + i, []).append(event(2.0 + i, 8.0 + i, False, eid))
    return updates


def run_cameras(
    w: EvidenceWriter, until: float, updates: dict[float, list[Event]], quiet: int = 0
) -> tuple[list[EvidenceFile], dict[int, tuple[str, float]]]:
    """Push cam1 (with `updates`) and `quiet` cameras without any event at 5 fps, interleaved.
    Returns the files and, for each pushed image's `id`, its camera and pts (the images are kept
    alive in the writer's buffer or in `pushed`, so ids are not reused)."""
    out: list[EvidenceFile] = []
    pushed: list[np.ndarray] = []
    origin: dict[int, tuple[str, float]] = {}
    for i in range(round(until * 5) + 1):
        t = i / 5
        for camera in ["cam1", *(f"quiet{k}" for k in range(quiet))]:
            img = frame(i)
            pushed.append(img)
            origin[id(img)] = (camera, t)
            out += w.push(camera, t, img, [PERSON], [])
        for e in updates.get(t, []):
            out += w.on_event(e)
    return out + w.close(), origin


def test_overlapping_events_anonymise_each_frame_once(tmp_path: Path, fast_anonymizer: Spy) -> None:
    w = EvidenceWriter(tmp_path, fast_anonymizer, None, pre_seconds=3, post_seconds=3)
    files, origin = run_cameras(w, 18.0, overlapping(5), quiet=2)
    clips = [f for f in files if f.kind == "clip"]
    assert len(clips) == 5 and sum(f.kind == "snapshot" for f in files) == 5
    covered = [t for c in clips for t in decode(c.path)[0]]
    anonymised = [origin[i] for i in fast_anonymizer.seen]
    # Cameras without an event pay nothing; cam1 pays once per frame, not once per event.
    assert {camera for camera, _ in anonymised} == {"cam1"}
    assert len(set(anonymised)) == len(anonymised) == fast_anonymizer.calls
    # Exactly the frames some clip shows (0 .. 15 s; the snapshots are among them) ...
    assert sorted(t for _, t in anonymised) == [i / 5 for i in range(76)]
    assert len(covered) == 300  # ... where the clips show 300 frames between them


def test_a_clip_is_the_anonymisers_output_frame_for_frame(tmp_path: Path) -> None:
    # The reference is the old path: every clip frame anonymised for its own clip. Sharing one
    # anonymised frame between clips, snapshots and pre-rolls must not change a pixel of a clip,
    # and the region drawn on a snapshot must never leak into the clips that reuse its frame.
    anonymizer = DefaultAnonymizer(faces=False, plates=False)
    updates = overlapping(1)
    ref = EvidenceWriter(tmp_path / "ref", Copy(), None)
    written: list[EvidenceFile] = []
    for i in range(18 * 5 + 1):
        written += ref.push("cam1", i / 5, anonymizer.anonymize(frame(i), [PERSON]), [PERSON], [])
        for e in updates.get(i / 5, []):
            written += ref.on_event(e)
    (ref_clip,) = [f for f in written + ref.close() if f.kind == "clip"]
    alone = EvidenceWriter(tmp_path / "alone", Spy(anonymizer), None)
    (alone_clip,) = [f for f in run_cameras(alone, 18.0, updates)[0] if f.kind == "clip"]
    crowded = EvidenceWriter(tmp_path / "crowded", Spy(anonymizer), None)
    shared = [f for f in run_cameras(crowded, 18.0, overlapping(5))[0] if f.kind == "clip"]
    crowded_clip = next(f for f in shared if f.path.name == alone_clip.path.name)
    ref_times, ref_frames = decode(ref_clip.path)
    assert len(ref_frames) == 56  # 0 .. 11 s
    x = round(0.5 * W)  # the snapshot region's left edge
    for clip in (alone_clip, crowded_clip):
        times, frames = decode(clip.path)
        assert times == ref_times
        assert all(np.array_equal(a, b) for a, b in zip(frames, ref_frames, strict=True))
        assert all((f[:, x - 1 : x + 2, 2].astype(int) - f[:, x - 1 : x + 2, 1]).mean() < 20 for f in frames)


def test_a_recorded_camera_gets_its_snapshot_only_and_keeps_two_seconds(
    tmp_path: Path, fast_anonymizer: Spy
) -> None:
    """With recording on, an event's clip is a range of the recording rendered when viewed, so
    the writer anonymises one frame per event (the snapshot) and buffers little."""
    w = EvidenceWriter(
        tmp_path,
        fast_anonymizer,
        None,
        pre_seconds=3,
        post_seconds=3,
        clock=lambda: DAY,
        clips_for=lambda c: False,
    )
    files = run_stream(w, 5, 10.0, {6.0: event(5.0, 6.0, True), 7.0: event(5.0, 7.0, False)})
    assert [f.kind for f in files] == ["snapshot"]
    assert fast_anonymizer.calls == 1
    for i in range(60):
        w.push("cam1", 20 + i / 5, frame(i), [PERSON], [])
    assert w.buffered_seconds("cam1") <= 2.0
