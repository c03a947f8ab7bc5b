"""Offline evaluation of one clip: `lanterne analyze VIDEO --config CFG --out DIR`.

Writes `events.jsonl` (the final state of each event), `stats.json` (what it cost), counts in
statistics mode, and the anonymised evidence in alerts mode. Events are appended to the file as
they close, so a fault in the middle of a clip loses nothing already found.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lanterne.config import Config, config_hash
from lanterne.config.schema import Camera, Mode
from lanterne.core.errors import ConfigError, SourceError
from lanterne.core.types import Counts, Event, Frame
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource, probe
from lanterne.video.detectors import create_detector


@dataclass(slots=True)
class AnalyzeResult:
    events: list[Event] = field(default_factory=list)
    counts: list[Counts] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    error: SourceError | None = None
    evidence: list[Path] = field(default_factory=list)


def pick_camera(cfg: Config, camera_id: str | None) -> Camera:
    if camera_id is None:
        return cfg.cameras[0]
    for cam in cfg.cameras:
        if cam.id == camera_id:
            return cam
    known = ", ".join(c.id for c in cfg.cameras)
    raise ConfigError(f"--camera {camera_id}: no such camera in the configuration (known: {known})")


def analyze(
    video: Path,
    cfg: Config,
    out: Path,
    camera_id: str | None = None,
    progress: Callable[[float, float], None] | None = None,
    store_url: str | None = None,
    user_id: str = "system",
) -> AnalyzeResult:
    """Analyse `video` with the zones and rules of one camera of `cfg` (the first by default)."""
    camera = pick_camera(cfg, camera_id)
    info = probe(str(video))
    out.mkdir(parents=True, exist_ok=True)
    chash = config_hash(cfg)
    detector = create_detector(cfg.detector, cfg.models_dir)
    result = AnalyzeResult()
    origin = datetime.now(UTC)

    # Offline evaluation needs no authorisation, but it is recorded as an evaluation (issue 4,
    # item 3): who replayed which clip, with which configuration. With `store_url` the events go
    # to that database, and so does the record.
    from lanterne.audit import Action
    from lanterne.runtime.site import open_site

    if store_url is not None:
        cfg_store = cfg.store.model_copy(update={"url": store_url})
        site = open_site(cfg.model_copy(update={"store": cfg_store}))
    else:
        site = open_site(cfg)
    site.audit.append(
        user_id,
        Action.EVALUATION,
        object_type="camera",
        object_id=camera.id,
        details={"clip": video.name, "config_sha256": chash, "mode": str(cfg.mode)},
    )
    store = site.store if store_url is not None else None
    if store is None:
        site.close()

    writer = None
    if cfg.mode is Mode.ALERTS:
        from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
        from lanterne.video.evidence.background import BackgroundEvidenceWriter
        from lanterne.video.evidence.writer import EvidenceWriter

        # Analysis on this thread, anonymisation and encoding on the writer's: both cores work.
        writer = BackgroundEvidenceWriter(
            EvidenceWriter(out / "evidence", DefaultAnonymizer(cfg.models_dir), store), block_when_full=True
        )

    events_path = out / "events.jsonl"
    events_file = events_path.open("w", encoding="utf-8")

    def on_event(e: Event) -> None:
        if store is not None:
            store.upsert_event(e, origin=origin, mode="evaluation")
        if writer is not None:
            writer.on_event(e)
        if not e.ongoing:
            result.events.append(e)
            events_file.write(json.dumps(e.to_json()) + "\n")
            events_file.flush()

    def on_counts(c: Counts) -> None:
        result.counts.append(c)
        if store is not None:
            store.add_counts(c, origin=origin)

    def on_frame(frame: Frame, persons: tuple, vehicles: tuple) -> None:
        if writer is not None:
            writer.push(frame.camera_id, frame.pts, frame.image, persons, vehicles)

    analyser = CameraAnalyser(
        camera,
        cfg,
        detector,
        config_hash=chash,
        on_event=on_event,
        on_counts=on_counts,
        on_frame=on_frame,
    )
    source = FileSource(
        camera.id, str(video), fps=camera.fps, masks=[m.polygon for m in camera.privacy_masks]
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    last_t = 0.0
    try:
        for frame in source.frames():
            analyser.process(frame)
            last_t = frame.pts
            if progress is not None:
                progress(frame.pts, info.duration or 0.0)
    except SourceError as exc:
        result.error = exc
    finally:
        analyser.finish()
        if writer is not None:
            writer.close()
        events_file.close()
    if result.error is None and source.error is not None:
        result.error = source.error
    frame_period = 1.0 / info.fps if info.fps else 0.0
    result.stats = {
        "video": video.name,
        "camera": camera.id,
        "mode": "evaluation" if cfg.mode is Mode.ALERTS else "statistics",
        "video_seconds": round(last_t + frame_period, 3),
        "frames_decoded": source.stats.frames_decoded,
        "frames_analysed": analyser.stats.frames_analysed,
        "detector_runs": analyser.stats.detector_runs,
        "detector_region_runs": analyser.stats.detector_region_runs,
        "detector_cpu_seconds": round(analyser.stats.detector_seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu0, 3),
        "wall_seconds": round(time.perf_counter() - wall0, 3),
        "events": len(result.events),
        "events_by_type": _by_type(result.events),
        "model": detector.model_name,
        "model_sha256": detector.model_sha256,
        "config_sha256": chash,
        "error": str(result.error) if result.error else None,
        "decode": asdict(source.stats),
    }
    (out / "counts.json").write_text(json.dumps([asdict(c) for c in result.counts], indent=1))
    if writer is not None:
        result.evidence = sorted(p for p in (out / "evidence").rglob("*") if p.is_file())
    (out / "stats.json").write_text(json.dumps(result.stats, indent=2))
    return result


def _by_type(events: list[Event]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[str(e.type)] = out.get(str(e.type), 0) + 1
    return out
