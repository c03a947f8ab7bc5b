"""What a city pays: CPU per second of video for the whole process as a user runs it (issue 10).

Every figure comes from a child process of the real command line, measured by the kernel
(`wait4`: user + system CPU of that process and its threads, peak RSS), so evidence writing,
anonymisation, the store and start-up are all included:

  - decode only: the product's decoder (`FileSource`, BGR at the analysis rate), the floor;
  - `lanterne analyze` in `statistics` mode (counts only) and in `alerts` mode (every rule, events
    in an SQLite store, snapshots and clips written through the anonymiser);
  - `lanterne run` with 1, 4, 16 file cameras for a fixed wall time, then SIGTERM. The runner
    reads files at real time (as the live cameras they stand for), so each camera's lag behind
    real time, the analysis rate it shed to and the frames it dropped are read from its health
    rows while it runs; `--unpaced` measures the runner reading files as fast as it can instead.

Scenes: busy (PETS 2009 `vtest.avi`, and an H.264 re-encode of it), medium (Intel one-by-one, an
indoor room), static (the per-pixel median of `vtest.avi`, an empty crossroads, held). Streams
per core = video seconds ÷ CPU seconds. Beside each speed on PETS: person recall/precision of
the tracked boxes against the MOT ground truth (an in-process run of the same pipeline; the CLI
does not expose boxes) and event precision/recall of the events the measured `analyze` stored.

    .venv/bin/python benchmarks/end_to_end.py --quick
    .venv/bin/python benchmarks/end_to_end.py [--scenes pets,pets-h264,intel,static]
        [--seconds N] [--cameras 1,4,16] [--run-seconds 30] [--run-modes statistics,alerts] [--unpaced]

Derived clips are made once into ~/.cache/lanterne-e2e (LANTERNE_E2E_CACHE overrides).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _e2e_support import (
    DECODE_ONLY,
    ROOT,
    VIDEO,
    Child,
    HealthSample,
    HealthSampler,
    Reference,
    authorise,
    camera,
    cut,
    event_score,
    h264,
    lag_trend,
    measure,
    min_seconds,
    read_store,
    reference,
    site_config,
    static_clip,
    write_config,
)

FPS = 5.0
PYTHON = str(ROOT / ".venv" / "bin" / "python")
LANTERNE = [PYTHON, "-m", "lanterne.cli"]
LOOPS = 10
"""`lanterne run` reads `vtest.avi` this many times end to end, so no camera runs out of video."""


@dataclass(frozen=True, slots=True)
class Scene:
    key: str
    label: str
    make: Callable[[float | None], Path]
    ground_truth: bool = False


SCENES: dict[str, Scene] = {
    s.key: s
    for s in (
        Scene("pets", "busy: PETS09-S2L1 `vtest.avi` (MS-MPEG4v3)", lambda n: cut(VIDEO / "vtest.avi", n), True),
        Scene("pets-h264", "busy: the same, H.264 re-encode (libx264, GOP 2 s)", lambda n: h264(VIDEO / "vtest.avi", n), True),
        Scene(
            "intel", "medium: Intel one-by-one (H.264, indoor room)",
            lambda n: cut(VIDEO / "intel_one-by-one-person-detection.mp4", n),
        ),
        Scene("static", "static: median of `vtest.avi` (empty crossroads) held, H.264", lambda n: static_clip(n or 60.0)),
    )
}  # fmt: skip


@dataclass(slots=True)
class Row:
    scene: str
    pipeline: str
    video_s: float
    child: Child
    loop_cpu: float
    """CPU seconds the child reports for its decoding and analysis loop, start-up excluded (the
    evidence writer's thread and its final flush included: `process_time` counts every thread)."""
    events: int | None = None
    evidence: int | None = None
    person: str = "–"
    event_pr: str = "–"

    @property
    def streams(self) -> float:
        return self.video_s / self.child.cpu if self.child.cpu else float("inf")

    @property
    def loop_streams(self) -> float:
        return self.video_s / self.loop_cpu if self.loop_cpu else float("inf")


def _check(child: Child, what: str) -> None:
    if child.rc != 0:
        raise SystemExit(f"{what} failed (exit {child.rc}):\n{child.stderr[-3000:]}")


@dataclass(frozen=True, slots=True)
class Variant:
    """A configuration measured beside the others: a name and the dotted settings it changes."""

    name: str
    settings: dict[str, Any]

    @staticmethod
    def parse(text: str) -> Variant:
        """`fast:detector.interval_seconds=0.4,detector.input_size=320`; values read as YAML."""
        name, _, pairs = text.partition(":")
        settings = {}
        for pair in filter(None, pairs.split(",")):
            key, sep, value = pair.partition("=")
            if not sep:
                raise SystemExit(f"--variant {text!r}: write name:key=value,key=value")
            settings[key.strip()] = yaml.safe_load(value)
        return Variant(name.strip(), settings)

    def label(self, what: str, several: bool) -> str:
        return f"{what} [{self.name}]" if several else what


TODAY = Variant("today", {})


def analyze_rows(
    scene: Scene, clip: Path, tmp: Path, refs: dict[str, Reference | None], variants: list[Variant]
) -> list[Row]:
    dec = measure([PYTHON, "-c", DECODE_ONLY, str(clip), str(FPS)])
    _check(dec, f"decode of {clip}")
    done = json.loads(dec.stdout.strip().splitlines()[-1])
    rows = [Row(scene.key, "decode only", done["video_seconds"], dec, loop_cpu=done["cpu_seconds"])]
    cam = camera("bench", clip)
    for variant in variants:
        rows += _analyze_variant(scene, clip, tmp, refs[variant.name], cam, variant, len(variants) > 1)
    return rows


def _analyze_variant(
    scene: Scene,
    clip: Path,
    tmp: Path,
    ref: Reference | None,
    cam: dict[str, Any],
    variant: Variant,
    several: bool,
) -> list[Row]:
    rows: list[Row] = []
    for mode in ("statistics", "alerts"):
        work = tmp / f"{scene.key}-{variant.name}-{mode}"
        cfg = write_config(site_config(mode, [cam], work, settings=variant.settings), work)
        url = f"sqlite:///{work / 'lanterne.db'}"
        cmd = [*LANTERNE, "analyze", str(clip), "--config", str(cfg), "--out", str(work / "out")]
        child = measure([*cmd, "--store", url, "--user", "benchmark"])
        _check(child, f"lanterne analyze ({mode}) on {clip}")
        stats = json.loads((work / "out" / "stats.json").read_text())
        evidence = work / "out" / "evidence"
        files = sum(1 for p in evidence.rglob("*") if p.is_file()) if evidence.is_dir() else 0
        row = Row(
            scene.key,
            variant.label(f"`analyze` {mode}", several),
            stats["video_seconds"],
            child,
            stats["cpu_seconds"],
        )
        row.events, row.evidence = stats["events"], files
        if ref is not None:
            r, p = ref.person
            row.person = f"{r:.3f} / {p:.3f}"
            if mode == "alerts":
                total, _ = event_score(read_store(url, FPS).events, ref)
                row.event_pr = (
                    f"{total.precision:.2f} / {total.recall:.2f} ({total.tp}/{total.fp}/{total.fn})"
                )
        rows.append(row)
    return rows


@dataclass(slots=True)
class RunRow:
    cameras: int
    mode: str
    child: Child
    video_s: float
    per_camera: list[float]
    lag_end: list[float]
    lag_events: list[float]
    events: int
    evidence: int
    health: dict[str, list[HealthSample]] = field(default_factory=dict)
    """Per camera, its health rows as the runner wrote them during the run (paced runs)."""

    @property
    def streams(self) -> float:
        return self.video_s / self.child.cpu if self.child.cpu else float("inf")

    def lag_p95(self) -> dict[str, float]:
        """Per camera, the 95th percentile of its lag over the run (start-up included)."""
        return {
            cam: _p95([s.lag for s in series if s.lag is not None]) for cam, series in self.health.items()
        }

    def growing(self) -> list[str]:
        """Cameras whose lag still grows after start-up: a trend above 1 s per minute."""
        return [cam for cam, series in self.health.items() if lag_trend(series) > 1 / 60]

    def shed(self) -> dict[str, float]:
        """Cameras that analysed below their configured rate at some point, with their lowest rate."""
        out = {}
        for cam, series in self.health.items():
            low = min((s.fps for s in series), default=float("nan"))
            if series and low < series[0].configured:
                out[cam] = low
        return out

    def dropped(self) -> int:
        return sum(series[-1].dropped for series in self.health.values() if series)


def _p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.1f}"


def run_row(
    n: int,
    mode: str,
    clip: Path,
    seconds: float,
    tmp: Path,
    variant: Variant = TODAY,
    several: bool = False,
    paced: bool = True,
) -> RunRow:
    work = tmp / f"run-{variant.name}-{mode}-{n}"
    cams = [camera(f"cam-{i:02d}", clip) for i in range(n)]
    data = site_config(mode, cams, work, public=mode == "alerts", settings=variant.settings)
    cfg = write_config(data, work)
    if mode == "alerts":
        authorise(cfg, work)
    url = f"sqlite:///{work / 'lanterne.db'}"
    sampler = HealthSampler(url)
    cmd = [*LANTERNE, "run", "--config", str(cfg), "--no-verbose", "--pace" if paced else "--no-pace"]
    child = measure(cmd, stop_after=seconds, on_tick=sampler)
    if child.stopped_at is None:
        raise SystemExit(f"lanterne run stopped by itself (exit {child.rc}):\n{child.stderr[-3000:]}")
    sampler()  # the rows the runner wrote on stopping: the lag at the stop
    sampler.close()
    stored = read_store(url, FPS)
    final = {cam: series[-1] for cam, series in sampler.series.items() if series}
    # Lag at the stop: how far the last analysed frame is behind the wall clock, had the file been a
    # live camera that started when the worker opened it (the first bucket's origin). Paced, the
    # runner measures it itself, and the video a camera analysed follows from it (its rate may
    # have been shed, so its count samples ÷ 5 fps would not); unpaced, the samples give both.
    per_camera, lag_end = [], []
    for c in cams:
        cid, row = c["id"], final.get(c["id"])
        if cid not in stored.origin:
            per_camera.append(0.0)
            continue
        wall = (child.stopped_at - stored.origin[cid]).total_seconds()
        if row is not None and row.lag is not None:
            lag_end.append(row.lag)
            per_camera.append(max(0.0, wall - row.lag))
        else:
            per_camera.append(stored.video_seconds[cid])
            lag_end.append(wall - stored.video_seconds[cid])
    waits = min_seconds(cams[0])
    lag_events = [
        (created - start).total_seconds() - waits.get(etype, 0.0) for etype, start, created in stored.created
    ]
    evidence = work / "evidence"
    files = sum(1 for p in evidence.rglob("*") if p.is_file()) if evidence.is_dir() else 0
    return RunRow(
        n,
        variant.label(mode, several),
        child,
        sum(per_camera),
        per_camera,
        lag_end,
        lag_events,
        len(stored.events),
        files,
        sampler.series if paced else {},
    )


def print_tables(
    argv: list[str], rows: list[Row], runs: list[RunRow], run_seconds: float, labels: list[str]
) -> None:
    print(f"`{' '.join(shlex.quote(a) for a in argv)}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print()
    for label in labels:
        print(f"- {label}")
    print()
    print(
        "| scene | pipeline | video s | CPU s | wall s | **streams/core** | × decode CPU "
        "| streams/core excl. start-up | peak RSS MiB "
        "| events | evidence files | person R / P | events P / R (TP/FP/FN) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    floor: dict[str, float] = {}
    for r in rows:
        if r.pipeline == "decode only":
            floor[r.scene] = r.child.cpu
        ratio = r.child.cpu / floor[r.scene] if floor.get(r.scene) else float("nan")
        print(
            f"| {r.scene} | {r.pipeline} | {r.video_s:.1f} | {r.child.cpu:.1f} | {r.child.wall:.1f} "
            f"| **{r.streams:.2f}** | {ratio:.1f} | {r.loop_streams:.2f} | {r.child.rss_mib:.0f} "
            f"| {'–' if r.events is None else r.events} | {'–' if r.evidence is None else r.evidence} "
            f"| {r.person} | {r.event_pr} |"
        )
    if not runs:
        return
    print()
    paced = any(r.health for r in runs)
    how = (
        "paced: each file read at real time, as the live camera it stands for"
        if paced
        else "unpaced: the runner reads files as fast as it can"
    )
    print(
        f"`lanterne run`, busy clip (`vtest.avi` ×{LOOPS} end to end, {how}), stopped by SIGTERM after {run_seconds:g} s:"
    )
    print()
    print(
        "| cameras | mode | CPU s | video s (all cameras) | **streams/core** | real-time × per camera "
        "(min / median) | lag at stop p95 s | event-row lag p95 s | peak RSS MiB | RSS / camera MiB "
        "| events | evidence files | lag p95 s per camera (median / worst) | lag grows (cameras) "
        "| shed (cameras, lowest fps) | still shed at stop | frames dropped |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        rt = [v / run_seconds for v in r.per_camera]
        p95 = list(r.lag_p95().values())
        lag_cols = "– | – | – | – | –"
        if r.health:
            shed = r.shed()
            lag_cols = (
                f"{_fmt(statistics.median(p95))} / {_fmt(max(p95))} | {len(r.growing())} of {r.cameras} "
                f"| {len(shed)}{f', {min(shed.values()):g} fps' if shed else ''} "
                f"| {sum(1 for v in r.health.values() if v and v[-1].fps < v[-1].configured)} | {r.dropped()}"
            )
        print(
            f"| {r.cameras} | {r.mode} | {r.child.cpu:.1f} | {r.video_s:.1f} | **{r.streams:.2f}** "
            f"| {min(rt):.2f} / {statistics.median(rt):.2f} | {_p95(r.lag_end):.1f} "
            f"| {_fmt(_p95(r.lag_events))} | {r.child.rss_mib:.0f} | {r.child.rss_mib / r.cameras:.0f} "
            f"| {r.events} | {r.evidence} | {lag_cols} |"
        )
    for r in runs:
        if not r.health:
            continue
        print()
        print(f"Per camera, {r.cameras} cameras, {r.mode} (health rows every 5 s):")
        print()
        print(
            "| camera | lag p50 s | lag p95 s | lag trend s/min | lowest fps | fps at stop | frames dropped "
            "| last state |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for cam, series in sorted(r.health.items()):
            lags = [s.lag for s in series if s.lag is not None]
            median = statistics.median(lags) if lags else float("nan")
            print(
                f"| {cam} | {_fmt(median)} | {_fmt(_p95(lags))} | {lag_trend(series) * 60:+.2f} "
                f"| {min(s.fps for s in series):g} | {series[-1].fps:g} | {series[-1].dropped} "
                f"| {series[-1].state} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", default=",".join(SCENES), help=f"comma-separated, of {', '.join(SCENES)}")
    ap.add_argument("--seconds", type=float, default=None, help="cut every clip to its first N seconds")
    ap.add_argument("--cameras", default="1,4,16", help="camera counts for `lanterne run` ('' to skip)")
    ap.add_argument("--run-seconds", type=float, default=30.0, help="wall time of each `lanterne run`")
    ap.add_argument("--run-modes", default="statistics,alerts", help="modes of `lanterne run`")
    ap.add_argument("--quick", action="store_true", help="about two minutes on 2 cores")
    ap.add_argument(
        "--unpaced",
        action="store_true",
        help="`lanterne run --no-pace`: files read as fast as possible (no lag, no shedding)",
    )
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help="a configuration measured beside today's, as name:key=value,key=value "
        "(e.g. fast:detector.interval_seconds=0.4,detector.input_size=320,motion.flow=dis); repeatable",
    )
    args = ap.parse_args()
    variants = [TODAY, *(Variant.parse(v) for v in args.variant)]
    if args.quick:
        args.scenes, args.seconds, args.cameras = "pets,static", args.seconds or 15.0, "1,4"
        args.run_seconds, args.run_modes = 20.0, "statistics"
    tmp = Path(tempfile.mkdtemp(prefix="lanterne-e2e-"))
    rows: list[Row] = []
    labels: list[str] = []
    for key in [s for s in args.scenes.split(",") if s]:
        scene = SCENES[key]
        clip = scene.make(args.seconds)
        labels.append(f"{key}: {scene.label}: `{clip.name}`")
        refs = {
            v.name: reference(clip, camera("bench", clip), v.settings) if scene.ground_truth else None
            for v in variants
        }
        rows += analyze_rows(scene, clip, tmp, refs, variants)
        print(f"[{key} done]", file=sys.stderr, flush=True)
    runs: list[RunRow] = []
    counts = [int(n) for n in args.cameras.split(",") if n]
    if counts:
        loop = cut(VIDEO / "vtest.avi", None, loops=LOOPS)
        for mode in [m for m in args.run_modes.split(",") if m]:
            for n in counts:
                for v in variants:
                    runs.append(
                        run_row(n, mode, loop, args.run_seconds, tmp, v, len(variants) > 1, not args.unpaced)
                    )
                print(f"[run {mode} {n} done]", file=sys.stderr, flush=True)
    print_tables(sys.argv, rows, runs, args.run_seconds, labels)
    print(f"\n(work files: {tmp})", file=sys.stderr)


if __name__ == "__main__":
    main()
