"""Self-suspension: a detector that floods operators or is mostly wrong switches itself off on a
camera until a supervisor has reviewed it (HO-04, PM-05).

Human control only means something if the humans can keep up. A detector raising more alerts in
an hour than `suspension.max_alerts_per_hour` on one camera (a reflection flickering all evening, a
zone drawn over a pavement) trains operators to click alerts away unseen; one whose operators
dismissed most of its last `suspension.last_decisions` alerts (precision below
`suspension.precision_floor`) mostly costs attention. Either way it stops on that camera, the
others carry on, and only a supervisor's review, recorded with a note, turns it back on. A
supervisor may also suspend a detector by hand. Every start and lift is in the audit log
(`SUSPEND`, `RESUME`) and in the `suspensions` table, which the public page can show.

After a lift, the counts start again from the lift: alerts and decisions from before the review
were what the review was about, and counting them again would suspend the detector at once.

The pipeline asks `allowed(camera)(type, t)` for every candidate event; the answer comes from a set
cached for `CACHE_S` seconds, and the database is only asked to `check` again every `CHECK_S`
seconds, so a frame costs a set lookup.

>>> from datetime import UTC, datetime
>>> from lanterne.audit import AuditLog
>>> from lanterne.config.schema import SuspensionSettings
>>> from lanterne.store import Store
>>> from lanterne.core.types import EventType
>>> store = Store.open("sqlite://")
>>> s = Suspensions(store.engine, AuditLog(store.engine), SuspensionSettings())
>>> s.check("cam1", EventType.FIRE, datetime.now(UTC)) is None
True
>>> sid = s.suspend("cam1", EventType.FIRE, "supervisor1", "lens being replaced").id
>>> s.active("cam1", EventType.FIRE), s.allowed("cam1")(EventType.FIRE, 0.0)
(True, False)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.config.schema import SuspensionSettings
from lanterne.core.errors import LanterneError
from lanterne.core.types import EventType
from lanterne.store.db import locked_write
from lanterne.store.tables import AlertStateRecord, EventRecord, SuspensionRecord

log = logging.getLogger(__name__)

CACHE_S = 5.0
"""How stale the pipeline's view of suspensions may be: a supervisor's suspension or lift takes
effect within this many seconds, and a frame never waits for the database."""
CHECK_S = 30.0
"""How often the pipeline re-measures rate and precision on a camera. A burst is caught within
this delay; measuring per frame would cost a query per frame for a figure that changes slowly."""
WINDOW = timedelta(hours=1)
CAUSES: tuple[str, ...] = ("alert_rate", "precision_floor", "supervisor")


class SuspensionError(LanterneError):
    """A suspension that cannot be placed or lifted as asked."""


@dataclass(frozen=True, slots=True)
class Suspension:
    id: int
    camera: str
    type: EventType
    cause: str
    details: dict[str, object]
    """The measurement that triggered it (alerts in the hour, precision over the decisions) or
    the supervisor's note: what the review starts from."""
    started_at: datetime
    started_by: str
    lifted_at: datetime | None
    lifted_by: str | None
    lift_note: str | None

    @property
    def active(self) -> bool:
        return self.lifted_at is None


def _row(r: Any) -> Suspension:
    return Suspension(
        id=int(r.id),
        camera=r.camera,
        type=EventType(r.type),
        cause=r.cause,
        details=dict(r.details or {}),
        started_at=r.started_at,
        started_by=r.started_by,
        lifted_at=r.lifted_at,
        lifted_by=r.lifted_by,
        lift_note=r.lift_note,
    )


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(UTC)


def _note(note: str | None, what: str) -> str:
    text = (note or "").strip()
    if not text:
        raise SuspensionError(f"{what} needs a note (what was reviewed and why); pass --note")
    if len(text) > 1000:
        raise SuspensionError(f"the note is {len(text)} characters long; shorten it to 1000")
    return text


class Suspensions:
    """Suspensions of detectors per camera: measured, placed, lifted and asked about."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        settings: SuspensionSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.settings = settings
        self.clock = clock
        self._views: dict[str, _CameraView] = {}
        self._views_lock = threading.Lock()

    # --- transactions ---------------------------------------------------------------------

    def _locked(self) -> AbstractContextManager[Connection]:
        """One writer at a time, so two workers measuring the same camera cannot both suspend it."""
        return locked_write(self.engine, "suspensions")

    # --- reading --------------------------------------------------------------------------

    def _active_row(self, conn: Connection, camera: str, type: EventType) -> Any:
        return conn.execute(
            select(*SuspensionRecord.__table__.c)
            .where(
                SuspensionRecord.camera == camera,
                SuspensionRecord.type == str(type),
                SuspensionRecord.lifted_at.is_(None),
            )
            .order_by(SuspensionRecord.id)
            .limit(1)
        ).first()

    def active(self, camera: str, type: EventType) -> bool:
        """Whether the detector is suspended on the camera now (read from the database)."""
        with self.engine.connect() as conn:
            return self._active_row(conn, camera, EventType(type)) is not None

    def suspended_types(self, camera: str) -> frozenset[EventType]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(SuspensionRecord.type).where(
                    SuspensionRecord.camera == camera, SuspensionRecord.lifted_at.is_(None)
                )
            )
            return frozenset(EventType(r.type) for r in rows)

    def get(self, suspension_id: int) -> Suspension | None:
        with self.engine.connect() as conn:
            r = conn.execute(
                select(*SuspensionRecord.__table__.c).where(SuspensionRecord.id == suspension_id)
            ).first()
        return _row(r) if r is not None else None

    def list(self, *, active_only: bool = False) -> list[Suspension]:
        q = select(*SuspensionRecord.__table__.c).order_by(SuspensionRecord.id)
        if active_only:
            q = q.where(SuspensionRecord.lifted_at.is_(None))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    # --- measuring ------------------------------------------------------------------------

    def _since_lift(self, conn: Connection, camera: str, type: EventType) -> datetime | None:
        """When the last review ended: nothing before it counts against the detector again."""
        return conn.execute(
            select(func.max(SuspensionRecord.lifted_at)).where(
                SuspensionRecord.camera == camera, SuspensionRecord.type == str(type)
            )
        ).scalar()

    def _measure(
        self, conn: Connection, camera: str, type: EventType, now: datetime
    ) -> tuple[str, dict[str, object]] | None:
        lifted = self._since_lift(conn, camera, type)
        since = now - WINDOW
        if lifted is not None and lifted > since:
            since = lifted
        n_alerts = conn.execute(
            select(func.count())
            .select_from(EventRecord)
            .where(
                EventRecord.mode == "alerts",
                EventRecord.camera == camera,
                EventRecord.type == str(type),
                EventRecord.start_ts > since,
                EventRecord.start_ts <= now,
            )
        ).scalar_one()
        limit = self.settings.max_alerts_per_hour
        if n_alerts > limit:
            return "alert_rate", {
                "alerts": int(n_alerts),
                "since": since.isoformat(),
                "max_alerts_per_hour": limit,
            }
        n = self.settings.last_decisions
        q = (
            select(AlertStateRecord.state)
            .join(EventRecord, EventRecord.id == AlertStateRecord.event_id)
            .where(
                EventRecord.mode == "alerts",
                EventRecord.camera == camera,
                EventRecord.type == str(type),
                AlertStateRecord.state.in_(("confirmed", "dismissed")),
                AlertStateRecord.ts <= now,
            )
            .order_by(AlertStateRecord.ts.desc(), AlertStateRecord.id.desc())
            .limit(n)
        )
        if lifted is not None:
            q = q.where(AlertStateRecord.ts > lifted)
        states = [r.state for r in conn.execute(q)]
        # Fewer than N decisions say too little: three dismissals in a row are bad luck, not a trend.
        if len(states) < n:
            return None
        confirmed = states.count("confirmed")
        precision = confirmed / len(states)
        if precision < self.settings.precision_floor:
            return "precision_floor", {
                "decisions": len(states),
                "confirmed": confirmed,
                "precision": round(precision, 4),
                "precision_floor": self.settings.precision_floor,
            }
        return None

    def check(self, camera: str, type: EventType, now: datetime) -> Suspension | None:
        """Measure the detector on the camera and suspend it when it floods or falls below the
        floor. Returns the new suspension, or None (also when it was already suspended)."""
        now = _aware(now)
        type = EventType(type)
        # Measured first without the write lock: almost every check finds nothing, and on SQLite
        # the lock would make every camera's event writes wait for it every CHECK_S.
        with self.engine.connect() as conn:
            if (
                self._active_row(conn, camera, type) is not None
                or self._measure(conn, camera, type, now) is None
            ):
                return None
        with self._locked() as conn:
            # Again under the lock: another worker or a supervisor may have acted in between.
            if self._active_row(conn, camera, type) is not None:
                return None
            found = self._measure(conn, camera, type, now)
            if found is None:
                return None
            cause, details = found
            created = self._insert(conn, camera, type, cause, details, now, "system")
        self._record_start(created)
        return created

    def check_camera(self, camera: str, now: datetime) -> list[Suspension]:
        """`check` for every event type on the camera (the pipeline's periodic call)."""
        return [s for t in EventType if (s := self.check(camera, t, now)) is not None]

    # --- changing -------------------------------------------------------------------------

    def _insert(
        self,
        conn: Connection,
        camera: str,
        type: EventType,
        cause: str,
        details: dict[str, object],
        now: datetime,
        user_id: str,
    ) -> Suspension:
        sid = conn.execute(
            insert(SuspensionRecord)
            .values(
                camera=camera,
                type=str(type),
                cause=cause,
                details=details,
                started_at=now,
                started_by=user_id,
            )
            .returning(SuspensionRecord.id)
        ).scalar_one()
        return Suspension(int(sid), camera, type, cause, details, now, user_id, None, None, None)

    def _record_start(self, s: Suspension) -> None:
        # The suspension stands even if the audit log refuses the record: stopping a detector is the
        # safe side, and the row in `suspensions` still says what happened. The error is raised so
        # the failure is seen (the pipeline's `allowed` logs it and goes on).
        self.audit.append(
            s.started_by,
            Action.SUSPEND,
            object_type="detector",
            object_id=f"{s.camera}/{s.type}"[:128],
            details={
                "suspension_id": s.id,
                "camera": s.camera,
                "type": str(s.type),
                "cause": s.cause,
                **s.details,
            },
        )
        log.warning("detector %s suspended on camera %s (%s)", s.type, s.camera, s.cause)
        self._invalidate(s.camera)

    def suspend(self, camera: str, type: EventType, user_id: str, note: str) -> Suspension:
        """A supervisor switches the detector off on the camera, with the reason in `note`."""
        text = _note(note, "a suspension")
        type = EventType(type)
        if not camera.strip():
            raise SuspensionError("a suspension needs a camera id; pass CAMERA")
        with self._locked() as conn:
            current = self._active_row(conn, camera, type)
            if current is not None:
                raise SuspensionError(
                    f"{type} is already suspended on camera {camera!r} (suspension {current.id}); "
                    "see `lanterne suspensions list`"
                )
            created = self._insert(
                conn, camera, type, "supervisor", {"note": text}, _aware(self.clock()), user_id
            )
        self._record_start(created)
        return created

    def lift(self, suspension_id: int, user_id: str, note: str) -> Suspension:
        """End a suspension after review; `note` records what was reviewed and decided.

        Recorded before it takes effect: if the audit log refuses the record, the lift is undone.
        """
        text = _note(note, "lifting a suspension")
        now = _aware(self.clock())
        with self._locked() as conn:
            r = conn.execute(
                select(*SuspensionRecord.__table__.c).where(SuspensionRecord.id == suspension_id)
            ).first()
            if r is None:
                raise SuspensionError(
                    f"suspension {suspension_id} does not exist; see `lanterne suspensions list`"
                )
            if r.lifted_at is not None:
                raise SuspensionError(
                    f"suspension {suspension_id} was already lifted by {r.lifted_by} at "
                    f"{r.lifted_at.strftime('%Y-%m-%d %H:%M:%S UTC')}"
                )
            conn.execute(
                update(SuspensionRecord)
                .where(SuspensionRecord.id == suspension_id)
                .values(lifted_at=now, lifted_by=user_id, lift_note=text)
            )
        lifted = _row(r)
        lifted = Suspension(
            lifted.id, lifted.camera, lifted.type, lifted.cause, lifted.details,
            lifted.started_at, lifted.started_by, now, user_id, text,
        )  # fmt: skip
        try:
            self.audit.append(
                user_id,
                Action.RESUME,
                object_type="detector",
                object_id=f"{lifted.camera}/{lifted.type}"[:128],
                details={
                    "suspension_id": lifted.id,
                    "camera": lifted.camera,
                    "type": str(lifted.type),
                    "cause": lifted.cause,
                    "note": text,
                },
            )
        except BaseException:
            with self.engine.begin() as conn:
                conn.execute(
                    update(SuspensionRecord)
                    .where(SuspensionRecord.id == suspension_id)
                    .values(lifted_at=None, lifted_by=None, lift_note=None)
                )
            raise
        self._invalidate(lifted.camera)
        return lifted

    # --- the pipeline's view --------------------------------------------------------------

    def _invalidate(self, camera: str) -> None:
        view = self._views.get(camera)
        if view is not None:
            view.expire()

    def changed(self) -> None:
        """Another process suspended or lifted something (a worker heard the control bell): every
        camera reads the store at its next frame."""
        with self._views_lock:
            views = list(self._views.values())
        for view in views:
            view.expire()

    def allowed(self, camera_id: str) -> Callable[[EventType, float], bool]:
        """`fn(type, t_stream) -> bool`: False while the detector is suspended on the camera.

        Same shape as `AlertingGate.allowed`, so the runner composes them:
        `gate.allowed(t, ts) and not_suspended(t, ts)`. `t_stream` is accepted for that symmetry
        and ignored: suspensions follow the wall clock (`clock`), which is what a supervisor sees.
        """
        with self._views_lock:
            view = self._views.get(camera_id)
            if view is None:
                view = self._views[camera_id] = _CameraView(self, camera_id)
        return view.allowed


class _CameraView:
    """The cached answer for one camera. Only its own worker thread calls `allowed`; a lift or a
    suspension made in this process expires it at once, one made elsewhere within `CACHE_S`."""

    def __init__(self, owner: Suspensions, camera: str) -> None:
        self.owner = owner
        self.camera = camera
        self.suspended: frozenset[EventType] = frozenset()
        self.read_at: datetime | None = None
        self.checked_at: datetime | None = None

    def expire(self) -> None:
        self.read_at = None

    def allowed(self, event_type: EventType, t_stream: float = 0.0) -> bool:
        now = self.owner.clock()
        if self.checked_at is None or (now - self.checked_at).total_seconds() >= CHECK_S:
            self.checked_at = now
            try:
                self.owner.check_camera(self.camera, now)
            except (LanterneError, SQLAlchemyError) as exc:
                # A database or audit failure must not stop the camera's statistics; the next
                # check tries again, and what is already suspended stays suspended below.
                log.error("suspension check on camera %s failed: %s", self.camera, exc)
            self.read_at = None
        if self.read_at is None or (now - self.read_at).total_seconds() >= CACHE_S:
            try:
                self.suspended = self.owner.suspended_types(self.camera)
            except SQLAlchemyError as exc:
                # Keep the last known set: a detector suspended a moment ago stays suspended.
                log.error("reading suspensions of camera %s failed: %s", self.camera, type(exc).__name__)
            self.read_at = now
        return event_type not in self.suspended
