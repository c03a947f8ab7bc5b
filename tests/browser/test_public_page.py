"""The public page in a real browser (TR-01): Debian's chromium, driven by Playwright, against a
real `lanterne serve` process on a free port. It must show the cameras, the authorisation and the
monthly figures, load nothing from outside its own origin (it has to work on an offline network),
and trip no content-security-policy error. A screenshot is left in `test-output/` for a human to
look at."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import sync_playwright

from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.accountability.authorisation import Authorisations
from lanterne.audit import AuditLog
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT, free_port, lanterne_serve

SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]


_free_port = free_port


def _site(tmp_path: Path) -> tuple[Path, str]:
    """A two-camera site with one authorisation in force and four decided alerts two days ago."""
    db = f"sqlite:///{tmp_path / 'lanterne.db'}"
    config = {
        "mode": "alerts",
        "site": "Ville d'Exemple — gare centrale",
        "store": {"url": db},
        "public": {
            "controller": "Ville d'Exemple, police municipale",
            "dpo_contact": "dpo@ville.example, 1 place de la Mairie",
            "purposes": ["Sécurité des voyageurs sur les quais", "Secours aux personnes"],
            "rights": "Écrivez au délégué à la protection des données.\nVous pouvez saisir la CNIL.",
        },
        "cameras": [
            {
                "id": "quai-nord",
                "name": "Gare, quai nord",
                "source": "a.mp4",
                "location": {"lat": 48.8809, "lon": 2.3553},
                "zones": [{"id": "voies", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
            },
            {
                "id": "parvis",
                "name": "Parvis de la gare",
                "source": "b.mp4",
                "location": {"lat": 48.8801, "lon": 2.3549},
                "zones": [
                    {"id": "place", "polygon": SQUARE, "events": {"crowd_density": {"max_people": 30}}}
                ],
            },
        ],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    now = datetime.now(UTC)
    store = Store.open(db)
    audit = AuditLog(store.engine)
    Authorisations(store.engine, audit).add(
        "AP-75-2026-0042",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture de police de Paris",
        valid_from=now - timedelta(days=10),
        valid_until=now + timedelta(days=30),
        cameras=["quai-nord"],
        event_types=["zone_intrusion"],
        user_id="u-1",
    )
    at = now - timedelta(days=2)
    for i in range(4):
        ev = Event(
            f"e{i}", EventType.ZONE_INTRUSION, "quai-nord", "voies", 0.0, 3.0, 0.8, (0.2, 0.2, 0.4, 0.6)
        )
        store.upsert_event(ev, at + timedelta(minutes=i), "alerts")
        acknowledge(store.engine, audit, f"e{i}", "op-1", now)
    for i in range(3):
        confirm(store.engine, audit, f"e{i}", "op-1", now, "monitoring")
    dismiss(store.engine, audit, "e3", "op-1", now, "reflection_or_light")
    store.close()
    return path, at.strftime("%Y-%m")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    config, month = _site(tmp_path)
    with lanterne_serve(config) as base:
        yield base, month


def test_public_page_in_chromium(server: tuple[str, str]) -> None:
    base, month = server
    OUTPUT.mkdir(exist_ok=True)
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            response = page.goto(base + "/public", wait_until="networkidle")
            assert response is not None and response.status == 200

            assert page.locator("h1#site").inner_text() == "Ville d'Exemple — gare centrale"
            cameras = page.locator("tr.camera")
            assert cameras.count() == 2
            nord = page.locator('tr.camera[data-camera="quai-nord"]')
            assert "Gare, quai nord" in nord.inner_text()
            assert "AP-75-2026-0042" in nord.inner_text() and "alerts" in nord.inner_text()
            assert "statistics only" in page.locator('tr.camera[data-camera="parvis"]').inner_text()

            row = page.locator(f'tr.month[data-month="{month}"][data-type="zone_intrusion"]')
            cells = [c.strip() for c in row.locator("td").all_inner_texts()]
            assert cells[2:7] == ["4", "3", "1", "0", "75 %"], cells
            assert cells[7] == "30–95 %"  # Wilson interval of 3 confirmed out of 4 decided
            assert "reflection or light: 1" in cells[8]
            assert "dpo@ville.example" in page.locator("#dpo").inner_text()
            assert "Préfecture de police de Paris" in page.locator("#register").inner_text()

            # The stylesheet applied (system fonts, no download): the header rule is the accent colour.
            border = page.eval_on_selector("header", "e => getComputedStyle(e).borderBottomColor")
            assert border == "rgb(11, 92, 173)"
            page.screenshot(path=str(OUTPUT / "public-page.png"), full_page=True)
        finally:
            browser.close()
    assert requests and all(u.startswith(base) for u in requests), requests
    assert not problems, problems
