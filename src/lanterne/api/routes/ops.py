"""Operating the server: probes, Prometheus metrics, and the outbound dead-letter list.

- `/healthz` answers 200 while the process serves requests (a liveness probe: restart me if not).
- `/readyz` answers 200 when the store is reachable and its schema is at the newest migration,
  503 with the reason otherwise (a readiness probe: send me no traffic yet). Neither needs a
  login, and neither says more than "ok" or which of the two checks failed: no URL, no version
  of anything a visitor could use.
- `/metrics` is Prometheus' text format, behind a bearer token read from `metrics.token_file`
  (off without one). A token rather than "loopback only" because the console usually sits behind
  a reverse proxy, where every request comes from loopback. Camera series come from the health
  rows in the central store, written by every runner and worker, so one scrape of the console
  covers every camera of every process.
- `/api/outbound` and `/console/outbound`: supervisors list outbound messages (dead letters
  first of all) of the cameras in their scope and put a dead one back for delivery, recorded.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select

from lanterne.accountability.cameras import NOT_ANALYSING, CameraHealth, camera_health
from lanterne.accountability.outbound import OutboundError, OutboundNotFound, counts, messages, retry
from lanterne.api.deps import AuditDep, EngineDep, Now, Supervisor, Writer, current_user
from lanterne.api.routes.pages import HTML, STATIC
from lanterne.api.schemas.common import ERRORS
from lanterne.api.schemas.outbound import OutboundOut
from lanterne.config import Config
from lanterne.core.errors import LanterneError
from lanterne.store.db import MIGRATIONS_DIR, check_connection, current_revision
from lanterne.store.tables import CameraHealthRecord

router = APIRouter(tags=["operations"], responses=ERRORS)


# --- probes ------------------------------------------------------------------------------------


@cache
def head_revision() -> str | None:
    """The newest migration this package ships (what a ready store is at)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def not_ready(engine: Engine) -> str | None:
    """Why the store cannot serve now, in a few words, or None when it can."""
    try:
        check_connection(engine)
        at = current_revision(engine)
    except LanterneError:
        return "store unreachable"
    if at != head_revision():
        return "store schema not at the newest migration (restart to migrate)"
    return None


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> Response:
    why = not_ready(request.app.state.store.engine)
    if why is not None:
        return JSONResponse({"status": "unavailable", "reason": why}, status_code=503)
    return JSONResponse({"status": "ok"})


# --- metrics -----------------------------------------------------------------------------------


class StoreCollector(Collector):
    """Reads the camera health rows and the outbox at each scrape: the store is the truth, and a
    gauge cached in this process would say nothing about cameras other processes run."""

    def __init__(self, engine: Engine, cfg: Config, clock: Callable[[], datetime]) -> None:
        self.engine, self.cfg, self.clock = engine, cfg, clock

    def _health(self) -> list[CameraHealth]:
        with self.engine.connect() as conn:
            cameras = set(conn.scalars(select(CameraHealthRecord.camera)))
        rows = [camera_health(self.engine, c) for c in sorted(cameras)]
        return [r for r in rows if r is not None]

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        cam = ["camera"]
        up = GaugeMetricFamily(
            "lanterne_camera_up",
            "1 while the camera's health row is fresh and it is being analysed",
            labels=cam,
        )
        age = GaugeMetricFamily(
            "lanterne_camera_health_age_seconds",
            "Seconds since its worker last wrote the health row",
            labels=cam,
        )
        state = GaugeMetricFamily(
            "lanterne_camera_state",
            "1 for the worker's current state (running, shedding, …)",
            labels=[*cam, "state"],
        )
        fps = GaugeMetricFamily("lanterne_camera_analysis_fps", "Frames analysed per second now", labels=cam)
        conf = GaugeMetricFamily(
            "lanterne_camera_configured_fps",
            "Configured analysis rate (fps); more than now: shedding",
            labels=cam,
        )
        lag = GaugeMetricFamily(
            "lanterne_camera_lag_seconds", "Wall time minus stream time analysed", labels=cam
        )
        dropped = CounterMetricFamily(
            "lanterne_camera_frames_dropped",
            "Frames skipped undecoded to catch up, since its worker started",
            labels=cam,
        )
        reconnects = CounterMetricFamily(
            "lanterne_camera_reconnects",
            "Stream reconnections and worker restarts, since its worker started",
            labels=cam,
        )
        owner = GaugeMetricFamily(
            "lanterne_camera_worker",
            "1 for the worker that runs the camera (lanterne worker --id; `run` for lanterne run)",
            labels=[*cam, "worker"],
        )
        held = GaugeMetricFamily(
            "lanterne_worker_cameras",
            "Cameras each worker is analysing now (fresh health rows, not stopped)",
            labels=["worker"],
        )
        per_worker: dict[str, int] = {}
        seen: set[str] = set()
        for h in self._health():
            seen.add(h.camera)
            fresh = not h.stale(now)
            up.add_metric([h.camera], 1.0 if fresh and h.state not in NOT_ANALYSING else 0.0)
            age.add_metric([h.camera], max((now - h.updated_at).total_seconds(), 0.0))
            state.add_metric([h.camera, h.state], 1.0)
            fps.add_metric([h.camera], h.analysis_fps)
            conf.add_metric([h.camera], h.configured_fps)
            if h.lag_seconds is not None:
                lag.add_metric([h.camera], h.lag_seconds)
            dropped.add_metric([h.camera], float(h.frames_dropped))
            reconnects.add_metric([h.camera], float(h.restarts))
            worker = h.worker or "run"
            owner.add_metric([h.camera, worker], 1.0)
            if fresh and h.state not in NOT_ANALYSING:
                per_worker[worker] = per_worker.get(worker, 0) + 1
        for worker, n in sorted(per_worker.items()):
            held.add_metric([worker], float(n))
        for c in self.cfg.cameras:
            if c.id not in seen:
                up.add_metric([c.id], 0.0)  # configured, but no worker ever reported it
        outbox = GaugeMetricFamily(
            "lanterne_outbound_messages",
            "Confirmed alerts per destination and delivery state (pending, sent, dead)",
            labels=["destination", "state"],
        )
        for (destination, st), n in sorted(counts(self.engine).items()):
            outbox.add_metric([destination, st], float(n))
        yield from (up, age, state, fps, conf, lag, dropped, reconnects, owner, held, outbox)


def registry_for(engine: Engine, cfg: Config, clock: Callable[[], datetime]) -> CollectorRegistry:
    """One registry per app (not the global one: two apps in one process, as in tests, would
    collide), with the standard process, platform and garbage-collector metrics."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(StoreCollector(engine, cfg, clock))
    return registry


def _check_token(request: Request, cfg: Config) -> None:
    if cfg.metrics.token_file is None:
        raise HTTPException(404, "metrics are off; set metrics.token_file to serve them")
    try:
        expected = cfg.metrics.token_file.read_bytes().strip()
    except OSError:
        raise HTTPException(503, "the metrics token file cannot be read; check metrics.token_file") from None
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if (
        not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.strip().encode(), expected)
    ):
        raise HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    cfg: Config = request.app.state.cfg
    _check_token(request, cfg)
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = registry_for(request.app.state.store.engine, cfg, request.app.state.clock)
        request.app.state.metrics_registry = registry
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")


# --- outbound dead letters ---------------------------------------------------------------------


@router.get("/api/outbound", summary="Outbound messages of confirmed alerts, newest first")
def list_outbound(
    user: Supervisor, engine: EngineDep, state: Literal["pending", "sent", "dead"] | None = None
) -> list[OutboundOut]:
    return [OutboundOut.of(m) for m in messages(engine, state=state, scope=user.scope)]


@router.post("/api/outbound/{message_id}/retry", summary="Put a dead letter back for delivery (recorded)")
def retry_outbound(
    message_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="The outbox row's id.")],
    user: Supervisor,
    _csrf: Writer,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> OutboundOut:
    try:
        return OutboundOut.of(retry(engine, audit, message_id, user.id, now, user.scope))
    except OutboundNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except OutboundError as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/console/outbound", include_in_schema=False)
def outbound_page(request: Request) -> Response:
    try:
        current_user(request)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        return RedirectResponse("/login", status_code=303)
    return Response((STATIC / "outbound.html").read_bytes(), media_type=HTML)
