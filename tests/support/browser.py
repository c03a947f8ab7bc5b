"""What the browser tests share: Debian's chromium driven by Playwright (never Playwright's own
browser download, which needs the network), and a real `lanterne serve` on a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.support.console import login_json

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    # The live wall: tiles play muted without a click, and WebRTC offers the host's address, not
    # an mDNS name Janus cannot resolve (scale-out-and-live-view.md §6).
    "--autoplay-policy=no-user-gesture-required",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
"""Screenshots land here (gitignored), to be looked at."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def lanterne_serve(config: Path, probe: str = "/public/style.css") -> Iterator[str]:
    """Start `lanterne serve --config CONFIG` in a subprocess, wait until `probe` answers 200,
    yield the base URL, and stop the server afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanterne.cli.main", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + probe, timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"lanterne serve did not start: {out[-2000:]}")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, through Playwright; closed however the test ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def watch(page: Page, requests: list[str], problems: list[str]) -> None:
    """Collect every URL `page` asks for (to check nothing comes from outside the app) and every
    console error or warning, uncaught exception and HTTP error (a page that works reports none,
    including content-security-policy violations)."""
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)


def log_in(page: Page, base: str, login: str, password: str) -> None:
    """Log in through the console's own form, as a person would, and wait to be sent on."""
    page.goto(base + "/login", wait_until="networkidle")
    page.fill("#login", login)
    page.fill("#password", password)
    body = login_json(login, password)  # the second factor, for an account that has one
    if "code" in body:
        page.fill("#code", body["code"])
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)


def wait_until(page: object, expression: str, timeout: float = 5.0) -> None:
    """Poll a JavaScript expression from Python until it is truthy.

    Playwright's `wait_for_function` re-evaluates its predicate inside the page with `eval`, which
    the console's CSP (`default-src 'self'`) rightly forbids; `page.evaluate` goes through the
    DevTools protocol, which the CSP does not govern."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.05)


def recorded_site(tmp_path: Path, cameras: list[dict[str, object]]) -> tuple[Path, str]:
    """A recorded alerts-mode site's `site.yaml` under `tmp_path` (SQLite store, evidence, audit key,
    recordings and their key file beside it) with these cameras; returns its path and store URL."""
    db = f"sqlite:///{tmp_path / 'lanterne.db'}"
    config = {
        "mode": "alerts",
        "site": "Gare centrale",
        "store": {"url": db, "evidence_dir": str(tmp_path / "evidence")},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "recording": {"dir": str(tmp_path / "recordings"), "key_file": str(tmp_path / "recording-keys.json")},
        "cameras": cameras,
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, db
