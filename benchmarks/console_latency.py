"""Latency from an alert stored to its card shown in an open console (issue 3: p95 ≤ 1 s).

A real `lanterne serve` process on SQLite, Debian's chromium driven by Playwright, logged in as an
operator with the queue open. This process then stores N alerts the way the pipeline does
(`Store.upsert_event`, mode `alerts`), at irregular intervals so they fall at every phase of the
server's 250 ms poll, and notes the wall-clock time when each `upsert_event` returns. In the page,
a MutationObserver notes `performance.timeOrigin + performance.now()` when each card enters the
queue. Both clocks are the same machine's wall clock; the latency is the difference.

    .venv/bin/python benchmarks/console_latency.py [--events 30]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import yaml
from playwright.sync_api import sync_playwright

from _accounts import cleared_operator  # same folder: run as a script
from lanterne.core.types import Event, EventType
from lanterne.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PASSWORD = "correct horse battery staple"
OBSERVER = """
() => {
  window.__shown = {};
  const list = document.getElementById("queue");
  new MutationObserver((records) => {
    const t = performance.timeOrigin + performance.now();
    for (const r of records) for (const n of r.addedNodes) {
      if (n.dataset && n.dataset.id && !(n.dataset.id in window.__shown)) window.__shown[n.dataset.id] = t;
    }
  }).observe(list, { childList: true });
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=30)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lanterne-latency-"))
    db = f"sqlite:///{tmp / 'lanterne.db'}"
    square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    config = {
        "mode": "alerts",
        "site": "latency",
        "store": {"url": db, "evidence_dir": str(tmp / "evidence")},
        "cameras": [
            {
                "id": "cam-1",
                "source": "a.mp4",
                "location": {"lat": 48.88, "lon": 2.35},
                "zones": [{"id": "z", "polygon": square, "events": {"zone_intrusion": {}}}],
            }
        ],
    }
    (tmp / "site.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    store = Store.open(db)
    codes = cleared_operator(store, "op-1", PASSWORD, ["cam-1"])
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lanterne.cli.main",
            "serve",
            "--config",
            str(tmp / "site.yaml"),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stored: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/login", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("lanterne serve did not start") from None
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(base + "/login")
            page.fill("#login", "op-1")
            page.fill("#password", PASSWORD)
            page.fill("#code", codes[0])
            page.click("#submit")
            page.wait_for_url(base + "/console")
            page.wait_for_function("() => document.getElementById('live').textContent === 'live'")
            page.evaluate(OBSERVER)
            rng = random.Random(7)
            for i in range(args.events):
                eid = f"lat-{i:03d}"
                ev = Event(eid, EventType.ZONE_INTRUSION, "cam-1", "z", 0.0, 2.0, 0.8, (0.2, 0.2, 0.5, 0.8))
                store.upsert_event(ev, datetime.now(UTC), "alerts")
                stored[eid] = time.time() * 1000
                time.sleep(rng.uniform(0.3, 0.8))
            page.wait_for_function(
                f"() => Object.keys(window.__shown).length >= {args.events}", timeout=10000
            )
            shown: dict[str, float] = page.evaluate("window.__shown")
            browser.close()
    finally:
        store.close()
        proc.terminate()
        proc.wait(timeout=10)
    lat = sorted(shown[k] - stored[k] for k in stored)
    p95 = lat[max(0, round(0.95 * len(lat)) - 1)]
    print(f"alerts: {len(lat)}  (SQLite, server poll 250 ms, chromium headless)")
    print(
        f"latency stored → card shown: min {lat[0]:.0f} ms, median {statistics.median(lat):.0f} ms, "
        f"p95 {p95:.0f} ms, max {lat[-1]:.0f} ms"
    )
    print(f"goal p95 ≤ 1000 ms: {'met' if p95 <= 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
