"""The camera map's API: where each camera is, whether it is analysing (the states are defined in
`lanterne.accountability.cameras`) and keeping up with real time (lag, analysis rate, shed or
not, from the runner's health row), its latest alerts, and how the map draws its base layer.

Leaflet is part of the package (`api/static/vendor/leaflet/`, copied from the npm package pinned in
`console/package-lock.json`) and served by the `/static` mount, never from a CDN: the console must
work on a closed network, and the strict content-security policy would refuse it anyway.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from lanterne.accountability.cameras import camera_status
from lanterne.accountability.suspension import Suspensions
from lanterne.api.deps import (
    FOOTAGE_ROLES,
    AuditDep,
    ClockDep,
    ConfigDep,
    EngineDep,
    LoggedIn,
    Now,
    RecordingReader,
    StopsDep,
)
from lanterne.api.schemas.cameras import CameraHealthOut, CameraOut, MapSettings, RecentAlert
from lanterne.api.schemas.common import ERRORS, FeatureCollection, GeoJSONResponse

LEAFLET = Path(__file__).resolve().parents[1] / "static" / "vendor" / "leaflet"
"""Leaflet's dist files as the package ships them."""

router = APIRouter(tags=["map"], responses=ERRORS)


@router.get("/api/cameras", summary="Cameras in your scope with their state and latest alerts")
def cameras(
    user: RecordingReader,
    cfg: ConfigDep,
    engine: EngineDep,
    audit: AuditDep,
    stops: StopsDep,
    clock: ClockDep,
    now: Now,
) -> list[CameraOut]:
    suspensions = Suspensions(engine, audit, cfg.suspension, clock)
    # An export officer picks a camera to export from, and sees no alerts (AC-03).
    alerts_shown = user.role in FOOTAGE_ROLES
    out: list[CameraOut] = []
    for cam in cfg.cameras:
        if not user.sees(cam.id):
            continue
        status = camera_status(engine, cam, stops, suspensions, now)
        h = status.health
        out.append(
            CameraOut(
                id=cam.id,
                name=cam.name or cam.id,
                lat=cam.location.lat,
                lon=cam.location.lon,
                state=status.state,
                stopped_types=status.stopped_types,
                suspended_types=status.suspended_types,
                last_seen=status.last_seen,
                recent_alerts=[
                    RecentAlert(id=a.id, type=str(a.type), start=a.start, state=str(a.state))
                    for a in status.recent_alerts
                    if alerts_shown
                ],
                lag_seconds=None if h is None else h.lag_seconds,
                analysis_fps=None if h is None else h.analysis_fps,
                shed=h is not None and h.shed,
                health=None
                if h is None
                else CameraHealthOut(
                    state=h.state,
                    lag_seconds=h.lag_seconds,
                    analysis_fps=h.analysis_fps,
                    configured_fps=h.configured_fps,
                    shed=h.shed,
                    frames_dropped=h.frames_dropped,
                    restarts=h.restarts,
                    last_error=h.last_error,
                    updated_at=h.updated_at,
                    worker=h.worker,
                ),
                health_stale=status.health_stale,
            )
        )
    return out


@router.get(
    "/api/boundaries",
    summary="The city's boundaries (GeoJSON), drawn when there are no map tiles",
    response_model=FeatureCollection,
    response_class=GeoJSONResponse,
)
def boundaries(_user: LoggedIn, cfg: ConfigDep) -> Response:
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


@router.get("/api/map-settings", summary="How the map draws its base layer")
def map_settings(_user: LoggedIn, cfg: ConfigDep) -> MapSettings:
    return MapSettings(
        tile_url=cfg.console.tile_url,
        boundaries=cfg.console.boundaries is not None,
        leaflet=(LEAFLET / "leaflet.js").is_file(),
    )
