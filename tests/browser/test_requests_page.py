"""The access-request page in a real browser (GDPR art. 15, TR-03): Debian's chromium through
Playwright against a real `lanterne serve`. A camera recorded for 20 s ten minutes ago, and a
request received forty days ago and still open. An export officer (the role that answers them,
AC-03) logs in; the recordings page's link says one request is overdue; the page flags it; the
officer records a new request for the recorded time, shows a moment of the recording, drags a
rectangle around one person, and answers. The downloaded
export verifies, and in its first frame that person is as recorded while every other person is
hidden whole, far more than the usual anonymisation hides them. The audit log holds each step.
A screenshot is left in `test-output/requests.png`."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import numpy as np
import pytest
from argon2 import PasswordHasher
from playwright.sync_api import expect

from lanterne.accountability import accounts
from lanterne.accountability.requests import register
from lanterne.audit import Action, AuditLog
from lanterne.config import Config, load_config
from lanterne.runtime.exports import renderer_for
from lanterne.store import Store
from lanterne.video.detectors import create_detector
from lanterne.video.export import verify_export
from tests.api.test_recorded_clip import record
from tests.support.browser import OUTPUT, chromium, lanterne_serve, log_in, recorded_site, wait_until, watch
from tests.support.console import SQUARE, cleared_account
from tests.support.recording import camera_clip

PASSWORD = "lanterns carry light slowly"
Box = tuple[float, float, float, float]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return camera_clip(tmp_path_factory.mktemp("cam"))


def _site(tmp_path: Path, clip: Path) -> tuple[Path, datetime, str]:
    """quai-nord recorded for 20 s from `first`; an export officer; an overdue open request."""
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
    now = datetime.now(UTC)
    first = (now - timedelta(minutes=10)).replace(microsecond=0)
    store = Store.open(db)
    audit = AuditLog(store.engine)
    hasher, accounts.HASHER = accounts.HASHER, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        expo = cleared_account(store.engine, audit, "expo-1", "export_officer", ["*"], PASSWORD, "t").id
    finally:
        accounts.HASHER = hasher
    record(cfg, store, audit, "quai-nord", first, clip)
    register(
        store.engine, audit, requester="Paul Durand", contact="12 rue des Lilas",
        window_start=now - timedelta(days=41, hours=2), window_end=now - timedelta(days=41),
        place="parvis de la gare", description="", received_at=now - timedelta(days=40), recorded_by=expo,
    )  # fmt: skip
    store.close()
    return path, first, expo


def _local(at: datetime) -> str:
    """A datetime-local value in this machine's zone, which the browser it starts shares."""
    return at.astimezone().strftime("%Y-%m-%dT%H:%M:%S")


def _requester(people: list[Box]) -> tuple[Box, Box]:
    """The person to mark, and the mark: the largest person whose box, widened a little, holds no
    other person's centre (the answer keeps whoever is centred in the mark)."""

    def widened(b: Box) -> Box:
        return (max(0.0, b[0] - 0.015), max(0.0, b[1] - 0.02), min(1.0, b[2] + 0.015), min(1.0, b[3] + 0.02))

    def centred(b: Box, m: Box) -> bool:
        return m[0] <= (b[0] + b[2]) / 2 <= m[2] and m[1] <= (b[1] + b[3]) / 2 <= m[3]

    alone = [b for b in people if not any(centred(o, widened(b)) for o in people if o is not b)]
    assert alone, people
    chosen = max(alone, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    return chosen, widened(chosen)


def _frames(cfg: Config, at: datetime, keep: Box | None) -> np.ndarray:
    """The first frame at `at` through the read path: as the console shows it (`keep` None), or
    with everyone in `keep` as recorded."""
    store = Store.open(cfg.store.url)
    try:
        view = renderer_for(cfg, store).open(cfg.cameras[0], at, at + timedelta(seconds=1), keep=keep)
        return next(view.frames()).image
    finally:
        store.close()


def _recorded(clip: Path, seconds: float) -> np.ndarray:
    """The camera's own frame `seconds` into the recording (the clip it recorded, no masks)."""
    with av.open(str(clip)) as c:
        for frame in c.decode(video=0):
            if frame.time is not None and frame.time >= seconds - 1e-3:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError(f"the clip is shorter than {seconds} s")


def test_an_export_officer_answers_an_access_request_with_the_requester_alone(
    tmp_path: Path, clip: Path
) -> None:
    config, first, expo = _site(tmp_path, clip)
    cfg = load_config(config)
    at = first + timedelta(seconds=5)
    # Where the people are at that moment, as the read path's detector sees them: the test plays
    # the agent who recognises the requester on the frame.
    recorded = _recorded(clip, 5.0)
    h, w = recorded.shape[:2]
    found = create_detector(cfg.detector, cfg.models_dir).detect(recorded)
    people: list[Box] = [
        (float(b[0]) / w, float(b[1]) / h, float(b[2]) / w, float(b[3]) / h)
        for b, name in zip(found.xyxy, found.data["class_name"], strict=True)
        if name == "person"
    ]
    person, mark = _requester(people)

    requests: list[str] = []
    problems: list[str] = []
    OUTPUT.mkdir(exist_ok=True)
    with lanterne_serve(config, probe="/login") as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
        watch(page, requests, problems)
        log_in(page, base, "expo-1", PASSWORD)
        problems.clear()  # the login page asks /api/me first (401 when logged out): its own test's

        # The recordings page, where an export officer lands, says in its navigation that a request
        # is overdue.
        expect(page).to_have_url(f"{base}/console/recordings")
        expect(page.locator('nav a[href="/console/requests"]')).to_have_text("Access requests (1 overdue)")
        page.click('nav a[href="/console/requests"]')

        rows = page.locator("#requests tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first.locator(".badge.overdue")).to_have_text("overdue")
        expect(page.locator("#overdue-count")).to_have_text("1 overdue")

        # A new request, for the time the camera recorded.
        page.fill("#requester", "Jeanne Martin")
        page.fill("#contact", "jeanne.martin@example.org")
        page.fill("#window-start", _local(first - timedelta(minutes=5)))
        page.fill("#window-end", _local(first + timedelta(minutes=5)))
        page.fill("#place", "arrêt de bus quai nord")
        page.fill("#description", "manteau rouge, attend le bus")
        page.click("#record")
        expect(rows).to_have_count(2)
        new = rows.nth(1)  # due a month from today: after the overdue one
        expect(new.locator("td").nth(2)).to_have_text("open")
        request_id = int(new.get_attribute("data-id") or 0)

        # Handle it: a camera and a moment inside its window, one frame of the recording.
        new.get_by_role("button", name=f"Handle request {request_id}").click()
        page.select_option("#camera", "quai-nord")
        page.fill("#at", _local(at))
        page.fill("#seconds", "1")
        page.click("#show-frame")
        expect(page.locator("#frame")).to_be_visible(timeout=30_000)
        wait_until(page, "document.getElementById('video').readyState >= 2", timeout=30)
        assert page.evaluate("document.getElementById('video').videoWidth") == w

        # The agent drags a rectangle around the requester.
        box = page.locator("#draw").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + mark[0] * box["width"], box["y"] + mark[1] * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + mark[2] * box["width"], box["y"] + mark[3] * box["height"], steps=5)
        page.mouse.up()
        expect(page.locator("#mark")).to_be_visible()
        expect(page.locator("#answer")).to_be_enabled()
        page.screenshot(path=str(OUTPUT / "requests.png"), full_page=True)

        with page.expect_download(timeout=60_000) as download:
            page.click("#answer")
        zipped = tmp_path / "answer.zip"
        download.value.save_as(zipped)
        expect(rows.nth(1).locator("td").nth(2)).to_contain_text("answered")
        expect(page.locator("#overdue-count")).to_have_text("1 overdue")  # the old one still is

    assert requests and all(u.startswith(base) for u in requests), requests
    assert problems == [], problems

    with zipfile.ZipFile(zipped) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "answer")
    mp4 = tmp_path / "answer" / next(n for n in names if n.endswith(".mp4"))
    assert verify_export(mp4) == []
    with av.open(str(mp4)) as c:
        answer = next(c.decode(video=0)).to_ndarray(format="bgr24")
    usual = _frames(cfg, at, keep=None)

    def changed(image: np.ndarray, b: Box) -> float:
        """Mean change from the recording inside a person's box: what hides them."""
        x0, y0, x1, y1 = round(b[0] * w), round(b[1] * h), round(b[2] * w), round(b[3] * h)
        return float(np.abs(image[y0:y1, x0:x1].astype(int) - recorded[y0:y1, x0:x1].astype(int)).mean())

    # The requester is shown as recorded (encoding noise only), less changed than the console's
    # usual anonymisation shows them (which blurs their head).
    assert changed(answer, person) < min(6.0, changed(usual, person)), (
        changed(answer, person),
        changed(usual, person),
    )
    # Everyone else is hidden whole: far more changed than by the usual anonymisation.
    others = [b for b in people if b is not person]
    assert others
    for b in others:
        assert changed(answer, b) > max(15.0, 2 * changed(usual, b)), (
            b,
            changed(answer, b),
            changed(usual, b),
        )

    store = Store.open(cfg.store.url)
    try:
        entries = AuditLog(store.engine).entries()
    finally:
        store.close()
    steps = [
        (e.object_id, e.details["step"], e.user_id) for e in entries if e.action == Action.ACCESS_REQUEST
    ]
    assert steps[-2:] == [(str(request_id), "received", expo), (str(request_id), "answered", expo)]
    views = [e for e in entries if e.action == Action.VIEW_RECORDING]
    assert views and all(e.purpose == f"access request {request_id} (GDPR art. 15)" for e in views)
    assert views[0].time_from == at and views[0].user_id == expo
    [exported] = [e for e in entries if e.action == Action.EXPORT]
    assert exported.details["access_request"] == request_id and exported.user_id == expo
    assert exported.time_from == at
    assert "Jeanne" not in str([str(e) for e in entries])
