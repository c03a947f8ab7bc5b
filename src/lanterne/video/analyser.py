"""The analysis of one camera: frames in, events (or counts) out.

source → motion gate → detector (only where pixels changed; optionally at most once per
`detector.interval_seconds`, boxes carried by optical flow in between) → tracker → rule states
→ events.
Data flows one way; this module does not write anything itself: it hands events and counts to
sinks, and frames to the evidence writer, which anonymises before writing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import supervision as sv

from lanterne.config.schema import Camera, Config, Mode
from lanterne.core.params import COCO_CLASSES, VEHICLE_CLASSES
from lanterne.core.types import Counts, Event, EventType, Frame, MotionField, Observation, TrackedObject
from lanterne.rules import RULES
from lanterne.rules.base import RuleSpec, ZoneRef
from lanterne.video.detectors.base import Detector, PixelBox
from lanterne.video.detectors.second_look import SecondLook
from lanterne.video.motion.gate import MotionGate
from lanterne.video.statistics import ZoneCounter
from lanterne.video.tracking.carry import BoxCarrier
from lanterne.video.tracking.tracker import Tracker

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AnalysisStats:
    frames_analysed: int = 0
    detector_runs: int = 0
    detector_region_runs: int = 0
    detector_seconds: float = 0.0
    events: int = 0


@dataclass(slots=True)
class _ActiveRule:
    spec: RuleSpec[Any, Any]
    params: Any
    zone: ZoneRef
    state: Any


MOVING_SECONDS = 3.0
"""An object that has not moved for this long stops holding a detector region open."""
STILL_DRIFT = 0.01
"""Centre movement (frame fractions, |dx| + |dy|) below which an object counts as still."""
INTERVAL_SLACK = 1e-6
"""Seconds forgiven on `detector.interval_seconds`: frame times are sums of floats, and a frame
exactly one interval after the last detection must not miss its turn by a rounding error."""


def _px(box: tuple[float, float, float, float], size: tuple[int, int]) -> PixelBox:
    w, h = size
    return int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)


def _inside(point: tuple[float, float], region: PixelBox, size: tuple[int, int]) -> bool:
    x, y = point[0] * size[0], point[1] * size[1]
    return region[0] <= x <= region[2] and region[1] <= y <= region[3]


def _detections(boxes: list[Any], labels: list[str], scores: list[float]) -> sv.Detections:
    """What the tracker is fed: pixel boxes with their COCO class and score."""
    return sv.Detections(
        xyxy=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.array(scores, dtype=np.float32),
        class_id=np.array([COCO_CLASSES.index(label) for label in labels], dtype=int),
        data={"class_name": np.array(labels, dtype=object)},
    )


def _as_detections(objects: list[TrackedObject], size: tuple[int, int]) -> sv.Detections:
    return _detections(
        [_px(o.box, size) for o in objects], [o.label for o in objects], [o.confidence for o in objects]
    )


EventSink = Callable[[Event], None]
CountsSink = Callable[[Counts], None]
FrameSink = Callable[[Frame, tuple[PixelBox, ...], tuple[PixelBox, ...]], None]
"""Receives each analysed frame with the person and vehicle boxes, for the evidence buffer."""


def zone_refs(camera: Camera) -> list[ZoneRef]:
    return [
        ZoneRef(camera=camera.id, id=z.id, polygon=tuple(tuple(p) for p in z.polygon)) for z in camera.zones
    ]


class CameraAnalyser:
    def __init__(
        self,
        camera: Camera,
        cfg: Config,
        detector: Detector,
        *,
        config_hash: str,
        on_event: EventSink | None = None,
        on_counts: CountsSink | None = None,
        on_frame: FrameSink | None = None,
        allowed: Callable[[EventType, float], bool] | None = None,
        inference_on: Callable[[], bool] | None = None,
    ) -> None:
        self.camera = camera
        self.cfg = cfg
        self.mode = cfg.mode
        self.detector = detector
        self.config_hash = config_hash
        self.on_event = on_event
        self.on_counts = on_counts
        self.on_frame = on_frame if cfg.mode is Mode.ALERTS else None
        self.allowed = allowed
        """Asked for every rule on every analysed frame: lets the deployment switch alerting off
        (an authorisation ended, a supervisor stopped a detector) without restarting the worker.
        An unauthorised rule is not run at all; counts go on, so the camera falls back to
        statistics-only."""
        self.inference_on = inference_on
        """Asked on every frame: False when a supervisor stopped this camera or the site (HO-03).
        Then nothing is detected, counted or signalled; the frame is not looked at."""
        self.stats = AnalysisStats()
        self.tracker = Tracker(fps=camera.fps, activation_threshold=self._activation_threshold())
        self._gate: MotionGate | None = None
        self._flow: Any = None
        self._fire: Any = None
        refs = zone_refs(camera)
        self.rules: list[_ActiveRule] = []
        self.counters: list[ZoneCounter] = []
        if self.mode is Mode.ALERTS:
            for zone_cfg, ref in zip(camera.zones, refs, strict=True):
                for etype, params in zone_cfg.events.enabled().items():
                    spec = RULES[etype]
                    self.rules.append(_ActiveRule(spec, params, ref, spec.initial()))
        # Anonymous counts are kept in every mode: they are what remains when alerting is off.
        self.counters = [ZoneCounter(ref, cfg.statistics_bucket_seconds) for ref in refs]
        needs = {n for r in self.rules for n in r.spec.needs}
        self.needs_motion = "motion" in needs
        self.needs_fire = "fire" in needs
        self.needs_objects = True  # counts, evidence boxes and most rules need the tracked objects
        # People on the ground (picture turned) and still bags (zoomed) looked for again, only
        # where person_down or abandoned_object rules read them (second_look.py).
        self.second_look = SecondLook.for_rules(detector, [(r.spec.type, r.params) for r in self.rules])
        self._last_t = 0.0
        self._open_ids: dict[str, float] = {}
        self._anchors: dict[int, tuple[float, float]] = {}
        self._static = False
        self._moved_at: dict[int, float] = {}
        self._carrier: BoxCarrier | None = None
        """Moves tracked boxes between detector runs; only with `detector.interval_seconds` > 0."""
        self._detected_at: float | None = None
        self._carried: list[tuple[str, float]] = []
        """Label and score of each detection the carrier follows, by its key (index)."""
        self.objects: tuple[TrackedObject, ...] = ()
        self.pixel_boxes: tuple[tuple[PixelBox, ...], tuple[PixelBox, ...]] = ((), ())
        """The people and the vehicles of `objects`, in pixels of the analysed frame."""
        self.objects_at: float | None = None
        """Stream time of the frame `objects` describe: the live picture pixelates heads from them
        and fails closed (the whole frame) when they are older than its bound, e.g. while a
        supervisor's stop holds inference."""
        """The objects of the last analysed frame (for benchmarks and diagnostics)."""

    def _activation_threshold(self) -> float:
        d = self.cfg.detector
        lowest = min([d.default_threshold, *d.class_thresholds.values()])
        # ByteTrack starts tracks only above activation + 0.1: keep low-scoring bags trackable.
        return max(0.02, lowest - 0.1)

    def process(self, frame: Frame) -> list[Event]:
        t = frame.pts
        self._last_t = t
        if self.inference_on is not None and not self.inference_on():
            return self._close_open(t)
        self.stats.frames_analysed += 1
        size = frame.size
        objects: tuple[TrackedObject, ...] = ()
        person_px: tuple[PixelBox, ...] = ()
        vehicle_px: tuple[PixelBox, ...] = ()
        if self.needs_objects:
            objects = self._objects(frame)
            if self.second_look is not None:
                objects = self.second_look.refine(frame.image, t, objects)
            self.objects = objects
            self.objects_at = t
            px = [(o.label, _px(o.box, size)) for o in objects]
            person_px = tuple(b for label, b in px if label == "person")
            vehicle_px = tuple(b for label, b in px if label in VEHICLE_CLASSES)
            self.pixel_boxes = (person_px, vehicle_px)
        for counter in self.counters:
            for c in counter.update(t, objects):
                self._emit_counts(c)
        out: list[Event] = []
        running: list[_ActiveRule] = []
        for rule in self.rules:
            if self.allowed is None or self.allowed(rule.spec.type, t):
                running.append(rule)
            elif rule.state != rule.spec.initial():
                # Alerting switched off: close what was open, forget the rest.
                closing = rule.spec.finish(rule.state, t, rule.zone)
                out.extend(self._emit(e) for e in closing if self._permitted(e))
                rule.state = rule.spec.initial()
        if not running:
            return out
        if self.on_frame is not None:
            self.on_frame(frame, person_px, vehicle_px)
        motion: MotionField | None = None
        fire: np.ndarray | None = None
        # Flow and flame cues cost ~10 ms a frame; on a frame where the motion gate saw no change
        # there is no crowd movement and no flicker to find, so a static scene skips them too.
        static = self._static
        if not static and any("motion" in r.spec.needs for r in running):
            if self._flow is None:
                from lanterne.video.motion.flow import FlowEstimator

                self._flow = FlowEstimator(method=self.cfg.motion.flow)
            motion = self._flow.update(frame.grey, t)
        if not static and any("fire" in r.spec.needs for r in running):
            if self._fire is None:
                from lanterne.video.detectors.fire_classic import FireEstimator

                self._fire = FireEstimator()
            fire = self._fire.update(frame.image, t)
        obs = Observation(
            camera_id=self.camera.id, t=t, frame_size=size, objects=objects, motion=motion, fire=fire
        )
        for rule in running:
            rule.state, events = rule.spec.step(rule.state, obs, rule.zone, rule.params)
            out.extend(self._emit(e) for e in events if self._permitted(e))
        return out

    def _close_open(self, t: float) -> list[Event]:
        """Inference stopped: close the open events and forget every rule's state."""
        out: list[Event] = []
        for rule in self.rules:
            if rule.state != rule.spec.initial():
                closing = rule.spec.finish(rule.state, t, rule.zone)
                out.extend(self._emit(e) for e in closing if self._permitted(e))
                rule.state = rule.spec.initial()
        return out

    def _permitted(self, e: Event) -> bool:
        """An event opens only when alerting is allowed; it closes only if it was opened."""
        if not e.ongoing:
            return self._open_ids.pop(e.id, None) is not None
        if e.id not in self._open_ids:
            self._open_ids[e.id] = e.start
        return True

    def _objects(self, frame: Frame) -> tuple[TrackedObject, ...]:
        if self._gate is None:
            ignore = [m.polygon for m in self.camera.motion_masks]
            self._gate = MotionGate(self.cfg.motion, frame.size, ignore=ignore)
        t = frame.pts
        last = self.tracker.coast(t)
        self._note_movement(last, t)
        # Only objects that moved lately keep a detector region open: a parked van would
        # otherwise cost a detector run on every frame of a static scene. Still objects are
        # carried over (below) and re-checked by the full-frame refresh.
        keep = tuple(
            _px(o.box, frame.size) for o in last if t - self._moved_at.get(o.track_id, t) < MOVING_SECONDS
        )
        gate = self._gate.update(frame.grey, t, keep)
        self._static = self.cfg.motion.enabled and gate.changed_share < self.cfg.motion.min_area
        if not gate.run_detector:
            return last
        interval = self.cfg.detector.interval_seconds
        grey: np.ndarray | None = None
        if interval > 0:
            if self._carrier is None:
                self._carrier = BoxCarrier(frame.size, self.tracker.lost_seconds)
            grey = self._carrier.prepare(frame.grey)
            # Stream time, never frame counts: RTSP drops frames. Time running backwards is a
            # restarted source, and its first frame is detected afresh.
            since = t - self._detected_at if self._detected_at is not None else math.inf
            if 0 <= since < interval - INTERVAL_SLACK:
                return self._carry(grey, t, frame.size)
            self._detected_at = t
        started = time.process_time()
        regions = None if gate.full_frame else list(gate.regions)
        dets: sv.Detections = self.detector.detect(frame.image, regions)
        self.stats.detector_seconds += time.process_time() - started
        self.stats.detector_runs += 1
        if regions is not None:
            self.stats.detector_region_runs += 1
            # As Frigate does: objects outside every examined region did not change, so their
            # last boxes stand in for a detection and keep their track (and its timers) alive.
            carried = [o for o in last if not any(_inside(o.centre, r, frame.size) for r in regions)]
            if carried:
                dets = sv.Detections.merge([dets, _as_detections(carried, frame.size)])
        if self._carrier is not None and grey is not None:
            # Carry the detections, not the tracker's output: ByteTrack confirms a new track
            # only on its second match, so a walker seen once would never be carried (person
            # recall fell to 0.02-0.20 on PETS that way).
            names = dets.data.get("class_name", np.array([], dtype=object))
            self._carried = [(str(names[i]), float(dets.confidence[i])) for i in range(len(dets))]
            self._carrier.seed(
                grey,
                {i: (float(b[0]), float(b[1]), float(b[2]), float(b[3])) for i, b in enumerate(dets.xyxy)},
            )
        return self.tracker.update(dets, t, frame.size)

    def _carry(self, grey: np.ndarray, t: float, size: tuple[int, int]) -> tuple[TrackedObject, ...]:
        """Between detector runs: move the last detections by optical flow and feed them to the
        tracker as if detected, so that tracks keep their ids and timers. The tracker only ever
        sees boxes, never what is inside them."""
        assert self._carrier is not None
        carried = self._carrier.carry(grey, t)
        kinds = [self._carried[c.key] for c in carried]
        dets = _detections([c.box for c in carried], [label for label, _ in kinds], [s for _, s in kinds])
        return self.tracker.update(dets, t, size)

    def _note_movement(self, objects: tuple[TrackedObject, ...], t: float) -> None:
        seen = set()
        for o in objects:
            seen.add(o.track_id)
            anchor = self._anchors.get(o.track_id)
            cx, cy = o.centre
            if anchor is None or abs(cx - anchor[0]) + abs(cy - anchor[1]) > STILL_DRIFT:
                self._anchors[o.track_id] = (cx, cy)
                self._moved_at[o.track_id] = t
        for tid in [k for k in self._anchors if k not in seen]:
            del self._anchors[tid]
            self._moved_at.pop(tid, None)

    def _emit(self, e: Event) -> Event:
        e = replace(e, model_hash=self.detector.model_sha256, config_hash=self.config_hash)
        self.stats.events += int(e.ongoing)
        if self.on_event is not None:
            self.on_event(e)
        return e

    def _emit_counts(self, c: Counts) -> None:
        if self.on_counts is not None:
            self.on_counts(c)

    def finish(self) -> list[Event]:
        """Close what is still open when the stream ends, so that no event is left dangling."""
        out: list[Event] = []
        for rule in self.rules:
            closing = rule.spec.finish(rule.state, self._last_t, rule.zone)
            out.extend(self._emit(e) for e in closing if self._permitted(e))
            rule.state = rule.spec.initial()
        for counter in self.counters:
            for c in counter.finish():
                self._emit_counts(c)
        return out
