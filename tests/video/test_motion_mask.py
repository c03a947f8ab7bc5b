"""Motion masks: a clock burned into the picture (the OSD every real camera can draw) must not
keep the detector running on a still scene, and a masked area must stay visible to the detector,
the tracker and the anonymiser (it is not a privacy mask).

The clock is the one the live wall's RTSP clock camera draws (`tests/support/rtsp_clock_server.py`),
stamped on real still pictures (an empty room from Intel's clip, the PETS 2009 crossroads) and
compressed with x264 as a camera sends it, so the ringing around its blocks is real."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from lanterne.config import config_hash, parse_config
from lanterne.config.schema import Config, MotionSettings
from lanterne.core.errors import ConfigError
from lanterne.core.types import TrackedObject
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector
from lanterne.video.motion.gate import MotionGate
from tests.support.rtsp_clock_server import BLACK, WHITE, cells, pattern
from tests.support.video import VIDEO

SIZE = (768, 576)
FPS = 10
SECONDS = 6.0
REFRESH = 5.0
EMPTY_FRAME = 900
LEFT_HALF = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]


def clock_box(size: tuple[int, int] = SIZE) -> list[list[float]]:
    """The clock's blocks as a motion-mask polygon drawn tight around them, as a user clicks the
    clock's corners."""
    c = cells(*size)
    x0, y0 = min(b[0] for b in c), min(b[1] for b in c)
    x1, y1 = max(b[2] for b in c), max(b[3] for b in c)
    w, h = size
    return [[x0 / w, y0 / h], [x1 / w, y0 / h], [x1 / w, y1 / h], [x0 / w, y1 / h]]


def stamped(still: np.ndarray, ms: int) -> np.ndarray:
    frame = still.copy()
    h, w = frame.shape[:2]
    for (x0, y0, x1, y1), white in zip(cells(w, h), pattern(ms), strict=True):
        frame[y0:y1, x0:x1] = WHITE if white else BLACK
    return frame


@pytest.fixture(scope="module")
def still() -> np.ndarray:
    """The crossroads with its walkers (PETS 2009, first frame)."""
    with av.open(str(VIDEO / "vtest.avi")) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")


@pytest.fixture(scope="module")
def empty() -> np.ndarray:
    """An empty room, nobody and nothing the detector names in it (Intel's clip, frame 900,
    768x432 as a 16:9 camera)."""
    with av.open(str(VIDEO / "intel_one-by-one-person-detection.mp4")) as container:
        return next(f for i, f in enumerate(container.decode(video=0)) if i == EMPTY_FRAME).to_ndarray(
            format="bgr24"
        )


def size(image: np.ndarray) -> tuple[int, int]:
    return image.shape[1], image.shape[0]


def encode(path: Path, still: np.ndarray) -> Path:
    """`still` with a running clock, H.264 (x264 zerolatency, a keyframe a second)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.height, stream.width = still.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(FPS), "bf": "0", "preset": "veryfast", "tune": "zerolatency"}
        for i in range(int(SECONDS * FPS)):
            frame = av.VideoFrame.from_ndarray(stamped(still, 1_000_000 + 100 * i + i % 7), format="bgr24")
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def empty_clock(tmp_path_factory: pytest.TempPathFactory, empty: np.ndarray) -> Path:
    return encode(tmp_path_factory.mktemp("clock") / "empty.mp4", empty)


@pytest.fixture(scope="module")
def people_clock(tmp_path_factory: pytest.TempPathFactory, still: np.ndarray) -> Path:
    return encode(tmp_path_factory.mktemp("clock") / "people.mp4", still)


Polygon = list[list[float]]


def site(clip: Path, motion_masks: list[Polygon], privacy_masks: list[Polygon]) -> Config:
    return parse_config(
        {
            "mode": "statistics",
            "motion": {"refresh_seconds": REFRESH},
            "cameras": [
                {
                    "id": "street",
                    "source": str(clip),
                    "location": {"lat": 51.44, "lon": -0.94},
                    "fps": FPS,
                    "zones": [{"id": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
                    "motion_masks": [
                        {"id": f"m{i}", "polygon": p, "reason": "on-screen clock"}
                        for i, p in enumerate(motion_masks)
                    ],
                    "privacy_masks": [{"id": f"p{i}", "polygon": p} for i, p in enumerate(privacy_masks)],
                }
            ],
        }
    )


def analyse(
    clip: Path, motion_masks: list[Polygon], privacy_masks: list[Polygon] | None = None
) -> tuple[CameraAnalyser, dict[float, tuple[TrackedObject, ...]]]:
    """Run the camera over `clip`; the analyser (for its counts) and the objects it held at
    each frame time."""
    cfg = site(clip, motion_masks, privacy_masks or [])
    cam = cfg.cameras[0]
    analyser = CameraAnalyser(
        cam, cfg, create_detector(cfg.detector, cfg.models_dir), config_hash=config_hash(cfg)
    )
    seen: dict[float, tuple[TrackedObject, ...]] = {}
    source = FileSource(cam.id, cam.source, fps=cam.fps, masks=[m.polygon for m in cam.privacy_masks])
    for frame in source.frames():
        analyser.process(frame)
        seen[round(frame.pts, 3)] = analyser.objects
    return analyser, seen


def test_a_running_clock_runs_the_detector_on_every_frame_until_it_is_masked(
    empty: np.ndarray, empty_clock: Path
) -> None:
    frames = int(SECONDS * FPS)
    unmasked, _ = analyse(empty_clock, [])
    assert unmasked.stats.detector_runs == frames
    # The gate's growth absorbs the blur and the compression's ringing at the blocks' edges.
    masked, _ = analyse(empty_clock, [clock_box(size(empty))])
    assert masked.stats.frames_analysed == frames
    assert masked.stats.detector_runs == 2  # the first frame and the refresh at 5 s


def test_the_gate_alone_runs_only_at_refresh_times_on_a_masked_clock(
    empty: np.ndarray, empty_clock: Path
) -> None:
    gate = MotionGate(MotionSettings(refresh_seconds=REFRESH), size(empty), ignore=[clock_box(size(empty))])
    ran = [
        f.pts
        for f in FileSource("c", str(empty_clock), fps=FPS).frames()
        if gate.update(f.grey, f.pts).run_detector
    ]
    assert ran == pytest.approx([0.0, REFRESH])


def test_a_motion_mask_hides_nothing_from_the_detector(people_clock: Path) -> None:
    """The people of the left half are still found when the detector examines the whole frame
    (the refresh at 5 s); a privacy mask over the same half removes them."""

    def left(objects: tuple[TrackedObject, ...]) -> int:
        return sum(1 for o in objects if o.label == "person" and o.centre[0] < 0.45)

    _, plain = analyse(people_clock, [clock_box()])
    _, motion_masked = analyse(people_clock, [clock_box(), LEFT_HALF])
    _, privacy_masked = analyse(people_clock, [clock_box()], [LEFT_HALF])
    assert left(plain[REFRESH]) > 0
    assert left(motion_masked[REFRESH]) == left(plain[REFRESH])
    assert not any(left(objects) for objects in privacy_masked.values())


def test_movement_outside_the_mask_still_opens_a_region(still: np.ndarray) -> None:
    gate = MotionGate(MotionSettings(refresh_seconds=REFRESH), SIZE, ignore=[clock_box()])
    gate.update(stamped(still, 0), 0.0)
    moved = stamped(still, 100)
    moved[400:500, 600:640] = 255  # something new in the lower right, far from the clock
    result = gate.update(moved, 0.1)
    assert result.run_detector and not result.full_frame
    (x0, y0, x1, y1), *_ = result.regions
    assert x0 <= 600 and x1 >= 640 and y0 <= 400 and y1 >= 500
    assert all(y0 > max(c[3] for c in cells(*SIZE)) for _, y0, _, _ in result.regions)


def test_a_tracked_object_inside_the_mask_keeps_its_region(still: np.ndarray) -> None:
    """Tracked objects are examined whatever the mask says (`keep`): only change is ignored."""
    gate = MotionGate(MotionSettings(refresh_seconds=REFRESH), SIZE, ignore=[LEFT_HALF])
    gate.update(still, 0.0)
    box = (100, 200, 140, 300)
    result = gate.update(still, 0.1, keep=[box])
    assert result.run_detector
    assert any(r[0] <= 100 and r[2] >= 140 for r in result.regions)


def test_a_lighting_change_of_the_watched_part_still_recalibrates(still: np.ndarray) -> None:
    """The changed share counts the watched pixels: with half the view masked, lights switched
    on over the other half are still a lighting change (full frame), not a mover."""
    gate = MotionGate(MotionSettings(refresh_seconds=REFRESH), SIZE, ignore=[LEFT_HALF])
    gate.update(still, 0.0)
    lit = still.copy()
    lit[:, SIZE[0] // 2 :] = np.clip(lit[:, SIZE[0] // 2 :].astype(int) + 120, 0, 255).astype(np.uint8)
    result = gate.update(lit, 0.1)
    assert result.full_frame and result.changed_share > 0.8


def test_a_mask_over_the_whole_view_leaves_only_the_refresh(still: np.ndarray) -> None:
    gate = MotionGate(
        MotionSettings(refresh_seconds=REFRESH), SIZE, ignore=[[[0, 0], [1, 0], [1, 1], [0, 1]]]
    )
    noise = np.random.default_rng(0)
    ran = [
        t
        for t in (k / FPS for k in range(int(SECONDS * FPS)))
        if gate.update(noise.integers(0, 255, still.shape, dtype=np.uint8), t).run_detector
    ]
    assert ran == pytest.approx([0.0, 5.0])


@pytest.mark.parametrize(
    ("masks", "error"),
    [
        ([{"id": "osd", "polygon": [[0, 0], [1, 0]]}], "cameras[0].motion_masks[0].polygon"),
        ([{"id": "osd", "polygon": [[0, 0], [1.5, 0], [1, 1]]}], "cameras[0].motion_masks[0].polygon"),
        ([{"id": "osd", "polygon": [[0, 0], [1, 0], [1, 1]], "colour": "red"}], "colour"),
        (
            [
                {"id": "osd", "polygon": [[0, 0], [1, 0], [1, 1]]},
                {"id": "osd", "polygon": [[0, 0], [1, 0], [1, 1]]},
            ],
            "motion mask id 'osd' is used twice",
        ),
    ],
)
def test_bad_motion_masks_are_refused_with_their_key(masks: list[dict[str, object]], error: str) -> None:
    config = {
        "cameras": [
            {"id": "c", "source": "x.mp4", "location": {"lat": 48.0, "lon": 2.0}, "motion_masks": masks}
        ]
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(config)
    assert error in str(caught.value)
