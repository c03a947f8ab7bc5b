"""The read path: decrypted segments become pixels only masked and anonymised, and fail closed."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from lanterne.config import parse_config
from lanterne.config.schema import Camera
from lanterne.core.masks import MASK_VALUE
from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
from lanterne.video.detectors import create_detector
from lanterne.video.playback import Piece, Renderer
from tests.support.video import VIDEO, excerpt

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
CORNER = [(0.0, 0.0), (0.2, 0.0), (0.2, 0.2), (0.0, 0.2)]


def remux(clip: Path, seconds: float, skip: float = 0.0) -> bytes:
    """The camera's own packets of `clip` from `skip` for `seconds`, in Matroska, as the recorder
    keeps them (no re-encoding); starts at a keyframe."""
    sink = io.BytesIO()
    with av.open(str(clip)) as src, av.open(sink, "w", format="matroska") as out:
        s = src.streams.video[0]
        o = out.add_stream_from_template(s)
        started = False
        for p in src.demux(s):
            if p.dts is None or p.pts is None:
                continue
            t = float(p.pts * p.time_base)
            if t < skip or (not started and not p.is_keyframe):
                continue
            if t >= skip + seconds and p.is_keyframe:
                break
            started = True
            p.stream = o
            out.mux(p)
    return sink.getvalue()


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> list[Piece]:
    # vtest.avi has a keyframe every 25 s; a camera sends one every second or two, as this does.
    clip = excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("rec") / "pets.mp4", 25.0)
    return [Piece(T0, remux(clip, 4.0)), Piece(T0 + timedelta(seconds=10), remux(clip, 3.0, skip=20.0))]


@pytest.fixture(scope="module")
def camera() -> Camera:
    cfg = parse_config(
        {
            "cameras": [
                {
                    "id": "pets",
                    "source": "vtest.avi",
                    "location": {"lat": 51.44, "lon": -0.94},
                    "privacy_masks": [{"id": "flats", "polygon": CORNER, "reason": "windows"}],
                }
            ]
        }
    )
    return cfg.cameras[0]


def renderer(pieces: list[Piece], factory: object = DefaultAnonymizer) -> Renderer:
    cfg = parse_config({"cameras": [{"id": "c", "source": "x.mp4", "location": {"lat": 0, "lon": 0}}]})

    def provide(camera: str, start: datetime, end: datetime) -> list[Piece]:
        return pieces

    return Renderer(provide, create_detector(cfg.detector, cfg.models_dir), factory)


def raw_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def test_frames_are_masked_anonymised_and_keep_the_recording_gap(pieces: list[Piece], camera: Camera) -> None:
    r = renderer(pieces)
    out = list(r.open(camera, T0, T0 + timedelta(seconds=20)).frames(fps=5))
    times = [(f.at - T0).total_seconds() for f in out]
    assert times == sorted(times)
    # About 4 s then 3 s of 10 fps recording, rendered at 5 fps; the hole between them stays one.
    recorded = sum(len(raw_frames(p.data)) for p in pieces)
    assert abs(len(out) - recorded / 2) <= 2
    assert any(b - a > 5 for a, b in itertools.pairwise(times))
    raw = raw_frames(pieces[0].data)[0]
    first = out[0].image
    h, w = first.shape[:2]
    assert (first[: int(0.2 * h) - 2, : int(0.2 * w) - 2] == MASK_VALUE).all()
    # Heads of the walkers are pixelated: pixels changed, but only a small part of the picture.
    changed = (np.abs(first.astype(int) - raw.astype(int)).sum(axis=2) > 0).mean()
    assert 0.04 + 0.001 < changed < 0.3


def test_a_failing_anonymiser_pixelates_the_whole_frame(pieces: list[Piece], camera: Camera) -> None:
    class Broken:
        def anonymize(
            self, image: np.ndarray, person_boxes: object = (), vehicle_boxes: object = ()
        ) -> np.ndarray:
            raise RuntimeError("face model missing")

    r = renderer(pieces[:1], Broken)
    frame = next(r.open(camera, T0, T0 + timedelta(seconds=1)).frames())
    # Four blocks across the longer side: nothing in it can be recognised.
    assert len(np.unique(frame.image.reshape(-1, 3), axis=0)) <= 16


def test_mp4_streams_in_fragments_that_decode_to_the_rendered_frames(
    pieces: list[Piece], camera: Camera
) -> None:
    r = renderer(pieces[:1])
    chunks = list(r.open(camera, T0, T0 + timedelta(seconds=4)).mp4(fps=5))
    assert len(chunks) > 2, "the browser gets the first fragment before the range is rendered"
    with av.open(io.BytesIO(b"".join(chunks))) as c:
        frames = [f for f in c.decode(video=0)]
    assert 18 <= len(frames) <= 21
    assert frames[-1].time == pytest.approx((len(frames) - 1) / 5, abs=0.05)


def test_snapshot_is_an_anonymised_jpeg(pieces: list[Piece], camera: Camera) -> None:
    r = renderer(pieces[:1])
    jpeg = r.open(camera, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)).snapshot((0.4, 0.4, 0.6, 0.6))
    assert jpeg is not None and jpeg[:3] == b"\xff\xd8\xff"
    assert r.open(camera, T0 + timedelta(seconds=6), T0 + timedelta(seconds=7)).snapshot() is None


def _gt_box(frame: int, person: int) -> tuple[int, int, int, int]:
    """The PETS ground truth's box of `person` in frame `frame` (0-based), in pixels."""
    gt = np.loadtxt(VIDEO / "vtest.PETS09-S2L1.gt.txt", delimiter=",")
    [row] = gt[(gt[:, 0] == frame + 1) & (gt[:, 1] == person)]
    x, y, w, h = row[2:6]
    return round(x), round(y), round(x + w), round(y + h)


def test_an_access_request_shows_the_requester_alone_as_they_walk(
    pieces: list[Piece], camera: Camera
) -> None:
    """The agent marks the requester on the first frame only. A second and a half later the
    requester (PETS person 19, who walks twice their width meanwhile, out of the marked region)
    is still the one person shown as recorded, and the two other walkers are hidden whole."""
    r = renderer(pieces[:1])
    first = _gt_box(0, 19)
    marked = ((first[0] - 10) / 768, (first[1] - 10) / 576, (first[2] + 10) / 768, (first[3] + 10) / 576)
    frames = list(r.open(camera, T0, T0 + timedelta(seconds=1.5), keep=marked).frames(fps=10))
    raw = raw_frames(pieces[0].data)
    last = len(frames) - 1
    assert last >= 14 and round((frames[last].at - T0).total_seconds() * 10) == last
    shown = frames[last].image.astype(int)
    source = raw[last].astype(int)

    def changed(box: tuple[int, int, int, int]) -> float:
        """Share of changed pixels in the middle of a box (a quarter cut on each side: ground-truth
        and detector boxes disagree at the edges)."""
        x0, y0, x1, y1 = box
        dx, dy = (x1 - x0) // 4, (y1 - y0) // 4
        inner = (slice(y0 + dy, y1 - dy), slice(x0 + dx, x1 - dx))
        return float((np.abs(shown[inner] - source[inner]).sum(axis=2) > 0).mean())

    now = _gt_box(last, 19)
    centre = ((now[0] + now[2]) / 2 / 768, (now[1] + now[3]) / 2 / 576)
    assert not (marked[0] <= centre[0] <= marked[2] and marked[1] <= centre[1] <= marked[3]), (
        "they walked out"
    )
    assert changed(now) < 0.05, "the requester is shown as recorded"
    for other in (9, 15):
        assert changed(_gt_box(last, other)) > 0.5, f"person {other} is hidden whole"
