"""`lanterne worker` and `lanterne ingest`: the runner spread over many machines (issue 12).

A worker is the `Runner` of `lanterne run` whose cameras are given by its leases
(`lanterne.cluster.LeaseKeeper`): a shard gained starts its cameras, a shard lost stops them at
once. Its events go on the events stream (`EventPublisher`) under the shard's fencing epoch
instead of into the store; everything else (camera health, counts, evidence rows, the recording
index, the audit log) goes to the site's store as in `lanterne run`, which in a city is the
central PostgreSQL. The ingester (`lanterne ingest`, one per city) moves the events from the
stream into that store, and runs the site's retention: one place purges, not every worker.

The keeper's callbacks run on its own thread and must return at once, so they only stop a
camera's analysis (a flag) and queue the slow part (joining the thread, sealing the recording
segment, starting a camera) for the worker's main loop. docs/scaling.md tells the whole story.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats.errors

from lanterne.accountability.cameras import CameraHealth
from lanterne.cluster import ClusterError, EventPublisher, Ingester, LeaseKeeper, control, redact_url
from lanterne.config import Config
from lanterne.core.types import Event
from lanterne.runtime.probe import IngestCollector, Probe, WorkerCollector
from lanterne.runtime.runner import Runner, site_retention
from lanterne.runtime.site import Site, open_site
from lanterne.store import StoreError
from lanterne.video.detectors.base import Detector
from lanterne.video.evidence.background import BackgroundEvidenceWriter
from lanterne.video.recording.index import all_segments, inside

log = logging.getLogger(__name__)

EVIDENCE_WAIT_SECONDS = 30.0
"""How long a worker's evidence row waits for its event to reach the store. The ingester stores
an event within milliseconds of its publication; thirty seconds covers an ingester restart,
after which the row is refused and the writer logs it."""
MINUTE = 60.0
IDLE_FETCH_SECONDS = 0.5
"""How long the ingester waits for a first message before looking at its other chores."""


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """Where the cluster is and how this process takes part: the `cluster:` section of the site's
    configuration, overridden by the command line."""

    nats_url: str
    worker_id: str
    shards: int
    ttl: float


def cluster_options(
    cfg: Config,
    *,
    nats_url: str | None = None,
    worker_id: str | None = None,
    shards: int | None = None,
    ttl: float | None = None,
) -> ClusterOptions:
    """The options in force; `ClusterError` (one line) when no NATS URL is given anywhere."""
    url = nats_url or cfg.cluster.nats_url
    if not url:
        raise ClusterError(
            "no NATS server: set cluster.nats_url in the configuration or pass --nats nats://HOST:4222"
        )
    # The host name by default: one worker per machine is the usual deployment, and it reads well
    # in the logs. It must be a valid key (letters, digits, '_', '-').
    name = worker_id or "".join(ch if ch.isalnum() or ch in "_-" else "-" for ch in socket.gethostname())
    return ClusterOptions(
        nats_url=url,
        worker_id=name[:64],
        shards=cfg.cluster.shards if shards is None else shards,
        ttl=cfg.cluster.lease_ttl_seconds if ttl is None else ttl,
    )


PREVIOUS_WRITER_QUIET_SECONDS = 1.0
"""A camera's open segment whose file has not grown for this long has no writer left. A live
writer appends every packet as it comes (tens a second), and a worker that lost the camera
stops after the frame in hand."""
PREVIOUS_WRITER_WAIT_SECONDS = 10.0


def wait_for_previous_writer(
    store: Any,
    root: Path,
    camera: str,
    *,
    quiet: float = PREVIOUS_WRITER_QUIET_SECONDS,
    timeout: float = PREVIOUS_WRITER_WAIT_SECONDS,
) -> None:
    """Return once nobody writes the camera's open segment any more (sealed, or its file no
    longer growing), so that the recorder may recover it and continue the hash chain.

    A shard handed over is released by its previous owner only once its segments are sealed
    (`LeaseKeeper.released`), so this wait matters after a death, a partition or an owner that
    could not renew in time: its writer may still be appending, and recovering the segment then
    would seal it with a hash that the late writer's file no longer matches. A dead owner's file
    stops growing at once, so a failover pays `quiet` seconds at most."""
    deadline = time.monotonic() + timeout
    size: int | None = None
    changed = time.monotonic()
    while True:
        rows = all_segments(store, camera, states=("open",))
        if not rows:
            return
        try:
            now_size = inside(root, rows[-1].path).stat().st_size
        except FileNotFoundError:
            now_size = -1
        now = time.monotonic()
        if now_size != size:
            size, changed = now_size, now
        elif now - changed >= quiet:
            return
        if now >= deadline:
            log.warning(
                "camera %s: its previous owner still writes segment %d; recovering it", camera, rows[-1].id
            )
            return
        time.sleep(0.1)


def _store_problem(store: Any) -> str | None:
    if store is None:
        return "store not open"
    try:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception:
        return "store unreachable"
    return None


class EvidenceAfterEvent:
    """The store as the evidence writer of a worker sees it: an evidence row names its event, which
    the ingester writes in another process, so the row waits (on the evidence writer's thread,
    never a camera's) until the event is there."""

    def __init__(self, store: Any, wait: float = EVIDENCE_WAIT_SECONDS) -> None:
        self._store = store
        self.wait = wait

    def add_evidence(self, event_id: str, kind: str, path: str, sha256: str, size: int) -> None:
        deadline = time.monotonic() + self.wait
        pause = 0.05
        while self._store.event(event_id) is None and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(1.0, pause * 2)
        self._store.add_evidence(event_id, kind, path, sha256, size)


class LeasedRecording:
    """One connection's recording as a worker may write it: only while the camera's lease is
    surely its own under the epoch it was opened in (`LeaseKeeper.may_write`), checked before
    every packet and before the seal.

    A worker paused past its lease (SIGSTOP, a VM frozen, a long GC) resumes with packets in hand
    and its cameras' segments open, while the camera's new owner has already recovered the last
    segment (after a quiet second) and continued its hash chain. One more packet or a seal would
    change a file whose hash is sealed in the index, so the recording is abandoned instead: the
    file stays as the new owner recovered it. The check is on the local clock, ahead of the
    server's expiry by the lease's margin, which covers the write that follows it."""

    def __init__(self, inner: Any, camera: str, epoch: int, keeper: LeaseKeeper, worker_id: str) -> None:
        self.inner = inner
        self.camera = camera
        self.epoch = epoch
        self._keeper = keeper
        self._worker_id = worker_id

    def push(self, packet: Any) -> None:
        if self._keeper.may_write(self.camera, self.epoch):
            self.inner.push(packet)
        else:
            self._abandon()

    def close(self) -> None:
        if self._keeper.may_write(self.camera, self.epoch):
            self.inner.close()
        else:
            self._abandon()

    def _abandon(self) -> None:
        if not self.inner.closed:
            self.inner.abandon()
            log.warning(
                "worker %s: camera %s: lease lost; its open segment is left to its new owner",
                self._worker_id,
                self.camera,
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class WorkerRunner(Runner):
    """The runner of a worker: its periodic health rows leave out the cameras whose lease it may
    no longer write under. A worker resumed after a pause past its lease would otherwise write,
    on its next health beat and before its keeper's thread has run, a row that replaces the
    camera's new owner's with its own stale one (and then its last row on top of it)."""

    def __init__(self, *args: Any, may_report: Callable[[str], bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.may_report = may_report

    def health(self) -> list[CameraHealth]:
        return [h for h in super().health() if self.may_report(h.camera)]


class NotRecorded:
    """The recording of a camera whose lease went before its recording opened: nothing."""

    closed = True

    def push(self, packet: Any) -> None:
        return None

    def close(self) -> None:
        return None


class LeasedRecorder:
    """The runner's recorder in a worker: each recording it opens is a `LeasedRecording`."""

    def __init__(self, inner: Any, keeper: LeaseKeeper, worker_id: str) -> None:
        self.inner = inner
        self._keeper = keeper
        self._worker_id = worker_id

    def open(self, camera_id: str, stream: Any, origin: datetime) -> LeasedRecording | NotRecorded:
        epoch = self._keeper.epoch_of(camera_id)
        if epoch is None:
            # Opening recovers the camera's open segment: never without the lease. The camera is
            # being stopped (its shard handed back while it started); it records nothing more.
            log.info(
                "worker %s: camera %s: lease gone before its recording opened", self._worker_id, camera_id
            )
            return NotRecorded()
        return LeasedRecording(
            self.inner.open(camera_id, stream, origin), camera_id, epoch, self._keeper, self._worker_id
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Worker:
    """One `lanterne worker` process: a runner, its leases and its event publisher.

    `start()` opens the site (the same checks as `lanterne run`: the public notice, the gates),
    connects to NATS and takes a fair share of the shards; `step()` applies the lease changes and
    restarts crashed cameras; `stop()` stops the cameras while the leases are still held (their
    last updates are published under a valid epoch), then hands the leases back.
    """

    def __init__(
        self,
        cfg: Config,
        options: ClusterOptions,
        *,
        detector: Detector | None = None,
        pace_files: bool = True,
        loop_files: bool = False,
    ) -> None:
        self.cfg = cfg
        self.options = options
        self.runner = WorkerRunner(
            cfg,
            detector,
            pace_files=pace_files,
            loop_files=loop_files,
            event_sink=self.publish,
            retention=False,
            evidence_store=EvidenceAfterEvent,
            control_refresh=control.FALLBACK_SECONDS,
            before_recording=lambda camera: wait_for_previous_writer(
                self.runner.store, Path(cfg.recording.dir), camera
            ),
            worker_id=options.worker_id,
            may_report=self._may_report,
        )
        self.keeper = LeaseKeeper(
            options.worker_id,
            options.nats_url,
            [c.id for c in cfg.cameras],
            shards=options.shards,
            ttl=options.ttl,
            on_gain=self._gained,
            on_lose=self._lost,
            deferred_release=True,
        )
        self.publisher = EventPublisher(options.nats_url, options.worker_id)
        self.control = control.ControlBell(options.nats_url, self._control_changed)
        self.published = 0
        self._changes: queue.Queue[tuple[str, str]] = queue.Queue()
        self._stop = threading.Event()
        self._epochs: dict[str, int] = {}
        """The epoch each camera was started under: what it writes is its own while that lease is."""
        self._starting: dict[str, float] = {}
        """Cameras started and not yet analysed, with when: the first frame is logged with the
        seconds it took, the figure a failover is judged by."""

    # --- lease callbacks (the keeper's thread: return at once) ----------------------------
    def _gained(self, shard: int, epoch: int) -> None:
        for camera in self.keeper.cameras_of(shard):
            self._changes.put(("add", camera))

    def _lost(self, shard: int) -> None:
        for camera in self.keeper.cameras_of(shard):
            # Analysis stops after the frame in hand; joining and sealing wait for the main loop.
            self.runner.stop_camera(camera)
            self._changes.put(("remove", camera))
        # After the removals in the queue: the key goes once every segment of the shard is sealed.
        self._changes.put(("released", str(shard)))

    def _may_report(self, camera: str) -> bool:
        epoch = self._epochs.get(camera)
        return epoch is not None and self.keeper.may_write(camera, epoch)

    def _control_changed(self, kind: str) -> None:
        """The control bell (NATS's thread): drop the cached copy of what changed; the cameras'
        next frames read the store."""
        r = self.runner
        if kind == "stops" and r.stops is not None:
            r.stops.changed()
        elif kind == "suspensions" and r.suspensions is not None:
            r.suspensions.changed()
        elif kind == "authorisations":
            for gate in r.gates.values():
                gate.changed()
        log.info("worker %s: %s changed elsewhere; read again", self.options.worker_id, kind)

    # --- the event sink (camera threads) --------------------------------------------------
    def publish(self, event: Event, origin: datetime) -> bool:
        """Publish an event update under the camera's current epoch. Without a lease the camera is
        stopped and nothing is published: another worker may already own it. While NATS does not
        answer, the camera waits and tries again (the duplicate window absorbs a repeat); if the
        outage outlasts the lease, the lease is lost and the camera stops."""
        while True:
            epoch = self.keeper.epoch_of(event.camera)
            if epoch is None:
                self.runner.stop_camera(event.camera)
                self._changes.put(("remove", event.camera))
                return False
            try:
                self.publisher.publish(event, origin, "alerts", epoch)
            except (TimeoutError, nats.errors.Error) as exc:
                log.warning(
                    "camera %s: event %s not published (%s); retrying",
                    event.camera,
                    event.id,
                    type(exc).__name__,
                )
                continue
            self.published += 1
            return True

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.runner.start(cameras=())
        if self.runner.recorder is not None:
            self.runner.recorder = LeasedRecorder(self.runner.recorder, self.keeper, self.options.worker_id)
        if isinstance(self.runner.writer, BackgroundEvidenceWriter):
            # A worker's cameras are live ones, or files paced as live: a camera thread that
            # waited for the evidence writer would hold its lease without analysing, and delay a
            # handover or a stop past the runner's 10 s join. Clip frames are dropped instead.
            self.runner.writer.block_when_full = False
        try:
            self.publisher.start()
            self.control.start()
            self.keeper.start()
        except BaseException:
            self.control.stop()
            self.publisher.stop()
            self.runner.stop()
            raise
        log.info(
            "worker %s: connected to %s, %d cameras in %d shards, lease %g s",
            self.options.worker_id,
            redact_url(self.options.nats_url),
            len(self.cfg.cameras),
            self.options.shards,
            self.options.ttl,
        )

    def step(self, wait: float = 0.5) -> None:
        """Apply queued lease changes (waiting up to `wait` for the first), then restart crashed
        cameras."""
        try:
            change = self._changes.get(timeout=wait)
        except queue.Empty:
            change = None
        while change is not None:
            self._apply(*change)
            try:
                change = self._changes.get_nowait()
            except queue.Empty:
                change = None
        self.runner.watchdog_once()
        for camera, since in list(self._starting.items()):
            w = self.runner.workers.get(camera)
            if w is None or w.stop.is_set():
                del self._starting[camera]
            elif w.state.frames > 0:
                del self._starting[camera]
                log.info(
                    "worker %s: camera %s analysing, first frame %.1f s after its start",
                    self.options.worker_id,
                    camera,
                    time.monotonic() - since,
                )

    def _apply(self, what: str, camera: str) -> None:
        if what == "released":
            self.keeper.released(int(camera))
            return
        if what == "remove":
            if self.runner.remove_camera(camera):
                log.info("worker %s: camera %s stopped", self.options.worker_id, camera)
            return
        epoch = self.keeper.epoch_of(camera)
        if epoch is None:
            return  # lost again before it could start
        self._epochs[camera] = epoch
        if self.runner.add_camera(camera):
            self._starting[camera] = time.monotonic()
            log.info("worker %s: camera %s started (epoch %d)", self.options.worker_id, camera, epoch)

    def request_stop(self) -> None:
        """Ask `run_forever` to end (a signal handler may call it)."""
        self._stop.set()

    def not_ready(self) -> str | None:
        """Why this worker cannot do its work now (`/readyz`), or None."""
        if not self.publisher.connected:
            return "NATS unreachable"
        return _store_problem(self.runner.store)

    def serve_probe(self, port: int, host: str = "127.0.0.1") -> Probe:
        """`/metrics`, `/healthz`, `/readyz` of this process (`--metrics-port`)."""
        return Probe([WorkerCollector(self)], self.not_ready, host=host, port=port).start()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.is_set():
                self.step()
        finally:
            self.stop()

    def stop(self) -> None:
        for camera in self.runner.cameras():
            self.runner.stop_camera(camera)
        for camera in self.runner.cameras():
            self.runner.remove_camera(camera)
        self.keeper.stop(release=True)
        self.control.stop()
        self.publisher.stop()
        self.runner.stop()


class IngestService:
    """One `lanterne ingest` process: the events stream into the site's store, and the site's
    retention. Runs in the calling thread so that a fault it cannot handle (a second ingester
    changing the epochs) ends the process with its one line."""

    def __init__(self, cfg: Config, nats_url: str, *, durable: str = "store") -> None:
        self.cfg = cfg
        self.nats_url = nats_url
        self.durable = durable
        self.site: Site | None = None
        self.ingester: Ingester | None = None
        self.retention: Any = None
        self._minutely: list[Callable[[datetime], object]] = []
        self._stop = threading.Event()

    def start(self) -> None:
        self.site = open_site(self.cfg)
        try:
            self.ingester = Ingester(self.nats_url, self.site.store, self.site.audit, durable=self.durable)
            self.ingester.connect()
            self.retention, self._minutely = site_retention(self.cfg, self.site.store, self.site.audit)
            self.retention.start()
        except BaseException:
            self.stop()
            raise
        log.info("ingest: reading %s into the store", redact_url(self.nats_url))

    def request_stop(self) -> None:
        self._stop.set()

    def not_ready(self) -> str | None:
        """Why this ingester cannot do its work now (`/readyz`), or None."""
        if self.ingester is None or not self.ingester.connected:
            return "NATS unreachable"
        return _store_problem(self.site.store if self.site is not None else None)

    def serve_probe(self, port: int, host: str = "127.0.0.1") -> Probe:
        """`/metrics`, `/healthz`, `/readyz` of this process (`--metrics-port`)."""
        return Probe([IngestCollector(lambda: self.ingester)], self.not_ready, host=host, port=port).start()

    def run_forever(self) -> None:
        self.start()
        assert self.ingester is not None
        ingester = self.ingester
        last_minute = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    ingester.run_once(timeout=IDLE_FETCH_SECONDS)
                except StoreError as exc:
                    log.warning("ingest: %s; retrying in 1 s", exc)
                    self._stop.wait(1.0)
                except TimeoutError:
                    # `NoAnswerError`: an idle fetch returns 0, only a server that does not answer
                    # reaches here.
                    log.warning("ingest: NATS did not answer; retrying")
                    self._stop.wait(0.5)
                except nats.errors.Error as exc:
                    log.warning("ingest: NATS did not answer (%s); retrying", type(exc).__name__)
                    self._stop.wait(0.5)
                if time.monotonic() - last_minute >= MINUTE:
                    last_minute = time.monotonic()
                    self._run_minutely()
        finally:
            self.stop()

    def _run_minutely(self) -> None:
        from lanterne.core.errors import LanterneError

        for chore in self._minutely:
            try:
                chore(datetime.now(UTC))
            except LanterneError as exc:
                log.warning("minutely chore failed (%s); retrying in a minute", exc)

    def stop(self) -> None:
        if self.ingester is not None:
            self.ingester.stop()
            self.ingester = None
        if self.retention is not None:
            self.retention.stop()
            self.retention = None
        if self.site is not None:
            self.site.close()
            self.site = None
