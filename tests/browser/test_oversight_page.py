"""The oversight page in a real browser (GV-07): Debian's chromium, driven by Playwright, against
a real `lanterne serve`. An auditor logs in and reads the register, the metrics, the log summaries
and the complaints; the chain is verified from the page; nothing is loaded from outside the origin,
no image is asked for, and no content-security-policy error is tripped. A screenshot is left in
`test-output/` for a human to look at."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.complaints import Complaints
from lanterne.audit import AuditLog
from lanterne.store import Store
from tests.support.browser import OUTPUT, chromium, lanterne_serve, log_in, wait_until, watch
from tests.support.console import cleared_account

PASSWORD = "lanterns carry light slowly"
SUMMARY = "A resident says camera quai-nord films the windows of a building"


def _site(tmp_path: Path) -> Path:
    db = f"sqlite:///{tmp_path / 'lanterne.db'}"
    config = {
        "site": "Ville d'Exemple",
        "store": {"url": db},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": [{"id": "quai-nord", "source": "a.mp4", "location": {"lat": 48.88, "lon": 2.355}}],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    now = datetime.now(UTC)
    store = Store.open(db)
    audit = AuditLog(store.engine, key_path=tmp_path / "audit.key")
    cleared_account(store.engine, audit, "comite", "auditor", ["*"], PASSWORD, "u-admin")
    Authorisations(store.engine, audit).add(
        "AP-75-2026-0042",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture de police de Paris",
        valid_from=now - timedelta(days=10),
        valid_until=now + timedelta(days=30),
        cameras=["quai-nord"],
        event_types=["zone_intrusion"],
        impact_assessments=["https://ville.example/aipd.pdf"],
        user_id="u-1",
    )
    Complaints(store.engine, audit).add(
        received_on=date.today(), channel="letter", category="camera_placement", summary=SUMMARY, by="u-dpo"
    )
    store.close()
    return path


def test_an_auditor_reads_the_oversight_page_and_verifies_the_chain(tmp_path: Path) -> None:
    config = _site(tmp_path)
    with lanterne_serve(config) as base, chromium() as browser:
        page = browser.new_page()
        requests: list[str] = []
        problems: list[str] = []
        watch(page, requests, problems)
        log_in(page, base, "comite", PASSWORD)
        problems.clear()  # the login page asks /api/me before anyone logged in (401)
        page.goto(base + "/console/oversight", wait_until="networkidle")
        wait_until(page, "!document.getElementById('view').hidden")
        assert "AP-75-2026-0042" in page.inner_text("#authorisations")
        assert "https://ville.example/aipd.pdf" in page.inner_text("#authorisations")
        assert SUMMARY in page.inner_text("#complaint-list")
        assert "a camera's place or field of view" in page.inner_text("#complaint-counts")
        assert "access without a valid habilitation" in page.inner_text("#findings")
        assert "records stored" in page.inner_text("#audit-state")
        page.click("#verify")
        wait_until(page, "document.getElementById('verification').textContent.startsWith('intact')")
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "oversight.png"), full_page=True)
    assert problems == [], problems
    assert all(u.startswith(base) for u in requests), [u for u in requests if not u.startswith(base)]
    assert not [u for u in requests if "/snapshot" in u or "/clip" in u or "/recording" in u or "/live" in u]
