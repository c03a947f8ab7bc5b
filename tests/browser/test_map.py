"""The camera map in a real browser: Debian's chromium through Playwright against a real
`lanterne serve`. A supervisor logs in, opens the map, and sees the city's outline drawn from the
configured boundaries (no tile server: the closed-network case), one marker per camera coloured by
its state, and a popup listing a camera's latest alerts with links to them; then searches the
events of one camera with a stated purpose. Leaflet comes from the
app itself; nothing is loaded from elsewhere and the content-security policy reports nothing. A
screenshot is left in `test-output/map.png`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher

from lanterne.accountability.stops import Stops
from lanterne.audit import AuditLog
from lanterne.core.types import Counts, Event, EventType
from lanterne.store import Store
from tests.support.browser import OUTPUT, chromium, lanterne_serve, log_in, watch
from tests.support.console import SQUARE, cleared_account

BOUNDARIES = Path("/work/shared/data/observatory/boundaries/paris_arrondissements.geojson")
"""Read in place (licence: not copied into the repository); 20 polygons, 200 kB."""
PASSWORD = "lanterns carry light slowly"
CAMERAS = {  # id: (name, lat, lon) around the Gare du Nord
    "quai-nord": ("Gare, quai nord", 48.8809, 2.3553),
    "parvis": ("Parvis de la gare", 48.8795, 2.3560),
    "depot": ("Dépôt", 48.8830, 2.3600),
}


def _site(tmp_path: Path) -> Path:
    db = f"sqlite:///{tmp_path / 'lanterne.db'}"
    config = {
        "site": "Ville d'Exemple — gare centrale",
        "store": {"url": db},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "console": {"boundaries": str(BOUNDARIES)},
        "cameras": [
            {
                "id": cam,
                "name": name,
                "source": f"{cam}.mp4",
                "location": {"lat": lat, "lon": lon},
                "zones": [{"id": "z1", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
            }
            for cam, (name, lat, lon) in CAMERAS.items()
        ],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    now = datetime.now(UTC)
    store = Store.open(db)
    audit = AuditLog(store.engine)
    # Cheap argon2 parameters for the test account; the server verifies with those in the hash.
    pytest.MonkeyPatch().setattr(
        "lanterne.accountability.accounts.HASHER", PasswordHasher(time_cost=1, memory_cost=64)
    )
    cleared_account(store.engine, audit, "chef", "supervisor", ["*"], PASSWORD, "test")
    store.add_counts(Counts("quai-nord", "z1", 0.0, 60.0, 2, 1.0, {}, 10), now - timedelta(seconds=30))
    for i in range(3):
        ev = Event(
            f"alert-{i}", EventType.ZONE_INTRUSION, "quai-nord", "z1", 0.0, 3.0, 0.8, (0.2, 0.2, 0.4, 0.6)
        )
        store.upsert_event(ev, now - timedelta(minutes=10 - i), "alerts")
    Stops(store.engine, audit).stop_camera("depot", "u-test", "lens cleaning")
    store.close()
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with lanterne_serve(_site(tmp_path)) as base:
        yield base


def test_map_in_chromium(server: str) -> None:
    base = server
    OUTPUT.mkdir(exist_ok=True)
    requests: list[str] = []
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        watch(page, requests, problems)
        log_in(page, base, "chef", PASSWORD)
        problems.clear()  # the login page asks /api/me first (401 before logging in): not the map's

        response = page.goto(base + "/console/map", wait_until="networkidle")
        assert response is not None and response.status == 200
        page.wait_for_selector("path.cam-marker")
        assert page.evaluate("typeof L") == "object", "Leaflet loaded from the app"
        assert page.locator("path.boundary").count() == 20, "the 20 arrondissements are drawn"
        assert page.locator("path.cam-marker").count() == 3
        states = {
            cam: page.locator(f'#cameras tr[data-camera="{cam}"]').get_attribute("data-state")
            for cam in CAMERAS
        }
        assert states == {"quai-nord": "running", "parvis": "offline", "depot": "stopped"}
        assert page.locator("path.cam-marker.state-stopped").get_attribute("fill") == "#ff6b6b"
        assert "lens cleaning" in page.locator("#stops").inner_text()

        page.locator("path.cam-marker.state-running").click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert "Gare, quai nord" in popup.inner_text()
        links = popup.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert links == ["/console/alerts/alert-2", "/console/alerts/alert-1", "/console/alerts/alert-0"]
        page.wait_for_timeout(400)  # the popup fades in (Leaflet animation) before the picture
        page.screenshot(path=str(OUTPUT / "map.png"), full_page=True)

        # The search page: a purpose is asked for, results link to the alerts.
        page.goto(base + "/console/search", wait_until="networkidle")
        page.click("#submit")  # without a purpose the browser's own check stops the form
        assert page.locator("#results").is_hidden()
        page.fill("#purpose", "review of the intrusions on the platform, ref 2026-17")
        page.select_option("#camera", "quai-nord")
        page.click("#submit")
        page.wait_for_selector("#results tbody tr")
        hrefs = page.locator("#results tbody a").evaluate_all("ls => ls.map(a => a.getAttribute('href'))")
        assert hrefs == ["/console/alerts/alert-2", "/console/alerts/alert-1", "/console/alerts/alert-0"]
        assert "3 event(s)" in page.locator("#summary").inner_text()
        page.screenshot(path=str(OUTPUT / "search.png"), full_page=True)
    assert requests and all(u.startswith(base) for u in requests), [
        u for u in requests if not u.startswith(base)
    ]
    assert not problems, problems
