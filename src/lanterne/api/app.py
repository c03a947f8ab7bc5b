"""The HTTP application: `create_app(cfg)` for tests and embedding, `serve(cfg, host, port)` for
`lanterne serve`.

Handlers that read the database are plain `def` functions, which FastAPI runs in its thread pool:
a slow query then delays one request, never the event loop that serves all the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from lanterne.accountability.networks import NetworkGate
from lanterne.api import deps
from lanterne.api.network_gate import ConsoleNetworks
from lanterne.api.routes import (
    alerts,
    auth,
    cameras,
    live,
    pages,
    public,
    recall,
    recordings,
    search,
    stops,
    vocabulary,
)
from lanterne.api.routes import incidents as incident_routes
from lanterne.api.routes import observatory as observatory_api
from lanterne.api.routes import ops as operations
from lanterne.api.routes import oversight as oversight_routes
from lanterne.api.routes import requests as access_requests
from lanterne.api.routes import review as log_review
from lanterne.api.routes.alerts import Doorbell
from lanterne.audit.witness import HeadTimer
from lanterne.cluster import ClusterError, StoredBell
from lanterne.cluster.control import ControlBell
from lanterne.config import Config
from lanterne.runtime.outbound import start_delivery
from lanterne.runtime.site import open_site

log = logging.getLogger(__name__)

PUBLIC_CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"
)
"""No script, style or font from anywhere else, none inline: the page works offline and an
injected tag could not run even if escaping failed."""
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "frame-ancestors 'none'"
)
"""FastAPI's interactive docs load Swagger UI from a CDN with an inline bootstrap script; they are
for developers, and `/openapi.json` itself works offline."""
DOCS_PATHS = ("/docs", "/redoc")

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _live_queue_bell(app: FastAPI, cfg: Config) -> StoredBell | None:
    """In a city, the ingester's ring wakes the live queues (`alerts.Doorbell`); without NATS, or
    when it cannot be reached at start-up, they read the store every 250 ms as on a small site."""
    app.state.doorbell = None
    if cfg.cluster.nats_url is None:
        return None
    bell = StoredBell(cfg.cluster.nats_url, lambda camera: doorbell.ring())
    doorbell = Doorbell(asyncio.get_running_loop(), bell.announce)
    try:
        bell.start()
    except ClusterError as exc:
        log.warning("live queue: %s; reading the store every 250 ms instead", exc)
        return None
    app.state.doorbell = doorbell
    return bell


def _control_bell(cfg: Config) -> ControlBell | None:
    """In a city, the console rings the workers when a supervisor places or lifts a stop."""
    if cfg.cluster.nats_url is None:
        return None
    try:
        return ControlBell(cfg.cluster.nats_url).start()
    except ClusterError as exc:
        log.warning("stops: %s; workers read them from the store within their fallback delay", exc)
        return None


def create_app(cfg: Config, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> FastAPI:
    """The application for one configuration. The site (store and audit log) opens with the app's
    lifespan (so `TestClient` must be used as a context manager) and closes with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("%s", gate.describe())
        site = open_site(cfg, clock=clock)
        app.state.store, app.state.audit = site.store, site.audit
        # Confirmations happen here, so their delivery runs here too (docs/integration.md).
        delivery = start_delivery(site.store.engine, site.audit, cfg.outbound, clock)
        # The console writes most audit records: its head is signed and witnessed each interval.
        heads = HeadTimer(site.audit).start()
        bell = _live_queue_bell(app, cfg)
        app.state.control = _control_bell(cfg)
        app.state.live_wall = None  # started by the first live request (routes/live.py)
        try:
            yield
        finally:
            if app.state.live_wall is not None:
                app.state.live_wall.stop()
            if bell is not None:
                bell.stop()
            if app.state.control is not None:
                app.state.control.stop()
            heads.stop()
            if delivery is not None:
                delivery.stop()
            site.close()

    app = FastAPI(
        title=f"Lanterne: {cfg.site}",
        description="Public transparency notice of a Lanterne deployment; operator routes require a login.",
        version="0.1.0",
        lifespan=lifespan,
    )

    # Added first, so it runs inside `security_headers`: a refusal carries the same headers.
    gate = NetworkGate(cfg.console.allowed_networks, cfg.console.trusted_proxies)
    app.add_middleware(ConsoleNetworks, gate=gate)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Content-Security-Policy"] = DOCS_CSP if request.url.path in DOCS_PATHS else csp
        return response

    # Map tiles come from the city's tile server when one is configured; nothing else is ever
    # loaded from outside.
    csp = PUBLIC_CSP
    if cfg.console.tile_url is not None:
        # `{s}` is Leaflet's subdomain placeholder (a., b., c.): allow them all with a wildcard.
        parts = urlsplit(cfg.console.tile_url.replace("{s}", "*"))
        csp = f"{PUBLIC_CSP}; img-src 'self' data: {parts.scheme}://{parts.netloc}"

    # --- routers: one include line per area ---------------------------------------------------
    deps.install(app, cfg, clock)  # first: sets app.state.cfg/clock, audit, throttle
    app.include_router(public.router)
    app.include_router(pages.router)
    app.include_router(auth.router)
    app.include_router(alerts.router)
    app.include_router(cameras.router)
    app.include_router(recordings.router)
    app.include_router(stops.router)
    app.include_router(search.router)
    app.include_router(observatory_api.router)
    app.include_router(vocabulary.router)
    app.include_router(access_requests.router)
    app.include_router(operations.router)
    app.include_router(log_review.router)
    app.include_router(live.router)
    app.include_router(recall.router)
    app.include_router(incident_routes.router)
    app.include_router(oversight_routes.router)
    # Pages' scripts and styles, and Leaflet (`static/vendor/leaflet/`), from the package itself.
    app.mount("/static", StaticFiles(packages=[("lanterne.api", "static")]), name="static")
    return app


def serve(cfg: Config, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the console server until interrupted. Binds to the loopback interface unless told
    otherwise: exposing it is a decision for whoever runs it, behind their reverse proxy."""
    import uvicorn

    # `proxy_headers=False`: `console.trusted_proxies` is the one place that says whose
    # X-Forwarded-For is believed (`api.network_gate`), not uvicorn's own FORWARDED_ALLOW_IPS.
    # `access_log=False`: uvicorn's access log writes every workstation's address, which is
    # personal data; who did what is in the audit log, by user id.
    uvicorn.run(
        create_app(cfg),
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        proxy_headers=False,
        access_log=False,
    )
