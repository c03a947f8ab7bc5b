"""The observatory page in a real browser: Debian's chromium through Playwright against a real
`lanterne serve`, over the 10,000 DansMaRue reports ingested through the example mapping.

An auditor logs in and opens /console/observatory: the map draws the arrondissements from the
API's GeoJSON, the month slider moves to another month and the map reloads with it, the series
chart (with its trend line) and the bias audit beside the map are shown, a ranking comes with its
feedback-loop result. Leaflet and every script come from the app; the content-security policy
reports nothing. Screenshots are left in `test-output/observatory*.png`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher
from playwright.sync_api import Page, sync_playwright

from browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT, lanterne_serve, wait_until
from lanterne.accounts import create_account
from lanterne.audit import AuditLog
from lanterne.config.schema import BoundaryLayer
from lanterne.observatory.ingest import ingest
from lanterne.observatory.mapping import load_mapping
from lanterne.observatory.store import ObservatoryStore
from lanterne.store import Store
from test_api_observatory import DANSMARUE, EXAMPLES, LAYERS, SSMSI, layers
from test_public_page_browser import SQUARE

PASSWORD = "lanterns carry light slowly"


def _site(tmp_path: Path) -> Path:
    obs_path = tmp_path / "observatory.duckdb"
    store = ObservatoryStore.open(obs_path)
    try:
        ingest(
            store,
            DANSMARUE,
            load_mapping(EXAMPLES / "paris_dansmarue.yml"),
            user_id="u-test",
            layers=layers(),
        )
        departements = [BoundaryLayer.model_validate(LAYERS[1])]
        for mapping in ("fr_ssmsi_departements", "fr_ssmsi_population"):
            ingest(
                store, SSMSI, load_mapping(EXAMPLES / f"{mapping}.yml"), user_id="u-test", layers=departements
            )
    finally:
        store.close()
    db = f"sqlite:///{tmp_path / 'lanterne.db'}"
    config = {
        "site": "Ville d'Exemple",
        "store": {"url": db},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": [
            {
                "id": "quai-nord",
                "source": "quai-nord.mp4",
                "location": {"lat": 48.88, "lon": 2.355},
                "zones": [{"id": "z1", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
            }
        ],
        "observatory": {
            "store": str(obs_path),
            "min_count": 10,
            "layers": LAYERS,
        },
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    main = Store.open(db)
    pytest.MonkeyPatch().setattr("lanterne.accounts.HASHER", PasswordHasher(time_cost=1, memory_cost=64))
    create_account(main.engine, AuditLog(main.engine), "lea", "auditor", ["*"], PASSWORD, "test")
    create_account(main.engine, AuditLog(main.engine), "ana", "analyst", ["*"], PASSWORD, "test")
    main.close()
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with lanterne_serve(_site(tmp_path)) as base:
        yield base


def test_observatory_in_chromium(server: str) -> None:
    base = server
    OUTPUT.mkdir(exist_ok=True)
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:

            def open_page(login: str) -> Page:
                """A fresh browser context per user (the login page sends a logged-in user on)."""
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                page.on("request", lambda r: requests.append(r.url))
                page.on(
                    "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
                )
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on(
                    "response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
                )
                page.goto(base + "/login", wait_until="networkidle")
                page.fill("#login", login)
                page.fill("#password", PASSWORD)
                page.click("#submit")
                page.wait_for_url(lambda url: "/login" not in url)
                page.wait_for_load_state("networkidle")
                problems.clear()  # the login page and the alert queue are not this page's business
                return page

            page = open_page("lea")
            response = page.goto(base + "/console/observatory", wait_until="networkidle")
            assert response is not None and response.status == 200
            wait_until(page, "Number(document.getElementById('obs-map').dataset.loads) >= 1", timeout=15)
            assert page.evaluate("typeof L") == "object", "Leaflet loaded from the app"
            page.select_option("#dataset", "paris_dansmarue")
            wait_until(page, "document.getElementById('obs-map').dataset.features === '20'", timeout=10)
            assert page.locator("#obs-map path.area").count() == 20, "the 20 arrondissements are drawn"
            assert page.locator("#analyst-badge").is_hidden()
            assert "not true crime rates" in page.locator("#caveat").inner_text()

            # The slider starts on the last month; one step back is another month, another map.
            first = page.get_attribute("#obs-map", "data-period")
            loads = int(page.get_attribute("#obs-map", "data-loads") or 0)
            assert first == "2024-09"
            page.focus("#month")
            page.keyboard.press("ArrowLeft")
            wait_until(
                page, f"Number(document.getElementById('obs-map').dataset.loads) > {loads}", timeout=10
            )
            assert page.get_attribute("#obs-map", "data-period") == "2024-08"
            assert page.locator("#month-label").inner_text() == "2024-08"

            # Series with its trend, and the audit beside the map.
            page.wait_for_selector("#series-chart path.observed")
            assert page.locator("#series-chart path.trend").count() == 1
            assert page.locator("#series-chart rect.selected").count() == 1, "the map's month is marked"
            assert page.locator("#dow-chart rect.bar").count() == 7
            assert "records days only" in page.locator("#hour-note").inner_text()
            page.wait_for_selector("#audit-body table.audit-table")
            audit_text = page.locator("#audit").inner_text()
            assert "Graffitis" in audit_text and "Gini" in audit_text
            assert page.locator("#provenance tbody tr").count() == 3

            # A ranking needs a category and comes with the feedback-loop result.
            page.select_option("#category", "Graffitis, tags, affiches et autocollants")
            page.click("#rank")
            page.wait_for_selector("#hotspots .feedback")
            assert 1 <= page.locator("#hotspots ol.ranking li").count() <= 10, "areas with k or more"
            assert "patrols" in page.locator("#hotspots .feedback").inner_text()
            page.wait_for_timeout(300)
            page.screenshot(path=str(OUTPUT / "observatory.png"), full_page=True)

            # Hexagons at resolution 8; small cells hatched for this role.
            page.check("#whole-span")
            page.select_option("#category", "")
            page.select_option("#level", "h3:9")
            wait_until(page, "document.getElementById('obs-map').dataset.period === 'all'", timeout=10)
            wait_until(page, "document.querySelectorAll('#obs-map path.area').length > 100", timeout=10)
            assert page.locator("#obs-map path.suppressed").count() > 0
            page.screenshot(path=str(OUTPUT / "observatory-hexagons.png"))

            # Yearly counts by département, as burglaries per 1,000 dwellings: the slider steps years.
            page.select_option("#dataset", "fr_ssmsi_departements")
            wait_until(page, "document.getElementById('level').value === 'layer:departements'", timeout=10)
            page.uncheck("#whole-span")
            page.select_option("#category", "Cambriolages de logement")
            page.select_option("#exposure", "fr_ssmsi_population:dwellings")
            wait_until(page, "document.getElementById('legend').dataset.unit === 'rate'", timeout=10)
            assert page.get_attribute("#obs-map", "data-period") == "2022"
            assert page.locator("#obs-map path.area").count() == 96
            assert "per 1,000" in page.locator("#legend").inner_text()
            page.wait_for_selector("#audit-body table.audit-table")
            page.screenshot(path=str(OUTPUT / "observatory-rates.png"))

            # An analyst sees the badge and the rows form.
            page = open_page("ana")
            page.goto(base + "/console/observatory", wait_until="networkidle")
            wait_until(page, "Number(document.getElementById('obs-map').dataset.loads) >= 1", timeout=15)
            assert page.locator("#analyst-badge").is_visible()
            page.select_option("#dataset", "paris_dansmarue")
            wait_until(page, "document.getElementById('obs-map').dataset.period === '2024-09'", timeout=10)
            page.fill("#rows-purpose", "check of the September reports, ref OBS-2026-04")
            page.click("#rows-form button")
            page.wait_for_selector("#rows tbody tr")
            times = page.locator("#rows tbody tr td:first-child").all_inner_texts()
            assert 0 < len(times) <= 100 and all(t.startswith("2024-09") for t in times), "the slider's month"
        finally:
            browser.close()
    assert requests and all(u.startswith(base) for u in requests), [
        u for u in requests if not u.startswith(base)
    ]
    assert not problems, problems
