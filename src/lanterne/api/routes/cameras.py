"""The camera map: where each camera is, whether it is analysing, and its latest alerts.

A camera's state, most urgent first:
- `stopped`: a supervisor's camera or site stop covers it (detector stops are listed in
  `stopped_types` and leave the rest of the camera running);
- `suspended`: at least one of its detectors suspended itself or was suspended (HO-04);
- `offline`: the store holds neither a count bucket nor an event from it in the last
  `OFFLINE_AFTER` (a running worker writes a count bucket every minute even when nothing happens,
  so three minutes of silence means the worker or the stream is down);
- `running` otherwise.

Leaflet is served by the app itself from `console/node_modules/leaflet/dist` (installed by
`scripts/bootstrap`), never from a CDN: the console must work on a closed network, and the strict
content-security policy would refuse it anyway.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from lanterne.accountability.alerts import list_alerts
from lanterne.accountability.suspension import Suspensions
from lanterne.api.deps import CurrentUser, LoggedIn, audit_log, require_roles
from lanterne.api.routes.stops import stops_for
from lanterne.config import Config
from lanterne.store.tables import EventRecord, ZoneCountRecord

OFFLINE_AFTER = timedelta(minutes=3)
RECENT_ALERTS = 5
STATIC = Path(__file__).resolve().parents[1] / "static" / "console"
LEAFLET_DIST = Path(__file__).resolve().parents[4] / "console" / "node_modules" / "leaflet" / "dist"
"""The repository's `console/` npm project; absent in a wheel installed without it, and the map
page then says so instead of failing silently."""


class RecentAlert(BaseModel):
    id: str
    type: str
    start: datetime
    state: str


class CameraOut(BaseModel):
    id: str
    name: str
    lat: float
    lon: float
    state: str
    stopped_types: list[str]
    suspended_types: list[str]
    last_seen: datetime | None
    recent_alerts: list[RecentAlert]


def _static(name: str, media_type: str) -> Response:
    # The page's script and styles come from the `/static` mount (`/static/console/map.js`).
    return Response((STATIC / name).read_bytes(), media_type=media_type)


Watcher = Annotated[CurrentUser, Depends(require_roles("operator", "supervisor"))]


def router(cfg: Config, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(tags=["map"])
    leaflet_dist = LEAFLET_DIST

    def last_seen(request: Request, camera: str, now: datetime) -> datetime | None:
        """The latest sign of life from the camera's worker within a day (older means offline
        anyway; bounding the window keeps both queries on their indexes)."""
        since = now - timedelta(days=1)
        with request.app.state.store.engine.connect() as conn:
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

    @api.get("/api/cameras", summary="Cameras in your scope with their state and latest alerts")
    def cameras(request: Request, user: Watcher) -> list[CameraOut]:
        now = clock().astimezone(UTC)
        engine = request.app.state.store.engine
        stops = stops_for(request, clock)
        suspensions = Suspensions(engine, audit_log(request), cfg.suspension, clock)
        out: list[CameraOut] = []
        for cam in cfg.cameras:
            if not user.sees(cam.id):
                continue
            covering = stops.covering(cam.id)
            halted = any(s.scope != "detector" for s in covering)
            stopped_types = sorted(str(s.type) for s in covering if s.scope == "detector")
            suspended = sorted(str(t) for t in suspensions.suspended_types(cam.id))
            seen = last_seen(request, cam.id, now)
            if halted:
                state = "stopped"
            elif suspended:
                state = "suspended"
            elif seen is None or now - seen > OFFLINE_AFTER:
                state = "offline"
            else:
                state = "running"
            alerts = list_alerts(engine, camera=cam.id, limit=RECENT_ALERTS)
            out.append(
                CameraOut(
                    id=cam.id,
                    name=cam.name or cam.id,
                    lat=cam.location.lat,
                    lon=cam.location.lon,
                    state=state,
                    stopped_types=stopped_types,
                    suspended_types=suspended,
                    last_seen=seen,
                    recent_alerts=[
                        RecentAlert(id=a.id, type=str(a.type), start=a.start, state=str(a.state))
                        for a in alerts
                    ],
                )
            )
        return out

    @api.get("/api/boundaries", summary="The city's boundaries (GeoJSON), drawn when there are no map tiles")
    def boundaries(_user: LoggedIn) -> Response:
        path = cfg.console.boundaries
        if path is None:
            raise HTTPException(404, "no boundaries configured; set console.boundaries to a GeoJSON file")
        try:
            body = Path(path).read_bytes()
        except OSError:
            raise HTTPException(
                404, f"boundaries file {Path(path).name} is missing; fix console.boundaries"
            ) from None
        return Response(body, media_type="application/geo+json")

    @api.get("/api/map-settings", summary="How the map draws its base layer")
    def map_settings(_user: LoggedIn) -> dict[str, object]:
        return {
            "tile_url": cfg.console.tile_url,
            "boundaries": cfg.console.boundaries is not None,
            "leaflet": (leaflet_dist / "leaflet.js").is_file(),
        }

    @api.get("/console/map", response_class=HTMLResponse, include_in_schema=False)
    def map_page() -> Response:
        # The page itself holds no data: its script asks the API, which checks the session.
        return _static("map.html", "text/html; charset=utf-8")

    @api.get("/static/vendor/leaflet/{path:path}", include_in_schema=False)
    def leaflet(path: str) -> Response:
        if not leaflet_dist.is_dir():
            raise HTTPException(
                404, "Leaflet is not installed; run scripts/bootstrap (npm ci --prefix console)"
            )
        root = leaflet_dist.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise HTTPException(404, "not found")
        media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(target, media_type=media_type)

    return api
