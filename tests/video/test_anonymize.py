"""Anonymisation: head bands, scaled pixelation, faces, plates and whole clips.

Real frames from the shared clips are used wherever a property depends on real image content
(faces, textures); synthetic images only where the property is geometric (block size)."""

from __future__ import annotations

import inspect
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import supervision as sv

import lanterne.video.anonymize as anon_pkg
from lanterne.core.assets import resolve_model
from lanterne.core.errors import SourceError
from lanterne.video.anonymize import DefaultAnonymizer, anonymize_clip, block_size, pixelate
from lanterne.video.anonymize.anonymizer import HEAD_MARGIN, head_region
from lanterne.video.anonymize.pixelate import enlarge

VIDEO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "video"
VTEST = VIDEO / "vtest.avi"
CAMPUS = VIDEO / "TUD-Campus.mp4"


def read_frame(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == index:
                return f.to_ndarray(format="bgr24")
    raise AssertionError(f"{path} has fewer than {index + 1} frames")


def gt_boxes(path: Path) -> dict[int, list[tuple[int, int, int, int]]]:
    """MOT ground truth by 0-based frame index, as pixel boxes."""
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for line in path.read_text().splitlines():
        f, _, left, top, w, h = (float(v) for v in line.split(",")[:6])
        out.setdefault(int(f) - 1, []).append((int(left), int(top), int(left + w), int(top + h)))
    return out


def detail(patch: np.ndarray) -> float:
    """Distinct colours in a patch: a readable face needs many, a pixelated one has one per block.
    (Edge energy is a poor measure here: block borders are sharp edges themselves.)"""
    return float(len(np.unique(patch.reshape(-1, patch.shape[-1]), axis=0)))


def yunet_faces(image: np.ndarray, scale: float = 1.0) -> list[tuple[float, float, float, float, float]]:
    """Independent YuNet run (what an attacker with the same model would find)."""
    if scale != 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    h, w = image.shape[:2]
    net = cv2.FaceDetectorYN.create(str(resolve_model("yunet")), "", (w, h), 0.5, 0.3, 5000)
    _, rows = net.detect(image)
    if rows is None:
        return []
    return [
        (r[0] / scale, r[1] / scale, (r[0] + r[2]) / scale, (r[1] + r[3]) / scale, float(r[-1])) for r in rows
    ]


def overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.fixture(scope="module")
def anonymizer() -> DefaultAnonymizer:
    return DefaultAnonymizer()


# --- pixelation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "expected"),
    [(6, 3), (12, 3), (24, 6), (60, 15), (120, 30), (300, 75)],
)
def test_block_size_grows_with_the_box(side: int, expected: int) -> None:
    assert block_size(side, side // 2) == expected


@pytest.mark.parametrize("side", [20, 50, 120, 240])
def test_pixelated_blocks_scale_with_the_box(side: int) -> None:
    """Measured on the output, not on the formula: the run of equal pixels along a row."""
    # Noise over a horizontal ramp: each block's mean differs from its neighbour's (plain noise
    # averages to ~128 everywhere once blocks are large).
    noise = np.random.default_rng(side).integers(0, 40, (400, 400, 3))
    img = (noise + np.linspace(0, 215, 400)[None, :, None]).astype(np.uint8)
    used = pixelate(img, (100, 100, 100 + side, 100 + side))
    row = img[100 + side // 2, 100 : 100 + side, 0].astype(int)
    runs = np.diff(np.flatnonzero(np.diff(row) != 0))
    assert used == block_size(round(side * 1.4), round(side * 1.4))
    assert abs(float(np.median(runs)) - used) <= 1


def test_pixelate_clamps_to_the_frame_and_enlarges() -> None:
    img = np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    orig = img.copy()
    assert pixelate(img, (90, 90, 130, 130)) > 0  # half outside: no error, corner changed
    assert not np.array_equal(img[90:, 90:], orig[90:, 90:])
    assert np.array_equal(img[:80, :80], orig[:80, :80])
    assert pixelate(img, (200, 200, 240, 240)) == 0  # fully outside: untouched
    assert enlarge((10, 10, 20, 20), 0.2, (100, 100)) == (8, 8, 22, 22)


# --- head regions ---------------------------------------------------------------------------


def test_head_regions_of_gt_people_are_pixelated_and_nothing_else() -> None:
    frame_index = 100
    img = read_frame(VTEST, frame_index)
    people = gt_boxes(VIDEO / "vtest.PETS09-S2L1.gt.txt")[frame_index]
    assert len(people) >= 4
    out = DefaultAnonymizer(faces=False, plates=False).anonymize(img, people)
    h, w = img.shape[:2]
    mask = np.zeros((h, w), dtype=bool)
    for person in people:
        region = enlarge(head_region(person), HEAD_MARGIN, (w, h))
        assert region is not None
        x0, y0, x1, y1 = region
        mask[y0:y1, x0:x1] = True
        before, after = detail(img[y0:y1, x0:x1]), detail(out[y0:y1, x0:x1])
        assert after < 0.2 * before, (person, before, after)
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out, img)


def test_input_image_is_not_modified(anonymizer: DefaultAnonymizer) -> None:
    img = read_frame(VTEST, 0)
    orig = img.copy()
    anonymizer.anonymize(img, [(300, 100, 340, 220)])
    assert np.array_equal(img, orig)


# --- faces ----------------------------------------------------------------------------------


def _campus_face_crop() -> np.ndarray:
    """The walker on the right of TUD-Campus frame 0 (eye level, ~20x27 px), upscaled 4x so that
    the face is as clearly visible as a face close to a camera."""
    img = read_frame(CAMPUS, 0)
    crop = img[150:250, 400:520]
    return cv2.resize(crop, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize(
    ("source", "face"),
    # The eye-level walker on the right of TUD-Campus frame 0 (~20x26 px), and the same face 4x.
    [("campus_frame", (445, 182, 475, 218)), ("campus_face_4x", (180, 128, 300, 272))],
)
def test_visible_face_is_detected_and_unreadable_afterwards(
    anonymizer: DefaultAnonymizer, source: str, face: tuple[int, int, int, int]
) -> None:
    img = read_frame(CAMPUS, 0) if source == "campus_frame" else _campus_face_crop()
    before = [f for f in yunet_faces(img) if overlaps(f, face) and f[4] >= 0.75]
    assert before, "the reference face must be clearly visible in the source"
    out = anonymizer.anonymize(img)  # no person boxes: the face detector alone must do it
    assert anonymizer.last_counts.faces >= 1
    for scale in (1.0, 2.0):
        after = yunet_faces(out, scale)
        assert not any(overlaps(a, b) for a in after for b in before), (scale, after)
    for b in before:
        x0, y0, x1, y1 = (int(v) for v in b[:4])
        assert detail(out[y0:y1, x0:x1]) < 0.2 * detail(img[y0:y1, x0:x1])


def test_no_public_function_returns_face_boxes() -> None:
    """Face and plate detectors are private; the package's public names return images,
    counts or statistics."""
    for name in anon_pkg.__all__:
        obj = getattr(anon_pkg, name)
        assert not name.startswith("_")
        if inspect.isfunction(obj):
            ret = str(inspect.signature(obj).return_annotation)
            assert "Box" not in ret and "list" not in ret, (name, ret)
    public_methods = [m for m in dir(DefaultAnonymizer) if not m.startswith("_")]
    assert public_methods == ["anonymize"]


# --- plates ---------------------------------------------------------------------------------


def synthetic_plate(w: int, h: int) -> np.ndarray:
    """A plain European-style plate: dark glyphs on white. Real plate footage with a permissive
    licence was not found; the glyphs are generic text, the geometry is a real plate's."""
    big = np.full((45, 140, 3), 255, np.uint8)
    cv2.rectangle(big, (2, 2), (137, 42), (0, 0, 0), 2)
    cv2.putText(big, "AB-123-CD", (8, 33), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2, cv2.LINE_AA)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)


def test_small_plate_on_a_vehicle_is_pixelated(anonymizer: DefaultAnonymizer) -> None:
    """A 56x18 px plate on the parked van of PETS (a vehicle box from the object detector):
    too small for the full-frame pass at 320x240, found in the upscaled vehicle crop."""
    img = read_frame(VTEST, 0)
    img[70:88, 660:716] = synthetic_plate(56, 18)
    vehicle = (640, 30, 740, 100)
    out = anonymizer.anonymize(img, vehicle_boxes=[vehicle])
    assert anonymizer.last_counts.plates >= 1
    assert detail(out[70:88, 660:716]) < 0.2 * detail(img[70:88, 660:716])
    anonymizer.anonymize(img)
    assert anonymizer.last_counts.plates == 0, "without the vehicle box the plate is too small to find"


# --- whole clips ----------------------------------------------------------------------------


class GroundTruthDetector:
    """Stands in for YOLOX in clip tests: MOT ground truth as `person` detections, so the test
    is fast and does not depend on the object detector's recall."""

    model_name = "ground-truth"
    model_sha256 = ""

    def __init__(self, gt: dict[int, list[tuple[int, int, int, int]]]) -> None:
        self._gt = gt
        self.calls = 0

    def detect(self, image: np.ndarray, regions: object = None) -> sv.Detections:
        boxes = self._gt.get(self.calls, [])
        self.calls += 1
        if not boxes:
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=np.asarray(boxes, dtype=np.float32),
            confidence=np.ones(len(boxes), dtype=np.float32),
            class_id=np.zeros(len(boxes), dtype=int),
            data={"class_name": np.array(["person"] * len(boxes))},
        )


def write_excerpt(src: Path, dst: Path, frames: int, audio: bool) -> None:
    """The first `frames` frames of a real clip re-encoded, with a 440 Hz tone as audio track."""
    with av.open(str(src)) as cin, av.open(str(dst), "w") as cout:
        vin = cin.streams.video[0]
        rate = vin.average_rate or Fraction(25)
        vout = cout.add_stream("libx264" if dst.suffix == ".mp4" else "mpeg4", rate=rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        aout = cout.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i, frame in enumerate(cin.decode(vin)):
            if i >= frames:
                break
            out = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            out.pts = i
            out.time_base = 1 / rate
            for p in vout.encode(out):
                cout.mux(p)
        for p in vout.encode(None):
            cout.mux(p)
        if aout is not None:
            n = int(16000 * frames / rate)
            t = np.arange(n) / 16000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = tone[start : start + 1024]
                af = av.AudioFrame.from_ndarray(chunk[np.newaxis], format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, start
                for p in aout.encode(af):
                    cout.mux(p)
            for p in aout.encode(None):
                cout.mux(p)


@pytest.fixture(scope="module")
def campus_excerpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "campus_audio.mp4"
    write_excerpt(CAMPUS, path, 30, audio=True)
    with av.open(str(path)) as c:
        assert c.streams.audio, "the test input must carry an audio track"
    return path


def test_clip_keeps_frames_and_timestamps_and_drops_audio(tmp_path: Path, campus_excerpt: Path) -> None:
    dst = tmp_path / "out.mp4"
    detector = GroundTruthDetector(gt_boxes(VIDEO / "TUD-Campus.gt.txt"))
    seen: list[float] = []
    stats = anonymize_clip(campus_excerpt, dst, detector, DefaultAnonymizer(), progress=seen.append)
    with av.open(str(campus_excerpt)) as c:
        src_t = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    with av.open(str(dst)) as c:
        assert not c.streams.audio
        assert c.streams.video[0].codec_context.name in ("h264", "mpeg4")
        out_t = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert stats.frames == len(src_t) == len(out_t) == 30
    assert np.allclose(sorted(out_t), sorted(src_t), atol=1e-3)
    assert stats.seconds == pytest.approx(30 / 25, abs=1e-3)
    # 25 fps: boxes are reused for one frame, so the detector runs on every other frame.
    assert stats.detector_frames == 15
    assert stats.heads_blurred > 0 and stats.faces_blurred > 0 and stats.cpu_seconds > 0
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


def test_clip_output_is_anonymised(tmp_path: Path, campus_excerpt: Path) -> None:
    dst = tmp_path / "out.mp4"
    anonymize_clip(campus_excerpt, dst, GroundTruthDetector({}), DefaultAnonymizer(), max_frames=1)
    first_in, first_out = read_frame(campus_excerpt, 0), read_frame(dst, 0)
    face = (445, 182, 475, 218)  # the eye-level walker on the right, as in the face test above
    faces = [f for f in yunet_faces(first_in) if overlaps(f, face) and f[4] >= 0.75]
    assert faces
    assert not any(overlaps(a, b) for a in yunet_faces(first_out) for b in faces)


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated_mp4", "truncated_avi"])
def test_bad_input_raises_source_error(tmp_path: Path, campus_excerpt: Path, case: str) -> None:
    if case == "missing":
        src = tmp_path / "nope.mp4"
    elif case == "empty":
        src = tmp_path / "empty.mp4"
        src.write_bytes(b"")
    elif case == "text":
        src = tmp_path / "notes.mp4"
        src.write_text("this is not a video\n" * 100)
    elif case == "truncated_mp4":
        src = _truncate(campus_excerpt, tmp_path / "cut.mp4", 0.5)
    else:
        avi = tmp_path / "full.avi"
        write_excerpt(CAMPUS, avi, 20, audio=False)
        src = _truncate(avi, tmp_path / "cut.avi", 0.5)
    dst = tmp_path / "out.mp4"
    with pytest.raises(SourceError) as err:
        anonymize_clip(src, dst, GroundTruthDetector({}), DefaultAnonymizer(faces=False, plates=False))
    assert "\n" not in str(err.value) and str(src) in str(err.value)
    assert not dst.exists()
