"""Helpers of `benchmarks/end_to_end.py`: the clips it measures, the configurations it writes, how
it times a child process, and how it scores what that process stored.

Kept apart so that the benchmark's main file reads as the list of what is measured.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from detector_accuracy import greedy, load_gt  # noqa: E402
from lanterne.config import config_hash, parse_config  # noqa: E402
from lanterne.core.types import Event, EventType  # noqa: E402
from lanterne.rules import RULES  # noqa: E402
from lanterne.runtime.demo import DEMO_CONFIG  # noqa: E402
from lanterne.video.analyser import CameraAnalyser  # noqa: E402
from lanterne.video.capture.source import FileSource, probe  # noqa: E402
from lanterne.video.detectors import create_detector  # noqa: E402
from lanterne.video.evaluation import Score, load_mot, match_events, reference_events  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video"
PETS_GT = VIDEO / "vtest.PETS09-S2L1.gt.txt"
CACHE = Path(os.environ.get("LANTERNE_E2E_CACHE", Path.home() / ".cache" / "lanterne-e2e"))
MIB = 1024.0  # ru_maxrss is in KiB on Linux


# --- clips ----------------------------------------------------------------------------------


def _cached(name: str) -> tuple[Path, bool]:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / name
    return path, path.exists() and path.stat().st_size > 0


def cut(src: Path, seconds: float | None, loops: int = 1) -> Path:
    """The first `seconds` of `src`, `loops` times end to end, by copying packets: the codec and
    its decoding cost stay those of the original, and decoded frame N is still MOT frame N+1."""
    if seconds is None and loops == 1:
        return src
    tag = f"{src.stem}-{seconds or 'all'}s-x{loops}.mkv"
    dst, done = _cached(tag)
    if done:
        return dst
    tmp = dst.with_suffix(".part.mkv")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        s_in = inp.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
        base = s_in.time_base
        length = 0
        for loop in range(loops):
            inp.seek(0)
            first: int | None = None
            last = 0
            for packet in inp.demux(s_in):
                if packet.pts is None and packet.dts is None:
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                first = ts if first is None else first
                if seconds is not None and (ts - first) * base >= seconds:
                    break
                shift = loop * length - first
                packet.pts = None if packet.pts is None else packet.pts + shift
                packet.dts = None if packet.dts is None else packet.dts + shift
                last = max(last, ts - first + (packet.duration or 1))
                packet.stream = s_out
                out.mux(packet)
            length = length or last
    tmp.rename(dst)
    return dst


def _encode(dst: Path, frames: Any, size: tuple[int, int], rate: int, codec: str = "libx264") -> None:
    tmp = dst.with_suffix(".part" + dst.suffix)
    with av.open(str(tmp), "w") as out:
        s = out.add_stream(codec, rate=rate)
        s.width, s.height = size
        s.pix_fmt = "yuv420p"
        # A camera-like H.264 stream: 2 s GOP, no B-frames (what IP cameras send by default).
        s.options = {"g": str(2 * rate), "bf": "0", "preset": "fast", "crf": "23"}
        for i, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(image, format="bgr24")
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    tmp.rename(dst)


def h264(src: Path, seconds: float | None) -> Path:
    """`src` re-encoded once with libx264 (same size, rate and frame count), cached."""
    dst, done = _cached(f"{src.stem}-{seconds or 'all'}s-h264.mp4")
    if done:
        return dst
    info = probe(str(src))
    rate = round(info.fps or 10)

    def frames() -> Any:
        with av.open(str(src)) as inp:
            for i, vf in enumerate(inp.decode(video=0)):
                if seconds is not None and i >= seconds * rate:
                    return
                yield vf.to_ndarray(format="bgr24")

    _encode(dst, frames(), (info.width, info.height), rate)
    return dst


def static_clip(seconds: float) -> Path:
    """An empty, still crossroads: the per-pixel median of 40 frames spread over `vtest.avi` (the
    walkers vanish, the lawn and paving stay), held for `seconds` and encoded with libx264 at
    10 fps, so the encoder's noise is there as on a real camera."""
    dst, done = _cached(f"static-vtest-median-{seconds:g}s-h264.mp4")
    if done:
        return dst
    src = VIDEO / "vtest.avi"
    with av.open(str(src)) as inp:
        images = [vf.to_ndarray(format="bgr24") for vf in inp.decode(video=0)]
    picks = np.stack(images[:: max(1, len(images) // 40)])
    median = np.median(picks, axis=0).astype(np.uint8)
    h, w = median.shape[:2]
    _encode(dst, (median for _ in range(int(seconds * 10))), (w, h), 10)
    return dst


# --- configurations -------------------------------------------------------------------------


def camera(cam_id: str, source: Path) -> dict[str, Any]:
    """The demo camera with every rule of issue 10 on its two zones: zone_intrusion on the lawn;
    crowd_density, wrong_way, crowd_movement, person_down and abandoned_object on the crossroads.
    Zones are in frame fractions, so they apply to every scene."""
    cam = dict(DEMO_CONFIG["cameras"][0])
    zones = [dict(z) for z in cam["zones"]]
    zones[1] = {
        **zones[1],
        "events": {**zones[1]["events"], "crowd_movement": {"min_speed": 0.3, "min_seconds": 1}},
    }
    return {**cam, "id": cam_id, "source": str(source), "zones": zones}


def with_settings(data: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """`data` with dotted keys set (`{"detector.interval_seconds": 0.4}`): a variant of the
    configuration, measured beside today's."""
    out = {**data}
    for dotted, value in settings.items():
        *parents, leaf = dotted.split(".")
        node = out
        for key in parents:
            node[key] = dict(node.get(key) or {})
            node = node[key]
        node[leaf] = value
    return out


def site_config(
    mode: str,
    cameras: list[dict[str, Any]],
    workdir: Path,
    public: bool = False,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        **{k: v for k, v in DEMO_CONFIG.items() if k != "cameras"},
        "mode": mode,
        "site": "end-to-end benchmark",
        "cameras": cameras,
        "store": {"url": f"sqlite:///{workdir / 'lanterne.db'}", "evidence_dir": str(workdir / "evidence")},
    }
    if public:
        data["public"] = {
            "controller": "Lanterne benchmark (no real deployment)",
            "dpo_contact": "not applicable: benchmark",
            "purposes": ["measuring the software's cost on public research clips"],
            "rights": "Benchmark on public research clips; no real camera is involved.",
        }
    return with_variant(data, settings or {})


def with_variant(data: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A site's data with a variant's settings: `camera.record=off` sets a key of every camera,
    any other dotted key one of the site (`with_settings`)."""
    site = {k: v for k, v in settings.items() if not k.startswith("camera.")}
    per_camera = {k.removeprefix("camera."): v for k, v in settings.items() if k.startswith("camera.")}
    out = {**data, "cameras": [with_settings(c, per_camera) for c in data["cameras"]]}
    return with_settings(out, site)


def write_config(data: dict[str, Any], workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "site.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def authorise(path: Path, workdir: Path) -> None:
    """What `lanterne run` needs before alerting: an authorisation covering the cameras and rules
    that names its DPIA and FRIA (GV-01, GV-02), validated masks, the published notice (TR-01) and
    the model and rules approved (GV-05), set up as `prepare_demo` and the runner tests do."""
    from lanterne.accountability.authorisation import Authorisations
    from lanterne.accountability.fria import Elements, FriaRegister
    from lanterne.accountability.governance import Governance
    from lanterne.accountability.masks import validate_masks
    from lanterne.accountability.transparency import export
    from lanterne.config import load_config
    from lanterne.runtime.site import open_site

    cfg = load_config(path)
    now = datetime.now(UTC)
    with open_site(cfg) as opened:
        fria = f"BENCHMARK-NOT-A-FRIA-{now:%Y%m%d%H%M%S}"
        not_assessed = "benchmark only, not assessed: {}"
        elements = ("processes", "period", "people affected", "risks", "oversight", "mitigation")
        FriaRegister(opened.store.engine, opened.audit).add(
            fria, now.date(), Elements(*(not_assessed.format(e) for e in elements)), "benchmark"
        )
        Authorisations(opened.store.engine, opened.audit, cfg.legal_end_date).add(
            f"BENCHMARK-NOT-A-LEGAL-AUTHORISATION-{now:%Y%m%d%H%M%S}",
            legal_basis="none: benchmark on a public research clip",
            authority="none",
            valid_from=now - timedelta(minutes=1),
            valid_until=now + timedelta(days=1),
            cameras=[c.id for c in cfg.cameras],
            event_types=sorted({t for c in cfg.cameras for z in c.zones for t in z.events.enabled()}),
            impact_assessments=["BENCHMARK-NOT-A-DPIA", fria],
            user_id="benchmark",
        )
        for camera in cfg.cameras:
            validate_masks(
                opened.audit, camera, "benchmark", "benchmark: the research clips show no dwelling"
            )
        export(cfg, opened.store.engine, workdir / "public", "benchmark", now)
        governance = Governance(opened.store.engine, opened.audit)
        governance.approve_config(
            cfg,
            [p.change for p in governance.pending(cfg)],
            notice_url=(workdir / "public" / "index.html").resolve().as_uri(),
            summary="BENCHMARK, NOT A GOVERNANCE DECISION: the benchmark's model and rules",
            user_id="benchmark",
            dpia="BENCHMARK-NOT-A-DPIA",
            fria=fria,
        )


# --- measuring a child process ----------------------------------------------------------------


@dataclass(slots=True)
class Child:
    """What one child process cost, from the kernel's accounting of that process alone."""

    cpu: float
    wall: float
    rss_mib: float
    rc: int
    stdout: str = ""
    stderr: str = ""
    stopped_at: datetime | None = None


def _hwm_mib(pid: int) -> float | None:
    """The process's peak RSS so far (VmHWM). Read from /proc while it runs: after exit the kernel's
    ru_maxrss of a forked child also counts the parent's pages it held before exec."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / MIB
    except OSError:
        return None
    return None


def measure(
    cmd: list[str],
    stop_after: float | None = None,
    grace: float = 300.0,
    on_tick: Callable[[], None] | None = None,
    tick: float = 2.0,
) -> Child:
    """Run `cmd` and account its user+system CPU with `wait4` (that process and its threads alone,
    unlike RUSAGE_CHILDREN) and its peak RSS. With `stop_after`, the process gets SIGTERM after
    that many seconds, as `systemctl stop` would. `on_tick` is called every `tick` seconds while
    it runs (to sample what it writes; in this process, so not in the child's CPU)."""
    t0 = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="e2e-child-"))
    with (base / "out").open("w+") as out, (base / "err").open("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env={**os.environ, "NO_COLOR": "1"})
        stopped_at = None
        peak = 0.0
        term_at = None if stop_after is None else time.monotonic() + stop_after
        kill_at = time.monotonic() + grace + (stop_after or 0.0)
        next_tick = time.monotonic() + tick
        while True:
            peak = max(peak, _hwm_mib(proc.pid) or 0.0)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if term_at is not None and now >= term_at and stopped_at is None:
                stopped_at = datetime.now(UTC)
                proc.send_signal(signal.SIGTERM)
            if now > kill_at:
                proc.kill()
            if on_tick is not None and now >= next_tick and stopped_at is None:
                on_tick()
                next_tick = now + tick
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text_out, text_err = out.read(), err.read()
    shutil.rmtree(base, ignore_errors=True)
    return Child(
        cpu=usage.ru_utime + usage.ru_stime,
        wall=wall,
        rss_mib=peak,
        rc=proc.returncode,
        stdout=text_out,
        stderr=text_err,
        stopped_at=stopped_at,
    )


DECODE_ONLY = """
import json, sys, time
from lanterne.video.capture.source import FileSource, probe
c0 = time.process_time()
src = FileSource("decode-only", sys.argv[1], fps=float(sys.argv[2]))
last = 0.0
for frame in src.frames():
    last = frame.pts
cpu = time.process_time() - c0
fps = probe(sys.argv[1]).fps
print(json.dumps({"video_seconds": last + (1 / fps if fps else 0), "cpu_seconds": cpu}))
"""
"""Child program for the floor: the product's decoder (FileSource, BGR at the analysis rate) with
nothing else imported, so its start-up is that of a process that only decodes."""


# --- camera health while `lanterne run` runs ------------------------------------------------------


@dataclass(slots=True)
class HealthSample:
    at: datetime
    """When the runner wrote the row."""
    lag: float | None
    fps: float
    configured: float
    dropped: int
    state: str


@dataclass(slots=True)
class HealthSampler:
    """Reads every camera's health row (`camera_health`, rewritten by the runner every few
    seconds) from the child's database while it runs: the lag series behind "lag p95" and "lag
    grows". Each row is kept once per write."""

    url: str
    series: dict[str, list[HealthSample]] = field(default_factory=dict)
    _engine: Any = None

    def __call__(self) -> None:
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        from lanterne.store import create_engine_for
        from lanterne.store.tables import CameraHealthRecord

        if self._engine is None:
            self._engine = create_engine_for(self.url)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(select(CameraHealthRecord)).all()
        except SQLAlchemyError:
            return  # the child has not created its schema yet
        for r in rows:
            series = self.series.setdefault(r.camera, [])
            if series and series[-1].at == r.updated_at:
                continue
            series.append(
                HealthSample(
                    r.updated_at, r.lag_seconds, r.analysis_fps, r.configured_fps, r.frames_dropped, r.state
                )
            )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def lag_trend(samples: list[HealthSample], warmup: float = 10.0) -> float:
    """Least-squares slope of the lag, seconds per second, over the samples after `warmup`
    seconds (start-up: model loading, the first frames): above zero, the camera falls further
    behind the longer it runs."""
    pts = [(s.at, s.lag) for s in samples if s.lag is not None]
    if len(pts) < 3:
        return float("nan")
    t0 = pts[0][0]
    xs = [(at - t0).total_seconds() for at, _ in pts]
    kept = [(x, lag) for x, (_, lag) in zip(xs, pts, strict=True) if x >= warmup]
    if len(kept) < 3:
        return float("nan")
    mx = sum(x for x, _ in kept) / len(kept)
    my = sum(y for _, y in kept) / len(kept)
    den = sum((x - mx) ** 2 for x, _ in kept)
    return sum((x - mx) * (y - my) for x, y in kept) / den if den else float("nan")


# --- scoring what was stored ------------------------------------------------------------------


@dataclass(slots=True)
class Stored:
    events: list[Event] = field(default_factory=list)
    """Final (closed) events, with their stream offsets as times."""
    created: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    """(type, start wall time, when the row was first written) of every event."""
    video_seconds: dict[str, float] = field(default_factory=dict)
    """Per camera: analysed frames of its first zone ÷ analysis rate (the counts' samples)."""
    origin: dict[str, datetime] = field(default_factory=dict)
    """Per camera: the wall-clock time of stream offset 0 (the first bucket's start)."""
    evidence_rows: int = 0


def read_store(url: str, fps: float) -> Stored:
    from lanterne.store import Store

    store = Store.open(url)
    out = Stored()
    for r in store.events(limit=1_000_000):
        out.created.append((str(r.type), r.start, r.created_at))
        if r.ongoing:
            continue
        out.events.append(
            Event(
                id=r.id,
                type=r.type,
                camera=r.camera,
                zone=r.zone,
                start=r.start_offset,
                end=r.end_offset,
                confidence=r.confidence,
                region=r.region,
                ongoing=False,
                object_class=r.object_class,
            )
        )
        out.evidence_rows += len(store.evidence_for(r.id))
    first_zone: dict[str, str] = {}
    for c in store.counts(limit=1_000_000):
        zone = first_zone.setdefault(c.camera, c.zone)
        if c.zone != zone:
            continue
        out.video_seconds[c.camera] = out.video_seconds.get(c.camera, 0.0) + c.samples / fps
        if c.camera not in out.origin or c.bucket_start < out.origin[c.camera]:
            out.origin[c.camera] = c.bucket_start
    store.close()
    return out


@dataclass(slots=True)
class Reference:
    """What the product's pipeline sees on a clip with MOT ground truth, run in this process
    (the CLI does not expose its boxes): person recall/precision of the tracked boxes the rules
    get, and the reference events of the same rules on the annotated boxes."""

    person_tp: int = 0
    person_fp: int = 0
    person_fn: int = 0
    times: list[tuple[int, float]] = field(default_factory=list)
    reference: list[Event] = field(default_factory=list)
    object_types: set[str] = field(default_factory=set)

    @property
    def person(self) -> tuple[float, float]:
        r = self.person_tp / max(1, self.person_tp + self.person_fn)
        p = self.person_tp / max(1, self.person_tp + self.person_fp)
        return r, p


def reference(video: Path, cam: dict[str, Any], settings: dict[str, Any] | None = None) -> Reference:
    cfg = parse_config(with_variant({**DEMO_CONFIG, "mode": "alerts", "cameras": [cam]}, settings or {}))
    camera_cfg = cfg.cameras[0]
    gt = load_gt(PETS_GT)
    ref = Reference()
    boxes: list[tuple[int, tuple]] = []

    def on_frame(frame: Any, persons: tuple, vehicles: tuple) -> None:
        boxes.append((frame.index, persons))

    analyser = CameraAnalyser(
        camera_cfg,
        cfg,
        create_detector(cfg.detector, cfg.models_dir),
        config_hash=config_hash(cfg),
        on_frame=on_frame,
    )
    for frame in FileSource(camera_cfg.id, str(video), fps=camera_cfg.fps).frames():
        analyser.process(frame)
        ref.times.append((frame.index, frame.pts))
    analyser.finish()
    empty = np.zeros((0, 4))
    for index, persons in boxes:
        considered, ignored = gt.get(index, (empty, empty))
        det = np.array(persons, dtype=float).reshape(-1, 4)
        tp, free = greedy(considered, det)
        _, still_free = greedy(ignored, det[free])
        ref.person_tp += tp
        ref.person_fn += len(considered) - tp
        ref.person_fp += int(still_free.sum())
    info = probe(str(video))
    mot = load_mot(PETS_GT, (info.width, info.height), info.fps or 10.0)
    ref.reference = reference_events(mot, camera_cfg, ref.times)
    ref.object_types = {
        str(t) for z in camera_cfg.zones for t in z.events.enabled() if "objects" in RULES[t].needs
    }
    return ref


def event_score(stored: list[Event], ref: Reference) -> tuple[Score, dict[str, Score]]:
    """Events of the rules that have a ground-truth reference (crowd_movement has none: it needs
    pixels' flow, not boxes); person_down and abandoned_object have no reference event on PETS, so
    any such event counts as a false positive."""
    detected = [e for e in stored if str(e.type) in ref.object_types]
    per_type = match_events(detected, ref.reference, slack=1.5)
    total = Score(*(sum(getattr(s, k) for s in per_type.values()) for k in ("tp", "fp", "fn")))
    return total, per_type


def min_seconds(cam: dict[str, Any]) -> dict[str, float]:
    """Seconds each rule waits before it raises: an event's first row is written that long after
    its start even with no lag."""
    out: dict[str, float] = {}
    for z in cam["zones"]:
        for etype, params in z["events"].items():
            out[str(EventType(etype))] = max(out.get(etype, 0.0), float(params.get("min_seconds", 0)))
    return out
