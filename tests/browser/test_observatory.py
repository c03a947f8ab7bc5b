"""The observatory page in a real browser: Debian's chromium through Playwright against a real
`lanterne serve`, over the 10,000 DansMaRue reports ingested through the example mapping, the
SSMSI yearly counts by département, and the Paris road accidents of 2019-2020 beside the Paris
bike counts and weather.

An auditor logs in and opens /console/observatory: the map draws the arrondissements from the
API's GeoJSON, the month slider moves to another month and the map reloads with it, the series
chart (with its trend line) and the bias audit beside the map are shown, a ranking comes with its
feedback-loop result, a police-activity category is ranked only when asked for, and the road
accidents are drawn beside bike counts and temperature with their correlations and caveat.
Leaflet and every script come from the app; the content-security policy reports nothing.
Screenshots are left in `test-output/observatory*.png`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher
from playwright.sync_api import Page

from lanterne.audit import AuditLog
from lanterne.store import Store
from tests.support.browser import OUTPUT, chromium, lanterne_serve, log_in, wait_until, watch
from tests.support.console import cleared_account
from tests.support.observatory_api import ingest_samples, site_settings

PASSWORD = "lanterns carry light slowly"


def _site(tmp_path: Path) -> Path:
    obs_path = tmp_path / "observatory.duckdb"
    ingest_samples(obs_path)
    config = site_settings(tmp_path, obs_path)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    main = Store.open(config["store"]["url"])
    pytest.MonkeyPatch().setattr(
        "lanterne.accountability.accounts.HASHER", PasswordHasher(time_cost=1, memory_cost=64)
    )
    # Enrolled with a second factor, which every role logs in with (AC-04); `log_in` types it.
    cleared_account(main.engine, AuditLog(main.engine), "lea", "auditor", ["*"], PASSWORD, "test")
    cleared_account(main.engine, AuditLog(main.engine), "ana", "analyst", ["*"], PASSWORD, "test")
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
    with chromium() as browser:

        def open_page(login: str) -> Page:
            """A fresh browser context per user (the login page sends a logged-in user on)."""
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            watch(page, requests, problems)
            log_in(page, base, login, PASSWORD)
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
        # DansMaRue (2023-2024) never runs beside the bike counts (2019-2022): nothing to tick.
        bikes = page.locator("#cross-measures input[value='paris_bikes_weather:bike_count']")
        assert bikes.is_disabled()
        assert "no period in common" in page.locator("#cross-measures").inner_text()

        # The slider starts on the last month; one step back is another month, another map.
        first = page.get_attribute("#obs-map", "data-period")
        loads = int(page.get_attribute("#obs-map", "data-loads") or 0)
        assert first == "2024-09"
        page.focus("#month")
        page.keyboard.press("ArrowLeft")
        wait_until(page, f"Number(document.getElementById('obs-map').dataset.loads) > {loads}", timeout=10)
        assert page.get_attribute("#obs-map", "data-period") == "2024-08"
        assert page.locator("#month-label").inner_text() == "2024-08"

        # Series with its trend, and the audit beside the map.
        page.wait_for_selector("#series-chart path.observed")
        assert page.locator("#series-chart path.trend").count() == 1
        assert page.locator("#series-chart path.interval").count() >= 1, "the counts' 95 % interval"
        assert page.locator("#series-chart rect.selected").count() == 1, "the map's month is marked"
        assert page.locator("#dow-chart rect.bar").count() == 7
        assert "records days only" in page.locator("#hour-note").inner_text()
        page.wait_for_selector("#audit-body table.audit-table")
        audit_text = page.locator("#audit").inner_text()
        assert "Graffitis" in audit_text and "Gini" in audit_text
        assert page.locator("#provenance tbody tr").count() == 5

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

        # Road accidents in Paris beside bike counts and temperature, week by week.
        page.select_option("#dataset", "paris_road_accidents")
        wait_until(page, "document.getElementById('obs-map').dataset.features === '20'", timeout=10)
        assert page.locator("#cross-chart path.cross-line").count() == 0
        assert "Choose one to four" in page.locator("#cross-results").inner_text()
        page.check("#cross-measures input[value='paris_bikes_weather:bike_count']")
        page.check("#cross-measures input[value='paris_bikes_weather:temperature_c']")
        wait_until(page, "document.getElementById('cross-chart').dataset.series === '3'", timeout=10)
        assert page.locator("#cross-chart path.cross-line").count() == 3, "incidents and two measures"
        assert page.get_attribute("#cross-chart", "data-periods") == "105", "ISO weeks of 2019-2020"
        results = page.locator("#cross-results li")
        assert results.count() == 2
        bike_r = float(results.nth(0).get_attribute("data-correlation") or "nan")
        assert 0.3 < bike_r < 0.6, bike_r
        assert "correlation" in results.nth(1).inner_text()
        assert "not causation" in page.locator("#cross-caveat").inner_text()
        assert "2019-01-01 → 2020-12-31" in page.locator("#cross-notes").inner_text()
        page.locator("#cross-section").scroll_into_view_if_needed()
        page.wait_for_timeout(200)
        page.locator("#cross-section").screenshot(path=str(OUTPUT / "observatory-cross.png"))
        page.screenshot(path=str(OUTPUT / "observatory-cross-page.png"), full_page=True)
        # Day by day over the same two years; four measures at most.
        page.select_option("#cross-grain", "day")
        wait_until(page, "Number(document.getElementById('cross-chart').dataset.periods) > 700", timeout=10)
        page.check("#cross-measures input[value='paris_bikes_weather:rain_mm']")
        wait_until(page, "document.getElementById('cross-chart').dataset.series === '4'", timeout=10)
        assert page.locator("#cross-results li").count() == 3

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

        # Drug use offences are all found by police: no ranking unless asked for, with the audit.
        page.select_option("#category", "Usage de stupéfiants")
        assert page.locator("#rank-anyway-label").is_hidden()
        before = len(problems)
        page.click("#rank")
        page.wait_for_selector("#hotspots .refusal")
        refusal = page.locator("#hotspots").inner_text()
        assert "100.0 % police-initiated" in refusal and "where police looked" in refusal
        assert page.locator("#hotspots ol.ranking li").count() == 0
        assert page.locator("#rank-anyway-label").is_visible()
        page.locator("#audit").screenshot(path=str(OUTPUT / "observatory-refusal.png"))
        # The refusal is a 400 the browser logs: expected here, and only here.
        refused = problems[before:]
        assert refused and all("400" in p for p in refused), refused
        del problems[before:]
        page.check("#rank-anyway")
        page.click("#rank")
        page.wait_for_selector("#hotspots .feedback")
        assert "police activity" in page.locator("#hotspots .discovered-warning").inner_text()
        assert page.locator("#hotspots ol.ranking li").count() == 10
        page.locator("#audit").screenshot(path=str(OUTPUT / "observatory-rank-anyway.png"))

        # An analyst lands on the observatory (the alert queue is not theirs) and sees the badge
        # and the rows form.
        page = open_page("ana")
        assert page.url == base + "/console/observatory"
        wait_until(page, "Number(document.getElementById('obs-map').dataset.loads) >= 1", timeout=15)
        assert page.locator("#analyst-badge").is_visible()
        page.select_option("#dataset", "paris_dansmarue")
        wait_until(page, "document.getElementById('obs-map').dataset.period === '2024-09'", timeout=10)
        page.fill("#rows-purpose", "check of the September reports, ref OBS-2026-04")
        page.click("#rows-form button")
        page.wait_for_selector("#rows tbody tr")
        times = page.locator("#rows tbody tr td:first-child").all_inner_texts()
        assert 0 < len(times) <= 100 and all(t.startswith("2024-09") for t in times), "the slider's month"

        # The report leaves as a file: a PDF of the month on the screen, suppressed whoever asks.
        page.fill("#export-purpose", "monthly report to the district council")
        page.fill("#export-recipient", "Conseil du 11e arrondissement")
        page.select_option("#export-format", "pdf")
        with page.expect_download() as download:
            page.click("#export-form button[type=submit]")
        pdf = Path(download.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF-") and b"DansMaRue" in pdf
    assert requests and all(u.startswith(base) for u in requests), [
        u for u in requests if not u.startswith(base)
    ]
    assert not problems, problems
