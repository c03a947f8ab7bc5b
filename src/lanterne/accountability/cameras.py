"""Where each camera stands, for the camera map: whether it is analysing, and its latest alerts.

A camera's state, most urgent first:
- `stopped`: a supervisor's camera or site stop covers it (detector stops are listed in
  `stopped_types` and leave the rest of the camera running);
- `suspended`: at least one of its detectors suspended itself or was suspended (HO-04);
- `offline`: the store holds neither a count bucket nor an event from it in the last
  `OFFLINE_AFTER` (a running worker writes a count bucket every minute even when nothing happens,
  so three minutes of silence means the worker or the stream is down);
- `running` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from lanterne.accountability.alerts import Alert, list_alerts
from lanterne.accountability.stops import Stops
from lanterne.accountability.suspension import Suspensions
from lanterne.config import Camera
from lanterne.store.tables import EventRecord, ZoneCountRecord

OFFLINE_AFTER = timedelta(minutes=3)
RECENT_ALERTS = 5


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera: Camera
    state: str
    """`stopped`, `suspended`, `offline` or `running` (see the module docstring)."""
    stopped_types: list[str]
    suspended_types: list[str]
    last_seen: datetime | None
    recent_alerts: list[Alert]
    """The `RECENT_ALERTS` newest alerts, newest first."""


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
    if halted:
        state = "stopped"
    elif suspended:
        state = "suspended"
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
    )
