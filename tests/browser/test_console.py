"""The alert queue in a real browser (issue 3): Debian's chromium, driven by Playwright, against a
real `lanterne serve` process. An operator logs in; an alert written to the store appears in the
open queue within 2 s without a reload; a dismissal without a reason is refused and the page says
why, one with a reason succeeds; a confirmation carries its follow-up; the detail page plays the
clip once a purpose is given and shows the timeline; the titles, reasons, follow-ups and the search
page's event types are the server's vocabulary; an operator of another camera sees nothing of it.
Screenshots of the queue and the detail go to `test-output/` for a human to look at.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect, sync_playwright

from lanterne.accountability import accounts
from lanterne.accountability.alerts import DISMISS_REASON_LABELS
from lanterne.audit import AuditLog
from lanterne.core.types import Event, EventType
from lanterne.rules import EVENT_TITLES
from lanterne.store import Store
from lanterne.store.tables import DISMISS_REASONS, FOLLOW_UPS
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OUTPUT, free_port, wait_until
from tests.support.console import cleared_account, login_json

SQUARE = [[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]]
PASSWORD = "correct horse battery staple"
REGION = (0.55, 0.35, 0.8, 0.9)


_free_port = free_port


def _frame(w: int = 640, h: int = 360) -> np.ndarray:
    """A plain synthetic scene (platform edge, a box where the region is): nothing personal."""
    img = np.full((h, w, 3), (70, 75, 80), np.uint8)
    cv2.rectangle(img, (0, int(h * 0.7)), (w, h), (40, 40, 45), -1)
    cv2.line(img, (0, int(h * 0.7)), (w, int(h * 0.7)), (0, 200, 230), 6)
    x0, y0, x1, y1 = REGION
    cv2.rectangle(
        img, (int(x0 * w) + 20, int(y0 * h) + 20), (int(x1 * w) - 20, int(y1 * h) - 10), (150, 150, 160), -1
    )
    return img


def _write_evidence(root: Path, store: Store, event_id: str, camera: str) -> None:
    """A JPEG snapshot and a short H.264 clip, recorded as the evidence writer would."""
    d = root / camera
    d.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", _frame(), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    snap = d / f"{event_id}.jpg"
    snap.write_bytes(buf.tobytes())
    store.add_evidence(
        event_id, "snapshot", f"{camera}/{snap.name}", hashlib.sha256(buf).hexdigest(), snap.stat().st_size
    )
    clip = d / f"{event_id}.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for i in range(10):
            img = _frame()
            cv2.putText(img, f"{i}", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = clip.read_bytes()
    store.add_evidence(event_id, "clip", f"{camera}/{clip.name}", hashlib.sha256(data).hexdigest(), len(data))


def raise_alert(store: Store, evidence: Path, event_id: str, camera: str) -> None:
    """What the pipeline does for a new alert: the evidence first, then the event (the card's
    snapshot must exist when the card appears)."""
    ev = Event(event_id, EventType.ZONE_INTRUSION, camera, "voies", 0.0, 4.0, 0.83, REGION)
    store.upsert_event(ev, datetime.now(UTC), "alerts")
    _write_evidence(evidence, store, event_id, camera)


@dataclass
class Server:
    base: str
    store: Store
    evidence: Path
    ids: dict[str, str]


def start_site(
    tmp_path: Path, cameras: tuple[str, ...] = ("quai-nord", "parvis")
) -> tuple[subprocess.Popen[bytes], Server]:
    db = f"sqlite:///{tmp_path / 'lanterne.db'}"
    evidence = tmp_path / "evidence"
    config = {
        "mode": "alerts",
        "site": "Gare centrale",
        "store": {"url": db, "evidence_dir": str(evidence)},
        "cameras": [
            {
                "id": cam,
                "source": f"{cam}.mp4",
                "location": {"lat": 48.88, "lon": 2.355},
                "zones": [{"id": "voies", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
            }
            for cam in cameras
        ],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    store = Store.open(db)
    audit = AuditLog(store.engine)
    # Cheap hashes for the test accounts: the server verifies them with the parameters stored in
    # each hash, so login works the same, only faster.
    hasher, accounts.HASHER = accounts.HASHER, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        ids = {
            "op-nord": cleared_account(
                store.engine, audit, "op-nord", "operator", [cameras[0]], PASSWORD, "setup"
            ).id,
            "op-parvis": cleared_account(
                store.engine, audit, "op-parvis", "operator", [cameras[1]], PASSWORD, "setup"
            ).id,
        }
    finally:
        accounts.HASHER = hasher
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanterne.cli.main", "serve", "--config", str(path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/login", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.terminate()
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"lanterne serve did not start: {out[-2000:]}") from None
            time.sleep(0.2)
    return proc, Server(base, store, evidence, ids)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    proc, srv = start_site(tmp_path)
    try:
        yield srv
    finally:
        srv.store.close()
        proc.terminate()
        proc.wait(timeout=10)


def log_in(page: Page, base: str, login: str) -> None:
    page.goto(base + "/console")
    expect(page).to_have_url(base + "/login")  # not logged in: sent to the login page
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.fill("#code", login_json(login, PASSWORD)["code"])
    page.click("#submit")
    expect(page).to_have_url(base + "/console")
    expect(page.locator("#live")).to_have_text("live", timeout=5000)  # the stream is open


def card(page: Page, event_id: str):  # a Playwright Locator
    return page.locator(f'li.card[data-id="{event_id}"]')


def test_alert_queue_in_chromium(server: Server) -> None:
    base = server.base
    OUTPUT.mkdir(exist_ok=True)
    raise_alert(server.store, server.evidence, "old-1", "quai-nord")
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            log_in(page, base, "op-nord")
            # The login page asks /api/me first (401 when logged out): its messages are its own test's.
            problems[:] = [p for p in problems if "status of 401" not in p]
            expect(card(page, "old-1")).to_be_visible()

            # A new alert arrives without a reload, within 2 s of being stored.
            page.evaluate("window.__marker = 1")
            stored = time.monotonic()
            raise_alert(server.store, server.evidence, "live-1", "quai-nord")
            live = card(page, "live-1")
            expect(live).to_be_visible(timeout=2000)
            assert time.monotonic() - stored < 2.0
            assert page.evaluate("window.__marker") == 1  # same page, no reload
            assert page.locator("li.card").first.get_attribute("data-id") == "live-1"  # newest first
            expect(live.locator(".label")).to_have_text("machine suggestion — to verify")
            expect(live.locator(".precision")).to_have_text("precision not measured yet on this camera")
            expect(live).to_contain_text("quai-nord")
            expect(live).to_contain_text("voies")
            # The region is drawn over the snapshot where the event says.
            expect(live.locator(".snap img")).to_have_js_property("complete", True)
            img = live.locator(".snap img").bounding_box()
            box = live.locator(".snap .region").bounding_box()
            assert img and box and img["height"] > 100
            assert box["x"] - img["x"] == pytest.approx(REGION[0] * img["width"], abs=2)
            assert box["width"] == pytest.approx((REGION[2] - REGION[0]) * img["width"], abs=2)

            # Acknowledge, then dismiss: without a reason the server refuses and the page says so.
            live.get_by_role("button", name="Acknowledge").click()
            expect(live).to_have_attribute("data-state", "acknowledged")
            live = card(page, "live-1")
            # The title and the decision lists come from the server's vocabulary, in its order.
            expect(live.locator("h2 a")).to_have_text(EVENT_TITLES[EventType.ZONE_INTRUSION])
            expect(live.locator('select[name="reason"] option')).to_have_text(
                ["— choose —", *DISMISS_REASON_LABELS.values()]
            )
            assert live.locator('select[name="reason"] option').evaluate_all(
                "os => os.map(o => o.value)"
            ) == ["", *DISMISS_REASONS]
            assert live.locator('select[name="follow_up"] option').evaluate_all(
                "os => os.map(o => o.value)"
            ) == ["", *FOLLOW_UPS]
            live.get_by_role("button", name="Dismiss").click()
            expect(live.locator(".error")).to_contain_text("a dismissal needs a reason")
            expect(live).to_have_attribute("data-state", "acknowledged")
            live.locator('select[name="reason"]').select_option("street_furniture")
            live.get_by_role("button", name="Dismiss").click()
            expect(card(page, "live-1")).to_have_attribute("data-state", "dismissed")

            # Confirm with a follow-up (recorded, never dispatched).
            raise_alert(server.store, server.evidence, "live-2", "quai-nord")
            two = card(page, "live-2")
            expect(two).to_be_visible(timeout=2000)
            two.get_by_role("button", name="Acknowledge").click()
            expect(two).to_have_attribute("data-state", "acknowledged")
            two = card(page, "live-2")
            two.get_by_role("button", name="Confirm").click()
            expect(two.locator(".error")).to_contain_text("needs a follow-up")
            two.locator('select[name="follow_up"]').select_option("field_request")
            two.get_by_role("button", name="Confirm").click()
            expect(card(page, "live-2")).to_have_attribute("data-state", "confirmed")
            page.screenshot(path=str(OUTPUT / "console-queue.png"), full_page=True)

            # The detail: the timeline (who, when), then the clip once a purpose is given.
            page.goto(base + "/console/alerts/live-2")
            steps = page.locator("#timeline li.step")
            expect(steps).to_have_count(3)
            expect(steps.nth(1)).to_contain_text(f"Acknowledged by {server.ids['op-nord']}")
            expect(steps.nth(2)).to_contain_text(f"Confirmed by {server.ids['op-nord']}")
            expect(steps.nth(2)).to_contain_text("field request")
            page.fill("#purpose", "verify before handing over to the field team")
            with page.expect_response(lambda r: "/clip?purpose=" in r.url) as clip:
                page.get_by_role("button", name="Play clip").click()
            assert clip.value.status in (200, 206)
            wait_until(page, "document.getElementById('clip').readyState >= 2", timeout=5)
            assert page.evaluate("document.getElementById('clip').duration") > 1.5
            page.screenshot(path=str(OUTPUT / "console-alert-detail.png"), full_page=True)

            # The search page offers the server's event types, in its order.
            page.goto(base + "/console/search")
            expect(page.locator("#type option")).to_have_text(["any", *EVENT_TITLES.values()])
            assert page.locator("#type option").evaluate_all("os => os.map(o => o.value)") == [
                "",
                *(str(t) for t in EVENT_TITLES),
            ]

            # An operator of another camera sees nothing of it, not even a new one arriving.
            other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            log_in(other, base, "op-parvis")
            expect(other.locator("#empty")).to_be_visible()
            raise_alert(server.store, server.evidence, "live-3", "quai-nord")
            other.wait_for_timeout(1500)
            expect(other.locator("li.card")).to_have_count(0)
            other.goto(base + "/console/alerts/live-1")
            expect(other.locator("#problem")).to_contain_text("not allowed")
            expect(other.locator("li.card")).to_have_count(0)
        finally:
            browser.close()
    assert requests and all(u.startswith(base) for u in requests), requests
    # The two refusals (dismiss without a reason, confirm without a follow-up) are logged by the
    # browser as failed loads; anything else (a CSP violation, a script error) fails the test.
    refused = [p for p in problems if "status of 422" in p]
    assert len(refused) == 2 and len(problems) == 2, problems
