"""The console's door check (AC-04): every request, the login page and the API's included, comes
from a network of `console.allowed_networks` or is refused with 403 before any route runs.

A plain ASGI middleware rather than a route dependency, so that nothing is forgotten: pages,
static files, the API docs and the live wall's WebSocket pass through it alike. Exempt are only
what is not the console: the public notice under `/public`, published for everyone (the city's
transparency page), and the machine endpoints `/healthz`, `/readyz` (no data) and `/metrics`
(its own bearer token, counts only), which an orchestrator or a Prometheus server on another
network reads.

The refusal is audited (`access_denied`, reason `outside_allowed_networks`, the user id when the
request carries a session cookie, else `unknown`) and never records the address itself
(`lanterne.accountability.networks`)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from lanterne.accountability.accounts import session_account_id
from lanterne.accountability.networks import NetworkGate, RefusalTally
from lanterne.api.deps import COOKIE
from lanterne.audit import Action

PUBLIC = "/public"
MACHINE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
OUTSIDE = (
    "this workstation's network may not use the console; the administrator lists the allowed "
    "networks in `console.allowed_networks`"
)
UNKNOWN = (
    "the console cannot tell which network this request comes from (no readable client address); "
    "the administrator lists the reverse proxies in `console.trusted_proxies`"
)
PATH_KEPT = 200
"""Characters of a refused path kept in the audit record: enough to see what was asked for; a
scanner's long junk path is no record worth keeping whole."""


def _open(path: str) -> bool:
    return path == PUBLIC or path.startswith(PUBLIC + "/") or path in MACHINE_PATHS


class ConsoleNetworks:
    """ASGI middleware: `app.add_middleware(ConsoleNetworks, gate=NetworkGate(...))`."""

    def __init__(self, app: ASGIApp, gate: NetworkGate) -> None:
        self.app = app
        self.gate = gate
        self.tally = RefusalTally()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or _open(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        forwarded = ",".join(conn.headers.getlist("x-forwarded-for")) or None
        address = self.gate.client(conn.client.host if conn.client else None, forwarded)
        if self.gate.admits(address):
            # The client address found here is the app's from now on: the login throttle then
            # counts each workstation behind the proxy apart, under the same trust rules.
            port = conn.client.port if conn.client else 0
            await self.app({**scope, "client": (str(address), port)}, receive, send)
            return
        reason = "outside_allowed_networks" if address is not None else "unknown_address"
        await run_in_threadpool(self._record, scope, conn.cookies.get(COOKIE), reason)
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": "network not allowed"})
            return
        response = JSONResponse({"detail": OUTSIDE if address is not None else UNKNOWN}, status_code=403)
        await response(scope, receive, send)

    def _record(self, scope: Scope, token: str | None, reason: str) -> None:
        """The refusal's audit record; blocking (the database), so run in the thread pool."""
        state: Any = scope["app"].state
        audit = getattr(state, "audit", None)
        if audit is None:  # the app's lifespan has not opened the site (never in service)
            return
        user = session_account_id(state.store.engine, token) if token else None
        details: dict[str, object] = {
            "denied": "console",
            "reason": reason,
            "method": scope.get("method", "WEBSOCKET"),
            "path": scope.get("path", "")[:PATH_KEPT],
        }
        if user is None:
            skipped = self.tally.take(state.clock())
            if skipped is None:
                return
            details["unrecorded_since_last"] = skipped
        audit.append(user or "unknown", Action.ACCESS_DENIED, details=details)
