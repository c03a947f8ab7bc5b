"""The HTTP application: `create_app(cfg)` for tests and embedding, `serve(cfg, host, port)` for
`lanterne serve`.

Handlers that read the database are plain `def` functions, which FastAPI runs in its thread pool:
a slow query then delays one request, never the event loop that serves all the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from lanterne.accountability.transparency.data import PublicData, public_data
from lanterne.accountability.transparency.render import (
    SERVED,
    render_geojson,
    render_html,
    render_json,
    stylesheet,
)
from lanterne.api import deps
from lanterne.api.routes import auth
from lanterne.api.routes import cameras as cameras_api
from lanterne.api.routes import observatory as observatory_api
from lanterne.api.routes import search as search_api
from lanterne.api.routes import stops as controls_api
from lanterne.api.routes.alerts import alerts_router
from lanterne.config import Config
from lanterne.store import Store

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


def create_app(cfg: Config, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> FastAPI:
    """The application for one configuration. The store opens with the app's lifespan (so
    `TestClient` must be used as a context manager) and closes with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store = Store.open(cfg.store.url)
        try:
            yield
        finally:
            app.state.store.close()

    app = FastAPI(
        title=f"Lanterne: {cfg.site}",
        description="Public transparency notice of a Lanterne deployment; operator routes require a login.",
        version="0.1.0",
        lifespan=lifespan,
    )

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
        from urllib.parse import urlsplit

        # `{s}` is Leaflet's subdomain placeholder (a., b., c.): allow them all with a wildcard.
        parts = urlsplit(cfg.console.tile_url.replace("{s}", "*"))
        csp = f"{PUBLIC_CSP}; img-src 'self' data: {parts.scheme}://{parts.netloc}"

    # --- console routers: one include line per area -------------------------------------
    deps.install(app, cfg, clock)  # first: sets app.state.cfg/clock, audit, throttle
    app.include_router(auth.router)
    app.include_router(cameras_api.router(cfg, clock))  # before /static: serves /static/vendor/leaflet
    app.include_router(controls_api.router(cfg, clock))
    app.include_router(search_api.router(cfg, clock))
    app.include_router(observatory_api.router(cfg, clock))
    app.mount("/static", StaticFiles(packages=[("lanterne.api", "static")]), name="static")
    app.include_router(alerts_router(cfg, clock))

    def data(request: Request) -> PublicData:
        return public_data(cfg, request.app.state.store.engine, clock())

    @app.get("/public", response_class=HTMLResponse, tags=["public"], summary="Public notice (HTML)")
    def public_page(request: Request) -> HTMLResponse:
        return HTMLResponse(render_html(data(request), SERVED))

    @app.get("/public/style.css", tags=["public"], include_in_schema=False)
    def public_css() -> Response:
        return Response(stylesheet(), media_type="text/css; charset=utf-8")

    @app.get("/public/transparency.json", tags=["public"], summary="Public notice (JSON)")
    def public_json(request: Request) -> Response:
        return Response(render_json(data(request)), media_type="application/json")

    @app.get("/public/cameras.geojson", tags=["public"], summary="Cameras as GeoJSON with OpenStreetMap tags")
    def public_geojson(request: Request) -> Response:
        return Response(render_geojson(data(request)), media_type="application/geo+json")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        # Browsers ask for it on every page; an empty answer keeps their consoles (and the browser
        # test) free of a 404 without shipping an icon.
        return Response(status_code=204)

    return app


def serve(cfg: Config, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the console server until interrupted. Binds to the loopback interface unless told
    otherwise: exposing it is a decision for whoever runs it, behind their reverse proxy."""
    import uvicorn

    uvicorn.run(create_app(cfg), host=host, port=port, log_level="info", server_header=False)
