"""The playback page in a real browser (issue 11, item 4): Debian's chromium through Playwright
against a real `lanterne serve`. A camera recorded twice with a 15 s drop between, and an alert
in the first recording. An operator logs in, opens the page from the alert's time, picks the
camera, states a purpose; the timeline shows the recorded spans, the gap and the alert marker;
the video plays (its time advances); the audit log holds the view with its purpose and segments.
Nothing is loaded from elsewhere and the page reports no error. A screenshot is left in
`test-output/playback.png`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect

from lanterne.accountability import accounts
from lanterne.audit import Action, AuditLog
from lanterne.config import load_config
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from tests.api.test_recorded_clip import record
from tests.support.browser import OUTPUT, chromium, lanterne_serve, log_in, recorded_site, wait_until, watch
from tests.support.console import SQUARE, cleared_account
from tests.support.video import VIDEO, excerpt

PASSWORD = "lanterns carry light slowly"
PURPOSE = "incident report 2026-041, platform 3"


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("cam") / "pets.mp4", 20.0)


def _site(tmp_path: Path, camera_clip: Path) -> tuple[Path, datetime, dict[str, str]]:
    """A recorded site: quai-nord recorded from `first` for 20 s, offline 15 s, recorded 20 s more;
    an alert 5 s into the first recording; an operator of quai-nord."""
    path, db = recorded_site(
        tmp_path,
        [
            {
                "id": cam,
                "source": f"{cam}.mp4",
                "location": {"lat": 48.88, "lon": 2.355},
                "zones": [{"id": "voies", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
            }
            for cam in ("quai-nord", "parvis")
        ],
    )
    cfg = load_config(path)
    first = (datetime.now(UTC) - timedelta(minutes=10)).replace(microsecond=0)
    store = Store.open(db)
    audit = AuditLog(store.engine)
    hasher, accounts.HASHER = accounts.HASHER, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        ids = {
            "op-nord": cleared_account(
                store.engine, audit, "op-nord", "operator", ["quai-nord"], PASSWORD, "t"
            ).id
        }
    finally:
        accounts.HASHER = hasher
    record(cfg, store, audit, "quai-nord", first, camera_clip)
    record(cfg, store, audit, "quai-nord", first + timedelta(seconds=35), camera_clip)
    alert = Event("a-1", EventType.ZONE_INTRUSION, "quai-nord", "voies", 0.0, 4.0, 0.83, (0.5, 0.3, 0.8, 0.9))
    store.upsert_event(alert, first + timedelta(seconds=5), "alerts")
    store.close()
    return path, first + timedelta(seconds=5), ids


def test_an_operator_plays_a_recording_with_a_stated_purpose(tmp_path: Path, camera_clip: Path) -> None:
    config, alert_at, ids = _site(tmp_path, camera_clip)
    requests: list[str] = []
    problems: list[str] = []
    OUTPUT.mkdir(exist_ok=True)
    with lanterne_serve(config, probe="/login") as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        watch(page, requests, problems)
        log_in(page, base, "op-nord", PASSWORD)
        problems.clear()  # the login page asks /api/me first (401 when logged out): its own test's

        # From the alert's time, as the alert page links to it; the camera is one of the user's.
        page.goto(
            f"{base}/console/recordings?camera=quai-nord&at={alert_at.isoformat().replace('+00:00', 'Z')}"
        )
        expect(page.locator("#camera option")).to_have_count(1)
        expect(page.locator("#camera")).to_have_value("quai-nord")
        page.select_option("#camera", "quai-nord")

        # Nothing is fetched before a purpose is stated.
        page.click("#show")
        expect(page.locator("#player")).to_be_hidden()
        assert not any("/api/cameras/quai-nord/recording" in u for u in requests)

        page.fill("#purpose", PURPOSE)
        page.click("#show")
        track = page.locator("#track")
        expect(track.locator(".span.recorded").first).to_be_visible()
        # The window (the alert ± 5 min) holds: before, recording 1, the 15 s drop, recording 2, after.
        kinds = track.locator(".span").evaluate_all("ns => ns.map(n => n.dataset.kind)")
        merged = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
        assert merged == ["gap", "recorded", "gap", "recorded", "gap"], kinds
        expect(track.locator('.marker[data-id="a-1"]')).to_have_count(1)

        # It plays from a little before the alert: the video's time advances.
        wait_until(page, "document.getElementById('video').currentTime > 1.0", timeout=40)
        assert not page.evaluate("document.getElementById('video').paused")
        page.screenshot(path=str(OUTPUT / "playback.png"), full_page=True)

    assert requests and all(u.startswith(base) for u in requests), requests
    assert problems == [], problems

    store = Store.open(f"sqlite:///{tmp_path / 'lanterne.db'}")
    try:
        entries = AuditLog(store.engine).entries()
    finally:
        store.close()
    searched = [e for e in entries if e.action == Action.SEARCH and e.object_type == "recording"]
    assert [(e.user_id, e.object_id, e.purpose) for e in searched] == [(ids["op-nord"], "quai-nord", PURPOSE)]
    views = [e for e in entries if e.action == Action.VIEW_RECORDING]
    assert views and all(e.purpose == PURPOSE and e.user_id == ids["op-nord"] for e in views)
    assert views[0].details["recording"]["segments"]
    assert views[0].time_from == alert_at - timedelta(seconds=5)


def test_an_export_officer_exports_a_stretch_that_verifies(tmp_path: Path, camera_clip: Path) -> None:
    """From the playback page, where an export officer lands after login: the export form (export
    officers only, AC-03) renders the stretch, the browser
    downloads a zip whose MP4 and signed manifest `verify_export` accepts, and the export is on the
    record with its recipient."""
    import zipfile

    from lanterne.video.export import verify_export

    config, alert_at, _ = _site(tmp_path, camera_clip)
    store = Store.open(f"sqlite:///{tmp_path / 'lanterne.db'}")
    hasher, accounts.HASHER = accounts.HASHER, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        expo = cleared_account(
            store.engine, AuditLog(store.engine), "expo-1", "export_officer", ["*"], PASSWORD, "t"
        ).id
    finally:
        accounts.HASHER = hasher
        store.close()
    problems: list[str] = []
    with lanterne_serve(config, probe="/login") as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1300}, accept_downloads=True)
        watch(page, [], problems)
        log_in(page, base, "expo-1", PASSWORD)
        expect(page).to_have_url(f"{base}/console/recordings")
        problems.clear()
        page.goto(
            f"{base}/console/recordings?camera=quai-nord&at={alert_at.isoformat().replace('+00:00', 'Z')}"
        )
        expect(page.locator("#camera")).to_have_value("quai-nord")
        page.fill("#purpose", PURPOSE)
        page.click("#show")
        expect(page.locator("#export-form")).to_be_visible()
        page.fill("#export-recipient", "OPJ Martin, commissariat central")
        page.fill("#export-purpose", "requisition PV 2026/123")
        # Four seconds: rendering anonymises every frame (about a third of a second each here).
        page.evaluate(
            """() => {
              const d = new Date(new Date(document.getElementById('export-from').value).getTime() + 4000);
              const p = (n) => String(n).padStart(2, '0');
              document.getElementById('export-to').value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-` +
                `${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
            }"""
        )
        with page.expect_download(timeout=90_000) as download:
            page.click("#export")
        zipped = tmp_path / "export.zip"
        download.value.save_as(zipped)
    assert problems == [], problems
    with zipfile.ZipFile(zipped) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "export")
    mp4 = next(n for n in names if n.endswith(".mp4"))
    assert verify_export(tmp_path / "export" / mp4) == []
    store = Store.open(f"sqlite:///{tmp_path / 'lanterne.db'}")
    try:
        [exported] = [e for e in AuditLog(store.engine).entries() if e.action == Action.EXPORT]
    finally:
        store.close()
    assert exported.user_id == expo and exported.recipient == "OPJ Martin, commissariat central"
