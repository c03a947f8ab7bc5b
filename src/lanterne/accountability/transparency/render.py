"""The public notice in three forms (HTML for people, JSON and GeoJSON for machines), its static
export, and the publication record that lets `alerts` mode start (TR-01).

The HTML has no script at all and one stylesheet from the same origin, so it renders on an
offline network and under a `default-src 'self'` content security policy. Every value from the
configuration or the store goes through Jinja2's autoescaping: a site name is text, never markup.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from lanterne.accountability.transparency.data import PublicData, public_data
from lanterne.config import Config, config_hash
from lanterne.core.errors import ConfigError
from lanterne.core.types import EventType
from lanterne.rules import EVENT_TITLES
from lanterne.store.db import describe_failure
from lanterne.store.tables import NoticeRecord

HTML_FILE = "index.html"
CSS_FILE = "style.css"
JSON_FILE = "transparency.json"
GEOJSON_FILE = "cameras.geojson"

REASON_LABELS: dict[str, str] = {
    "reflection_or_light": "reflection or light",
    "street_furniture": "street furniture",
    "person_at_rest": "person at rest",
    "owner_nearby": "owner nearby",
    "test": "test or drill",
    "other": "other",
}

OSM_ZONE = "town"
"""OpenStreetMap's `surveillance:zone` for cameras watching a municipality's public space."""


@dataclass(frozen=True)
class Links:
    """Where the page finds its stylesheet and machine-readable twins: absolute paths when the
    console serves it, file names beside it in a static export."""

    css: str
    json: str
    geojson: str


SERVED = Links(css="/public/style.css", json="/public/transparency.json", geojson="/public/cameras.geojson")
STATIC = Links(css=CSS_FILE, json=JSON_FILE, geojson=GEOJSON_FILE)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lanterne.accountability.transparency", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["event_title"] = lambda t: EVENT_TITLES.get(EventType(t), t)
    env.filters["reason"] = lambda r: REASON_LABELS.get(r, r)
    env.filters["share"] = lambda v: "–" if v is None else f"{100 * v:.0f} %"
    env.filters["interval"] = lambda v: "–" if v is None else f"{100 * v[0]:.0f}–{100 * v[1]:.0f} %"
    env.filters["day"] = lambda iso: iso[:10] if iso else ""
    return env


def stylesheet() -> str:
    return (
        resources.files("lanterne.accountability.transparency")
        .joinpath("templates", CSS_FILE)
        .read_text("utf-8")
    )


def render_html(data: PublicData, links: Links = SERVED) -> str:
    return _env().get_template("index.html.j2").render(d=data, links=links)


def render_json(data: PublicData) -> str:
    return json.dumps(data.to_json(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def geojson(data: PublicData) -> dict[str, Any]:
    """Cameras as OpenStreetMap maps them (`man_made=surveillance`), so the layer can be compared
    with, or contributed to, the public map; Lanterne's own facts go under a `lanterne:` prefix."""
    operator = data.controller or data.site
    features = []
    for cam in data.cameras:
        props: dict[str, str] = {
            "man_made": "surveillance",
            "surveillance": "public",
            "surveillance:type": "camera",
            "surveillance:zone": OSM_ZONE,
            "operator": operator,
            "name": cam.name,
            "ref": cam.id,
            "lanterne:detectors": ";".join(cam.watched),
            "lanterne:alerting": ";".join(cam.alerting),
            "lanterne:status": cam.status,
        }
        if cam.authorisations:
            props["lanterne:authorisation"] = ";".join(a.reference for a in cam.authorisations)
        features.append(
            {
                "type": "Feature",
                "id": cam.id,
                # GeoJSON is longitude first (RFC 7946 §3.1.1).
                "geometry": {"type": "Point", "coordinates": [cam.lon, cam.lat]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def render_geojson(data: PublicData) -> str:
    return json.dumps(geojson(data), ensure_ascii=False, indent=2) + "\n"


@dataclass(frozen=True)
class Publication:
    notice_id: int
    out_dir: Path
    config_sha256: str
    content_sha256: str
    files: tuple[Path, ...]


def export(cfg: Config, engine: Engine, out_dir: Path, user_id: str, now: datetime) -> Publication:
    """Write the static notice (`index.html`, `style.css`, `transparency.json`, `cameras.geojson`)
    to `out_dir`, record its publication and audit it. From then on `notice_published` is true for
    this configuration."""
    from lanterne.audit import Action, AuditLog

    # Opened before anything is written: an audit log that cannot be opened refuses the publication.
    audit = AuditLog.from_config(cfg, engine=engine)
    data = public_data(cfg, engine, now)
    body = render_json(data).encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        HTML_FILE: render_html(data, STATIC).encode("utf-8"),
        CSS_FILE: stylesheet().encode("utf-8"),
        JSON_FILE: body,
        GEOJSON_FILE: render_geojson(data).encode("utf-8"),
    }
    files = []
    for name, payload in contents.items():
        # Write beside, then rename: a web server publishing the directory never serves half a file.
        path = out_dir / name
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(payload)
        tmp.replace(path)
        files.append(path)
    content_sha = hashlib.sha256(body).hexdigest()
    location = str(out_dir.resolve())
    try:
        with engine.begin() as conn:
            notice_id = conn.execute(
                insert(NoticeRecord)
                .values(
                    published_at=now,
                    published_by=user_id,
                    config_sha256=data.config_sha256,
                    content_sha256=content_sha,
                    location=location,
                )
                .returning(NoticeRecord.id)
            ).scalar_one()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    try:
        audit.append(
            user_id,
            Action.CONFIG_CHANGE,
            object_type="notice",
            object_id=str(notice_id),
            details={
                "event": "notice_published",
                "config_sha256": data.config_sha256,
                "content_sha256": content_sha,
                "location": location,
            },
        )
    except BaseException:
        # A publication stands only once audited, like every change: otherwise alerting could
        # start on a notice nobody can trace.
        with engine.begin() as conn:
            conn.execute(delete(NoticeRecord).where(NoticeRecord.id == notice_id))
        raise
    return Publication(notice_id, out_dir, data.config_sha256, content_sha, tuple(files))


def notice_published(cfg: Config, engine: Engine) -> bool:
    """Whether a notice was published for exactly this configuration (its sha256): any change of
    cameras, zones, detectors, retention or public text needs a new publication."""
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(NoticeRecord.id).where(NoticeRecord.config_sha256 == config_hash(cfg)).limit(1)
            ).first()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    return row is not None


def require_notice(cfg: Config, engine: Engine) -> None:
    """The `alerts`-mode start gate (TR-01): the public must be told before alerting starts."""
    if not notice_published(cfg, engine):
        raise ConfigError(
            "alerts mode cannot start: publish the public notice first (lanterne transparency publish --config …)"
        )
