"""The live wall end to end, as an operator uses it (issue 14): camera-to-screen latency, time to a
tile's first frame, CPU per watched tile, and 16 tiles of 16 cameras with the analysis in real
time, printed side by side with their goals from one run.

Everything is the real thing on this machine: clock cameras (GStreamer's RTSP server drawing the
wall-clock time each frame is pushed at into the frame, `tests/support/rtsp.py clock_camera`,
640x360 at 10 fps, grey texture and a moving bar, nobody in view), `lanterne run` decoding and
analysing them and encoding the watched ones (scale, pixelate, x264, RTP), `lanterne serve` and
the Janus it starts on the first live request, and Debian's chromium (Playwright) logged in as an
operator on `/console/wall`, clicking cameras onto tiles.

Each camera's clock is configured as a motion mask (`cameras[].motion_masks`, a rectangle a few
pixels around its blocks), as a user masks a camera's on-screen clock: otherwise the clock alone
is motion on every frame (`benchmarks/per_frame_costs.py --clock`). `--no-motion-mask` measures
without it. The sweeping bar is motion the gate must not ignore, so the detector still runs on
every analysed frame; `--detector-interval S` sets `detector.interval_seconds` (boxes carried by
optical flow between detections, at some loss of recall: docs/config.md) and `--input-size 320`
`detector.input_size` (the same network 1.6 times cheaper per call) to see what a 2-core machine
needs for 16 such cameras.

In the page, every frame a tile's `<video>` presents (`requestVideoFrameCallback`) has its clock
read (`tests/support/clock.py CLOCK_JS`); `Date.now()` minus the clock is the camera-to-screen
latency, anonymisation included. A frame whose blocks do not read counts as not decoded.

`--transport mjpeg` measures the same over the wall's fallback: the console has no gateway (its
Janus program is missing), so the page plays every tile as MJPEG relayed by `lanterne serve` (one
relay per camera: depacketise, decode, JPEG) and draws each picture on the tile's `<canvas>`; the
clock of each picture is read as the tile's "frame" event says it was drawn, and timed at the
next animation frame, where a `<video>`'s frame callbacks run too. The console's CPU
(`lanterne serve`, every window) and its relays' own (their closing lines in its log) are printed
in both transports, so the two runs read side by side.

Phases, one run (`lanterne run` has warmed up: every camera within 1 s of real time):
  0. no tile watched: the `lanterne run` process's CPU (`/proc/PID/stat`, every thread);
  1. camera 1 on tile 1: time to first frame with the gateway cold (Janus starts), then latency
     and CPU with one watched tile;
  2. camera 1 again on every other tile (the stream is shared: each new viewer joins it), CPU;
  3. tiles 2..N switched to cameras 2..N (a new encoder each: warm time to first frame), then
     latency, per-tile frame rate, CPU and the cameras' lag (`camera_health`, the runner's
     health rows, read every 2.5 s) with N cameras watched, for twice the window;
  4. every tile closed, the streams stopped: no tile again;
  5. with `--compare-source`: `lanterne run` restarted on camera 1 alone, once as it is and once
     with the RTSP reader's previous settings (FFmpeg's default probe, frame threads), one tile
     watched each time.
CPU per tile = (CPU with tiles - mean CPU with none) / tiles, over windows of the same length,
printed only when the analysis ran at its configured rate in every window compared (a camera
that sheds halves its analysis, which dwarfs a tile). The live encoders' own counts (frames,
whole-frame pixelation, CPU of their thread) come from their closing lines in `lanterne run`'s
log. The clock cameras share `--servers` RTSP servers (0.035 core each) so that the cameras cost
the machine little besides what is measured. The page's readings are kept in `windows.json`
beside the logs.

    .venv/bin/python benchmarks/live_wall.py [--quick] [--cameras 16] [--servers 4] [--seconds 30]
        [--fps 10] [--compare-source] [--no-motion-mask] [--detector-interval 0] [--input-size 416]
        [--input-shape square] [--transport webrtc] [--nice-browser] [--analysis-only]
        [--transport webrtc|mjpeg]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.support.browser import chromium, free_port  # noqa: E402
from tests.support.clock import CLOCK_JS  # noqa: E402
from tests.support.rtsp import clock_camera  # noqa: E402
from tests.support.rtsp_clock_server import cells as clock_cells  # noqa: E402

from _accounts import cleared_operator  # noqa: E402  same folder: run as a script
from lanterne.accountability.cameras import camera_health  # noqa: E402
from lanterne.store import Store  # noqa: E402

PASSWORD = "lanterns carry light slowly"
PURPOSE = "benchmark of the live wall"
GOAL_P95_MS = 300.0
GOAL_FIRST_FRAME_S = 1.5
GOAL_CORES = 0.06
LINGER_S = 16.0
"""An unwatched stream is fed for `runtime.live_wall.LINGER` (15 s) after its last viewer left."""
CLK = os.sysconf("SC_CLK_TCK")

PREVIOUS_SOURCE = (
    "import lanterne.video.capture.source as s\n"
    "assert hasattr(s, 'LIVE_THREAD_TYPE') and hasattr(s, 'LIVE_OPTIONS'), 'no live-source settings'\n"
    "s.LIVE_OPTIONS = dict(s.RTSP_OPTIONS)\n"
    "s.LIVE_THREAD_TYPE = 'AUTO'\n"
    "s.PROBED_OPTIONS = None\n"
)
"""`lanterne run` with the RTSP reader as it was before issue 14 measured it: FFmpeg's default
probe (about 3 s of the camera read before the first frame) and frame threads."""

STEPS_JS = r"""
// Timestamps (Date.now()) of a tile start's steps, taken in the page as they happen: the
// console granting the view (the wall's POST .../views), and the gateway's signalling over its
// WebSocket (opened, offer received, answer sent, WebRTC up). Installed before the wall's own
// scripts, wrapping fetch and WebSocket; it changes nothing they do.
(() => {
  const marks = [];
  window.__marks = marks;
  const mark = (what) => marks.push([Date.now(), what]);
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === "string" ? input : input.url;
    const asked = ((init && init.method) || "GET") === "POST" && /\/views(\/raw)?$/.test(url);
    if (asked) mark("view asked");
    const answer = fetch0.apply(this, arguments);
    if (asked) answer.then(() => mark("view granted"), () => {});
    return answer;
  };
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      mark("socket made");
      this.addEventListener("open", () => mark("socket open"));
      this.addEventListener("message", (e) => {
        try {
          const m = JSON.parse(e.data);
          if (m.jsep && m.jsep.type === "offer") mark("offer");
          else if (m.janus === "webrtcup") mark("webrtc up");
        } catch (_) {}
      });
    }
    send(data) {
      try {
        const m = JSON.parse(data);
        if (m.jsep && m.jsep.type === "answer") mark("answer");
      } catch (_) {}
      return super.send(data);
    }
  };
})();
"""
STEPS = ("view asked", "view granted", "socket made", "socket open", "offer", "answer", "webrtc up")

METER_JS = r"""
(() => {
  const clock = window.__lanterneClock;
  const meter = { tiles: {}, recording: false };
  function tile(k) {
    if (!meter.tiles[k]) {
      meter.tiles[k] = { source: null, stale: null, halt: null, armed: null, first: null, firstLatency: null,
                         samples: [], at: [], misses: 0, calls: 0, p0: null, p1: null, t0: null, t1: null,
                         shown: [] };
    }
    return meter.tiles[k];
  }
  function follow(k, source) {
    const st = tile(k);
    if (st.halt) st.halt();
    st.source = source;
    st.halt = clock.follow(source, (value, now, shown) => {
      if (st.armed !== null && st.first === null) {
        st.first = now;
        st.firstLatency = value === null ? null : clock.elapsed(value, now);
      }
      if (meter.recording) {
        st.calls++;
        if (value === null) st.misses++;
        else { st.samples.push(clock.elapsed(value, now)); st.at.push(now); }
        if (st.p0 === null) { st.p0 = shown; st.t0 = now; }
        st.p1 = shown; st.t1 = now;
      }
    });
  }
  // A tile's <video> (WebRTC) or <canvas> (the fallback) is replaced each time it shows a camera:
  // follow the one that plays.
  setInterval(() => {
    for (const node of document.querySelectorAll(".tile[data-tile]")) {
      const k = node.dataset.tile, st = tile(k);
      const video = node.querySelector("video"), canvas = node.querySelector("canvas");
      const source = video && video.srcObject ? video : canvas;
      if (source && source !== st.source && source !== st.stale) follow(k, source);
    }
  }, 10);
  // What each tile says of its own delay (its badge, refreshed every 2 s), beside the clock's.
  setInterval(() => {
    if (!meter.recording) return;
    for (const node of document.querySelectorAll(".tile[data-tile]")) {
      const badge = node.querySelector(".badge.delay");
      if (!badge || !badge.dataset.browserMs) continue;
      tile(node.dataset.tile).shown.push(Number(badge.dataset.lagMs || 0) + Number(badge.dataset.browserMs));
    }
  }, 1000);
  meter.arm = (k) => {
    const st = tile(k);
    if (st.halt) st.halt();
    st.stale = st.source; st.source = null; st.halt = null;
    st.armed = Date.now(); st.first = null; st.firstLatency = null;
  };
  meter.first = (k) => { const st = tile(k); return st.first === null ? null : [st.first, st.firstLatency]; };
  meter.reset = () => {
    for (const st of Object.values(meter.tiles)) {
      st.samples = []; st.at = []; st.misses = 0; st.calls = 0; st.p0 = st.p1 = st.t0 = st.t1 = null; st.shown = [];
    }
    meter.recording = true;
  };
  meter.collect = () => {
    meter.recording = false;
    const out = {};
    for (const [k, st] of Object.entries(meter.tiles)) {
      const fps = st.t1 !== null && st.t1 > st.t0 ? (st.p1 - st.p0) / ((st.t1 - st.t0) / 1000) : 0;
      out[k] = { samples: st.samples, at: st.at, misses: st.misses, calls: st.calls, fps, shown: st.shown };
    }
    return out;
  };
  window.__meter = meter;
})();
"""


# --- processes --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, every thread, from /proc (10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def browser_pids() -> list[int]:
    """Chromium's processes (the benchmark's browser is the only one on the machine)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip().startswith("chrom"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def browser_cpu() -> dict[int, float]:
    out = {}
    for pid in browser_pids():
        try:
            out[pid] = cpu_seconds(pid)
        except (OSError, IndexError):
            continue
    return out


def renice_browser(niceness: int) -> None:
    """Chromium at a lower priority, standing for an operator's workstation: the wall's pages
    run there, not on the server that analyses the cameras.

    Every thread's own niceness, and its autogroup's: Playwright starts the browser in a session
    of its own, and where the kernel groups each session's processes for scheduling
    (`/proc/sys/kernel/sched_autogroup_enabled`), a thread's niceness counts only against its own
    session's threads; the sessions share the cores by their groups' niceness. Reniced threads
    alone left Chromium its 0.7 core beside `lanterne run`'s whole session."""
    for pid in browser_pids():
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, niceness)
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(niceness))


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(p) for p in text]
    return out


def janus_pid(serve: int) -> int | None:
    for pid in children(serve):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "janus":
                return pid
        except OSError:
            continue
    return None


@contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def lanterne_run(config: Path, log: Path, patch: str | None = None) -> Any:
    """`lanterne run`, as an operator starts it, or with `patch` applied to its modules first."""
    if patch is None:
        args = [sys.executable, "-m", "lanterne.cli.main", "run", "--config", str(config)]
    else:
        code = patch + (
            "import sys\nfrom lanterne.cli.main import app\n"
            f"sys.argv = ['lanterne', 'run', '--config', {str(config)!r}]\napp()\n"
        )
        args = [sys.executable, "-c", code]
    return process(args, log)


@contextmanager
def lanterne_serve(config: Path, log: Path) -> Iterator[tuple[str, int]]:
    """`lanterne serve`, as an operator starts it (its INFO lines on: the fallback relays'
    closing lines, with their CPU, come from there)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "lanterne.cli.main", "serve", "--config", str(config), "--port", str(port)]
    with process(args, log) as proc:
        deadline = time.monotonic() + 180  # a loaded 2-core machine imports slowly
        while True:
            try:
                with urllib.request.urlopen(base + "/public/style.css", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"lanterne serve did not start; see {log}") from None
                time.sleep(0.2)
        yield base, proc.pid


CLOCK_MARGIN = 4
"""Pixels a user's rectangle leaves around the clock's blocks."""


def clock_mask(size: tuple[int, int] = (640, 360)) -> dict[str, Any]:
    """The motion mask a user draws over the clock camera's on-screen clock, in frame fractions
    as zones are."""
    c = clock_cells(*size)
    w, h = size
    x0 = max(min(b[0] for b in c) - CLOCK_MARGIN, 0) / w
    y0 = max(min(b[1] for b in c) - CLOCK_MARGIN, 0) / h
    x1 = min(max(b[2] for b in c) + CLOCK_MARGIN, w) / w
    y1 = min(max(b[3] for b in c) + CLOCK_MARGIN, h) / h
    return {"id": "clock", "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "reason": "on-screen clock"}


def site(
    work: Path,
    urls: list[str],
    fps: float,
    name: str = "site.yaml",
    motion_mask: bool = True,
    detector_interval: float = 0.0,
    input_size: int = 416,
    transport: str = "webrtc",
    input_shape: str = "square",
) -> tuple[Path, str]:
    db = f"sqlite:///{work / 'lanterne.db'}"
    masks = [clock_mask()] if motion_mask else []
    # The fallback alone: a console whose gateway program is missing (as on a host without Janus),
    # so the page plays MJPEG from the start and nothing of the WebRTC path runs beside it.
    live = {"janus_binary": str(work / "no-janus")} if transport == "mjpeg" else {}
    config = {
        **({"live": live} if live else {}),
        "mode": "statistics",
        "detector": {
            "interval_seconds": detector_interval,
            "input_size": input_size,
            "input_shape": input_shape,
        },
        "site": "live wall benchmark",
        "store": {"url": db, "evidence_dir": str(work / "evidence")},
        "audit": {"key_path": str(work / "audit.key")},
        "cameras": [
            {
                "id": camera_id(i),
                "name": f"Clock {i + 1}",
                "source": url,
                "fps": fps,
                "location": {"lat": 48.88 + i * 0.001, "lon": 2.355},
                "motion_masks": masks,
            }
            for i, url in enumerate(urls)
        ],
    }
    path = work / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, db


def camera_id(i: int) -> str:
    return f"clock-{i + 1:02d}"


# --- what a window measures -------------------------------------------------------------------


@dataclass
class Window:
    seconds: float
    run_cpu: float
    janus_cpu: float | None
    tiles: dict[str, dict[str, Any]]
    console_cpu: float = 0.0
    """`lanterne serve`'s CPU: the fallback's relays (decode + JPEG per camera) and its HTTP
    streams, or the WebRTC signalling it relays to Janus."""
    lags: dict[str, list[float]] = field(default_factory=dict)
    states: dict[str, set[str]] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    browser_cpu: float = 0.0
    """Chromium's CPU (every process alive through the window): decoding and drawing the tiles,
    and the page's clock reader, which copies each frame's pixels to read it."""

    @property
    def cores(self) -> float:
        return self.run_cpu / self.seconds

    @property
    def console_cores(self) -> float:
        return self.console_cpu / self.seconds

    def latencies(self, only: str | None = None) -> list[float]:
        return sorted(
            float(x) for k, t in self.tiles.items() if only is None or k == only for x in t["samples"]
        )

    def decoded(self) -> tuple[int, int]:
        read = sum(len(t["samples"]) for t in self.tiles.values())
        return read, read + sum(t["misses"] for t in self.tiles.values())


def measure(
    page: Any,
    seconds: float,
    run_pid: int,
    janus: int | None,
    db: str | None = None,
    cameras: int = 0,
    console: int | None = None,
) -> Window:
    """CPU of `lanterne run` (and Janus, and the `console` process) over `seconds`, the page's
    clock readings meanwhile, and every camera's health row every 2.5 s when `db` is given."""
    lags: dict[str, list[float]] = {}
    states: dict[str, set[str]] = {}
    rates: dict[str, float] = {}
    store = Store.open(db) if db else None
    if page is not None:
        page.evaluate("window.__meter.reset()")
    t0, c0 = time.monotonic(), cpu_seconds(run_pid)
    j0 = cpu_seconds(janus) if janus else 0.0
    s0 = cpu_seconds(console) if console else 0.0
    b0 = browser_cpu()
    try:
        while (left := seconds - (time.monotonic() - t0)) > 0:
            time.sleep(min(2.5, left))
            if store is not None:
                for i in range(cameras):
                    health = camera_health(store.engine, camera_id(i))
                    if health is None:
                        continue
                    if health.lag_seconds is not None:
                        lags.setdefault(health.camera, []).append(health.lag_seconds)
                    states.setdefault(health.camera, set()).add(health.state)
                    rates[health.camera] = min(rates.get(health.camera, 1e9), health.analysis_fps)
        c1, t1 = cpu_seconds(run_pid), time.monotonic()
        j1 = cpu_seconds(janus) if janus else 0.0
        s1 = cpu_seconds(console) if console else 0.0
        b1 = browser_cpu()
        tiles = page.evaluate("window.__meter.collect()") if page is not None else {}
    finally:
        if store is not None:
            store.close()
    browser = sum(b1[p] - b0[p] for p in b1 if p in b0)
    return Window(
        t1 - t0, c1 - c0, (j1 - j0) if janus else None, tiles, s1 - s0, lags, states, rates, browser
    )


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- the page ---------------------------------------------------------------------------------


def open_wall(page: Any, base: str, codes: tuple[str, ...], layout: int) -> None:
    page.add_init_script(STEPS_JS)
    page.goto(base + "/login", wait_until="networkidle")
    page.fill("#login", "op-bench")
    page.fill("#password", PASSWORD)
    page.fill("#code", codes[0])
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(base + "/console/wall", wait_until="networkidle")
    page.fill("#purpose", PURPOSE)
    page.click("#purpose-form button[type=submit]")
    page.select_option("#layout", str(layout))
    page.evaluate(CLOCK_JS)
    page.evaluate(METER_JS)


def first_frame(
    page: Any,
    tile: int,
    camera: str,
    pick: bool,
    timeout: float = 30.0,
    transport: str | None = None,
    steps: list[dict[str, float]] | None = None,
) -> tuple[float, float | None]:
    """Click `camera` onto `tile` (picking the tile first, as an operator replaces a camera) and
    return the seconds from the click to the tile's first presented frame, and that frame's age.
    With `transport`, the tile must play that way: a WebRTC tile that gave way to the fallback
    would otherwise be measured as WebRTC. `steps` gets the milliseconds from the click to each
    of the start's steps the page marked (`STEPS_JS`), and to the first frame."""
    page.evaluate(f"window.__meter.arm('{tile}')")
    marked = page.evaluate("window.__marks.length")
    if pick:
        page.dispatch_event(f".tile[data-tile='{tile}']", "click")
    clicked = time.time() * 1000
    page.click(f"#camera-list li[data-camera='{camera}']")
    deadline = time.monotonic() + timeout
    while (got := page.evaluate(f"window.__meter.first('{tile}')")) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"tile {tile} showed no frame of {camera} within {timeout:.0f} s")
        time.sleep(0.02)
    if transport is not None:
        fallback = page.query_selector(f".tile[data-tile='{tile}'] .badge.fallback") is not None
        if fallback != (transport == "mjpeg"):
            raise SystemExit(f"tile {tile} plays {'the fallback' if fallback else 'WebRTC'}, not {transport}")
    if steps is not None:
        # The first of each step after the click (stopping the tile's previous view sends too).
        at: dict[str, float] = {}
        for when, what in page.evaluate(f"window.__marks.slice({marked})"):
            at.setdefault(what, when - clicked)
        at["first frame"] = got[0] - clicked
        steps.append(at)
    return (got[0] - clicked) / 1000, got[1]


def step_line(steps: list[dict[str, float]]) -> str:
    """Median (max) milliseconds from the click to each step of the starts that reached it."""
    parts = []
    for what in (*STEPS, "first frame"):
        times = [s[what] for s in steps if what in s]
        if times:
            parts.append(f"{what} {statistics.median(times):.0f} ({max(times):.0f})")
    return ", ".join(parts)


def close_tile(page: Any, tile: int) -> None:
    page.click(f".tile[data-tile='{tile}'] button.close")


def analysis_only(db: str, n: int, run_pid: int, seconds: float, args: argparse.Namespace) -> None:
    """`lanterne run`'s share alone: its CPU and its cameras' lag and rate, no console, no
    browser, no tile, after the same warm-up."""
    print(f"cameras in real time {warm_up(db, n):.0f} s after the start", flush=True)
    w = measure(None, seconds, run_pid, None, db, n)
    lags = [x for v in w.lags.values() for x in v]
    worst = max(lags) if lags else float("nan")
    print(
        f"\nlanterne run alone, {n} cameras at {args.fps:g} fps, input {args.input_size} "
        f"{args.input_shape}: {w.cores:.2f} cores, worst lag {worst:.2f} s, states "
        f"{', '.join(sorted(set().union(*w.states.values())))}, analysis fps {rates_of(w)}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def warm_up(db: str, cameras: int, least: float = 15.0, timeout: float = 120.0) -> float:
    """Wait until every camera has run `least` seconds and is within a second of real time in its
    last three health rows (start-up's detector sessions and motion backgrounds worked off);
    returns the seconds waited."""
    started = time.monotonic()
    calm = dict.fromkeys(range(cameras), 0)
    seen: dict[int, object] = {}
    store = Store.open(db)
    try:
        while time.monotonic() - started < timeout:
            for i in range(cameras):
                row = camera_health(store.engine, camera_id(i))
                if row is None or seen.get(i) == row.updated_at:
                    continue
                seen[i] = row.updated_at
                lag = row.lag_seconds
                calm[i] = calm[i] + 1 if row.state == "running" and lag is not None and abs(lag) < 1.0 else 0
            if time.monotonic() - started >= least and all(c >= 3 for c in calm.values()):
                return time.monotonic() - started
            time.sleep(1.0)
    finally:
        store.close()
    print(f"warning: the cameras were not all in real time {timeout:.0f} s after the start")
    return time.monotonic() - started


STOPPED = re.compile(
    r"live (?P<camera>\S+): \S+ stream stopped after (?P<frames>\d+) frames \((?P<whole>\d+) pixelated whole"
)
COST = re.compile(r"; (?P<cpu>[\d.]+) CPU s, (?P<ms>[\d.]+) ms a frame\)")


RELAY = re.compile(
    r"fallback relay for camera (?P<camera>\S+) stopped after (?P<frames>\d+) pictures .*; "
    r"(?P<cpu>[\d.]+) CPU s, (?P<ms>[\d.]+) ms a picture\)"
)


def relay_lines(log: Path) -> list[dict[str, str]]:
    """What each fallback relay said when it stopped (`LiveWall._destroy`, the console's log):
    pictures made and its thread's CPU (depacketise, decode, JPEG)."""
    return [
        m.groupdict() for line in log.read_text(errors="replace").splitlines() if (m := RELAY.search(line))
    ]


def encoder_lines(log: Path) -> list[dict[str, str]]:
    """What each live encoder said when it closed (`LiveEncoder.close`): frames sent, frames
    pixelated whole and, since issue 14's measurement, its CPU."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if m := STOPPED.search(line):
            cost = COST.search(line)
            out.append({**m.groupdict(), **(cost.groupdict() if cost else {})})
    return out


# --- report -----------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    chromium = subprocess.run(
        ["/usr/bin/chromium", "--version"], capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{model}, {os.cpu_count()} cores, load {load[0]:.1f} / {load[1]:.1f} (1 / 5 min); "
        f"Python {platform.python_version()}, PyAV {av.__version__}, {chromium}"
    )


def ms(values: list[float]) -> str:
    return (
        f"{pct(values, 50):.0f} / {pct(values, 95):.0f} ms (n={len(values)})" if values else "no frame read"
    )


@dataclass
class Results:
    idle: Window
    one: Window
    shared: Window
    full: Window
    idle_after: Window
    cold: tuple[float, float | None]
    shared_starts: list[float]
    warm_starts: list[float]
    readers: dict[str, Window] = field(default_factory=dict)
    """With `--compare-source`: one tile of camera 1 analysed alone, per RTSP reader."""
    encoders: list[dict[str, str]] = field(default_factory=list)
    relays: list[dict[str, str]] = field(default_factory=list)
    """With `--transport mjpeg`: the console's fallback relays' closing lines."""
    started: int = 0
    """Live encoders `lanterne run` started (its log), against the 2N - 1 views the page opened."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 cameras, 10 s windows")
    ap.add_argument("--cameras", type=int, default=16, help="clock cameras, all on the wall (≤ 16)")
    ap.add_argument("--servers", type=int, default=4, help="RTSP servers the cameras share")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each measuring window")
    ap.add_argument("--fps", type=float, default=10.0, help="analysis rate of each camera (the tile's)")
    ap.add_argument(
        "--compare-source",
        action="store_true",
        help="also watch one tile with the RTSP reader's previous settings (restarts lanterne run)",
    )
    ap.add_argument(
        "--no-motion-mask",
        dest="motion_mask",
        action="store_false",
        help="leave the cameras' clocks unmasked (every clock change is motion)",
    )
    ap.add_argument(
        "--detector-interval",
        type=float,
        default=0.0,
        help="detector.interval_seconds of every camera (0: the detector may run on every analysed frame)",
    )
    ap.add_argument(
        "--input-size",
        type=int,
        choices=(320, 416),
        default=416,
        help="detector.input_size (320: the same network 1.6 times cheaper per call, docs/config.md)",
    )
    ap.add_argument(
        "--input-shape",
        choices=("square", "frame"),
        default="square",
        help="detector.input_shape (frame: the input cut to the camera's 16:9, 1.57 times cheaper at 416)",
    )
    ap.add_argument(
        "--analysis-only",
        action="store_true",
        help="only the cameras and lanterne run: its CPU, lag and rate for one window, no console, no browser",
    )
    ap.add_argument(
        "--nice-browser",
        action="store_true",
        help="run chromium at the lowest priority: the operator's browser stands for a workstation "
        "of its own, not a process of the analysing server",
    )
    ap.add_argument(
        "--transport",
        choices=("webrtc", "mjpeg"),
        default="webrtc",
        help="how the tiles play: WebRTC through Janus, or the fallback (MJPEG relayed by the console)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.cameras, args.seconds = min(args.cameras, 4), min(args.seconds, 10.0)
    n = max(1, min(16, args.cameras))
    layout = next(size for size in (1, 4, 9, 16) if size >= n)
    servers = max(1, min(args.servers, n))
    print(f"machine: {machine()}")
    print(
        f"set-up: {n} clock cameras 640x360 @ 10 fps (x264 zerolatency, keyframe every second) from "
        f"{servers} RTSP server(s), analysed at {args.fps:g} fps (statistics mode, YOLOX-Nano, motion "
        f"gate, clock {'masked' if args.motion_mask else 'not masked'}, detector interval "
        f"{args.detector_interval:g} s, input {args.input_size} {args.input_shape}); lanterne run + lanterne serve + "
        f"{'Janus' if args.transport == 'webrtc' else 'no gateway (the MJPEG fallback)'} + headless "
        f"chromium on this machine; {args.seconds:g} s windows\n",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="lanterne-live-wall-"))
    run_log = work / "run.log"
    serve_log = work / "serve.log"
    window = args.seconds
    via = args.transport
    with ExitStack() as stack:
        urls = [stack.enter_context(clock_camera()).url for _ in range(servers)]
        config, db = site(
            work,
            [urls[i % servers] for i in range(n)],
            args.fps,
            "site.yaml",
            args.motion_mask,
            args.detector_interval,
            args.input_size,
            args.transport,
            args.input_shape,
        )
        store = Store.open(db)
        codes = cleared_operator(store, "op-bench", PASSWORD, ["*"])
        store.close()
        run = stack.enter_context(lanterne_run(config, run_log))
        if args.analysis_only:
            analysis_only(db, n, run.pid, window, args)
            return 0
        base, serve_pid = stack.enter_context(lanterne_serve(config, serve_log))
        print(f"cameras in real time {warm_up(db, n):.0f} s after lanterne serve answered", flush=True)
        browser = stack.enter_context(chromium())
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        open_wall(page, base, codes, layout)
        if args.nice_browser:
            renice_browser(19)

        idle = measure(page, window, run.pid, None, db, n, serve_pid)
        print(f"0 tiles: lanterne run {idle.cores:.3f} cores, console {idle.console_cores:.3f}", flush=True)

        cold = first_frame(page, 1, camera_id(0), pick=False, transport=via)
        janus = janus_pid(serve_pid)
        time.sleep(2.0)
        one = measure(page, window, run.pid, janus, db, n, serve_pid)
        print(
            f"1 tile ({via}): first frame {cold[0]:.2f} s, {ms(one.latencies())}, {one.cores:.3f} cores, "
            f"console {one.console_cores:.3f}",
            flush=True,
        )

        shared_starts = [
            first_frame(page, k, camera_id(0), pick=True, transport=via)[0] for k in range(2, n + 1)
        ]
        time.sleep(2.0)
        shared = measure(page, window, run.pid, janus, db, n, serve_pid)
        print(
            f"{n} viewers of camera 1: {shared.cores:.3f} cores, console {shared.console_cores:.3f}",
            flush=True,
        )

        steps: list[dict[str, float]] = []
        warm = [
            first_frame(page, k, camera_id(k - 1), pick=True, transport=via, steps=steps)
            for k in range(2, n + 1)
        ]
        warm_starts = [seconds for seconds, _ in warm]
        # Each start with the age of its first picture: an old one is the keyframe Janus kept.
        print(
            "warm starts, s (first picture's age, ms): "
            + ", ".join(f"{s:.2f} ({'-' if a is None else f'{a:.0f}'})" for s, a in warm),
            flush=True,
        )
        print(f"warm start steps, ms after the click, median (max): {step_line(steps)}", flush=True)
        time.sleep(3.0)
        full = measure(page, window if args.quick else 2 * window, run.pid, janus, db, n, serve_pid)
        print(
            f"{n} tiles of {n} cameras: {full.cores:.3f} cores, console {full.console_cores:.3f}, "
            f"{ms(full.latencies())}",
            flush=True,
        )

        for k in range(n, 0, -1):
            close_tile(page, k)
        time.sleep(LINGER_S + 2)  # the streams stop once unwatched for `LINGER`
        idle_after = measure(page, window, run.pid, janus, db, n, serve_pid)
        print(
            f"0 tiles again: lanterne run {idle_after.cores:.3f} cores, console {idle_after.console_cores:.3f}",
            flush=True,
        )
        results = Results(idle, one, shared, full, idle_after, cold, shared_starts, warm_starts)

        if args.compare_source:
            # The two RTSP readers back to back on camera 1 alone, so that neither waits behind
            # the other cameras' analysis. 20 s each to settle: the previous reader's lag reads
            # about 3 s early (the probe's frames stamped as fresh), so the health rows cannot
            # say when it is in real time.
            run.send_signal(signal.SIGTERM)
            run.wait(timeout=30)
            single, _ = site(
                work,
                urls[:1],
                args.fps,
                "one-camera.yaml",
                args.motion_mask,
                args.detector_interval,
                args.input_size,
                input_shape=args.input_shape,
            )
            for name, patch in (("current", None), ("previous", PREVIOUS_SOURCE)):
                with lanterne_run(single, work / f"run-{name}-reader.log", patch) as reader:
                    time.sleep(20.0)
                    first_frame(page, 1, camera_id(0), pick=True, transport=via)
                    time.sleep(2.0)
                    results.readers[name] = measure(page, window, reader.pid, None, db, 1, serve_pid)
                    close_tile(page, 1)
                print(f"{name} RTSP reader, 1 camera: {ms(results.readers[name].latencies())}", flush=True)
        page.close()
    # Every lanterne run has stopped: their encoders logged what they did.
    results.encoders = encoder_lines(run_log)
    results.relays = relay_lines(serve_log)
    results.started = sum(": streaming " in line for line in run_log.read_text(errors="replace").splitlines())
    windows = {"one": results.one, "shared": results.shared, "full": results.full, **results.readers}
    raw = {name: {"seconds": w.seconds, "tiles": w.tiles, "lags": w.lags} for name, w in windows.items()}
    (work / "windows.json").write_text(json.dumps(raw), encoding="utf-8")
    report(args, n, results)
    print(f"\nlogs: {work}")
    return 0


def rates_of(*windows: Window) -> str:
    """The analysis rates the cameras' health rows showed during `windows`."""
    rates = sorted({x for w in windows for x in w.rates.values()})
    return ", ".join(f"{x:g}" for x in rates) or "unknown"


def report(args: argparse.Namespace, n: int, r: Results) -> None:
    idle = (r.idle.cores + r.idle_after.cores) / 2
    lat1, latn = r.one.latencies(), r.full.latencies()
    fps = [t["fps"] for t in r.full.tiles.values()]
    read = total = 0
    for w in (r.one, r.shared, r.full):
        got, seen = w.decoded()
        read, total = read + got, total + seen
    sent = sum(int(e["frames"]) for e in r.encoders)
    whole = sum(int(e["whole"]) for e in r.encoders)
    per_frame = [float(e["ms"]) for e in r.encoders if e.get("ms") and int(e["frames"]) > 0]
    # A tile plays at the live rate (10 fps, the clock camera's) when the analysis gives it a box
    # at least every other frame (`LiveEncoder.push`), else at the analysis rate.
    tile_fps = 10.0 if args.fps >= 5.0 else args.fps
    rows: list[tuple[str, str, str, str]] = []

    def row(what: str, figure: str, goal: str = "", met: bool | None = None) -> None:
        rows.append((what, figure, goal, "" if met is None else "yes" if met else "**no**"))

    p95 = f"p95 ≤ {GOAL_P95_MS:.0f} ms"
    fallback = args.transport == "mjpeg"
    via = "MJPEG fallback" if fallback else "WebRTC"
    row(f"camera → screen latency ({via}), 1 tile, p50 / p95", ms(lat1), p95, pct(lat1, 95) <= GOAL_P95_MS)
    row(
        f"camera → screen latency ({via}), {n} tiles of {n} cameras, p50 / p95",
        ms(latn),
        p95,
        pct(latn, 95) <= GOAL_P95_MS,
    )
    shown = [float(x) for w in (r.one, r.full) for t in w.tiles.values() for x in t.get("shown", [])]
    if shown and lat1:
        measured = lat1 + latn
        row(
            "delay floor the tiles show (their badge) against the clock's, median of each",
            f"{statistics.median(shown):.0f} against {statistics.median(measured):.0f} ms "
            f"({len(shown)} badge readings)",
            "the camera → Lanterne network is not in the badge",
        )
    for name, w in r.readers.items():
        lat = w.latencies()
        lags = [x for v in w.lags.values() for x in v]
        lag = f"; its lag read {statistics.median(lags):+.2f} s" if lags else ""
        what = "as now" if name == "current" else "as before (FFmpeg's probe, frame threads)"
        row(
            f"… 1 tile, its camera analysed alone, RTSP reader {what}",
            ms(lat) + lag,
            p95,
            pct(lat, 95) <= GOAL_P95_MS,
        )
    cold, age = r.cold
    aged = f"; that frame {age:.0f} ms old" if age is not None else "; its clock did not read"
    goal = f"≤ {GOAL_FIRST_FRAME_S} s"
    started_by_click = "the camera's stream and the console's relay" if fallback else "Janus"
    row(
        f"first frame of a tile, cold ({started_by_click} started by the click)",
        f"{cold:.2f} s{aged}",
        goal,
        cold <= GOAL_FIRST_FRAME_S,
    )
    for what, starts in (
        (f"warm (another camera: a new encoder{' and relay' if fallback else ''})", r.warm_starts),
        ("a camera already watched (shared stream)", r.shared_starts),
    ):
        if starts:
            figure = f"{statistics.median(starts):.2f} / {max(starts):.2f} s"
            row(
                f"first frame, {what}, median / max of {len(starts)}",
                figure,
                goal,
                max(starts) <= GOAL_FIRST_FRAME_S,
            )
    row(
        f"lanterne run, no tile ({n} cameras analysed), before / after the tiles",
        f"{r.idle.cores:.3f} / {r.idle_after.cores:.3f} cores (analysis fps {rates_of(r.idle, r.idle_after)})",
    )
    # A process delta means something only if the analysis ran at the same rate throughout: a
    # camera shedding to half its rate saves more than a tile costs.
    for what, w, tiles in (("1 tile", r.one, 1), (f"{n} tiles of {n} cameras", r.full, n)):
        label = f"CPU per watched tile, {what} (process, minus no tile)"
        if all(set(x.rates.values()) == {args.fps} for x in (r.idle, r.idle_after, w)):
            cost = (w.cores - idle) / tiles
            row(label, f"{cost:+.4f} core", f"≤ {GOAL_CORES}", cost <= GOAL_CORES)
        else:
            row(
                label,
                f"not comparable: analysis fps {rates_of(w)} against {rates_of(r.idle, r.idle_after)} without tiles",
            )
    if per_frame:
        each = statistics.median(per_frame)
        row(
            f"live encoder's own thread (LiveStats), median of {len(per_frame)} streams",
            f"{each:.1f} ms a frame = {each * tile_fps / 1000:.4f} core at {tile_fps:g} fps",
            f"≤ {GOAL_CORES}",
            each * tile_fps / 1000 <= GOAL_CORES,
        )
    label = f"{n} viewers of one camera minus 1 viewer"
    if {*r.shared.rates.values(), *r.one.rates.values()} == {args.fps}:
        extra = r.shared.cores - r.one.cores
        row(label, f"{extra:+.4f} core", "≈ 0 (one stream)", extra <= GOAL_CORES / 2)
    else:
        row(label, f"not comparable: analysis fps {rates_of(r.shared)} against {rates_of(r.one)}")
    views = 2 * n - 1
    row(
        "live encoders started in lanterne run, for the views the page opened",
        f"{r.started} for {views} views of {n} cameras",
        f"one per camera: {n}",
        r.started == n,
    )
    if None not in (r.one.janus_cpu, r.shared.janus_cpu, r.full.janus_cpu):
        janus = " / ".join(f"{(w.janus_cpu or 0) / w.seconds:.3f}" for w in (r.one, r.shared, r.full))
        row(f"Janus: 1 tile / {n} viewers of 1 camera / {n} cameras", f"{janus} cores")
    browser = " / ".join(f"{w.browser_cpu / w.seconds:.2f}" for w in (r.idle, r.one, r.shared, r.full))
    row(
        f"chromium{' (niced: an operator workstation)' if args.nice_browser else ''}, same machine: "
        f"no tile / 1 tile / {n} viewers of 1 camera / {n} cameras",
        f"{browser} cores",
    )
    console = " / ".join(f"{w.console_cores:.3f}" for w in (r.idle, r.one, r.shared, r.full, r.idle_after))
    row(
        f"lanterne serve (console): no tile / 1 tile / {n} viewers of 1 camera / {n} cameras / no tile again",
        f"{console} cores",
    )
    if fallback:
        # The console's share of the fallback: one relay (decode + JPEG) per camera, one HTTP
        # stream per viewer; the camera's own encoder is in `lanterne run`'s rows above.
        quiet = (r.idle.console_cores + r.idle_after.console_cores) / 2
        row(
            f"console CPU per fallback camera ({n} cameras minus no tile, / {n})",
            f"{(r.full.console_cores - quiet) / n:+.4f} core",
        )
        if n > 1:
            row(
                f"console CPU per further viewer of one camera ({n} viewers minus 1, / {n - 1})",
                f"{(r.shared.console_cores - r.one.console_cores) / (n - 1):+.4f} core",
            )
        relayed = [float(e["ms"]) for e in r.relays if int(e["frames"]) > 0]
        if relayed:
            each = statistics.median(relayed)
            row(
                f"fallback relay's own thread (depacketise, decode, JPEG), median of {len(relayed)} relays "
                f"for {n} cameras",
                f"{each:.1f} ms a picture = {each * tile_fps / 1000:.4f} core at {tile_fps:g} fps",
            )
    if fps:
        figure = f"{min(fps):.1f} / {statistics.median(fps):.1f}"
        row(
            f"{n} tiles: frames presented per second, min / median per tile",
            figure,
            f"{tile_fps:g}",
            min(fps) >= 0.9 * tile_fps,
        )
    if r.full.lags:
        worst = max(max(v) for v in r.full.lags.values())
        last = statistics.median(v[-1] for v in r.full.lags.values())
        states = sorted(set().union(*r.full.states.values()))
        row(
            f"{n} cameras watched: lag (health rows), worst / median of the last",
            f"{worst:.2f} / {last:.2f} s; states {', '.join(states)}; analysis fps {rates_of(r.full)}",
            "real time at the configured rate",
            states == ["running"] and worst < 2.0 and rates_of(r.full) == f"{args.fps:g}",
        )
    share = read / total if total else float("nan")
    row(
        "clock frames decoded in the page (all windows)",
        f"{read}/{total} ({share:.1%})",
        "all",
        total > 0 and read == total,
    )
    row(
        "live frames pixelated whole (fail closed), encoders' closing logs",
        f"{whole}/{sent} in {len(r.encoders)} streams",
        "0 with fresh boxes",
        whole == 0 and sent > 0,
    )
    print("\n| measure | figure | goal | met |")
    print("|---|---|---|---|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.1f} / {load[1]:.1f} (1 / 5 min)")


if __name__ == "__main__":
    raise SystemExit(main())
