"""`lanterne run`: every camera continuously into the store.

One worker thread per camera (decoding, onnxruntime and OpenCV release the GIL, so threads use
both cores without the cost of a process per camera). A watchdog restarts a worker that died,
with backoff, without touching the others: one broken camera must never blind the rest.
Services start in one place, in order, and stop in reverse.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lanterne.audit import Action
from lanterne.config import Config, config_hash
from lanterne.config.schema import Camera, Mode
from lanterne.core.assets import MODELS
from lanterne.core.errors import LanterneError
from lanterne.core.types import Counts, Event, EventType, Frame
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import open_source
from lanterne.video.detectors import create_detector
from lanterne.video.detectors.base import Detector

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkerState:
    camera: str
    status: str = "starting"
    restarts: int = 0
    last_error: str | None = None
    frames: int = 0
    events: int = 0
    started_at: float = field(default_factory=time.monotonic)


class CameraWorker:
    def __init__(self, camera: Camera, runner: Runner) -> None:
        self.camera = camera
        self.runner = runner
        self.state = WorkerState(camera.id)
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()

    def start(self) -> None:
        self.stop.clear()
        self.thread = threading.Thread(target=self._run, name=f"camera-{self.camera.id}", daemon=True)
        self.state.started_at = time.monotonic()
        self.thread.start()

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _run(self) -> None:
        r = self.runner
        origin = datetime.now(UTC)
        try:
            analyser = CameraAnalyser(
                self.camera,
                r.cfg,
                r.detector,
                config_hash=r.chash,
                on_event=lambda e: r.on_event(e, origin),
                on_counts=lambda c: r.on_counts(c, origin),
                on_frame=r.on_frame,
                allowed=r.allowed_for(self.camera.id),
                inference_on=r.inference_on(self.camera.id),
            )
            source = open_source(
                self.camera.id,
                self.camera.source,
                self.camera.fps,
                stop=self.stop,
                masks=[m.polygon for m in self.camera.privacy_masks],
            )
            self.state.status = "running"
            try:
                for frame in source.frames():
                    if self.stop.is_set():
                        break
                    origin = datetime.now(UTC) - timedelta(seconds=frame.pts) if frame.index == 0 else origin
                    analyser.process(frame)
                    self.state.frames += 1
            finally:
                analyser.finish()
            if source.error is not None:
                raise source.error
            self.state.status = "stopped" if self.stop.is_set() else "finished"
        except LanterneError as exc:
            self.state.status = "failed"
            self.state.last_error = str(exc)
            log.error("camera %s: %s", self.camera.id, exc)
        except Exception as exc:
            self.state.status = "failed"
            self.state.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("camera %s: worker crashed; the watchdog will restart it", self.camera.id)


def _never(event_type: EventType, t: float) -> bool:
    """No gate, no alert: a camera missing from the authorisation gates stays statistics-only."""
    return False


class Runner:
    """Owns the shared services (detector, store, evidence writer) and the camera workers."""

    def __init__(
        self,
        cfg: Config,
        detector: Detector | None = None,
        restart_backoff: float = 2.0,
        loop_files: bool = False,
    ) -> None:
        self.cfg = cfg
        self.chash = config_hash(cfg)
        self.detector = detector or create_detector(cfg.detector, cfg.models_dir)
        self.restart_backoff = restart_backoff
        self.loop_files = loop_files
        """Restart finished file sources (demo and soak tests); a real camera never finishes."""
        self.workers: dict[str, CameraWorker] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.store: Any = None
        self.writer: Any = None
        self.audit: Any = None
        self.retention: Any = None
        self.gates: dict[str, Any] = {}
        self.suspensions: Any = None
        self.stops: Any = None

    # --- services, started in order and stopped in reverse -------------------------------
    def start(self) -> None:
        from lanterne.accountability.authorisation import gates_for
        from lanterne.accountability.retention import RetentionScheduler
        from lanterne.runtime.site import open_site

        site = open_site(self.cfg)
        self.store, self.audit = site.store, site.audit
        self.audit.append(
            "system",
            Action.CONFIG_CHANGE,
            object_type="site",
            object_id=self.cfg.site,
            details={"event": "run_started", "mode": str(self.cfg.mode), "config_sha256": self.chash},
        )
        self._record_models()
        if self.cfg.mode is Mode.ALERTS:
            from lanterne.accountability.suspension import Suspensions
            from lanterne.accountability.transparency import require_notice

            # The public must be told before alerting starts (TR-01).
            require_notice(self.cfg, self.store.engine)
            self.suspensions = Suspensions(self.store.engine, self.audit, self.cfg.suspension)
        from lanterne.accountability.stops import Stops

        # Supervisors' stops (HO-03), read at most every second by every camera worker.
        self.stops = Stops(self.store.engine, self.audit)
        # One gate per camera in every mode: a camera without a gate never alerts.
        self.gates = gates_for(self.cfg, self.store.engine, self.audit)
        for gate in self.gates.values():
            gate.check()
        self.retention = RetentionScheduler(
            self.store, self.cfg.store.evidence_dir, self.cfg.retention, self.audit
        )
        self.retention.start()
        if self.cfg.mode is Mode.ALERTS:
            from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
            from lanterne.video.capture.source import is_live
            from lanterne.video.evidence.background import BackgroundEvidenceWriter
            from lanterne.video.evidence.writer import EvidenceWriter

            self.writer = BackgroundEvidenceWriter(
                EvidenceWriter(
                    self.cfg.store.evidence_dir, DefaultAnonymizer(self.cfg.models_dir), self.store
                ),
                block_when_full=not any(is_live(c.source) for c in self.cfg.cameras),
            )
        for cam in self.cfg.cameras:
            w = CameraWorker(cam, self)
            self.workers[cam.id] = w
            w.start()

    def _record_models(self) -> None:
        """Which models produce this run's events and pixels is on the record (GV-05): the models in
        use, by sha256, are compared with those of the last run, and a difference (the first run of
        a site included) is written as `model_change` with the previous set beside the new one."""
        in_use: dict[str, dict[str, str]] = {
            "detector": {"name": self.detector.model_name, "sha256": self.detector.model_sha256}
        }
        if self.cfg.mode is Mode.ALERTS:
            # The anonymiser's detectors blur faces and plates in every written picture.
            for role, name in (("faces", "yunet"), ("plates", "lpd_yunet")):
                in_use[role] = {"name": name, "sha256": MODELS[name].sha256}
        last = self.audit.entries(action=Action.MODEL_CHANGE)
        previous = last[-1].details.get("models") if last else None
        if previous != in_use:
            self.audit.append(
                "system",
                Action.MODEL_CHANGE,
                object_type="site",
                object_id=self.cfg.site,
                details={"models": in_use, "previous": previous},
            )

    def stop(self) -> None:
        self._stop.set()
        for w in self.workers.values():
            w.stop.set()
        for w in self.workers.values():
            if w.thread is not None:
                w.thread.join(timeout=10)
        if self.writer is not None:
            self.writer.close()
        if self.retention is not None:
            self.retention.stop()

    def watchdog_once(self) -> None:
        """Restart dead workers whose backoff has elapsed. Backoff doubles per restart of the same
        camera (capped at 5 min) so a permanently broken camera does not spin."""
        now = time.monotonic()
        for w in self.workers.values():
            if w.alive() or self._stop.is_set():
                continue
            if w.state.status == "finished" and not self.loop_files:
                continue
            wait = min(self.restart_backoff * (2 ** min(w.state.restarts, 8)), 300.0)
            if now - w.state.started_at < wait:
                continue
            w.state.restarts += 1
            log.warning("camera %s: restarting worker (restart %d)", w.camera.id, w.state.restarts)
            w.start()

    def run_forever(self, poll: float = 1.0) -> None:
        self.start()
        try:
            while not self._stop.is_set():
                self.watchdog_once()
                self._stop.wait(poll)
        finally:
            self.stop()

    def run_until_finished(self, timeout: float | None = None, poll: float = 0.5) -> bool:
        """For file sources (the demo, replays): run until every worker has finished its file,
        restarting crashed ones as usual. Returns False if `timeout` passed first."""
        self.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._stop.is_set():
                self.watchdog_once()
                if all(w.state.status == "finished" for w in self.workers.values()):
                    return True
                if deadline is not None and time.monotonic() > deadline:
                    return False
                self._stop.wait(poll)
            return False
        finally:
            self.stop()

    def allowed_for(self, camera_id: str) -> Callable[[EventType, float], bool]:
        """What may alert on this camera: an authorisation must cover it (the gate, asked first)
        and the detector must not be suspended. Built in the camera's own thread: the
        suspension cache is per camera."""
        gate = self.gates.get(camera_id)
        if gate is None:
            return _never
        stops = self.stops
        not_suspended = self.suspensions.allowed(camera_id) if self.suspensions is not None else None

        def allowed(etype: EventType, t: float) -> bool:
            if not gate.allowed(etype, t):
                return False
            if stops is not None and stops.stopped(camera_id, etype):
                return False
            return not_suspended is None or not_suspended(etype, t)

        return allowed

    def inference_on(self, camera_id: str) -> Callable[[], bool]:
        """False while a supervisor's stop covers the camera or the site: no inference at all."""
        stops = self.stops
        if stops is None:
            return lambda: True
        return lambda: not stops.inference_stopped(camera_id)

    # --- sinks, called from worker threads ----------------------------------------------
    def on_event(self, e: Event, origin: datetime) -> None:
        with self._lock:
            w = self.workers.get(e.camera)
            if w is not None and e.ongoing:
                w.state.events += 1
        if self.store is not None:
            self.store.upsert_event(e, origin=origin, mode="alerts")
        if self.writer is not None:
            self.writer.on_event(e)

    def on_counts(self, c: Counts, origin: datetime) -> None:
        if self.store is not None:
            self.store.add_counts(c, origin=origin)

    def on_frame(self, frame: Frame, persons: tuple, vehicles: tuple) -> None:
        if self.writer is not None:
            self.writer.push(frame.camera_id, frame.pts, frame.image, persons, vehicles)
