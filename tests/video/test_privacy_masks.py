"""Privacy masks (LB-06): a masked area is painted flat before any step reads the frame, so it is
never analysed, and the same painting serves every picture made for a person."""

from __future__ import annotations

import numpy as np
import pytest

from lanterne.config import config_hash, parse_config
from lanterne.core.errors import ConfigError
from lanterne.core.masks import MASK_VALUE, paint, pixel_polygons
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector
from tests.support.video import VIDEO

LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
WHOLE = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]


def camera(masks: list[list[tuple[float, float]]]) -> dict:
    return {
        "mode": "statistics",
        "cameras": [
            {
                "id": "pets",
                "source": str(VIDEO / "vtest.avi"),
                "location": {"lat": 51.44, "lon": -0.94},
                "fps": 5,
                "zones": [{"id": "all", "polygon": WHOLE}],
                "privacy_masks": [{"id": f"m{i}", "polygon": m} for i, m in enumerate(masks)],
            }
        ],
    }


def test_masked_pixels_are_flat_in_colour_and_grey_and_the_rest_untouched() -> None:
    plain = next(FileSource("pets", str(VIDEO / "vtest.avi"), fps=5).frames())
    masked = next(FileSource("pets", str(VIDEO / "vtest.avi"), fps=5, masks=[LEFT_HALF]).frames())
    w = masked.size[0]
    inside = slice(0, w // 2 - 2)
    outside = slice(w // 2 + 3, w)
    assert (masked.image[:, inside] == MASK_VALUE).all()
    assert (masked.grey[:, inside] == MASK_VALUE).all()
    # The source picture itself is not touched: the grey of another frame object is the camera's.
    assert not (plain.grey[:, inside] == MASK_VALUE).all()
    assert np.array_equal(masked.image[:, outside], plain.image[:, outside])
    assert np.array_equal(masked.grey[:, outside], plain.grey[:, outside])


def test_a_mask_over_the_whole_view_leaves_nothing_to_detect() -> None:
    cfg = parse_config(camera([WHOLE]))
    cam = cfg.cameras[0]
    analyser = CameraAnalyser(
        cam, cfg, create_detector(cfg.detector, cfg.models_dir), config_hash=config_hash(cfg)
    )
    source = FileSource(cam.id, cam.source, fps=cam.fps, masks=[m.polygon for m in cam.privacy_masks])
    seen = 0
    for frame in source.frames():
        analyser.process(frame)
        seen += len(analyser.objects)
        if frame.pts > 6:
            break
    assert analyser.stats.frames_analysed >= 30
    assert seen == 0


def test_nobody_is_detected_inside_a_mask() -> None:
    """PETS walkers cross the whole picture: with the left half masked, people are still found on
    the right, and no tracked box lies wholly inside the masked half."""
    cfg = parse_config(camera([LEFT_HALF]))
    cam = cfg.cameras[0]
    analyser = CameraAnalyser(
        cam, cfg, create_detector(cfg.detector, cfg.models_dir), config_hash=config_hash(cfg)
    )
    source = FileSource(cam.id, cam.source, fps=cam.fps, masks=[m.polygon for m in cam.privacy_masks])
    right = inside = 0
    for frame in source.frames():
        analyser.process(frame)
        for o in analyser.objects:
            if o.label != "person":
                continue
            right += o.box[0] > 0.5
            inside += o.box[2] < 0.48
        if frame.pts > 10:
            break
    assert right > 20
    assert inside == 0


def test_paint_covers_the_polygon_edge_and_keeps_grey_and_colour_alike() -> None:
    grey = np.full((60, 80), 7, np.uint8)
    colour = np.full((60, 80, 3), 7, np.uint8)
    polys = pixel_polygons([[(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]], (80, 60))
    paint(grey, polys)
    paint(colour, polys)
    assert np.array_equal(grey == MASK_VALUE, (colour == MASK_VALUE).all(axis=2))
    ys, xs = np.nonzero(grey == MASK_VALUE)
    assert xs.min() <= round(0.25 * 79) and xs.max() >= round(0.75 * 79)
    assert ys.min() <= round(0.25 * 59) and ys.max() >= round(0.75 * 59)


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        ([{"id": "a", "polygon": [[0, 0], [1, 0]]}], "at least 3 points"),
        ([{"id": "a", "polygon": WHOLE}, {"id": "a", "polygon": WHOLE}], "privacy mask id 'a' is used twice"),
        ([{"id": "a", "polygon": [[0, 0], [1.5, 0], [1, 1]]}], "less than or equal to 1"),
    ],
)
def test_bad_masks_are_refused_at_load(masks: list[dict], message: str) -> None:
    data = camera([])
    data["cameras"][0]["privacy_masks"] = masks
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
