"""Statistics mode: counts per zone and time bucket, nothing else.

The CNIL accepts anonymous statistics without a specific law when source images are dropped at
once and the output has no immediate operational use (legal requirements LB-05). So this module
receives tracked objects, keeps only numbers, and emits a bucket once it is closed. Track ids are
used inside the bucket to count entries and never leave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lanterne.core.types import Counts, TrackedObject
from lanterne.rules.base import ZoneRef


@dataclass(slots=True)
class _Bucket:
    start: float
    samples: int = 0
    people_sum: int = 0
    max_people: int = 0
    entries: dict[str, int] = field(default_factory=dict)
    inside: set[int] = field(default_factory=set)


class ZoneCounter:
    def __init__(self, zone: ZoneRef, bucket_seconds: float) -> None:
        self.zone = zone
        self.bucket_seconds = bucket_seconds
        self._bucket: _Bucket | None = None
        self._inside_before: set[int] = set()

    def _point(self, o: TrackedObject) -> tuple[float, float]:
        return o.foot if o.label == "person" else o.centre

    def update(self, t: float, objects: tuple[TrackedObject, ...]) -> list[Counts]:
        out: list[Counts] = []
        start = (t // self.bucket_seconds) * self.bucket_seconds
        if self._bucket is not None and self._bucket.start != start:
            out.append(self._close())
        if self._bucket is None:
            self._bucket = _Bucket(start=start)
        b = self._bucket
        inside = {o.track_id: o for o in objects if self.zone.contains(self._point(o))}
        people = sum(1 for o in inside.values() if o.label == "person")
        b.samples += 1
        b.people_sum += people
        b.max_people = max(b.max_people, people)
        for tid, o in inside.items():
            if tid not in self._inside_before:
                b.entries[o.label] = b.entries.get(o.label, 0) + 1
        self._inside_before = set(inside)
        return out

    def _close(self) -> Counts:
        b = self._bucket
        assert b is not None
        self._bucket = None
        return Counts(
            camera=self.zone.camera,
            zone=self.zone.id,
            bucket_start=b.start,
            bucket_seconds=self.bucket_seconds,
            max_people=b.max_people,
            mean_people=b.people_sum / b.samples if b.samples else 0.0,
            entries=dict(b.entries),
            samples=b.samples,
        )

    def finish(self) -> list[Counts]:
        self._inside_before = set()
        return [self._close()] if self._bucket is not None else []
