"""The public transparency notice (TR-01): open to anyone, no login. The same documents as
`lanterne transparency export` writes, rendered from the live database on each request."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from lanterne.accountability.transparency.data import PublicData, public_data
from lanterne.accountability.transparency.render import (
    SERVED,
    render_geojson,
    render_html,
    render_json,
    stylesheet,
)
from lanterne.api.deps import ConfigDep, EngineDep, Now
from lanterne.api.schemas.common import FeatureCollection, GeoJSONResponse

router = APIRouter(tags=["public"])


@router.get("/public", response_class=HTMLResponse, summary="Public notice (HTML)")
def public_page(cfg: ConfigDep, engine: EngineDep, now: Now) -> HTMLResponse:
    return HTMLResponse(render_html(public_data(cfg, engine, now), SERVED))


@router.get("/public/style.css", include_in_schema=False)
def public_css() -> Response:
    return Response(stylesheet(), media_type="text/css; charset=utf-8")


# The two documents below are served as `render_json`/`render_geojson` write them (sorted keys,
# indented): the same bytes as the exported files, so a published copy can be compared with them.
# Their response models document the shape (and the schema fuzzing checks the bytes against it);
# FastAPI does not re-serialise a returned Response.
@router.get(
    "/public/transparency.json",
    summary="Public notice (JSON)",
    response_model=PublicData,
)
def public_json(cfg: ConfigDep, engine: EngineDep, now: Now) -> Response:
    return Response(render_json(public_data(cfg, engine, now)), media_type="application/json")


@router.get(
    "/public/cameras.geojson",
    summary="Cameras as GeoJSON with OpenStreetMap tags",
    response_model=FeatureCollection,
    response_class=GeoJSONResponse,
)
def public_geojson(cfg: ConfigDep, engine: EngineDep, now: Now) -> Response:
    return Response(render_geojson(public_data(cfg, engine, now)), media_type="application/geo+json")
