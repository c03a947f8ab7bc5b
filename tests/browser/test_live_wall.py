"""The live wall in a real browser (issue 14): Debian's chromium through Playwright, a real
`lanterne serve` and `lanterne run` over a real RTSP camera (GStreamer's server looping PETS
2009), Debian's Janus started by the console, WebRTC between them.

An operator opens the wall, states the purpose of the session, puts the camera on a tile and
sees it live, anonymised: the frame grabbed from the tile's <video>, set beside the camera's frame
it shows, keeps little of the camera's fine detail in the heads of the PETS ground truth while
the lawn keeps its detail. Removing the protection without a permission is refused with a reason
and recorded; with one, the tile turns red, says until when, and the heads come back; the
privacy mask over the windows stays flat. Every view's start and end, and the removal, are in the
audit log. Screenshots are left in `test-output/wall-*.png`."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from argon2 import PasswordHasher
from playwright.sync_api import Page

from lanterne.accountability import accounts
from lanterne.accountability.privacy import grant
from lanterne.audit import Action, AuditEntry, AuditLog
from lanterne.store import Store
from tests.support.browser import OUTPUT, chromium, lanterne_serve, log_in, wait_until, watch
from tests.support.console import cleared_account
from tests.support.rtsp import h264_clip, rtsp_camera
from tests.support.video import VIDEO

pytestmark = [pytest.mark.slow]

PASSWORD = "lanterns carry light slowly"
CAMERA = "quai-nord"
PURPOSE = "support of the night patrol, sector 3"
REASON = "identify the author of an assault"
REFERENCE = "PV 2026/777"
WINDOWS = [[0.42, 0.1], [0.75, 0.1], [0.75, 0.19], [0.42, 0.19]]
"""The privacy mask over the building's windows across the top of the PETS view."""
TILE = (640, 360)
INNER = (480, 360)
"""The 4:3 camera inside the 16:9 tile: 480x360, 80 px bars left and right."""
LEFT = 80
SCALE = 360 / 576
LAWN = (
    slice(round(420 * SCALE), round(560 * SCALE)),
    slice(LEFT + round(150 * SCALE), LEFT + round(450 * SCALE)),
)
FRAMES = 200


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return h264_clip(tmp_path_factory.mktemp("rtsp") / "cam.mp4", frames=FRAMES)


@pytest.fixture(scope="module")
def camera_frames(clip: Path) -> list[np.ndarray]:
    """The camera's frames as the tile shows them: scaled into the tile, between the bars."""
    out = []
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            tile = np.zeros((TILE[1], TILE[0], 3), np.uint8)
            tile[:, LEFT : LEFT + INNER[0]] = cv2.resize(
                f.to_ndarray(format="bgr24"), INNER, interpolation=cv2.INTER_AREA
            )
            out.append(tile)
    return out


@contextmanager
def lanterne_run(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`lanterne run` on `config`, its log in `run.log` beside it."""
    with (config.parent / "run.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lanterne.cli.main", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _site(tmp_path: Path, url: str, **extra: object) -> tuple[Path, str, dict[str, str]]:
    db = f"sqlite:///{tmp_path / 'lanterne.db'}"
    config = {
        **extra,
        "mode": "statistics",
        "site": "Gare centrale",
        "store": {"url": db, "evidence_dir": str(tmp_path / "evidence")},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": [
            {
                "id": CAMERA,
                "source": url,
                "location": {"lat": 48.88, "lon": 2.355},
                "privacy_masks": [{"id": "fenetres", "polygon": WINDOWS, "reason": "dwellings"}],
            }
        ],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    store = Store.open(db)
    audit = AuditLog(store.engine)
    hasher, accounts.HASHER = accounts.HASHER, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        ids = {
            "op-nord": cleared_account(store.engine, audit, "op-nord", "operator", [CAMERA], PASSWORD, "t").id
        }
    finally:
        accounts.HASHER = hasher
    store.close()
    return path, db, ids


def _entries(db: str) -> list[AuditEntry]:
    store = Store.open(db)
    try:
        return AuditLog(store.engine).entries()
    finally:
        store.close()


def _grab(page: Page) -> np.ndarray:
    """The frame the first tile shows now, read back from its <video>, or its canvas when it plays
    the fallback (PNG, lossless)."""
    url = page.evaluate(
        """() => {
          const v = document.querySelector('.tile[data-camera] video');
          if (!v) return document.querySelector('.tile[data-camera] canvas').toDataURL('image/png');
          const c = document.createElement('canvas');
          c.width = v.videoWidth; c.height = v.videoHeight;
          c.getContext('2d').drawImage(v, 0, 0);
          return c.toDataURL('image/png');
        }"""
    )
    png = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(png, cv2.IMREAD_COLOR)


def _match(shown: np.ndarray, frames: list[np.ndarray], top: int) -> int:
    """The camera frame the tile shows: the nearest one below `top` (people walk, so their bodies
    tell neighbouring frames apart; pixelated heads change a few pixels only)."""
    errors = [float(np.abs(shown[top:].astype(np.int16) - f[top:]).mean()) for f in frames]
    best = int(np.argmin(errors))
    assert errors[best] < 8, f"no camera frame looks like the tile's (best error {errors[best]:.1f})"
    return best


def _heads(index: int) -> list[tuple[slice, slice]]:
    """Head bands (top fifth, middle 60 %) of the ground truth's people in the tile, for the tall ones."""
    gt = np.loadtxt(VIDEO / "vtest.PETS09-S2L1.gt.txt", delimiter=",")
    out = []
    for _, _, x, y, bw, bh, considered, *_ in gt[gt[:, 0] == index + 1]:
        if not considered or bh < 65:
            continue
        cx, half = x + bw / 2, bw * 0.3
        x0, x1 = LEFT + round((cx - half) * SCALE), LEFT + round((cx + half) * SCALE)
        y0, y1 = round(y * SCALE), round((y + bh / 5) * SCALE)
        if y0 > 70 and x0 >= LEFT and x1 <= LEFT + INNER[0] and y1 <= TILE[1]:
            out.append((slice(y0, y1), slice(x0, x1)))
    return out


def _kept(shown: np.ndarray, original: np.ndarray, region: tuple[slice, slice]) -> float:
    """How much of the camera's fine detail the tile keeps in `region`: the correlation of their
    Laplacians (1 the same detail, about 0 none of it)."""
    lap = [cv2.Laplacian(cv2.cvtColor(i, cv2.COLOR_BGR2GRAY), cv2.CV_64F)[region] for i in (shown, original)]
    a, b = lap
    return float((a * b).sum() / max(1e-9, np.sqrt((a * a).sum() * (b * b).sum())))


def _janus_of(config: Path) -> int:
    """The pid of the Janus that the `lanterne serve` of `config` started (its child)."""

    def cmdline(pid: str) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return ""

    for pid in filter(str.isdigit, os.listdir("/proc")):
        if "janus" in cmdline(pid).split(" ")[0]:
            stat = Path(f"/proc/{pid}/stat").read_text()
            parent = stat.rsplit(")", 1)[1].split()[1]
            if f"serve --config {config}" in cmdline(parent):
                return int(pid)
    pytest.fail("no Janus started by this console")


FRESH = """(v => new Promise(done => {
  const timer = setTimeout(() => done(false), 2000);
  v.requestVideoFrameCallback(() => { clearTimeout(timer); done(true); });
}))(document.querySelector('.tile[data-camera] video'))"""
"""Whether the tile presents a new frame within 2 s."""


DRAWN = """(canvas => new Promise(done => {
  let n = 0;
  const count = () => n++;
  canvas.addEventListener("frame", count);
  setTimeout(() => { canvas.removeEventListener("frame", count); done(n); }, 2000);
}))(document.querySelector('.tile[data-camera] canvas'))"""
"""How many pictures the fallback tile says it drew in 2 s (its "frame" event, what its frozen
check and the clock camera's reader, `tests/support/clock.py`, go by)."""


def _playing(page: Page, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (
        page.evaluate("document.querySelector('.tile[data-camera]').dataset.state") == "live"
        and page.evaluate(FRESH)
    ):
        assert time.monotonic() < deadline, "the tile did not play again"
        time.sleep(0.3)


def _measure(page: Page, frames: list[np.ndarray], tries: int = 6) -> tuple[float, float, int]:
    """Median detail kept in the heads and on the lawn, over a frame with at least three heads."""
    for _ in range(tries):
        shown = _grab(page)
        index = _match(shown, frames, top=80)
        heads = _heads(index)
        if len(heads) >= 3:
            kept = sorted(_kept(shown, frames[index], h) for h in heads)
            return kept[len(kept) // 2], _kept(shown, frames[index], LAWN), len(heads)
        time.sleep(0.7)
    pytest.fail("no frame with three tall people in view")


def test_a_camera_is_watched_live_anonymised_and_unmasked_only_under_a_permission(
    tmp_path: Path, clip: Path, camera_frames: list[np.ndarray]
) -> None:
    OUTPUT.mkdir(exist_ok=True)
    with rtsp_camera(clip) as camera:
        config, db, ids = _site(tmp_path, camera.url)
        with lanterne_run(config), lanterne_serve(config) as base, chromium() as browser:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            requests: list[str] = []
            problems: list[str] = []
            watch(page, requests, problems)
            log_in(page, base, "op-nord", PASSWORD)
            problems.clear()  # the login page asks /api/me first (401 when logged out): its own test's
            page.goto(base + "/console/wall", wait_until="networkidle")
            page.fill("#purpose", PURPOSE)
            page.click("#purpose-form button[type=submit]")
            started = time.monotonic()
            page.click(f"#camera-list li[data-camera='{CAMERA}']")
            wait_until(
                page,
                "(t => t && t.dataset.state === 'live' && t.querySelector('video').readyState >= 2"
                " && t.querySelector('video').videoWidth === 640)(document.querySelector('.tile[data-camera]'))",
                30,
            )
            print(
                f"tile live {time.monotonic() - started:.2f} s after the click (camera process and gateway cold)"
            )
            assert page.inner_text(".tile[data-camera] .badge.anon") == "anonymised"
            time.sleep(1.0)
            heads, lawn, n = _measure(page, camera_frames)
            page.screenshot(path=str(OUTPUT / "wall-anonymised.png"))
            print(f"anonymised: heads keep {heads:.2f} of their detail (median of {n}), the lawn {lawn:.2f}")
            assert heads < 0.45 and lawn > 0.6
            # The tile says how far behind the camera it is: the process's lag from the camera's
            # health row plus the browser's share from WebRTC's statistics, both measured.
            wait_until(
                page, "document.querySelector('.tile[data-camera] .badge.delay').dataset.browserMs > 0", 15
            )
            delay = page.inner_text(".tile[data-camera] .badge.delay")
            print(f"the tile shows its delay: {delay}")
            assert re.fullmatch(r"≥ \d+ ms", delay) and 0 < int(delay.split()[1]) < 3000, delay

            # A second viewer joins the camera's running stream on another tile: Janus asks the
            # stream for a keyframe as that viewer's connection comes up (RTCP), so its first
            # picture is fresh, not the one Janus kept from up to a second before.
            page.dispatch_event(".tile[data-tile='2']", "click")
            page.click(f"#camera-list li[data-camera='{CAMERA}']")
            wait_until(
                page,
                "(t => t && t.dataset.state === 'live' && t.querySelector('video').readyState >= 2)"
                "(document.querySelector(\".tile[data-tile='2'][data-camera]\"))",
                30,
            )
            page.click(".tile[data-tile='2'] button.close")
            wait_until(page, "document.querySelectorAll('.tile[data-camera]').length === 1", 15)

            # The camera hangs: the tile says so, and plays again by itself once it is back.
            camera.hang()
            wait_until(page, "document.querySelector('.tile[data-camera]').dataset.state !== 'live'", 15)
            camera.resume()
            _playing(page, 60)
            # The gateway dies: the console restarts it, the tile plays again without a reload.
            os.kill(_janus_of(config), signal.SIGKILL)
            wait_until(page, "document.querySelector('.tile[data-camera]').dataset.state !== 'live'", 15)
            _playing(page, 30)

            # Without a permission: refused, said, recorded; the tile stays anonymised.
            page.click(".tile[data-camera] button.unmask")
            page.fill("#unmask-reason", REASON)
            page.fill("#unmask-reference", REFERENCE)
            page.click("#unmask-go")
            wait_until(
                page, "document.getElementById('message').textContent.includes('lanterne privacy grant')", 15
            )
            wait_until(page, "document.querySelector('.tile[data-camera]').dataset.state === 'live'", 30)
            assert page.query_selector(".tile.raw") is None

            store = Store.open(db)
            grant(
                store.engine,
                AuditLog(store.engine),
                user=ids["op-nord"],
                cameras=[CAMERA],
                until=datetime.now(UTC) + timedelta(days=7),
                reason="judicial requisitions",
                granted_by="adm-1",
                now=datetime.now(UTC),
            )
            store.close()
            page.click(".tile[data-camera] button.unmask")
            page.fill("#unmask-reason", REASON)
            page.fill("#unmask-reference", REFERENCE)
            page.click("#unmask-go")
            wait_until(
                page,
                "(t => t && t.classList.contains('raw') && t.dataset.state === 'live'"
                " && t.querySelector('video').readyState >= 2)(document.querySelector('.tile[data-camera]'))",
                30,
            )
            assert "PRIVACY PROTECTION REMOVED until" in page.inner_text(".tile[data-camera] .banner")
            time.sleep(1.5)
            raw_heads, raw_lawn, n = _measure(page, camera_frames)
            shown = _grab(page)
            page.screenshot(path=str(OUTPUT / "wall-unmasked.png"))
            print(
                f"unmasked: heads keep {raw_heads:.2f} of their detail (median of {n}), the lawn {raw_lawn:.2f}"
            )
            assert raw_heads > 0.6 and raw_lawn > 0.6
            # The windows stay masked: flat, whatever the permission.
            y0, y1 = round(0.11 * 360), round(0.18 * 360)
            x0, x1 = LEFT + round(0.45 * 480), LEFT + round(0.72 * 480)
            assert float(cv2.cvtColor(shown, cv2.COLOR_BGR2GRAY)[y0:y1, x0:x1].std()) < 6

            page.click(".tile[data-camera] button.close")
            time.sleep(1.0)
            assert not [r for r in requests if not r.startswith(base) and not r.startswith("data:")]
            # The refused removal is the only error the page met (its 403, as the browser reports it).
            assert problems and all("403" in p for p in problems), problems

    entries = _entries(db)
    views = [e for e in entries if e.action == Action.VIEW_LIVE]
    starts = [e for e in views if e.details["live"] == "start"]
    ends = [e for e in views if e.details["live"] == "end"]
    # Tile 2's viewer adds one anonymised view to tile 1's.
    assert [e.details["kind"] for e in starts] == ["anonymised", "anonymised", "anonymised", "raw"]
    assert all(e.purpose == PURPOSE and e.object_id == CAMERA and e.user_id == ids["op-nord"] for e in starts)
    assert {e.details["view"] for e in ends} == {e.details["view"] for e in starts}
    refused = [
        e
        for e in entries
        if e.action == Action.ACCESS_DENIED and e.details.get("refused") == "remove privacy protection"
    ]
    assert len(refused) == 1
    [removed] = [e for e in entries if e.action == Action.PRIVACY_REMOVED]
    assert removed.purpose == REASON and removed.details["reference"] == REFERENCE
    [restored] = [e for e in entries if e.action == Action.PRIVACY_RESTORED]
    assert restored.details["opened_by"] == removed.seq
    # The anonymised stream was asked for a keyframe at least when its second viewer joined.
    asked = re.findall(
        r"live \S+: anonymised stream stopped after .* (\d+) keyframes asked for",
        (config.parent / "run.log").read_text(),
    )
    assert asked and int(asked[0]) >= 1, asked


def test_without_webrtc_a_camera_dragged_from_the_map_plays_the_anonymised_fallback(
    tmp_path: Path, clip: Path, camera_frames: list[np.ndarray]
) -> None:
    """No gateway on this console (its Janus program is missing): the operator drags the camera
    from the wall's map onto a tile, which plays the view as MJPEG relayed by the console, marked
    "fallback", anonymised as over WebRTC; protection cannot be removed that way."""
    OUTPUT.mkdir(exist_ok=True)
    with rtsp_camera(clip) as camera:
        config, db, _ = _site(tmp_path, camera.url, live={"janus_binary": str(tmp_path / "no-janus")})
        with lanterne_run(config), lanterne_serve(config) as base, chromium() as browser:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            requests: list[str] = []
            problems: list[str] = []
            watch(page, requests, problems)
            log_in(page, base, "op-nord", PASSWORD)
            page.goto(base + "/console/wall", wait_until="networkidle")
            assert "fallback" in page.inner_text("#message")
            page.fill("#purpose", PURPOSE)
            page.click("#purpose-form button[type=submit]")
            wait_until(page, f"document.querySelector(\".wall-cam[data-camera='{CAMERA}']\") !== null", 15)
            started = time.monotonic()
            # The drag as the page receives it: Playwright's mouse-driven drag does not start an
            # HTML5 drag in this headless chromium, so the two events carry one DataTransfer.
            dragged = page.evaluate_handle("() => new DataTransfer()")
            page.dispatch_event(f".wall-cam[data-camera='{CAMERA}']", "dragstart", {"dataTransfer": dragged})
            page.dispatch_event(".tile[data-tile='2']", "drop", {"dataTransfer": dragged})
            wait_until(
                page,
                "(t => t && t.dataset.state === 'live' && t.querySelector('canvas'))"
                "(document.querySelector(\".tile[data-tile='2'][data-camera]\"))",
                30,
            )
            print(f"fallback tile live {time.monotonic() - started:.2f} s after the drop")
            assert page.inner_text(".tile[data-camera] .badge.fallback") == "fallback"
            assert page.inner_text(".tile[data-camera] .badge.anon") == "anonymised"
            assert page.evaluate(DRAWN) >= 2, "the fallback tile announces the pictures it draws"
            heads, lawn, n = _measure(page, camera_frames)
            page.screenshot(path=str(OUTPUT / "wall-fallback.png"))
            print(f"fallback: heads keep {heads:.2f} of their detail (median of {n}), the lawn {lawn:.2f}")
            assert heads < 0.45 and lawn > 0.6

            page.click(".tile[data-camera] button.unmask")
            page.fill("#unmask-reason", REASON)
            page.fill("#unmask-reference", REFERENCE)
            page.click("#unmask-go")
            wait_until(page, "document.getElementById('message').textContent.includes('needs WebRTC')", 10)
            assert page.query_selector(".tile.raw") is None
            page.click(".tile[data-camera] button.close")
            time.sleep(1.0)
            assert not [r for r in requests if not r.startswith(base) and not r.startswith("data:")]

    views = [e for e in _entries(db) if e.action == Action.VIEW_LIVE]
    assert [(e.details["live"], e.details["kind"]) for e in views] == [
        ("start", "anonymised"),
        ("end", "anonymised"),
    ]
    assert views[1].details["reason"] == "closed" and views[0].purpose == PURPOSE
