"""`FrameMemory`: searching only where the picture changed hides every face that searching the
whole frame hides, on real frames of the shared clips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from lanterne.video.anonymize import DefaultAnonymizer, FrameMemory
from lanterne.video.anonymize.faces import _FaceDetector, _snap
from lanterne.video.anonymize.memory import REFRESH_FRAMES
from lanterne.video.detectors.base import PixelBox

VIDEO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "video"
VTEST = VIDEO / "vtest.avi"
CAMPUS = VIDEO / "TUD-Campus.mp4"
CAMPUS_FACE = (445, 182, 475, 218)
"""The eye-level walker on the right of TUD-Campus frame 0 (~20x26 px)."""


def frames(path: Path, count: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if len(out) == count:
                break
            out.append(f.to_ndarray(format="bgr24"))
    return out


def hidden(source: np.ndarray, out: np.ndarray, box: PixelBox) -> bool:
    """At least 80 % of the box's pixels were replaced (pixelation changes nearly all of them)."""
    h, w = source.shape[:2]
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    return bool((out[y0:y1, x0:x1] != source[y0:y1, x0:x1]).any(axis=2).mean() >= 0.8)


@pytest.mark.parametrize(("clip", "count"), [(VTEST, 30), (CAMPUS, 20)])
def test_every_face_the_whole_frame_search_finds_is_hidden(clip: Path, count: int) -> None:
    """Without person boxes, so that only the face search can hide a face."""
    anonymizer = DefaultAnonymizer(plates=False)
    reference = _FaceDetector(None)
    memory = FrameMemory()
    faces = 0
    for image in frames(clip, count):
        out = anonymizer.anonymize(image, memory=memory)
        for box in reference._boxes(image):
            faces += 1
            assert hidden(image, out, box), box
    assert faces >= 10, "the clip must hold faces the search finds"
    assert memory.partial_searches >= count - 2, "most frames must be searched only where they changed"


def test_a_face_that_appears_on_a_still_picture_is_hidden() -> None:
    """The face is painted over with the wall beside it on the first frames, then shown."""
    face = frames(CAMPUS, 1)[0]
    x0, y0, x1, y1 = CAMPUS_FACE
    without = face.copy()
    without[y0:y1, x0:x1] = face[y0:y1, x0 - 60 : x1 - 60]
    anonymizer = DefaultAnonymizer(plates=False)
    memory = FrameMemory()
    for _ in range(3):
        anonymizer.anonymize(without, memory=memory)
    out = anonymizer.anonymize(face, memory=memory)
    assert memory.partial_searches == 3
    assert hidden(face, out, CAMPUS_FACE)


def test_the_whole_frame_is_searched_again_every_refresh() -> None:
    image = frames(VTEST, 1)[0]
    anonymizer = DefaultAnonymizer(faces=False, plates=False)
    memory = FrameMemory()
    for _ in range(REFRESH_FRAMES + 1):
        anonymizer.anonymize(image, memory=memory)
    assert memory.full_searches == 2


def test_a_failed_frame_clears_the_memory() -> None:
    image = frames(VTEST, 1)[0]
    anonymizer = DefaultAnonymizer(plates=False)
    memory = FrameMemory()
    anonymizer.anonymize(image, memory=memory)
    anonymizer.anonymize(image, memory=memory)
    with pytest.raises(Exception):  # noqa: B017 - any failure must clear it
        anonymizer.anonymize(image[:, :, 0], memory=memory)  # a grey frame: not BGR
    anonymizer.anonymize(image, memory=memory)
    assert (memory.full_searches, memory.partial_searches) == (1, 0)


@pytest.mark.parametrize(
    ("region", "size", "expected"),
    [
        ((10, 10, 20, 20), (768, 576), (0, 0, 64, 64)),  # at least 64 px
        ((700, 500, 768, 576), (768, 576), (672, 480, 768, 576)),  # on the 32 px grid
        ((100, 100, 140, 300), (768, 576), (96, 96, 160, 320)),
    ],
)
def test_crops_lie_on_the_whole_frame_grid_inside_the_frame(
    region: PixelBox, size: tuple[int, int], expected: PixelBox
) -> None:
    snapped = _snap(region, size)
    assert snapped == expected
    assert snapped[0] <= region[0] and snapped[1] <= region[1]
    assert snapped[2] >= region[2] and snapped[3] >= region[3]
    assert snapped[0] % 32 == 0 and snapped[1] % 32 == 0
