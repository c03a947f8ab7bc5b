"""Semi-synthetic scenes for the events no real clip shows: an abandoned bag and a fall.

Every pixel comes from real footage of shared/data/video; only the staging is scripted:

- backgrounds are real frames with nobody in them: the per-pixel median of a whole clip (people
  move, the street stays) or an empty frame of the indoor clip;
- people are cut out of TUD-Stadtmitte with their MOT ground-truth box, and their silhouette is
  the difference from that clip's median background. Walking uses the person's consecutive real
  frames (a real gait cycle); falling, sitting, crouching, bending and lying are made by rotating
  or squashing the cut-out;
- the "bag" is cut out of a real frame with GrabCut inside a box that YOLOX-nano labels backpack.
  The real handbags and shopping bags of TUD-Stadtmitte are not detected at all by YOLOX-nano once
  cut out and set on the ground (0 of 360 placements tried, scales 1.5-4x, see
  docs/events/evaluation.md), so the objects used are the dark backs of hooded jackets that the
  detector calls backpack at 0.2-0.4 in their source frame: a dark bundle on the pavement, a stand-in
  for a bag, which says nothing about how well real left bags are detected.

Cut-outs are blended with a feathered alpha mask so that the detector sees soft, natural edges.
Clips are written with PyAV (libx264) at `FPS` with timestamps in seconds, and read back by the
product's `FileSource` like any camera file.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np

from lanterne.core.types import Event
from lanterne.video.evaluation import load_mot

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"
FPS = 5
TUD = "TUD-Stadtmitte.mp4"
ROOM = "intel_one-by-one-person-detection.mp4"
PETS = "vtest.avi"

PixelBox = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Sprite:
    """A cut-out: BGR pixels and a float alpha (0..1) of the same size."""

    image: np.ndarray
    alpha: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


@dataclass(frozen=True, slots=True)
class Placement:
    """A sprite drawn with its bottom centre at (x, y) in frame pixels."""

    sprite: Sprite
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Expected:
    type: str
    start: float
    region: tuple[float, float, float, float]
    """Where the bag or the person ends up, in frame fractions."""


@dataclass(slots=True)
class Scene:
    name: str
    path: Path
    size: tuple[int, int]
    duration: float
    expected: list[Expected] = field(default_factory=list)
    """Empty for a hard negative."""


# --- real pixels -------------------------------------------------------------------------------


def read_frames(name: str, indices: Sequence[int]) -> dict[int, np.ndarray]:
    want = set(indices)
    out: dict[int, np.ndarray] = {}
    cap = cv2.VideoCapture(str(VIDEO / name))
    i = 0
    while want - out.keys():
        ok, img = cap.read()
        if not ok:
            break
        if i in want:
            out[i] = img
        i += 1
    cap.release()
    return out


@cache
def median_background(name: str, step: int = 3) -> np.ndarray:
    """The per-pixel median over the clip: people pass, the street stays."""
    cap = cv2.VideoCapture(str(VIDEO / name))
    frames: list[np.ndarray] = []
    i = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(img)
        i += 1
    cap.release()
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


@cache
def background(kind: str) -> np.ndarray:
    """`street`: TUD-Stadtmitte without its people (640x480); `room`: the empty indoor room of
    the Intel clip, frame 900, resized to 640x360; `campus`: PETS09 without its people
    (768x576)."""
    if kind == "street":
        return median_background(TUD)
    if kind == "room":
        return cv2.resize(read_frames(ROOM, [900])[900], (640, 360), interpolation=cv2.INTER_AREA)
    if kind == "campus":
        return median_background(PETS, 5)
    raise ValueError(kind)


GROUND = {"street": 330, "room": 330, "campus": 430}
"""A ground line (frame row) where people walk and bags lie, per background."""


def _feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)


@cache
def _tud_truth() -> dict[int, dict[int, PixelBox]]:
    gt = load_mot(VIDEO / "TUD-Stadtmitte.gt.txt", (640, 480), 25)
    out: dict[int, dict[int, PixelBox]] = {}
    for f, objs in gt.frames.items():
        for o in objs:
            b = o.box
            out.setdefault(o.track_id, {})[f] = (
                int(b[0] * 640),
                int(b[1] * 480),
                math.ceil(b[2] * 640),
                math.ceil(b[3] * 480),
            )
    return out


def cut_person(frame: np.ndarray, box: PixelBox, bg: np.ndarray) -> Sprite:
    """Silhouette = pixels that differ from the clip's median background, inside the annotated
    box; the largest blob only, holes closed, edge feathered."""
    x0, y0, x1, y1 = box
    pad = 6
    x0, y0, x1, y1 = max(0, x0 - pad), max(0, y0 - pad), min(640, x1 + pad), min(480, y1 + pad)
    img = frame[y0:y1, x0:x1]
    diff = cv2.absdiff(img, bg[y0:y1, x0:x1]).max(axis=2)
    mask = (cv2.GaussianBlur(diff, (5, 5), 0) > 28).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n > 1:
        mask = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    # Erode before feathering so that the soft edge does not carry the source's background.
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    return Sprite(img.copy(), _feather(mask, 1.5))


@cache
def walker(track_id: int, first: int, count: int, stride: int = 2) -> tuple[Sprite, ...]:
    """Consecutive real frames of one annotated TUD-Stadtmitte pedestrian: a real gait."""
    boxes = _tud_truth()[track_id]
    idx = [f for f in range(first, first + count * stride, stride) if f in boxes]
    frames = read_frames(TUD, idx)
    bg = median_background(TUD)
    return tuple(cut_person(frames[f], boxes[f], bg) for f in idx)


WALKERS = {"a": (4, 0, 12), "b": (2, 30, 12), "c": (7, 60, 12)}
"""TUD-Stadtmitte ground-truth tracks (id, first frame, frames) where the person is alone."""


def cut_object(name: str, index: int, box: PixelBox) -> Sprite:
    """GrabCut inside `box` (with a margin for the rectangle initialisation)."""
    frame = read_frames(name, [index])[index]
    m = 10
    x0, y0 = max(0, box[0] - m), max(0, box[1] - m)
    x1, y1 = min(frame.shape[1], box[2] + m), min(frame.shape[0], box[3] + m)
    img = frame[y0:y1, x0:x1].copy()
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)
    cv2.grabCut(img, mask, (8, 8, w - 16, h - 16), bgd, fgd, 4, cv2.GC_INIT_WITH_RECT)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    return Sprite(img, _feather(fg, 1.2))


BAGS = {
    "hood-a": (TUD, 75, (379, 117, 437, 184)),
    "hood-b": (TUD, 130, (294, 111, 341, 174)),
    "hood-c": (TUD, 90, (347, 108, 401, 183)),
    "hood-d": (ROOM, 540, (489, 78, 551, 190)),
}
"""Dark objects YOLOX-nano labels backpack in their source frame (the backs of hooded jackets):
(clip, frame, box). See the module docstring for why no real handbag is used."""


@cache
def bag(name: str) -> Sprite:
    clip, index, box = BAGS[name]
    return cut_object(clip, index, box)


def transform(s: Sprite, height: float, squash: float = 1.0, angle: float = 0.0) -> Sprite:
    """Scale to `height` pixels, squash vertically by `squash` (crouching, sitting), then rotate
    by `angle` degrees (positive: clockwise, the head goes right) on an enlarged canvas."""
    w, h = s.size
    k = height / h
    nw, nh = max(1, round(w * k)), max(1, round(h * k * squash))
    img = cv2.resize(s.image, (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    alpha = cv2.resize(s.alpha, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if abs(angle) < 1e-3:
        return Sprite(img, alpha)
    side = math.ceil(math.hypot(nw, nh)) + 2
    m = cv2.getRotationMatrix2D((nw / 2, nh / 2), -angle, 1.0)
    m[0, 2] += (side - nw) / 2
    m[1, 2] += (side - nh) / 2
    img = cv2.warpAffine(img, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(alpha, m, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
    ys, xs = np.nonzero(alpha > 0.05)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Sprite(img[y0:y1, x0:x1], alpha[y0:y1, x0:x1])


def paste(canvas: np.ndarray, p: Placement) -> PixelBox | None:
    """Alpha-blend in place; return the visible box (alpha > 0.5) in frame pixels."""
    w, h = p.sprite.size
    x0, y0 = round(p.x - w / 2), round(p.y - h)
    fh, fw = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(fw, x0 + w), min(fh, y0 + h)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    a = p.sprite.alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None]
    src = p.sprite.image[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(np.float32)
    roi = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    canvas[cy0:cy1, cx0:cx1] = (a * src + (1 - a) * roi + 0.5).astype(np.uint8)
    ys, xs = np.nonzero(a[..., 0] > 0.5)
    if len(xs) == 0:
        return None
    return cx0 + int(xs.min()), cy0 + int(ys.min()), cx0 + int(xs.max()) + 1, cy0 + int(ys.max()) + 1


def write_clip(path: Path, frames: Sequence[np.ndarray], fps: int = FPS) -> None:
    """H.264 with one frame every 1/fps s: the pts are what the product reads as time."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"crf": "18", "preset": "veryfast"}
        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(img[: stream.height, : stream.width]), "bgr24"
            )
            vf.pts = i
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


Script = Callable[[float], list[Placement]]
"""What is drawn at time t (seconds)."""


def render(path: Path, bg: np.ndarray, script: Script, duration: float, fps: int = FPS) -> None:
    frames = []
    for i in range(round(duration * fps)):
        canvas = bg.copy()
        for p in script(i / fps):
            paste(canvas, p)
        frames.append(canvas)
    write_clip(path, frames, fps)


def frac(box: PixelBox, size: tuple[int, int]) -> tuple[float, float, float, float]:
    return box[0] / size[0], box[1] / size[1], box[2] / size[0], box[3] / size[1]


def _box_of(p: Placement) -> PixelBox:
    w, h = p.sprite.size
    return round(p.x - w / 2), round(p.y - h), round(p.x - w / 2) + w, round(p.y)


def _gap(a: PixelBox, b: PixelBox) -> float:
    """Pixel distance from b's centre to the nearest point of a (as the rule measures it)."""
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    dx = max(a[0] - cx, 0.0, cx - a[2])
    dy = max(a[1] - cy, 0.0, cy - a[3])
    return math.hypot(dx, dy)


# --- abandoned object --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BagScene:
    kind: str = "left"
    """`left`: set down, owner walks away (positive). `stays`: owner stands beside it.
    `lying`: a person lying on the ground with the bag against them. `carried`: never set down.
    `picked`: set down, the owner stands beside it for `pause` seconds, picks it up again and
    walks out with it."""
    bg: str = "street"
    person: str = "a"
    bag: str = "hood-a"
    height: float = 200.0
    """Person height in pixels."""
    bag_scale: float = 1.0
    """Of the cut-out, relative to its source frame: the detector finds these only near their
    native size."""
    x: float = 470.0
    """Where the bag is set down (frame column). On the street, new positives are set down right
    of column 450: the man standing still at a shop window is part of that background (see
    docs/events/evaluation.md), and within `owner_distance` of a bag further left the rule
    rightly counts him as its owner."""
    speed: float = 70.0
    """Walking speed in pixels per second (about 1.2 m/s for a 200-px person)."""
    owner_distance: float = 2.0
    pause: float = 4.0
    """`picked` only: seconds the bag stays on the ground beside its owner."""


def abandoned_scene(tmp: Path, s: BagScene, min_seconds: float) -> Scene:
    """Walk in from the left with the bag at the side, stop at `x`, set it down at the feet, then
    (for `left`) walk out to the right; the bag stays until the end."""
    bg = background(s.bg)
    size = (bg.shape[1], bg.shape[0])
    ground = GROUND[s.bg]
    gait = [transform(p, s.height) for p in walker(*WALKERS[s.person])]
    stand = gait[0]
    item = transform(bag(s.bag), bag(s.bag).size[1] * s.bag_scale)
    side = stand.size[0] / 2 + item.size[0] / 2 - 4
    """The bag's centre relative to the walker's: beside the legs, hanging from the hand."""
    carry_y = ground - s.height * 0.22
    start_x = -stand.size[0]
    t_arrive = (s.x - side - start_x) / s.speed
    t_down = t_arrive + 1.0
    t_leave = t_down + (1.0 + s.pause if s.kind == "picked" else 1.0)
    t_lift = t_leave - 1.0
    exit_x = size[0] + stand.size[0]
    t_gone = t_leave + (exit_x - (s.x - side)) / s.speed
    lying = transform(stand, s.height, angle=90.0) if s.kind == "lying" else None

    def script(t: float) -> list[Placement]:
        if s.kind == "lying":
            assert lying is not None
            return [
                Placement(lying, s.x - lying.size[0] / 2 - item.size[0] / 2 + 6, ground),
                Placement(item, s.x, ground),
            ]
        if s.kind == "carried" or t < t_arrive:
            px = start_x + s.speed * t
            g = gait[int(t * FPS) % len(gait)]
            return [Placement(g, px, ground), Placement(item, px + side, carry_y + item.size[1] / 2)]
        px = s.x - side
        if t < t_down:
            k = (t - t_arrive) / (t_down - t_arrive)
            return [
                Placement(stand, px, ground),
                Placement(item, s.x, carry_y + item.size[1] / 2 + k * (ground - carry_y - item.size[1] / 2)),
            ]
        if s.kind == "picked" and t >= t_lift:
            if t < t_leave:
                k = (t - t_lift) / (t_leave - t_lift)
                y = ground - k * (ground - carry_y - item.size[1] / 2)
                return [Placement(stand, px, ground), Placement(item, s.x, y)]
            px = px + s.speed * (t - t_leave)
            g = gait[int(t * FPS) % len(gait)]
            return [Placement(g, px, ground), Placement(item, px + side, carry_y + item.size[1] / 2)]
        if s.kind == "stays" or t < t_leave:
            return [Placement(stand, px, ground), Placement(item, s.x, ground)]
        px = px + s.speed * (t - t_leave)
        g = gait[int(t * FPS) % len(gait)]
        return [Placement(g, px, ground), Placement(item, s.x, ground)]

    expected: list[Expected] = []
    duration = t_leave + 3.0 + min_seconds + 4.0
    if s.kind == "carried":
        duration = (exit_x - start_x) / s.speed + 1.0
    if s.kind == "picked":
        duration = t_gone + 2.0
    if s.kind == "left":
        # The rule's timer starts when no person box is within `owner_distance` bag heights.
        bag_box = _box_of(Placement(item, s.x, ground))
        reach = s.owner_distance * item.size[1]
        t = t_leave
        while (
            t < t_gone
            and _gap(_box_of(Placement(stand, s.x - side + s.speed * (t - t_leave), ground)), bag_box)
            <= reach
        ):
            t += 0.05
        expected.append(Expected("abandoned_object", t, frac(bag_box, size)))
        duration = max(duration, t + min_seconds + 4.0)
    path = tmp / f"bag-{s.kind}-{s.bg}-{s.person}-{s.bag}-{int(s.x)}-{_digest((s, min_seconds))}.mp4"
    if not path.exists():  # rendered once per folder: a test session or a benchmark run
        render(path, bg, script, duration)
    return Scene(path.stem, path, size, duration, expected)


# --- person down -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FallScene:
    kind: str = "fall"
    """`fall`: walks, falls within `fall_time`, stays down (positive). `lying`: lying from the first
    frame. `slow`: walks, stops, sits down and then lies down over `slow_time`. `sit`: walks,
    stops, sits (squashed to 60 % height) quickly and stays. `crouch`: squats (squashed to 55 %)
    within `fall_time`, stays `down_time`, stands up and walks on. `bend`: leans forward 45° and
    is squashed to 85 % within `fall_time` (picking something up), stays `down_time`,
    straightens and walks on.
    `brief`: falls like `fall`, lies `down_time` (shorter than the rule's `min_seconds`), gets up
    in 1 s and walks on. `walk`: walks across the whole picture."""
    bg: str = "street"
    person: str = "a"
    height: float = 220.0
    x: float = 320.0
    """Where the person stops (frame column of the feet)."""
    speed: float = 70.0
    fall_time: float = 0.8
    slow_time: float = 5.0
    direction: int = 1
    """1: falls with the head to the right; -1: to the left."""
    down_time: float = 1.5
    """`crouch`, `bend`, `brief`: seconds spent down before getting up."""


RISE = 1.0
"""Seconds to get up again (`crouch`, `bend`, `brief`)."""


def _digest(spec: object) -> str:
    """A short stable tag of every field, so that two variants never share a clip file."""
    return hashlib.sha256(repr(spec).encode()).hexdigest()[:8]


def _ease(k: float) -> float:
    k = min(max(k, 0.0), 1.0)
    return k * k * (3 - 2 * k)


def person_down_scene(tmp: Path, s: FallScene, min_seconds: float) -> Scene:
    bg = background(s.bg)
    size = (bg.shape[1], bg.shape[0])
    ground = GROUND[s.bg]
    gait = [transform(p, s.height) for p in walker(*WALKERS[s.person])]
    stand = gait[0]
    start_x = -stand.size[0] / 2
    t_stop = (s.x - start_x) / s.speed
    t_act = t_stop + 1.0

    def body(angle: float, squash: float = 1.0) -> Sprite:
        return transform(walker(*WALKERS[s.person])[0], s.height, squash=squash, angle=angle * s.direction)

    def at_ground(sp: Sprite, angle: float) -> Placement:
        # Rotating about the feet: the hips stay where the feet were, the head moves sideways.
        shift = s.direction * math.sin(math.radians(angle)) * s.height * 0.35
        return Placement(sp, s.x + shift, ground)

    lying = body(90.0)

    t_up = t_act + s.fall_time + s.down_time
    """`crouch`, `bend`, `brief`: when getting up starts; up after `RISE` s, then walks on."""

    def walk_on(t: float) -> list[Placement]:
        return [Placement(gait[int(t * FPS) % len(gait)], s.x + s.speed * (t - t_up - RISE), ground)]

    def script(t: float) -> list[Placement]:
        if s.kind == "lying":
            return [at_ground(lying, 90.0)]
        if s.kind == "walk":
            return [Placement(gait[int(t * FPS) % len(gait)], start_x + s.speed * t, ground)]
        if s.kind in ("crouch", "bend", "brief") and t >= t_up + RISE:
            return walk_on(t)
        if t < t_stop:
            return [Placement(gait[int(t * FPS) % len(gait)], start_x + s.speed * t, ground)]
        if t < t_act:
            return [Placement(stand, s.x, ground)]
        if s.kind == "fall":
            a = 90.0 * _ease((t - t_act) / s.fall_time)
            return [at_ground(body(a), a)]
        if s.kind == "sit":
            q = 1.0 - 0.4 * _ease((t - t_act) / 0.8)
            return [Placement(body(0.0, q), s.x, ground)]
        if s.kind == "brief":
            a = 90.0 * (_ease((t - t_act) / s.fall_time) - _ease((t - t_up) / RISE))
            return [at_ground(body(a), a)]
        if s.kind in ("crouch", "bend"):
            k = _ease((t - t_act) / s.fall_time) - _ease((t - t_up) / RISE)
            if s.kind == "crouch":
                return [Placement(body(0.0, 1.0 - 0.45 * k), s.x, ground)]
            return [Placement(body(45.0 * k, 1.0 - 0.15 * k), s.x, ground)]
        # Slow: sit down over the first 40 %, rest, then lie back over the last 40 %.
        k = (t - t_act) / s.slow_time
        q = 1.0 - 0.4 * _ease(k / 0.4)
        a = 90.0 * _ease((k - 0.6) / 0.4)
        return [at_ground(body(a, q), a)]

    duration = t_act + max(s.fall_time, s.slow_time if s.kind == "slow" else 1.0) + min_seconds + 4.0
    if s.kind == "walk":
        duration = (size[0] + stand.size[0] - start_x) / s.speed
    if s.kind in ("crouch", "bend", "brief"):
        duration = max(duration, t_up + RISE + 3.0)
    expected: list[Expected] = []
    if s.kind == "fall":
        # The event starts at the first sighting down at half height: about 2/3 through the fall.
        end = at_ground(lying, 90.0)
        expected.append(Expected("person_down", t_act + 0.65 * s.fall_time, frac(_box_of(end), size)))
    path = tmp / f"fall-{s.kind}-{s.bg}-{s.person}-{int(s.x)}-{s.direction}-{_digest((s, min_seconds))}.mp4"
    if not path.exists():  # rendered once per folder: a test session or a benchmark run
        render(path, bg, script, duration)
    return Scene(path.stem, path, size, duration, expected)


# --- the evaluation sets -----------------------------------------------------------------------
# Shared by tests/video/test_scenes_synthetic.py (recall and precision asserted over each whole
# set) and benchmarks/event_accuracy.py (the published table). Positives vary the person, the
# background, the place, the scale, the speed, the fall's duration and direction; hard negatives
# are what a rule built on boxes is most easily fooled by.

FALL_POSITIVES = [
    FallScene(),
    FallScene(person="b"),
    FallScene(person="c", direction=-1, x=380),
    FallScene(fall_time=0.5, x=260),
    FallScene(fall_time=1.2, person="b", x=420),
    FallScene(person="c", height=180, x=200, fall_time=0.6),
    FallScene(height=240, direction=-1, x=450, fall_time=1.0),
    FallScene(person="b", height=200, direction=-1, x=300, fall_time=0.7),
    FallScene(person="c", speed=50, x=350, fall_time=0.9),
    FallScene(height=200, direction=-1, x=500, fall_time=1.1),
    FallScene(bg="room", height=200, x=300),
    FallScene(bg="room", height=200, person="c", direction=-1, x=420),
    FallScene(bg="room", height=170, person="b", x=250, fall_time=1.0),
    FallScene(bg="room", height=180, direction=-1, x=480, fall_time=0.6),
    FallScene(bg="room", height=160, person="c", x=200, fall_time=1.2),
    FallScene(bg="room", height=190, person="b", speed=50, x=380, direction=-1),
    FallScene(bg="room", height=190, x=330, fall_time=0.5, direction=-1),
    FallScene(bg="campus", height=160, x=380),
    FallScene(bg="campus", height=160, person="b", direction=-1, x=460),
    FallScene(bg="campus", height=140, person="c", x=300, fall_time=0.6),
    FallScene(bg="campus", height=180, direction=-1, x=560, fall_time=1.0),
    FallScene(bg="campus", height=130, person="b", x=200, fall_time=0.9),
    FallScene(bg="campus", height=150, person="c", speed=90, x=420, direction=-1, fall_time=0.5),
    FallScene(bg="campus", height=170, x=250),
]
FALL_NEGATIVES = [
    FallScene(kind="lying"),
    FallScene(kind="lying", person="b", bg="room", height=200),
    FallScene(kind="lying", person="c", bg="campus", height=160, x=400),
    FallScene(kind="slow"),
    FallScene(kind="slow", person="b", bg="room", height=200, direction=-1, x=420),
    FallScene(kind="slow", person="c", bg="campus", height=160, x=400),
    FallScene(kind="sit"),
    FallScene(kind="sit", person="b", bg="room", height=200),
    FallScene(kind="sit", person="c", bg="campus", height=160, x=400),
    FallScene(kind="crouch", fall_time=0.6),
    FallScene(kind="crouch", person="b", bg="room", height=190, x=380, fall_time=0.5, down_time=2.0),
    FallScene(kind="crouch", person="c", bg="campus", height=160, x=300, fall_time=0.6),
    FallScene(kind="crouch", person="b", height=200, x=420, fall_time=0.4, down_time=3.0),
    FallScene(kind="bend"),
    FallScene(kind="bend", person="c", bg="room", height=200, x=300, direction=-1),
    FallScene(kind="bend", person="b", bg="campus", height=160, x=420, fall_time=0.6),
    FallScene(kind="bend", person="a", height=200, x=260, direction=-1, down_time=2.5),
    FallScene(kind="brief", down_time=1.0),
    FallScene(kind="brief", person="b", bg="room", height=200, x=300, down_time=0.8, direction=-1),
    FallScene(kind="brief", person="c", bg="campus", height=160, x=400, down_time=1.0),
    FallScene(kind="brief", person="a", height=200, x=380, fall_time=0.6, down_time=1.2, direction=-1),
    FallScene(kind="walk"),
    FallScene(kind="walk", person="b", bg="room", height=190),
    FallScene(kind="walk", person="c", bg="campus", height=150, speed=90),
]
BAG_POSITIVES = [
    BagScene(bag="hood-b"),
    BagScene(bag="hood-c"),
    BagScene(bag="hood-a", bag_scale=0.8),
    BagScene(bag="hood-b", person="b"),
    BagScene(bag="hood-c", person="c", x=520),
    BagScene(bag="hood-b", x=400, speed=50),
    BagScene(bag="hood-d", bg="room", x=420),
    BagScene(bag="hood-b", bg="room", x=360, person="b"),
    BagScene(bag="hood-c", bg="campus", height=160, x=500),
    BagScene(bag="hood-a", person="c", x=430),
    BagScene(bag="hood-c", person="b", x=560, speed=90),
    BagScene(bag="hood-b", height=180, x=500, bag_scale=0.9),
    BagScene(bag="hood-a", height=230, x=480, bag_scale=1.2),
    BagScene(bag="hood-d", x=560, bag_scale=0.8),
    BagScene(bag="hood-c", person="b", x=540),
    BagScene(bag="hood-a", bg="room", x=300),
    BagScene(bag="hood-c", bg="room", person="c", x=450),
    BagScene(bag="hood-b", bg="room", x=480, speed=50),
    BagScene(bag="hood-d", bg="room", person="b", x=350, bag_scale=0.8),
    BagScene(bag="hood-b", bg="campus", height=160, x=420),
    BagScene(bag="hood-a", bg="campus", height=180, person="b", x=560),
    BagScene(bag="hood-c", bg="campus", height=150, person="c", x=380, bag_scale=0.9),
    BagScene(bag="hood-d", bg="campus", height=170, x=460, bag_scale=0.8),
    BagScene(bag="hood-b", bg="campus", height=140, person="b", x=600, speed=50),
]
BAG_NEGATIVES = [
    BagScene(kind="stays", bag="hood-b"),
    BagScene(kind="stays", bag="hood-c", person="b"),
    BagScene(kind="stays", bag="hood-d", bg="room", x=420),
    BagScene(kind="stays", bag="hood-a", bg="campus", height=160, x=500),
    BagScene(kind="stays", bag="hood-b", person="c", x=380),
    BagScene(kind="stays", bag="hood-c", bg="room", person="b", x=350),
    BagScene(kind="stays", bag="hood-b", bg="campus", height=150, person="c", x=420),
    BagScene(kind="lying", bag="hood-b"),
    BagScene(kind="lying", bag="hood-c", person="c", x=520),
    BagScene(kind="lying", bag="hood-d", bg="room", x=420),
    BagScene(kind="lying", bag="hood-a", bg="campus", height=160, x=450),
    BagScene(kind="carried", bag="hood-b"),
    BagScene(kind="carried", bag="hood-c", person="b", speed=50),
    BagScene(kind="carried", bag="hood-b", bg="campus", height=160),
    BagScene(kind="carried", bag="hood-d", bg="room", person="c"),
    BagScene(kind="carried", bag="hood-a", person="c", speed=90),
    BagScene(kind="picked", bag="hood-b"),
    BagScene(kind="picked", bag="hood-c", person="b", x=400, pause=6.0),
    BagScene(kind="picked", bag="hood-d", bg="room", x=420),
    BagScene(kind="picked", bag="hood-a", bg="campus", height=160, x=500),
    BagScene(kind="picked", bag="hood-b", bg="room", person="c", x=360, pause=8.0),
    BagScene(kind="picked", bag="hood-c", person="c", x=520, pause=3.0),
    BagScene(kind="picked", bag="hood-b", bg="campus", height=150, person="b", x=420, pause=6.0),
    BagScene(kind="picked", bag="hood-a", x=450, bag_scale=0.8),
]


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def score_scene(scene: Scene, events: list[Event], etype: str, tolerance: float) -> tuple[int, int, int]:
    """(TP, FP, FN) of one scene: an expected event is found when an event of its type starts
    within `tolerance` seconds of it with an overlapping region; every other event of that type
    is a false positive."""
    found = [e for e in events if str(e.type) == etype]
    tp = 0
    for want in scene.expected:
        hit = next(
            (e for e in found if abs(e.start - want.start) <= tolerance and _overlaps(e.region, want.region)),
            None,
        )
        if hit is not None:
            tp += 1
            found.remove(hit)
    return tp, len(found), len(scene.expected) - tp


@dataclass(slots=True)
class SetScore:
    """Counts over a set of scenes, with the names of the scenes that went wrong."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    wrong: list[str] = field(default_factory=list)

    def add(self, scene: Scene, counts: tuple[int, int, int]) -> None:
        tp, fp, fn = counts
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        if fp or fn:
            self.wrong.append(f"{scene.name} (fp {fp}, fn {fn})")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    def report(self) -> str:
        return (
            f"tp {self.tp} fp {self.fp} fn {self.fn}, recall {self.recall:.2f}, "
            f"precision {self.precision:.2f}; wrong: {', '.join(self.wrong) or 'none'}"
        )


def preview(scene_path: Path, t: float, out: Path) -> None:
    """Save the frame at `t` as a PNG, to look at a scene."""
    with av.open(str(scene_path)) as c:
        for f in c.decode(video=0):
            if f.time is not None and f.time >= t - 1e-6:
                cv2.imwrite(str(out), f.to_ndarray(format="bgr24"))
                return
