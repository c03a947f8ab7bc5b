"""The camera map's API: each camera's state (stopped, suspended, offline, running) as the docs
define it, the latest alerts, the user's camera scope, the base layer (tiles or boundaries), and
Leaflet shipped in the package, the same bytes as the npm package the lock file pins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import lanterne.api.routes.cameras as cameras_mod
from lanterne.accountability.cameras import OFFLINE_AFTER
from lanterne.accountability.stops import Stops
from lanterne.accountability.suspension import Suspensions
from lanterne.api.routes.pages import STATIC
from lanterne.core.types import Counts, EventType
from tests.support.console import NOW, Clock, Console, add_event, open_console, site_config

pytestmark = pytest.mark.usefixtures("cheap_hashes")

OUTLINE = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "Ville d'Exemple"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[2.35, 48.875], [2.365, 48.875], [2.365, 48.886], [2.35, 48.886], [2.35, 48.875]]
                ],
            },
        }
    ],
}


def states(c: Console) -> dict[str, str]:
    r = c.client.get("/api/cameras")
    assert r.status_code == 200, r.text
    return {cam["id"]: cam["state"] for cam in r.json()}


def test_states_follow_stops_suspensions_and_signs_of_life(console: Console, clock: Clock) -> None:
    console.as_user("sup")
    assert states(console) == {"quai-nord": "offline", "parvis": "offline", "depot": "offline"}

    # A count bucket two minutes old, an event ending now: running. A bucket older than
    # OFFLINE_AFTER: offline.
    console.store.add_counts(Counts("quai-nord", "z1", 0.0, 60.0, 1, 0.5, {}, 10), NOW - timedelta(minutes=2))
    add_event(console.store, "p1", "parvis", at=NOW - timedelta(seconds=5))
    console.store.add_counts(Counts("depot", "z1", 0.0, 60.0), NOW - OFFLINE_AFTER - timedelta(seconds=1))
    assert states(console) == {"quai-nord": "running", "parvis": "running", "depot": "offline"}

    Suspensions(console.store.engine, console.audit, site_config_of(console).suspension).suspend(
        "parvis", EventType.ZONE_INTRUSION, "u-sup", "zone drawn over the pavement"
    )
    stops = Stops(console.store.engine, console.audit, clock)
    stops.stop_detector("quai-nord", EventType.FIRE, "u-sup", "smoke machine")
    clock.now += timedelta(seconds=1)  # the app's cache of stops refreshes every second
    got = console.client.get("/api/cameras").json()
    by_id = {c["id"]: c for c in got}
    assert by_id["parvis"]["state"] == "suspended" and by_id["parvis"]["suspended_types"] == [
        "zone_intrusion"
    ]
    assert by_id["quai-nord"]["state"] == "running", "a detector stop leaves the camera running"
    assert by_id["quai-nord"]["stopped_types"] == ["fire"]

    clock.now += timedelta(seconds=1)  # the app's cache of stops refreshes every second
    stops.stop_camera("depot", "u-sup", "lens cleaning")
    clock.now += timedelta(seconds=1)
    assert states(console)["depot"] == "stopped"
    site = stops.stop_site("u-sup", "council order")
    clock.now += timedelta(seconds=1)
    assert set(states(console).values()) == {"stopped"}
    stops.lift(site.id, "u-sup")
    clock.now += timedelta(seconds=1)
    assert states(console)["parvis"] == "suspended"


def site_config_of(c: Console):  # type: ignore[no-untyped-def]
    return c.client.app.state.cfg  # type: ignore[attr-defined]


def test_recent_alerts_are_the_five_newest_alerts(console: Console) -> None:
    for i in range(7):
        add_event(console.store, f"a{i}", "parvis", EventType.FIRE, NOW - timedelta(minutes=10 - i))
    add_event(console.store, "eval", "parvis", at=NOW, mode="evaluation")
    console.as_user("oper")
    cam = next(c for c in console.client.get("/api/cameras").json() if c["id"] == "parvis")
    assert [a["id"] for a in cam["recent_alerts"]] == ["a6", "a5", "a4", "a3", "a2"]
    assert cam["recent_alerts"][0]["type"] == "fire" and cam["recent_alerts"][0]["state"] == "new"
    assert cam["name"] == "Camera parvis" and cam["lat"] == pytest.approx(48.881)


@pytest.mark.parametrize(
    ("login", "status", "cameras"),
    [
        (None, 401, None),
        ("audi", 403, None),
        ("oper-nord", 200, ["quai-nord"]),
        ("sup", 200, ["quai-nord", "parvis", "depot"]),
    ],
)
def test_roles_and_scope(console: Console, login: str | None, status: int, cameras: list[str] | None) -> None:
    if login:
        console.as_user(login)
    r = console.client.get("/api/cameras")
    assert r.status_code == status
    if cameras is not None:
        assert [c["id"] for c in r.json()] == cameras


@pytest.fixture
def mapped(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Console]:
    (tmp_path / "ville.geojson").write_text(json.dumps(OUTLINE), encoding="utf-8")
    yield from open_console(site_config(db_url, tmp_path, boundaries="ville.geojson"), clock)


def test_boundaries_and_map_settings(mapped: Console) -> None:
    assert mapped.client.get("/api/boundaries").status_code == 401
    mapped.as_user("oper")
    r = mapped.client.get("/api/boundaries")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    assert r.json()["features"][0]["properties"]["name"] == "Ville d'Exemple"
    settings = mapped.client.get("/api/map-settings").json()
    assert settings["tile_url"] is None and settings["boundaries"] is True


def test_no_boundaries_configured_is_said(console: Console) -> None:
    console.as_user("oper")
    r = console.client.get("/api/boundaries")
    assert r.status_code == 404 and "console.boundaries" in r.json()["detail"]


def test_tile_url_reaches_the_map_and_the_csp(db_url: str, tmp_path: Path, clock: Clock) -> None:
    cfg = site_config(db_url, tmp_path, tile_url="https://tiles.ville.example/{z}/{x}/{y}.png")
    for c in open_console(cfg, clock):
        c.as_user("oper")
        r = c.client.get("/api/map-settings")
        assert r.json()["tile_url"] == "https://tiles.ville.example/{z}/{x}/{y}.png"
        assert "img-src 'self' data: https://tiles.ville.example" in r.headers["content-security-policy"]


def test_map_page_and_leaflet_are_served_locally(console: Console) -> None:
    page = console.client.get("/console/map")
    assert page.status_code == 200
    for src in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/console/map.js",
    ):
        assert src in page.text
        assert console.client.get(src).status_code == 200, src
    assert "<script>" not in page.text and "style=" not in page.text
    assert "javascript" in console.client.get("/static/vendor/leaflet/leaflet.js").headers["content-type"]
    assert console.client.get("/static/vendor/leaflet/images/marker-icon.png").status_code == 200
    assert console.client.get("/static/vendor/leaflet/../../../../pyproject.toml").status_code == 404
    assert console.client.get("/static/vendor/leaflet/%2e%2e/%2e%2e/package.json").status_code == 404
    console.as_user("oper")
    assert console.client.get("/api/map-settings").json()["leaflet"] is True


NPM_LEAFLET = Path(__file__).resolve().parents[2] / "console" / "node_modules" / "leaflet"
"""Installed by `scripts/bootstrap` (`npm ci --prefix console`) from `console/package-lock.json`."""


def test_vendored_leaflet_is_the_npm_locked_package() -> None:
    """The package's copy is byte for byte the one the lock file pins: an upgrade goes through
    `console/package-lock.json`, then a fresh copy of its dist files (and licence) into the package."""
    vendored = cameras_mod.LEAFLET
    assert NPM_LEAFLET.is_dir(), "run scripts/bootstrap (npm ci --prefix console)"
    lock = json.loads((NPM_LEAFLET.parents[1] / "package-lock.json").read_text(encoding="utf-8"))
    locked = lock["packages"]["node_modules/leaflet"]["version"]
    assert json.loads((NPM_LEAFLET / "package.json").read_text(encoding="utf-8"))["version"] == locked
    shipped = sorted(p.relative_to(vendored).as_posix() for p in vendored.rglob("*") if p.is_file())
    images = sorted(f"images/{p.name}" for p in (NPM_LEAFLET / "dist" / "images").iterdir())
    assert shipped == sorted(["LICENSE", "leaflet.css", "leaflet.js", *images])
    for name in shipped:
        source = NPM_LEAFLET / ("LICENSE" if name == "LICENSE" else f"dist/{name}")
        assert (vendored / name).read_bytes() == source.read_bytes(), name


def test_missing_leaflet_is_said(
    db_url: str, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cameras_mod, "LEAFLET", tmp_path / "nowhere")
    for c in open_console(site_config(db_url, tmp_path), clock):
        c.as_user("oper")
        assert c.client.get("/api/map-settings").json()["leaflet"] is False
    assert "Leaflet is missing" in (STATIC / "map.js").read_text(encoding="utf-8")
