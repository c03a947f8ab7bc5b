"""A second look, with the same detector, where the first one fails on the two hardest events:
people on the ground (turned on their side) and bags left still (zoomed in).

People.

YOLOX-Nano, like most COCO detectors, was trained on people standing up: on 111 real person crops
turned 90°, its median person score fell from 0.88 to 0.00 (8 % still found at 0.3). A person
lying on the ground is therefore seen as `bench`, `dog` or `cat`, or not at all, and the
person_down rule loses the track at the very moment it matters. Turned back upright, the same
pixels score as a person again (0.86-0.87 on the semi-synthetic falls).

So, only where a fall is possible, the region beside the feet of a person who was just seen
standing is cut out, turned 90° clockwise and 90° counter-clockwise (the head may have gone
either way), the two turned copies are set side by side in one picture, and the detector runs
once on it. A person found there, whose box maps back to a lying shape, is handed to the rules
under the standing person's own track id and label `person`: the person_down rule then sees the
same person go from upright to down, which is what it times. Nothing new is learned about the
person: the id is the tracker's ephemeral one, and the match is by place and time, as in the
rule itself.

When it runs: for `WATCH_SECONDS` after a person last seen upright either vanished from the
tracker's output (not at the frame edge, where people leave) or came back under another label;
then, while the person stays found, once every `HOLD_CHECK_SECONDS`. A scene where nobody
disappears mid-frame costs nothing but a few dictionary updates per frame.

The pose model in shared/models (MediaPipe, .tflite) was not needed: onnxruntime cannot run it,
and turning the crop reuses the detector already loaded.

Bags. A bag is found best while its owner carries it or stands beside it: the motion gate then
crops the moving area around them and the detector sees the bag zoomed in. Once the owner has
gone, the scene is still, the detector runs only on the whole frame every few seconds, and a
small bag shrunk to the network's 416 pixels is often missed or called `person`, `cat` or `dog`
(measured on the semi-synthetic scenes: docs/events/evaluation.md). So a place where the detector
called something a bag while it stood still is remembered with that label. An object box of
about the bag's size reported there later under another label is the same object and keeps the
bag's label; when nothing is reported there, a crop twice the bag's size is looked at, at most
once every `BAG_CHECK_SECONDS`, and an object box found at the bag, whatever the detector calls it
zoomed in, keeps the place. Zooming alone does not give the label back (bag scores of 0.16 at best
on 1.5-6 times crops of the missed objects): the label always comes from the moments the detector
called it a bag at that place. A place where nothing is seen for `BAG_FORGET_SECONDS` is
forgotten. A real person standing there is never relabelled: only a box of about the bag's own
size is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lanterne.core.types import Box, EventType, TrackedObject
from lanterne.video.detectors.base import Detector

WATCH_SECONDS = 2.0
"""How long after the last upright sighting a vanished person is looked for on the ground: the
person_down rule needs the first sighting down within `fall_seconds` (2 s by default) of the last
sighting standing, so a later find could not make a fall anyway."""
HOLD_CHECK_SECONDS = 1.0
"""While someone is found lying, the look is repeated at this interval and the last box is
handed on in between: the rule's grace period (1.6 s) bridges it, and one call a second per
person on the ground is all a long event costs."""
MIN_SCORE = 0.4
"""Person score required in the turned picture. A standing person turned on its side scores 0.00
at the median, a lying one turned upright 0.8-0.9; 0.4 leaves room for a partly hidden body."""
LYING_RATIO = 0.8
"""Height over width (frame pixels) at or below which a box found in the turned picture counts
as lying. A standing passer-by caught in the region and found despite the turn maps back to a
tall box and is refused, so that it cannot be mistaken for a fall."""
EDGE = 0.02
"""A person whose last upright box came this close (frame fraction) to the frame edge most likely
walked out of view: not looked for."""
REACH = 1.1
"""The region spans this many standing heights on each side of the feet: a body falling sideways
ends up to one height away from where the feet were."""
ABOVE, BELOW = 0.6, 0.15
"""Vertical extent of the region, in standing heights above and below the feet: a lying body seen
from a street camera covers a band about a third of the standing height tall."""
LOOK_EVERY = 0.6
"""Seconds from the last upright sighting to the first look, and between looks while the person
is not found: three frames at 5 fps. A detector that misses a walker for a frame or two (common in
crowds) then costs no look, and a body on the ground stays there, so looking at every frame would
only find it 0.4 s sooner, for three times the calls."""
HIDDEN_SHARE = 0.3
"""A vanished person whose last box is covered this much by someone still tracked was most
likely hidden behind them, the commonest way to lose a track in a crowd: not looked for until
uncovered."""
MAX_LOOKS = 2
"""Detector calls per frame at most: in a crowd where many people vanish behind each other at once,
the oldest candidates wait for the next frame instead of multiplying the frame's cost."""


@dataclass(slots=True)
class _Upright:
    box: Box
    t: float
    looked: float = -1.0


BAG_CHECK_SECONDS = 1.0
"""Interval between looks at one remembered bag place. The abandoned_object rule keeps a
candidate through 6 s without a sighting, so one look a second keeps the timer going at one
detector call a second per still bag, and nothing where there is none."""
BAG_STILL_SECONDS = 0.5
"""A bag must have been seen at one place this long before its place is remembered: a bag in
someone's hand never stays still that long."""
BAG_FORGET_SECONDS = 3.0
"""A remembered place where no bag has been seen (first or second look) for this long is
dropped: the bag was taken, or it was never one."""
BAG_DRIFT = 0.02
"""Centre movement (frame fractions) within which a bag is still at its place; the
abandoned_object rule's default `max_drift`."""
BAG_SAME_BOX = 0.5
"""Intersection over union with the remembered bag above which a box reported under another
label is the same object, relabelled by the detector."""
BAG_ZOOM = 2.0
"""Side of the crop looked at, in bag sizes (its longer side). Measured on two stand-ins the
whole-frame refresh had lost: an object box was found at the bag at 1.5-2.5 times (score
0.5-0.8), at 3 times only at 0.4, and at 5-8 times (the scale of the motion gate's crops
without the owner in them) barely or not at all."""
BAG_MIN_CROP = 64
"""Smallest crop side in pixels: below it the network sees a magnified blur."""


@dataclass(slots=True)
class _Place:
    box: Box
    label: str
    score: float
    since: float
    """When the bag was first seen at this place."""
    seen: float
    """Last sighting, by the tracker or by a second look."""
    checked: float = -1.0


@dataclass(slots=True)
class _Held:
    box: Box
    score: float
    region: tuple[int, int, int, int]
    checked: float


class SecondLook:
    """Looks again for people on the ground where a standing person was just lost, and for still
    bags where one was seen. One per camera, with that camera's detector.

    >>> from lanterne.config.schema import DetectorSettings
    >>> from lanterne.video.detectors import create_detector
    >>> look = SecondLook(create_detector(DetectorSettings()))
    >>> standing = TrackedObject(7, "person", (0.40, 0.30, 0.46, 0.70), 0.9)
    >>> look.refine(np.zeros((480, 640, 3), np.uint8), 0.0, (standing,)) == (standing,)
    True
    >>> look.refine(np.zeros((480, 640, 3), np.uint8), 0.6, ()), look.calls
    ((), 1)
    """

    def __init__(
        self, detector: Detector, *, people: bool = True, bag_classes: frozenset[str] = frozenset()
    ) -> None:
        self.detector = detector
        self.people = people
        self.bag_classes = bag_classes
        self.calls = 0
        self.seconds = 0.0
        """Process CPU seconds spent in the detector for second looks (for the analysis stats)."""
        self._upright: dict[int, _Upright] = {}
        self._held: dict[int, _Held] = {}
        self._places: dict[int, _Place] = {}

    @classmethod
    def for_rules(cls, detector: Detector, rules: list[tuple[EventType, Any]]) -> SecondLook | None:
        """The second look the configured rules need (event type and parameters of each), or None."""
        people = any(etype is EventType.PERSON_DOWN for etype, _ in rules)
        bags = frozenset(
            c for etype, params in rules if etype is EventType.ABANDONED_OBJECT for c in params.classes
        )
        return cls(detector, people=people, bag_classes=bags) if people or bags else None

    def refine(
        self, image: np.ndarray, t: float, objects: tuple[TrackedObject, ...]
    ) -> tuple[TrackedObject, ...]:
        """The tracker's objects, with each person found lying where they were last seen standing
        put back under their own id and label `person`, and each still bag found again put back
        under its own id and label."""
        if self.people:
            objects = self._people(image, t, objects)
        if self.bag_classes:
            objects = self._bags(image, t, objects)
        return objects

    def _people(
        self, image: np.ndarray, t: float, objects: tuple[TrackedObject, ...]
    ) -> tuple[TrackedObject, ...]:
        h, w = image.shape[:2]
        by_id = {o.track_id: o for o in objects}
        standing = [o for o in objects if o.label == "person" and _upright(o.box, (w, h))]
        for o in standing:
            self._upright[o.track_id] = _Upright(o.box, t)
            self._held.pop(o.track_id, None)
        # Someone standing up where a person was held lying: they got up (perhaps under a new id).
        for tid, held in list(self._held.items()):
            if any(_feet_in(o.box, held.box) for o in standing):
                del self._held[tid]
        for tid in [k for k, u in self._upright.items() if t - u.t > WATCH_SECONDS or t < u.t]:
            del self._upright[tid]
        due = [
            tid
            for tid, u in sorted(self._upright.items(), key=lambda kv: kv[1].t)
            if u.t < t
            and not _at_edge(u.box)
            and (by_id.get(tid) is None or by_id[tid].label != "person")
            and (
                t - self._held[tid].checked >= HOLD_CHECK_SECONDS
                if tid in self._held
                else t - max(u.t, u.looked) >= LOOK_EVERY - 1e-6 and not _hidden(u.box, objects, tid)
            )
        ]
        due += [
            tid
            for tid, held in self._held.items()
            if tid not in self._upright and t - held.checked >= HOLD_CHECK_SECONDS
        ]
        for tid in due[:MAX_LOOKS]:
            held = self._held.get(tid)
            if held is None:
                self._upright[tid].looked = t
            region = held.region if held is not None else _region(self._upright[tid].box, (w, h))
            found = self._look(image, region)
            if found is None:
                self._held.pop(tid, None)
            else:
                self._held[tid] = _Held(found[0], found[1], region, t)
        if not self._held:
            return objects
        out = [o for o in objects if o.track_id not in self._held]
        out += [TrackedObject(tid, "person", held.box, held.score) for tid, held in self._held.items()]
        return tuple(out)

    def _bags(
        self, image: np.ndarray, t: float, objects: tuple[TrackedObject, ...]
    ) -> tuple[TrackedObject, ...]:
        places = self._places
        for o in objects:
            if o.label not in self.bag_classes:
                continue
            p = places.get(o.track_id)
            if p is None or _drift(p.box, o.box) > BAG_DRIFT:
                places[o.track_id] = _Place(o.box, o.label, o.confidence, t, t)
            else:
                p.label, p.score, p.seen = o.label, o.confidence, t
        for tid in [k for k, p in places.items() if t - p.seen > BAG_FORGET_SECONDS or t < p.since]:
            del places[tid]
        out = list(objects)
        ids = {o.track_id: i for i, o in enumerate(out)}
        for tid, p in places.items():
            if p.seen == t:
                continue
            # Reported under another label (a person, a cat) with about the bag's own box: the
            # same object. A different, bigger box there (someone standing on the spot) is left alone.
            other = next((i for i, o in enumerate(out) if _iou(o.box, p.box) >= BAG_SAME_BOX), None)
            if other is not None:
                p.seen = t
                # The detector still sees an object of the bag's size at its place: the same
                # object, which it called a bag while it stood there. It keeps that label.
                if p.seen - p.since >= BAG_STILL_SECONDS and out[other].label not in self.bag_classes:
                    out[other] = TrackedObject(out[other].track_id, p.label, out[other].box, p.score)
                continue
            if p.seen - p.since < BAG_STILL_SECONDS:
                continue
            if any(_iou(o.box, p.box) > 0 for o in out if o.label == "person"):
                continue  # someone over it: its owner attends it, or hides it
            if t - p.checked < BAG_CHECK_SECONDS:
                continue
            p.checked = t
            found = self._zoom(image, p)
            if found is None:
                continue
            p.box, p.seen = found, t
            obj = TrackedObject(tid, p.label, p.box, p.score)
            if tid in ids:
                out[ids[tid]] = obj
            else:
                out.append(obj)
        return tuple(out)

    def _zoom(self, image: np.ndarray, p: _Place) -> Box | None:
        """The box, in a zoomed crop around the remembered bag, that covers it best, whatever its
        label: zoomed in without its owner beside it, the same dark bundle the detector called a
        backpack is as often called a cat or a person (docs/events/evaluation.md)."""
        fh, fw = image.shape[:2]
        bx0, by0, bx1, by1 = p.box[0] * fw, p.box[1] * fh, p.box[2] * fw, p.box[3] * fh
        side = max(BAG_MIN_CROP, BAG_ZOOM * max(bx1 - bx0, by1 - by0))
        cx, cy = (bx0 + bx1) / 2, (by0 + by1) / 2
        x0, y0 = (
            int(min(max(cx - side / 2, 0), max(fw - side, 0))),
            int(min(max(cy - side / 2, 0), max(fh - side, 0))),
        )
        x1, y1 = int(min(fw, x0 + side)), int(min(fh, y0 + side))
        started = time.process_time()
        dets = self.detector.detect(image[y0:y1, x0:x1])
        self.seconds += time.process_time() - started
        self.calls += 1
        best: tuple[Box, float] | None = None
        for i in range(len(dets)):
            a0, b0, a1, b1 = (float(v) for v in dets.xyxy[i])
            box = ((x0 + a0) / fw, (y0 + b0) / fh, (x0 + a1) / fw, (y0 + b1) / fh)
            overlap = _iou(box, p.box)
            if overlap >= BAG_SAME_BOX and (best is None or overlap > best[1]):
                best = (box, overlap)
        return best[0] if best is not None else None

    def _look(self, image: np.ndarray, region: tuple[int, int, int, int]) -> tuple[Box, float] | None:
        """The best lying person in `region`, from one detector call on the region turned both
        ways; its box in frame fractions and its score."""
        x0, y0, x1, y1 = region
        crop = image[y0:y1, x0:x1]
        ch, cw = crop.shape[:2]
        if ch < 8 or cw < 8:
            return None
        # Clockwise turn: a body lying with the head to the left stands up; counter-clockwise:
        # head to the right. Side by side, one call sees both.
        both = np.concatenate(
            (cv2.rotate(crop, cv2.ROTATE_90_CLOCKWISE), cv2.rotate(crop, cv2.ROTATE_90_COUNTERCLOCKWISE)),
            axis=1,
        )
        started = time.process_time()
        dets = self.detector.detect(both)
        self.seconds += time.process_time() - started
        self.calls += 1
        names = dets.data.get("class_name", np.array([], dtype=object))
        fh, fw = image.shape[:2]
        best: tuple[Box, float] | None = None
        for i in range(len(dets)):
            score = float(dets.confidence[i])
            if str(names[i]) != "person" or score < MIN_SCORE or (best is not None and score <= best[1]):
                continue
            a0, b0, a1, b1 = (float(v) for v in dets.xyxy[i])
            if a0 < ch <= a1 - 1:
                continue  # straddles the seam between the two turned copies
            if a1 <= ch:  # clockwise copy: turned pixel (x', y') came from (y', ch - x')
                px0, px1, py0, py1 = b0, b1, ch - a1, ch - a0
            else:  # counter-clockwise copy, shifted by ch: (x', y') came from (cw - y', x')
                a0, a1 = a0 - ch, a1 - ch
                px0, px1, py0, py1 = cw - b1, cw - b0, a0, a1
            if (py1 - py0) > LYING_RATIO * (px1 - px0):
                continue
            box = ((x0 + px0) / fw, (y0 + py0) / fh, (x0 + px1) / fw, (y0 + py1) / fh)
            best = (box, score)
        return best


def _upright(box: Box, size: tuple[int, int]) -> bool:
    """Standing by the person_down rule's own measure (height over width at least 1.2)."""
    w = (box[2] - box[0]) * size[0]
    h = (box[3] - box[1]) * size[1]
    return h >= 1.2 * w > 0


def _at_edge(box: Box) -> bool:
    return box[0] <= EDGE or box[1] <= EDGE or box[2] >= 1 - EDGE or box[3] >= 1 - EDGE


def _drift(a: Box, b: Box) -> float:
    return abs((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) + abs((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2)


def _iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _hidden(box: Box, objects: tuple[TrackedObject, ...], tid: int) -> bool:
    area = (box[2] - box[0]) * (box[3] - box[1])
    for o in objects:
        if o.track_id == tid or o.label != "person":
            continue
        iw = min(box[2], o.box[2]) - max(box[0], o.box[0])
        ih = min(box[3], o.box[3]) - max(box[1], o.box[1])
        if iw > 0 and ih > 0 and iw * ih >= HIDDEN_SHARE * area:
            return True
    return False


def _feet_in(standing: Box, lying: Box) -> bool:
    x = (standing[0] + standing[2]) / 2
    return lying[0] <= x <= lying[2] and abs(standing[3] - lying[3]) <= (lying[3] - lying[1]) * 2


def _region(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixels where a person standing in `box` can lie after a fall: beside and around the feet."""
    fw, fh = size
    height = (box[3] - box[1]) * fh
    cx, foot = (box[0] + box[2]) / 2 * fw, box[3] * fh
    return (
        max(0, round(cx - REACH * height)),
        max(0, round(foot - ABOVE * height)),
        min(fw, round(cx + REACH * height)),
        min(fh, round(foot + BELOW * height)),
    )
