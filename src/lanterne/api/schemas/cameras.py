"""The camera map."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class RecentAlert(BaseModel):
    id: str
    type: str
    start: datetime
    state: str


class CameraHealthOut(BaseModel):
    """How the camera's worker keeps up with real time, from the runner's last health row (only
    when that row is fresh: a stale one says nothing about now)."""

    state: str
    """The worker's state: running, shedding, dropping, stalled, starting, failed, finished, stopped."""
    lag_seconds: float | None
    """Seconds behind real time; null for a file read unpaced."""
    analysis_fps: float
    configured_fps: float
    shed: bool
    """Analysing below the configured rate to keep up."""
    frames_dropped: int
    restarts: int
    last_error: str | None
    updated_at: datetime
    worker: str | None = None
    """The worker that runs the camera (`lanterne worker --id`); null for `lanterne run`."""


class CameraOut(BaseModel):
    id: str
    name: str
    lat: float
    lon: float
    state: str
    """stopped, suspended, offline, lagging or running."""
    stopped_types: list[str]
    suspended_types: list[str]
    last_seen: datetime | None
    recent_alerts: list[RecentAlert]
    lag_seconds: float | None = None
    """Seconds behind real time; null when unknown (no fresh health row, or an unpaced file)."""
    analysis_fps: float | None = None
    """Frames analysed per second of video now; null when unknown."""
    shed: bool = False
    """Whether the camera analyses below its configured rate to keep up."""
    health: CameraHealthOut | None = None
    health_stale: bool = False
    """A health row exists but the runner has not rewritten it lately: it is not trusted."""


class MapSettings(BaseModel):
    """How the map draws its base layer."""

    tile_url: str | None
    """The city's tile server, if any; else the map draws `boundaries`."""
    boundaries: bool
    leaflet: bool
    """Whether the package ships Leaflet (a broken install would not)."""
