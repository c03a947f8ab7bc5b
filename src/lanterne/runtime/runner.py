"""`lanterne run`: every camera continuously into the store.

One worker thread per camera (decoding, onnxruntime and OpenCV release the GIL, so threads use
both cores without the cost of a process per camera). A watchdog restarts a worker that died,
with backoff, without touching the others: one broken camera must never blind the rest.
Services start in one place, in order, and stop in reverse.

A camera that cannot keep up says so and sheds load before it loses frames. A file camera is
read at real time (its timestamps against the wall clock) so that it stands for a live one, and
each worker measures its lag: the wall time since its stream opened minus the stream time it has
analysed. Beyond `LAG_SHED_SECONDS` the worker halves its analysis rate (the source then skips
more decoded frames without converting them, most of a frame's cost) step by step down to
`MIN_FPS`, and raises it again once it has kept up for a while; only when even that floor falls
behind does the source drop frames undecoded up to the next keyframe, counted. Each change is one
log line, and every camera's lag, rate, drops and state go to the store every `HEALTH_SECONDS`
for the console (`lanterne.accountability.cameras`). Rules count seconds, never frames, so a
lower rate changes their sampling, not their timing.

A `lanterne worker` (`lanterne.runtime.worker`) is this runner with two things injected: the
cameras it runs come and go one at a time (`start(cameras=())`, then `add_camera` /
`remove_camera` as its leases are gained and lost), and its events go to an `EventSink` that
publishes them instead of writing the store. Everything else is the same code path.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lanterne.accountability.cameras import CameraHealth, record_health
from lanterne.audit import Action
from lanterne.audit.witness import HeadTimer
from lanterne.config import Config, config_hash
from lanterne.config.schema import Camera, Mode
from lanterne.core.assets import MODELS
from lanterne.core.errors import LanterneError
from lanterne.core.types import Counts, Event, EventType, Frame
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource, Recording, open_source
from lanterne.video.detectors import create_detector
from lanterne.video.detectors.base import Detector
from lanterne.video.recording import recording_mode

log = logging.getLogger(__name__)

LAG_SHED_SECONDS = 2.0
"""Lag beyond which a camera sheds analysis rate. A live camera's alert is worth its timeliness;
two seconds is more than a frame's analysis on a loaded machine (so noise does not shed) and less
than most rules' `min_seconds`."""
LAG_CLEAR_SECONDS = 1.0
"""Lag under which a camera counts as keeping up. A paced camera's lag is one frame's analysis,
tenths of a second, but on loaded cores single frames wait longer without the camera falling
behind: at 0.5 s, 16 cameras on 2 busy cores never stayed calm long enough to get their rate back."""
STEP_SECONDS = 5.0
"""Least wall time between two rate changes (or drops), so that a change shows in the lag before
the next one."""
RECOVER_SECONDS = 30.0
"""Time a shed camera must keep up before its rate is doubled again. Doubled itself (up to
`MAX_RECOVER_SECONDS`) each time a raise is shed again soon after, so that a camera on the edge
does not flap and fill the log."""
MAX_RECOVER_SECONDS = 600.0
STARTUP_SECONDS = 10.0
"""A camera does not shed in its first seconds: every camera of a site starts at once, each with a
motion gate that has no background yet (full-frame detections), so start-up lags that a minute of
running works off. 16 cameras on 2 loaded cores all shed to 1.25 fps in their first 10 s without
this. The highest lag seen meanwhile is the reference of the first decision: a camera working
off its start-up backlog is left alone, one still falling behind sheds at once."""
MIN_FPS = 1.0
"""The floor of shedding. The rules' timing holds at any rate, but their tolerance does not: at
1 fps a single missed detection already spans 2 s, more than the 1.6 s an event's condition may
disappear without being split (`lanterne.rules.base.GRACE_SECONDS`). Below this, dropping a few
seconds and catching up is better than analysing too sparsely to be trusted."""
LAG_DROP_SECONDS = 5.0
"""Lag at the floor rate beyond which the source drops frames undecoded to catch up."""
CATCH_UP_MARGIN = 1.0
"""Dropping stops this far behind real time (then at the next keyframe), not at the live edge, which
a live stream's own latency keeps just out of reach."""
EventSink = Callable[[Event, datetime], bool]
"""Where an event update goes, with the wall-clock time of its stream's offset 0: the store in
`lanterne run`, the events stream in a worker. False when it was not taken (a worker that lost
the camera's lease): the event then gets no evidence either."""

HEALTH_SECONDS = 5.0
"""How often every camera's health row is rewritten; the console takes a row older than
`lanterne.accountability.cameras.HEALTH_STALE_AFTER` for a runner that is gone."""
STALLED_SECONDS = 15.0
"""A running worker with no analysed frame for this long is `stalled` (a live stream reconnecting,
a stuck decoder), not running with a stale lag."""


@dataclass(slots=True)
class Shedder:
    """One camera's analysis rate, lowered and restored from its lag.

    Explicit state and an explicit clock (`now`, monotonic seconds), so that a test can walk it
    through any sequence of lags; the worker applies `rate` to its source and drops frames when
    `update` says so.
    """

    camera: str
    configured: float
    rate: float = 0.0
    floor: float = 0.0
    changed_at: float = -math.inf
    lag_at_change: float = 0.0
    calm_since: float | None = None
    raised_at: float = -math.inf
    recover_after: float = RECOVER_SECONDS
    dropping: bool = False
    started: float | None = None

    def __post_init__(self) -> None:
        self.rate = self.rate or self.configured
        self.floor = self.floor or min(MIN_FPS, self.configured)

    @property
    def shed(self) -> bool:
        return self.rate < self.configured

    def update(self, lag: float, now: float) -> bool:
        """Take one lag measurement (seconds behind real time after analysing a frame). Returns
        True when even the floor rate cannot keep up and the source should drop frames."""
        if self.started is None:
            self.started = now
        if now - self.started < STARTUP_SECONDS:
            self.lag_at_change = max(self.lag_at_change, lag)
            return False
        if lag > LAG_SHED_SECONDS:
            self.calm_since = None
            if now - self.changed_at < STEP_SECONDS:
                return False
            improving = lag < 0.8 * self.lag_at_change
            self.changed_at, self.lag_at_change = now, lag
            if improving:
                return False  # still working off its backlog since the last step: give it time
            if self.rate > self.floor:
                old, self.rate = self.rate, max(self.floor, self.rate / 2)
                if now - self.raised_at < 2 * self.recover_after:
                    self.recover_after = min(2 * self.recover_after, MAX_RECOVER_SECONDS)
                log.warning(
                    "camera %s: %.1f s behind real time; analysis shed from %g to %g fps",
                    self.camera, lag, old, self.rate,
                )  # fmt: skip
                return False
            if lag <= LAG_DROP_SECONDS:
                return False
            if not self.dropping:
                log.warning(
                    "camera %s: %.1f s behind real time even at %g fps; dropping frames to catch up",
                    self.camera, lag, self.rate,
                )  # fmt: skip
            self.dropping = True
            return True
        if lag >= LAG_CLEAR_SECONDS:
            self.calm_since = None
            return False
        if self.dropping:
            self.dropping = False
            log.warning("camera %s: caught up with real time at %g fps", self.camera, self.rate)
        if self.calm_since is None:
            self.calm_since = now
        if self.shed and now - self.calm_since >= self.recover_after:
            old, self.rate = self.rate, min(self.configured, self.rate * 2)
            log.warning(
                "camera %s: kept up for %.0f s; analysis back from %g to %g fps",
                self.camera, now - self.calm_since, old, self.rate,
            )  # fmt: skip
            self.calm_since = self.changed_at = self.raised_at = now
            self.lag_at_change = lag
        return False


@dataclass(slots=True)
class WorkerState:
    camera: str
    status: str = "starting"
    restarts: int = 0
    last_error: str | None = None
    frames: int = 0
    events: int = 0
    started_at: float = field(default_factory=time.monotonic)
    lag: float | None = None
    """Seconds behind real time after the last analysed frame; None for an unpaced file."""
    analysed_at: float | None = None
    """`time.monotonic()` of the last analysed frame."""
    frames_dropped: int = 0
    """Frames dropped undecoded to catch up, over every run of this worker."""
    detector_runs: int = 0
    detector_seconds: float = 0.0
    """Detector runs and their CPU seconds, over every run of this worker (`/metrics` of a
    worker process: seconds per run is the figure a detector backend is judged by)."""


class CameraWorker:
    def __init__(self, camera: Camera, runner: Runner) -> None:
        self.camera = camera
        self.runner = runner
        self.state = WorkerState(camera.id)
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.shedder = Shedder(camera.id, camera.fps)
        self.source: FileSource | None = None

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
            # A restarted worker starts again at the configured rate, its earlier drops kept.
            self.shedder = shed = Shedder(self.camera.id, self.camera.fps)
            dropped_before = self.state.frames_dropped
            runs_before, seconds_before = self.state.detector_runs, self.state.detector_seconds
            self.state.lag = self.state.analysed_at = None
            source = open_source(
                self.camera.id,
                self.camera.source,
                self.camera.fps,
                stop=self.stop,
                pace=r.pace_files,
                masks=[m.polygon for m in self.camera.privacy_masks],
                record=r.recording_for(self.camera.id),
            )
            self.source = source
            if r.live is not None:
                source.between = r.live.between(self.camera.id, analyser)
            self.state.status = "running"
            try:
                for frame in source.frames():
                    if self.stop.is_set():
                        break
                    origin = datetime.now(UTC) - timedelta(seconds=frame.pts) if frame.index == 0 else origin
                    analyser.process(frame)
                    if r.live is not None:
                        r.live.push(self.camera.id, frame, analyser)
                    self.state.frames += 1
                    self._keep_up(source, shed, frame.pts)
                    self.state.frames_dropped = dropped_before + source.stats.frames_dropped
                    self.state.detector_runs = runs_before + analyser.stats.detector_runs
                    self.state.detector_seconds = seconds_before + analyser.stats.detector_seconds
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

    def _keep_up(self, source: FileSource, shed: Shedder, pts: float) -> None:
        """Measure the lag after a frame and act on it: the next frames are selected at the
        shedder's rate, and dropped undecoded up to a keyframe when even the floor is behind."""
        now = time.monotonic()
        self.state.analysed_at = now
        if source.wall_origin is None:
            return  # an unpaced file: as fast as it can, no real time to fall behind
        lag = now - source.wall_origin - pts
        self.state.lag = lag
        if shed.update(lag, now):
            source.skip_until = now - source.wall_origin - CATCH_UP_MARGIN
        source.fps = shed.rate

    def health(self, now: float, at: datetime) -> CameraHealth:
        """The camera's health row at monotonic time `now` (wall time `at`). The lag goes on
        growing while no frame comes, so that a stuck worker does not report its last good lag."""
        st, shed = self.state, self.shedder
        state = st.status
        lag = st.lag
        last = st.analysed_at if st.analysed_at is not None else st.started_at
        error = st.last_error
        if state == "running":
            quiet = now - last - 1.0 / shed.rate
            if lag is not None and st.analysed_at is not None and quiet > 0:
                lag += quiet
            if now - last > STALLED_SECONDS:
                state = "stalled"
                error = getattr(self.source, "last_error", None) or error
            elif shed.dropping:
                state = "dropping"
            elif shed.shed:
                state = "shedding"
        return CameraHealth(
            camera=self.camera.id,
            state=state,
            lag_seconds=None if lag is None else round(lag, 3),
            analysis_fps=shed.rate,
            configured_fps=self.camera.fps,
            frames_dropped=st.frames_dropped,
            restarts=st.restarts,
            last_error=error,
            updated_at=at,
            worker=self.runner.worker_id,
        )


def site_retention(cfg: Config, store: Any, audit: Any) -> tuple[Any, list[Callable[[datetime], object]]]:
    """The site's retention: the scheduler (evidence, alerts and recordings by age, not yet
    started) and the once-a-minute chores (the events-only recording purge, the hourly review of
    the audit log). One process of a site runs them: `lanterne run`, or `lanterne ingest` in a
    city."""
    from lanterne.accountability.recordings import purge_events_only, purge_recordings
    from lanterne.accountability.retention import RetentionScheduler

    modes = {c.id: recording_mode(cfg, c.id) for c in cfg.cameras}
    settings = cfg.recording
    # Recordings are purged in every mode: a site back in statistics mode still deletes what it
    # recorded before, on time.
    scheduler = RetentionScheduler(
        store,
        cfg.store.evidence_dir,
        cfg.retention,
        audit,
        recordings=lambda now: purge_recordings(store, settings, modes, audit, now),
    )
    minutely: list[Callable[[datetime], object]] = []
    if "events" in modes.values():
        # Footage no event needs goes within a minute of passing the margin (the hourly purge
        # would keep it up to an hour longer); run on the health beat, which never stops cameras.
        minutely.append(lambda now: purge_events_only(store, settings, modes, audit, now))
    if cfg.review.hourly:
        from lanterne.accountability.log_review import HourlyReview

        # The DPO's review of the audit log (LG-06), once each hour is over: here because one
        # process of a site runs these chores, so no two processes review the same hour.
        minutely.append(HourlyReview(store, audit, cfg.review))
    from lanterne.accountability.incidents import sweep_for

    # Silent detectors, false-alarm spikes and recall misses become incidents (RK-05), here for
    # the same reason: one process per site, so each symptom opens one incident.
    minutely.append(sweep_for(cfg, store.engine, audit))
    return scheduler, minutely


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
        pace_files: bool = True,
        *,
        event_sink: EventSink | None = None,
        retention: bool = True,
        evidence_store: Callable[[Any], Any] | None = None,
        before_recording: Callable[[str], None] | None = None,
        worker_id: str | None = None,
        control_refresh: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.worker_id = worker_id
        """Written on the cameras' health rows (`lanterne worker --id`); None for `lanterne run`."""
        self.chash = config_hash(cfg)
        self.detector = detector or create_detector(cfg.detector, cfg.models_dir)
        self.restart_backoff = restart_backoff
        self.loop_files = loop_files
        """Restart finished file sources (demo and soak tests); a real camera never finishes."""
        self.pace_files = pace_files
        """Read file cameras at real time, as the live cameras they stand for (lag and shedding
        then mean what they would on site); False reads them as fast as possible (the demo)."""
        self._health: threading.Thread | None = None
        self._health_stop = threading.Event()
        self._health_failing = False
        self._minutely: list[Callable[[datetime], object]] = []
        self.workers: dict[str, CameraWorker] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.store: Any = None
        self.writer: Any = None
        self.audit: Any = None
        self.retention: Any = None
        self.recorder: Any = None
        self._heads: HeadTimer | None = None
        """Writes the recorded cameras' packets into encrypted segments (alerts mode only)."""
        self.gates: dict[str, Any] = {}
        self.suspensions: Any = None
        self.stops: Any = None
        self.event_sink = event_sink
        """Where events go; None: the store (`lanterne run`)."""
        self.run_retention = retention
        """Run the retention scheduler here. A city runs it in one process (`lanterne ingest`),
        not in each of dozens of workers purging the same store at once."""
        self.evidence_store = evidence_store
        """Wraps the store the evidence writer records into (a worker's evidence row must wait
        for its event, which another process writes)."""
        self.before_recording = before_recording
        """Called in a camera's thread before its recording opens (a worker waits there for the
        camera's previous owner to seal its last segment)."""
        self._recordings: dict[str, Any] = {}
        """Each camera's open recording, so that removing one camera seals its segment."""
        self.control_refresh = control_refresh
        """Seconds between reads of stops and authorisations when changes are pushed (a worker
        hearing the control bell); None: read them every second as one machine does."""
        self.live: Any = None
        """The live wall's encoders for this process's cameras (`LiveFeeds`), while watched."""

    # --- services, started in order and stopped in reverse -------------------------------
    def start(self, cameras: Iterable[str] | None = None) -> None:
        """Start the shared services and the cameras named (None: every configured camera; a
        worker starts with none and adds them as it gains their leases)."""
        from lanterne.accountability.authorisation import REFRESH_SECONDS, gates_for
        from lanterne.runtime.site import open_site

        site = open_site(self.cfg)
        self.store, self.audit = site.store, site.audit
        # The newest records of a quiet spell are signed and witnessed within a minute, as the
        # console's are (docs/audit.md, "Witnesses").
        self._heads = HeadTimer(self.audit).start()
        self.audit.append(
            "system",
            Action.CONFIG_CHANGE,
            object_type="site",
            object_id=self.cfg.site,
            details={"event": "run_started", "mode": str(self.cfg.mode), "config_sha256": self.chash},
        )
        from lanterne.accountability.snapshots import record as record_snapshot

        # DC-03: the hash every event of this run carries resolves to this configuration.
        record_snapshot(self.store.engine, self.audit, self.cfg)
        self._record_models()
        if self.cfg.mode is Mode.ALERTS:
            from lanterne.accountability.suspension import Suspensions
            from lanterne.accountability.transparency import require_notice

            # The public must be told before alerting starts (TR-01).
            require_notice(self.cfg, self.store.engine)
            self.suspensions = Suspensions(self.store.engine, self.audit, self.cfg.suspension)
        from lanterne.accountability.stops import REFRESH_S, Stops

        # Supervisors' stops (HO-03), read at most every second by every camera worker.
        self.stops = Stops(self.store.engine, self.audit, refresh=self.control_refresh or REFRESH_S)
        # One gate per camera in every mode: a camera without a gate never alerts.
        self.gates = gates_for(
            self.cfg, self.store.engine, self.audit, refresh_seconds=self.control_refresh or REFRESH_SECONDS
        )
        for gate in self.gates.values():
            gate.check()
        from lanterne.runtime.recording import open_recorder
        from lanterne.video.recording import KeyRing

        modes = {c.id: recording_mode(self.cfg, c.id) for c in self.cfg.cameras}
        if any(m != "off" for m in modes.values()):
            # Before any camera opens: segments a crash left open are sealed or marked lost.
            keys = KeyRing.load_or_create(self.cfg.recording.key_file)
            self.recorder = open_recorder(self.cfg.recording, self.store, self.audit, keys=keys)
            if cameras is None:
                # Every camera is this process's: any open segment was left by its own crash. A
                # worker running some cameras must not seal segments another worker is writing;
                # the recorder recovers a camera's open segment when it opens that camera.
                self.recorder.recover()
        if self.run_retention:
            self.retention, minutely = site_retention(self.cfg, self.store, self.audit)
            self._minutely += minutely
            self.retention.start()
        if self.cfg.mode is Mode.ALERTS:
            from lanterne.video.anonymize.anonymizer import DefaultAnonymizer
            from lanterne.video.capture.source import is_live
            from lanterne.video.evidence.background import BackgroundEvidenceWriter
            from lanterne.video.evidence.writer import EvidenceWriter

            self.writer = BackgroundEvidenceWriter(
                EvidenceWriter(
                    self.cfg.store.evidence_dir,
                    DefaultAnonymizer(self.cfg.models_dir),
                    self.store if self.evidence_store is None else self.evidence_store(self.store),
                    # A recorded camera's clips are ranges of its recording, anonymised when
                    # viewed (`lanterne.video.playback`): here only its snapshots are written.
                    clips_for=lambda camera: modes.get(camera, "off") == "off",
                ),
                block_when_full=not any(is_live(c.source) for c in self.cfg.cameras),
            )
        if self.cfg.live.enabled:
            from lanterne.runtime.live_feed import LiveFeeds

            self.live = LiveFeeds(self.store.engine, self.cfg.live, self.cameras)
            self.live.start()
        for cam in self.cfg.cameras:
            if cameras is None or cam.id in cameras:
                self.add_camera(cam.id)
        self._health_stop.clear()
        self._health = threading.Thread(target=self._report_health, name="camera-health", daemon=True)
        self._health.start()

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

    # --- cameras, one at a time (a worker's leases) -------------------------------------
    def add_camera(self, camera_id: str) -> bool:
        """Start analysing a configured camera; False when it already runs. Returns at once (the
        camera opens in its own thread), so a lease callback may call it."""
        cam = next((c for c in self.cfg.cameras if c.id == camera_id), None)
        if cam is None:
            raise LanterneError(f"camera {camera_id!r} is not in the configuration; add it to cameras:")
        with self._lock:
            old = self.workers.get(camera_id)
            if old is not None and old.alive() and not old.stop.is_set():
                return False
            w = CameraWorker(cam, self)
            self.workers[camera_id] = w
        if old is not None and old.alive():
            # Gained again while the previous run is still winding down: it must be gone, and
            # its segment sealed, before the new run opens the camera's next one.
            self._finish(old, timeout=10.0)
        w.start()
        return True

    def stop_camera(self, camera_id: str) -> CameraWorker | None:
        """Tell a camera to stop after the frame in hand, without waiting: its analysis and its
        events end here, even if its thread takes a moment to close the stream."""
        with self._lock:
            w = self.workers.get(camera_id)
        if w is not None:
            w.stop.set()
        return w

    def remove_camera(self, camera_id: str, timeout: float = 10.0) -> bool:
        """Stop one camera, wait for its thread, seal its recording segment and write its last
        health row; the other cameras are not touched. False when it was not running."""
        w = self.stop_camera(camera_id)
        if w is None:
            return False
        self._finish(w, timeout)
        with self._lock:
            if self.workers.get(camera_id) is w:
                del self.workers[camera_id]
        if self.store is not None:
            try:
                record_health(self.store.engine, [w.health(time.monotonic(), datetime.now(UTC))], final=True)
            except LanterneError as exc:
                log.warning("camera %s: last health row not written (%s)", camera_id, exc)
        return True

    def _finish(self, w: CameraWorker, timeout: float) -> None:
        if w.thread is not None:
            w.thread.join(timeout=timeout)
            if w.thread.is_alive():
                log.warning("camera %s: worker still closing after %g s", w.camera.id, timeout)
        recording = self._recordings.get(w.camera.id)
        if recording is not None and w.thread is not None and not w.thread.is_alive():
            # The source closes its recording when its stream ends; closing again is a no-op,
            # and seals the segment even if the stream's end was not reached cleanly.
            recording.close()
            if self._recordings.get(w.camera.id) is recording:
                del self._recordings[w.camera.id]

    def cameras(self) -> list[str]:
        """The cameras this runner has started and not removed."""
        with self._lock:
            return sorted(self.workers)

    def stop(self) -> None:
        self._stop.set()
        self._health_stop.set()
        if self._health is not None:
            self._health.join(timeout=10)
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            w.stop.set()
        for w in workers:
            if w.thread is not None:
                w.thread.join(timeout=10)
        if self._health is not None:
            self.write_health(final=True)  # the last word: stopped (or finished), not a frozen "running"
            self._health = None
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.recorder is not None:
            self.recorder.close()
        if self.writer is not None:
            began = time.monotonic()
            self.writer.close()
            if (took := time.monotonic() - began) > 2.0:
                # The evidence still queued is written before the process ends (nothing recorded
                # is lost); say where a slow stop went, for whoever waits on it (systemd, a test).
                log.info("stopping: the evidence still queued took %.1f s to write", took)
        if self.retention is not None:
            self.retention.stop()
        if self._heads is not None:
            self._heads.stop()
            self._heads = None

    # --- camera health, for the console (another process: through the store) -------------------
    def health(self) -> list[CameraHealth]:
        now, at = time.monotonic(), datetime.now(UTC)
        with self._lock:
            workers = list(self.workers.values())
        return [w.health(now, at) for w in workers]

    def write_health(self, *, final: bool = False) -> None:
        """Write every camera's health row. A database hiccup is logged once and retried at the
        next beat; it never stops the cameras. `final`: the rows of cameras this process stops,
        which never replace a row their new owner wrote since."""
        if self.store is None:
            return
        try:
            record_health(self.store.engine, self.health(), final=final)
        except LanterneError as exc:
            if not self._health_failing:
                log.warning("camera health not written (%s); retrying every %g s", exc, HEALTH_SECONDS)
            self._health_failing = True
            return
        self._health_failing = False

    def _report_health(self) -> None:
        self.write_health()
        last = time.monotonic()
        while not self._health_stop.wait(HEALTH_SECONDS):
            self.write_health()
            if time.monotonic() - last >= 60.0:
                last = time.monotonic()
                self.run_minutely(datetime.now(UTC))

    def run_minutely(self, now: datetime) -> None:
        """The once-a-minute chores (events-only recording purge). A failure is logged and tried
        again next minute; it never stops the cameras."""
        for chore in self._minutely:
            try:
                chore(now)
            except LanterneError as exc:
                log.warning("minutely chore failed (%s); retrying in a minute", exc)

    def watchdog_once(self) -> None:
        """Restart dead workers whose backoff has elapsed. Backoff doubles per restart of the same
        camera (capped at 5 min) so a permanently broken camera does not spin."""
        now = time.monotonic()
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            if w.alive() or self._stop.is_set() or w.stop.is_set():
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

    def run_until_finished(
        self, timeout: float | None = None, poll: float = 0.5, cameras: Iterable[str] | None = None
    ) -> bool:
        """For file sources (the demo, replays): run `cameras` (None: all) until every worker has
        finished its file, restarting crashed ones as usual. Returns False if `timeout` passed
        first."""
        self.start(cameras)
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

    def recording_for(self, camera_id: str) -> Recording | None:
        """How the camera's source hands its packets to the recorder, or None when the camera is
        not recorded. Each connection opens its own recording at the wall time it starts, which is
        also where the camera's event times start, so an event's range finds its frames."""
        recorder = self.recorder
        if recorder is None or recording_mode(self.cfg, camera_id) == "off":
            return None

        def open_recording(stream: Any, _offset: float) -> Any:
            if self.before_recording is not None:
                self.before_recording(camera_id)
            recording = recorder.open(camera_id, stream, datetime.now(UTC))
            self._recordings[camera_id] = recording
            return recording

        return open_recording

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
        if self.event_sink is not None:
            if not self.event_sink(e, origin):
                return
        elif self.store is not None:
            self.store.upsert_event(e, origin=origin, mode="alerts")
        if self.writer is not None:
            self.writer.on_event(e)

    def on_counts(self, c: Counts, origin: datetime) -> None:
        if self.store is not None:
            self.store.add_counts(c, origin=origin)

    def on_frame(self, frame: Frame, persons: tuple, vehicles: tuple) -> None:
        if self.writer is not None:
            self.writer.push(frame.camera_id, frame.pts, frame.image, persons, vehicles)
