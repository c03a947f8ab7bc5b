"""`/metrics`, `/healthz` and `/readyz` of a `lanterne worker` or `lanterne ingest` process.

The console's `/metrics` reads the cameras' health rows from the store, so it sees the whole city
but only every few seconds and only what the rows hold. What only the process knows — the frames
a worker decoded and analysed, its detector's seconds per run, the live streams it feeds, the
ingester's backlog on the stream — is served by the process itself on `--metrics-port`, as
Prometheus scrapes each of Frigate's or NVIDIA's processes. `/healthz` says the process answers;
`/readyz` says it can do its work (NATS and the store reachable), 503 with the reason otherwise.

Bound to 127.0.0.1 unless told otherwise: exposing it is the operator's choice.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lanterne.core.errors import ConfigError

log = logging.getLogger(__name__)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would fill the log; errors still reach it through wsgiref."""


class Probe:
    """The process's HTTP endpoint on `port` (0: any free one, see `.port`)."""

    def __init__(
        self,
        collectors: Iterable[Collector],
        ready: Callable[[], str | None],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.registry = CollectorRegistry()
        for c in collectors:
            self.registry.register(c)
        self.ready = ready
        metrics = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                start("200 OK", [("Content-Type", "application/json")])
                return [b'{"status":"ok"}']
            if path == "/readyz":
                why = self._why_not_ready()
                status = "200 OK" if why is None else "503 Service Unavailable"
                start(status, [("Content-Type", "application/json")])
                body = {"status": "ready"} if why is None else {"status": "not ready", "reason": why}
                return [json.dumps(body).encode()]
            if path == "/metrics":
                return metrics(environ, start)  # type: ignore[no-any-return]
            start("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: /metrics, /healthz, /readyz\n"]

        try:
            self._server: WSGIServer = make_server(host, port, app, handler_class=_Quiet)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror}); choose another --metrics-port"
            ) from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="probe", daemon=True)

    def _why_not_ready(self) -> str | None:
        try:
            why = self.ready()
        except Exception as exc:  # a readiness check must answer, whatever broke
            why = type(exc).__name__
        return why

    def start(self) -> Probe:
        self._thread.start()
        log.info("metrics, health and readiness on port %d", self.port)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class WorkerCollector:
    """A worker's cameras as it runs them now (`lanterne.runtime.worker.Worker`)."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        cam = ["camera"]
        held = GaugeMetricFamily(
            "lanterne_worker_cameras_held", "Cameras this worker runs now", labels=["worker"]
        )
        shards = GaugeMetricFamily(
            "lanterne_worker_shards_held", "Lease shards this worker holds", labels=["worker"]
        )
        published = CounterMetricFamily(
            "lanterne_worker_events_published", "Event updates published on the stream", labels=["worker"]
        )
        frames = CounterMetricFamily("lanterne_camera_frames_analysed", "Frames analysed", labels=cam)
        runs = CounterMetricFamily("lanterne_camera_detector_runs", "Detector runs", labels=cam)
        seconds = CounterMetricFamily(
            "lanterne_camera_detector_seconds", "CPU seconds spent in the detector", labels=cam
        )
        dropped = CounterMetricFamily(
            "lanterne_camera_frames_dropped", "Frames skipped undecoded to keep up", labels=cam
        )
        restarts = CounterMetricFamily(
            "lanterne_camera_restarts", "Worker restarts after a failure", labels=cam
        )
        lag = GaugeMetricFamily(
            "lanterne_camera_lag_seconds", "Wall time minus stream time analysed", labels=cam
        )
        live = GaugeMetricFamily("lanterne_camera_live_streams", "Live wall streams fed now", labels=cam)
        runner = w.runner
        workers = dict(runner.workers)
        watched = runner.live.watched() if runner.live is not None else {}
        wid = w.options.worker_id
        held.add_metric([wid], len(workers))
        shards.add_metric([wid], len(w.keeper.leases()))
        published.add_metric([wid], w.published)
        for camera, cw in sorted(workers.items()):
            st = cw.state
            frames.add_metric([camera], st.frames)
            runs.add_metric([camera], st.detector_runs)
            seconds.add_metric([camera], st.detector_seconds)
            dropped.add_metric([camera], st.frames_dropped)
            restarts.add_metric([camera], st.restarts)
            if st.lag is not None:
                lag.add_metric([camera], st.lag)
            live.add_metric([camera], watched.get(camera, 0))
        yield from (held, shards, published, frames, runs, seconds, dropped, restarts, lag, live)


class IngestCollector:
    """What the ingester did, and what waits for it on the stream."""

    def __init__(self, ingester: Callable[[], Any]) -> None:
        self.ingester = ingester

    def collect(self) -> Iterator[Metric]:
        ing = self.ingester()
        if ing is None:
            return
        counts = CounterMetricFamily(
            "lanterne_ingest_messages", "Event messages handled, by outcome", labels=["outcome"]
        )
        for outcome in ("stored", "closed", "fenced", "rejected", "retried"):
            counts.add_metric([outcome], getattr(ing.stats, outcome))
        yield counts
        try:
            backlog = ing.backlog(timeout=1.0)
        except Exception:
            return  # NATS does not answer: /readyz says so; the scrape still gets the counters
        g = GaugeMetricFamily("lanterne_ingest_backlog", "Messages on the stream not yet acknowledged")
        g.add_metric([], backlog)
        yield g
