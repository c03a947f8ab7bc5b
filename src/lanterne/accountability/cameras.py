"""Where each camera stands, for the camera map: whether it is analysing, and its latest alerts.

A camera's state, most urgent first:
- `stopped`: a supervisor's camera or site stop covers it (detector stops are listed in
  `stopped_types` and leave the rest of the camera running);
- `suspended`: at least one of its detectors suspended itself or was suspended (HO-04);
- `offline`: its health row (below) says its worker failed, ended or has had no frame for a while
  (a live stream reconnecting), or that row has not been
  rewritten for `HEALTH_STALE_AFTER` (the runner is gone: a stale row must not vouch for the
  camera); without a health row, the store holds neither a count bucket nor an event from it in
  the last `OFFLINE_AFTER` (a running worker writes a count bucket every minute even when nothing
  happens, so three minutes of silence means the worker or the stream is down);
- `lagging`: the worker cannot keep up with real time: it sheds analysis rate, drops frames, or
  is more than `LAGGING_AFTER_SECONDS` behind;
- `running` otherwise.

The health rows are written by `lanterne run` (`record_health`), one per camera every few
seconds, and read here from the console's process: the runner and the console share only the
store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from lanterne.accountability.alerts import Alert, list_alerts
from lanterne.accountability.stops import Stops
from lanterne.accountability.suspension import Suspensions
from lanterne.config import Camera
from lanterne.store.db import transaction
from lanterne.store.tables import CameraHealthRecord, EventRecord, ZoneCountRecord

OFFLINE_AFTER = timedelta(minutes=3)
RECENT_ALERTS = 5
HEALTH_STALE_AFTER = timedelta(seconds=30)
"""A health row older than this was left by a runner that stopped or hung: the runner rewrites
every camera's row every few seconds (`lanterne.runtime.runner.HEALTH_SECONDS`), so six missed
writes is not a slow disk."""
LAGGING_AFTER_SECONDS = 2.0
"""Lag beyond which a camera shows as lagging even before it sheds rate: the runner sheds at
this lag too (`lanterne.runtime.runner.LAG_SHED_SECONDS`)."""
NOT_ANALYSING = ("failed", "finished", "stopped", "stalled")
"""Health states in which the camera is not being analysed: it shows offline."""


@dataclass(frozen=True, slots=True)
class CameraHealth:
    """How one camera's worker keeps up with real time, as the runner last wrote it."""

    camera: str
    state: str
    """One of `lanterne.store.tables.HEALTH_STATES`."""
    lag_seconds: float | None
    """Wall time since its stream opened minus stream time analysed; None for an unpaced file."""
    analysis_fps: float
    configured_fps: float
    frames_dropped: int
    restarts: int
    last_error: str | None
    updated_at: datetime
    worker: str | None = None
    """The worker that runs the camera (`lanterne worker --id`); None for `lanterne run`."""

    @property
    def shed(self) -> bool:
        """Analysing below the configured rate to keep up."""
        return self.analysis_fps < self.configured_fps - 1e-9

    @property
    def lagging(self) -> bool:
        return (
            self.shed
            or self.state in ("shedding", "dropping")
            or (self.lag_seconds is not None and self.lag_seconds > LAGGING_AFTER_SECONDS)
        )

    def stale(self, now: datetime) -> bool:
        return now - self.updated_at > HEALTH_STALE_AFTER


def record_health(engine: Engine, rows: list[CameraHealth], *, final: bool = False) -> None:
    """Write every camera's row in one transaction, replacing the previous ones. `final`: a
    process's last word on cameras it stops; it does not replace a row another worker has
    written since (the camera's new owner after a handover)."""
    if not rows:
        return
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    base = insert(CameraHealthRecord)
    columns = [c.name for c in CameraHealthRecord.__table__.columns if c.name != "camera"]
    table = CameraHealthRecord.__table__
    stmt = base.on_conflict_do_update(
        index_elements=["camera"],
        set_={c: base.excluded[c] for c in columns},
        where=(table.c.worker.is_(None) | (table.c.worker == base.excluded.worker) if final else None),
    )
    values = [
        {
            "camera": r.camera,
            "state": r.state,
            "lag_seconds": r.lag_seconds,
            "analysis_fps": float(r.analysis_fps),
            "configured_fps": float(r.configured_fps),
            "frames_dropped": int(r.frames_dropped),
            "restarts": int(r.restarts),
            "last_error": None if r.last_error is None else r.last_error[:500],
            "updated_at": r.updated_at.astimezone(UTC),
            "worker": r.worker,
        }
        for r in rows
    ]
    with transaction(engine) as conn:
        conn.execute(stmt, values)


def camera_health(engine: Engine, camera: str) -> CameraHealth | None:
    """The camera's health row, if a runner ever wrote one."""
    with engine.connect() as conn:
        r = conn.execute(select(CameraHealthRecord).where(CameraHealthRecord.camera == camera)).first()
    if r is None:
        return None
    return CameraHealth(
        camera=r.camera,
        state=r.state,
        lag_seconds=r.lag_seconds,
        analysis_fps=r.analysis_fps,
        configured_fps=r.configured_fps,
        frames_dropped=r.frames_dropped,
        restarts=r.restarts,
        last_error=r.last_error,
        updated_at=r.updated_at,
        worker=r.worker,
    )


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera: Camera
    state: str
    """`stopped`, `suspended`, `offline`, `lagging` or `running` (see the module docstring)."""
    stopped_types: list[str]
    suspended_types: list[str]
    last_seen: datetime | None
    recent_alerts: list[Alert]
    """The `RECENT_ALERTS` newest alerts, newest first."""
    health: CameraHealth | None = None
    """The runner's last health row when it is fresh; None when there is none or it is stale (a
    stale row says nothing about the camera now)."""
    health_stale: bool = False


def last_seen(engine: Engine, camera: str, now: datetime) -> datetime | None:
    """The latest sign of life from the camera's worker within a day (older means offline
    anyway; bounding the window keeps both queries on their indexes)."""
    since = now - timedelta(days=1)
    with engine.connect() as conn:
        event_end = conn.execute(
            select(func.max(EventRecord.end_ts)).where(
                EventRecord.camera == camera, EventRecord.start_ts >= since
            )
        ).scalar()
        bucket = conn.execute(
            select(func.max(ZoneCountRecord.bucket_start)).where(
                ZoneCountRecord.bucket_start >= since, ZoneCountRecord.camera == camera
            )
        ).scalar()
    seen = [t for t in (event_end, bucket) if t is not None]
    return max(seen) if seen else None


def camera_status(
    engine: Engine, camera: Camera, stops: Stops, suspensions: Suspensions, now: datetime
) -> CameraStatus:
    """Where `camera` stands at `now`."""
    now = now.astimezone(UTC)
    covering = stops.covering(camera.id)
    halted = any(s.scope != "detector" for s in covering)
    stopped_types = sorted(str(s.type) for s in covering if s.scope == "detector")
    suspended = sorted(str(t) for t in suspensions.suspended_types(camera.id))
    seen = last_seen(engine, camera.id, now)
    health = camera_health(engine, camera.id)
    stale = health is not None and health.stale(now)
    fresh = None if health is None or stale else health
    if fresh is not None:
        seen = max(seen, fresh.updated_at) if seen is not None else fresh.updated_at
    if halted:
        state = "stopped"
    elif suspended:
        state = "suspended"
    elif stale:
        state = "offline"
    elif fresh is not None:
        state = "offline" if fresh.state in NOT_ANALYSING else "lagging" if fresh.lagging else "running"
    elif seen is None or now - seen > OFFLINE_AFTER:
        state = "offline"
    else:
        state = "running"
    return CameraStatus(
        camera=camera,
        state=state,
        stopped_types=stopped_types,
        suspended_types=suspended,
        last_seen=seen,
        recent_alerts=list_alerts(engine, camera=camera.id, limit=RECENT_ALERTS),
        health=fresh,
        health_stale=stale,
    )
