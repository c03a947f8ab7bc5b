"""A decoded frame makes its pixels only when a step asks, each form once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lanterne.core.types import Frame
from lanterne.video.capture.source import FileSource
from tests.support.video import VIDEO


@pytest.fixture(scope="module")
def decoded() -> Frame:
    frames = FileSource("pets", str(VIDEO / "vtest.avi"), fps=5).frames()
    for _ in range(3):
        frame = next(frames)
    return frame


def test_grey_is_the_luma_plane_of_the_same_picture(decoded: Frame) -> None:
    frame = decoded.unconverted()
    grey = frame.grey
    assert grey.shape == (576, 768) and grey.dtype == np.uint8
    assert frame.size == (768, 576)
    # Video luma is limited range (16-235): the same picture as OpenCV's grey, scaled.
    reference = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    assert np.corrcoef(grey.ravel().astype(np.float32), reference.ravel())[0, 1] > 0.99
    # A view, not a copy: reading it twice gives the same array.
    assert frame.grey is grey


def test_bgr_is_made_once_and_matches_ffmpeg_conversion(decoded: Frame) -> None:
    frame = decoded.unconverted()
    image = frame.image
    assert image.shape == (576, 768, 3)
    assert frame.image is image
    other = decoded.unconverted()
    assert other.image is not image
    assert np.array_equal(other.image, image)


def test_a_frame_needs_exactly_one_kind_of_pixels() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Frame("c", 0.0)
    bgr = np.zeros((4, 6, 3), np.uint8)
    frame = Frame("c", 0.0, bgr, 0)
    assert frame.size == (6, 4)
    assert frame.grey.shape == (4, 6)
    assert frame.unconverted().image is bgr
