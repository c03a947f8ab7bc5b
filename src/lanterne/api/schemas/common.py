"""Models every area shares: the error body."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel


class Problem(BaseModel):
    """Every refusal's body: one sentence saying what to do, or FastAPI's list of validation
    errors (where and why each value was refused)."""

    detail: str | list[dict[str, Any]]


class Message(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (400, 401, 403, 404, 409, 422, 429)
}
"""The refusals a console route may answer, documented with their body so that a client (and the
schema fuzzing) knows their shape."""


class Feature(BaseModel):
    """A GeoJSON feature (RFC 7946 §3.2); geometry and properties as the source file has them."""

    type: Literal["Feature"]
    geometry: dict[str, Any] | None
    properties: dict[str, Any] | None
    id: str | int | None = None


class FeatureCollection(BaseModel):
    """A GeoJSON feature collection (RFC 7946 §3.3): the public camera layer, the city outline."""

    type: Literal["FeatureCollection"]
    features: list[Feature]


class GeoJSONResponse(JSONResponse):
    """GeoJSON's media type (RFC 7946 §12): GIS tools and browsers' viewers recognise it by it."""

    media_type = "application/geo+json"


def iso_utc(ts: datetime) -> str:
    """A time as every console answer writes it: UTC, ISO 8601, with `Z`."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
