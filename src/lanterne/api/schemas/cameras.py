"""The camera map."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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


class MapSettings(BaseModel):
    """How the map draws its base layer."""

    tile_url: str | None
    """The city's tile server, if any; else the map draws `boundaries`."""
    boundaries: bool
    leaflet: bool
    """Whether the package ships Leaflet (a broken install would not)."""
