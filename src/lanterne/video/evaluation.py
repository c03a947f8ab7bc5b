"""Measure events against ground truth.

The reference events of a clip with MOT ground truth are what the same rules produce when fed
the annotated boxes and identities instead of the detector and tracker. Comparing the pipeline's
events with them measures what detection and tracking cost, rule by rule, on real footage: the
figures behind `docs/performance.md` and the scene tests.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lanterne.config.schema import Camera
from lanterne.core.types import Event, Observation, TrackedObject
from lanterne.rules import RULES
from lanterne.video.analyser import zone_refs


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """MOT boxes per frame (0-based decoded frame index), as tracked persons in frame fractions."""

    frames: dict[int, tuple[TrackedObject, ...]]
    size: tuple[int, int]
    fps: float


def load_mot(path: Path, size: tuple[int, int], fps: float) -> GroundTruth:
    """Read a MOTChallenge `gt.txt` (frame,id,left,top,width,height,considered,...). Frame N of the
    file is the N-th decoded frame (1-based). Rows with considered=0 are ignored."""
    w, h = size
    frames: dict[int, list[TrackedObject]] = defaultdict(list)
    with path.open(newline="") as f:
        for row in csv.reader(f):
            if len(row) < 7 or row[6].strip() == "0":
                continue
            frame, tid = int(float(row[0])), int(float(row[1]))
            left, top, bw, bh = (float(v) for v in row[2:6])
            box = (max(0.0, left / w), max(0.0, top / h), min(1.0, (left + bw) / w), min(1.0, (top + bh) / h))
            frames[frame - 1].append(TrackedObject(track_id=tid, label="person", box=box, confidence=1.0))
    return GroundTruth(frames={k: tuple(v) for k, v in frames.items()}, size=size, fps=fps)


def reference_events(gt: GroundTruth, camera: Camera, times: Sequence[tuple[int, float]]) -> list[Event]:
    """Run the camera's rules over ground-truth observations at the given (frame index, time)
    pairs — the same frames the pipeline analysed — and return the closed events."""
    rules: list[list[Any]] = []
    for zone_cfg, ref in zip(camera.zones, zone_refs(camera), strict=True):
        for etype, params in zone_cfg.events.enabled().items():
            spec = RULES[etype]
            if "objects" not in spec.needs:
                continue
            rules.append([spec, params, ref, spec.initial()])
    out: list[Event] = []
    last_t = 0.0
    for index, t in times:
        obs = Observation(camera.id, t, gt.size, gt.frames.get(index, ()))
        for r in rules:
            r[3], events = r[0].step(r[3], obs, r[2], r[1])
            out.extend(e for e in events if not e.ongoing)
        last_t = t
    for r in rules:
        out.extend(r[0].finish(r[3], last_t, r[2]))
    return out


@dataclass(frozen=True, slots=True)
class Score:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def _overlap(a: Event, b: Event, slack: float) -> bool:
    return a.start - slack <= b.end and b.start - slack <= a.end


def _region_overlap(a: Event, b: Event) -> bool:
    ax0, ay0, ax1, ay1 = a.region
    bx0, by0, bx1, by1 = b.region
    return ax0 <= bx1 and bx0 <= ax1 and ay0 <= by1 and by0 <= ay1


def match_events(
    detected: Iterable[Event], reference: Iterable[Event], slack: float = 1.0
) -> dict[str, Score]:
    """Match per event type and zone: a detected event is a true positive when it overlaps an
    unmatched reference event in time (within `slack` seconds) and in image region. Greedy in
    time order, one-to-one."""
    det = sorted(detected, key=lambda e: e.start)
    ref = sorted(reference, key=lambda e: e.start)
    scores: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    used: set[int] = set()
    for d in det:
        hit = next(
            (
                i
                for i, r in enumerate(ref)
                if i not in used
                and r.type == d.type
                and r.zone == d.zone
                and _overlap(d, r, slack)
                and _region_overlap(d, r)
            ),
            None,
        )
        if hit is None:
            scores[str(d.type)][1] += 1
        else:
            used.add(hit)
            scores[str(d.type)][0] += 1
    for i, r in enumerate(ref):
        if i not in used:
            scores[str(r.type)][2] += 1
    return {k: Score(*v) for k, v in sorted(scores.items())}


def strip(e: Event) -> Event:
    """Drop hashes before comparing events from two runs."""
    return replace(e, model_hash="", config_hash="")
