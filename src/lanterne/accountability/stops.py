"""Supervisors' stops (HO-03): switch off one detector on a camera, a whole camera, or the whole
site, at once and without touching recording.

A stop is the human "off switch" the law asks for: it must take effect within seconds and must not
depend on anyone restarting anything. The console writes the stop to the `stops` table; the
pipeline, possibly another process, asks `stopped(camera, type)` / `inference_stopped(camera)`
for every frame. Those answers come from a snapshot of the active stops refreshed at most every
`REFRESH_S` seconds, so a frame costs a set lookup and a stop placed anywhere is obeyed within
about a second (goal: 5 s). Recording is deliberately not stopped: footage kept under its usual
retention is what lets a stop be reviewed afterwards.

Every stop and lift is audited (`Action.STOP`, `Action.RESUME`) with its reason; a stop whose
audit record cannot be written is undone, so there is never an unrecorded stop.

>>> from lanterne.audit import AuditLog
>>> from lanterne.store import Store
>>> store = Store.open("sqlite://")
>>> stops = Stops(store.engine, AuditLog(store.engine))
>>> s = stops.stop_camera("cam1", "u-supervisor", "lens cleaning")
>>> stops.inference_stopped("cam1"), stops.inference_stopped("cam2")
(True, False)
>>> stops.lift(s.id, "u-supervisor").active
False
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.core.types import EventType
from lanterne.store.db import describe_failure
from lanterne.store.tables import StopRecord

REFRESH_S = 1.0
"""How stale a process's view of the stops may be. One indexed-free query on a table of a few
rows per second is nothing; a stop obeyed a second late is within HO-03's goal of 5 s."""
SCOPES: tuple[str, ...] = ("detector", "camera", "site")


class StopError(LanterneError):
    """A stop that cannot be placed or lifted as asked."""


@dataclass(frozen=True, slots=True)
class Stop:
    id: int
    scope: str
    camera: str | None
    type: EventType | None
    reason: str
    started_at: datetime
    started_by: str
    lifted_at: datetime | None
    lifted_by: str | None

    @property
    def active(self) -> bool:
        return self.lifted_at is None

    def covers(self, camera: str, type: EventType | None = None) -> bool:
        """Whether this (active or not) stop applies to `type` on `camera`; `type=None` asks about
        the camera's inference as a whole, which only a camera or site stop halts."""
        if self.scope == "site":
            return True
        if self.camera != camera:
            return False
        return self.scope == "camera" or (type is not None and self.type == type)


def _row(r: Any) -> Stop:
    return Stop(
        id=int(r.id),
        scope=r.scope,
        camera=r.camera,
        type=EventType(r.type) if r.type is not None else None,
        reason=r.reason,
        started_at=r.started_at,
        started_by=r.started_by,
        lifted_at=r.lifted_at,
        lifted_by=r.lifted_by,
    )


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise StopError("a stop needs a reason (what is happening and why inference must stop); give one")
    if len(text) > 1000:
        raise StopError(f"the reason is {len(text)} characters long; shorten it to 1000")
    return text


def _details(stop: Stop) -> dict[str, object]:
    return {
        "stop_id": stop.id,
        "scope": stop.scope,
        "camera": stop.camera,
        "type": str(stop.type) if stop.type is not None else None,
    }


def _object_id(stop: Stop) -> str:
    if stop.scope == "site":
        return "site"
    return stop.camera if stop.type is None else f"{stop.camera}/{stop.type}"[:128]  # type: ignore[return-value]


class Stops:
    """Stops placed, lifted and asked about. Thread-safe; one instance per process is enough."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        refresh: float = REFRESH_S,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock
        self.refresh = timedelta(seconds=refresh)
        """How old the cached snapshot may get: `REFRESH_S` on one machine; longer in a worker
        that hears the control bell (`lanterne.cluster.control`), which calls `changed()`."""
        self._lock = threading.Lock()
        self._snapshot: tuple[Stop, ...] = ()
        self._fetched_at: datetime | None = None

    # --- placing and lifting --------------------------------------------------------------

    def stop_detector(self, camera: str, type: EventType | str, user_id: str, reason: str) -> Stop:
        try:
            kind = EventType(type)
        except ValueError:
            raise StopError(
                f"unknown event type {type!r}; use one of {', '.join(t.value for t in EventType)}"
            ) from None
        return self._place("detector", self._camera(camera), kind, user_id, reason)

    def stop_camera(self, camera: str, user_id: str, reason: str) -> Stop:
        return self._place("camera", self._camera(camera), None, user_id, reason)

    def stop_site(self, user_id: str, reason: str) -> Stop:
        return self._place("site", None, None, user_id, reason)

    @staticmethod
    def _camera(camera: str) -> str:
        if not camera or not camera.strip():
            raise StopError("this stop needs a camera id; give the camera")
        return camera.strip()

    def _place(
        self, scope: str, camera: str | None, type: EventType | None, user_id: str, reason: str
    ) -> Stop:
        text = _reason(reason)
        now = self._now()
        try:
            with self.engine.begin() as conn:
                new_id = conn.execute(
                    insert(StopRecord)
                    .values(
                        scope=scope,
                        camera=camera,
                        type=str(type) if type is not None else None,
                        reason=text,
                        started_at=now,
                        started_by=user_id,
                    )
                    .returning(StopRecord.id)
                ).scalar_one()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        stop = Stop(int(new_id), scope, camera, type, text, now, user_id, None, None)
        try:
            self.audit.append(
                user_id,
                Action.STOP,
                object_type=scope,
                object_id=_object_id(stop),
                details={**_details(stop), "reason": text},
            )
        except BaseException:
            # Never an unrecorded stop: the table and the log agree, or neither has it.
            with self.engine.begin() as conn:
                conn.execute(delete(StopRecord).where(StopRecord.id == stop.id))
            raise
        self._invalidate()
        return stop

    def lift(self, stop_id: int, user_id: str) -> Stop:
        """End a stop; inference resumes within `REFRESH_S` in every process."""
        now = self._now()
        try:
            with self.engine.begin() as conn:
                r = conn.execute(select(*StopRecord.__table__.c).where(StopRecord.id == stop_id)).first()
                if r is None:
                    raise StopError(f"stop {stop_id} does not exist; list them with GET /api/stops")
                if r.lifted_at is not None:
                    raise StopError(
                        f"stop {stop_id} was already lifted at {r.lifted_at.strftime('%Y-%m-%d %H:%M:%S UTC')}"
                    )
                done = conn.execute(
                    update(StopRecord)
                    .where(StopRecord.id == stop_id, StopRecord.lifted_at.is_(None))
                    .values(lifted_at=now, lifted_by=user_id)
                ).rowcount
                if done != 1:  # lifted by someone else between the read and the write
                    raise StopError(f"stop {stop_id} was lifted meanwhile; list them with GET /api/stops")
        except LanterneError:
            raise
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        # The audit log takes its own write lock, so it is written after our commit (on SQLite,
        # inside it would wait for ourselves); a refused record puts the stop back.
        try:
            self.audit.append(
                user_id,
                Action.RESUME,
                object_type=r.scope,
                object_id=_object_id(_row(r)),
                details=_details(_row(r)),
            )
        except BaseException:
            with self.engine.begin() as conn:
                conn.execute(
                    update(StopRecord).where(StopRecord.id == stop_id).values(lifted_at=None, lifted_by=None)
                )
            raise
        self._invalidate()
        lifted = _row(r)
        return Stop(
            lifted.id, lifted.scope, lifted.camera, lifted.type, lifted.reason,
            lifted.started_at, lifted.started_by, now, user_id,
        )  # fmt: skip

    # --- asking ---------------------------------------------------------------------------

    def get(self, stop_id: int) -> Stop | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(*StopRecord.__table__.c).where(StopRecord.id == stop_id)).first()
        return _row(r) if r is not None else None

    def history(self, limit: int = 100) -> list[Stop]:
        """The latest stops, lifted ones included, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(*StopRecord.__table__.c).order_by(StopRecord.id.desc()).limit(limit))
            return [_row(r) for r in rows]

    def active(self) -> list[Stop]:
        """Active stops read from the database now (not from the cache)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*StopRecord.__table__.c).where(StopRecord.lifted_at.is_(None)).order_by(StopRecord.id)
            )
            return [_row(r) for r in rows]

    def stopped(self, camera: str, type: EventType | str) -> bool:
        """Whether `type` must not run on `camera` now: a detector, camera or site stop covers it.
        Answered from the cached snapshot (at most `REFRESH_S` old)."""
        kind = EventType(type)
        return any(s.covers(camera, kind) for s in self._current())

    def inference_stopped(self, camera: str) -> bool:
        """Whether all inference on `camera` must stop now (a camera or site stop); the pipeline
        can then skip the detectors for the frame altogether."""
        return any(s.scope != "detector" and s.covers(camera) for s in self._current())

    def covering(self, camera: str) -> list[Stop]:
        """Active stops that concern `camera` in any way (for the console's camera states)."""
        return [s for s in self._current() if s.scope == "site" or s.camera == camera]

    # --- cache ----------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes (e.g. datetime.now(UTC))")
        return now.astimezone(UTC)

    def _invalidate(self) -> None:
        with self._lock:
            self._fetched_at = None

    def changed(self) -> None:
        """Another process placed or lifted a stop: the next question reads the store."""
        self._invalidate()

    def _current(self) -> tuple[Stop, ...]:
        now = self._now()
        with self._lock:
            fresh = self._fetched_at is not None and timedelta(0) <= now - self._fetched_at < self.refresh
            if fresh:
                return self._snapshot
        # Read outside the lock: a slow database delays this caller, not every thread asking.
        snapshot = tuple(self.active())
        with self._lock:
            self._snapshot, self._fetched_at = snapshot, now
        return snapshot
