"""Sessions, CSRF and role checks: the dependencies every console route uses.

A route declares who may call it::

    @router.get("/api/alerts")
    def alerts(user: LoggedIn) -> ...: ...

    Supervisor = Annotated[CurrentUser, Depends(require_roles("supervisor"))]
    Write = Annotated[CurrentUser, Depends(csrf_protect)]

    @router.post("/api/stops")
    def stop(user: Supervisor, _: Write) -> ...: ...

The session lives in an HttpOnly, SameSite=Strict cookie (script cannot read it, other sites
cannot send it); writes also need the `X-CSRF-Token` header, which the page got at login. Every
refusal of an authenticated user is written to the audit log (AC-03).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import StringConstraints

from lanterne.accountability.accounts import (
    Account,
    LoginThrottle,
)
from lanterne.accountability.accounts import session_for as _session_for
from lanterne.audit import Action, AuditLog
from lanterne.audit.log import PURPOSE_MAX_LENGTH
from lanterne.core.errors import LanterneError

if TYPE_CHECKING:
    from lanterne.config import Config

COOKIE = "lanterne_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class CurrentUser:
    id: str
    login: str
    role: str
    scope: frozenset[str]
    """Camera ids this user may see; `{"*"}` for every camera."""

    def sees(self, camera_id: str) -> bool:
        return "*" in self.scope or camera_id in self.scope

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "login": self.login, "role": self.role, "scope": sorted(self.scope)}


def user_of(account: Account) -> CurrentUser:
    return CurrentUser(account.id, account.login, account.role, frozenset(account.scope))


# --- app wiring ------------------------------------------------------------------------------


def install(app: FastAPI, cfg: Config, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
    """Give `app` what the console routes need (configuration, clock, login throttle, JSON error
    bodies). One call per app, before its routers are included."""
    app.state.cfg = cfg
    app.state.clock = clock
    app.state.login_throttle = LoginThrottle(cfg.console.max_failed_logins)
    app.state.audit_lock = threading.Lock()

    async def user_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server log (uvicorn prints it), never to the browser.
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    app.add_exception_handler(LanterneError, user_error)
    app.add_exception_handler(Exception, server_error)


def config(request: Request) -> Config:
    """The app's configuration (set by `install`)."""
    return request.app.state.cfg  # type: ignore[no-any-return]


def now(request: Request) -> datetime:
    """The app's clock: tests control it through `create_app(cfg, clock=...)`."""
    return request.app.state.clock()  # type: ignore[no-any-return]


def audit_log(request: Request) -> AuditLog:
    """The app's audit log, one per app, on the store's engine (opened in the lifespan)."""
    state = request.app.state
    log: AuditLog | None = getattr(state, "audit", None)
    if log is None:
        with state.audit_lock:
            log = getattr(state, "audit", None)
            if log is None:
                cfg = state.cfg
                log = AuditLog(
                    state.store.engine,
                    key_path=cfg.audit.key_path,
                    checkpoint_every=cfg.audit.checkpoint_every,
                    clock=state.clock,
                )
                state.audit = log
    return log


# --- dependencies ----------------------------------------------------------------------------


def current_user(request: Request) -> CurrentUser:
    """The logged-in user, or 401 `{"detail": "login required"}`. Each use refreshes the idle
    timeout."""
    cached: CurrentUser | None = getattr(request.state, "user", None)
    if cached is not None:
        return cached
    token = request.cookies.get(COOKIE)
    session = None
    if token:
        c = config(request).console
        session = _session_for(
            request.app.state.store.engine,
            token,
            now(request),
            timedelta(minutes=c.idle_minutes),
            timedelta(hours=c.session_hours),
        )
    if session is None:
        raise HTTPException(401, "login required")
    user = user_of(session.account)
    request.state.user = user
    request.state.csrf_token = session.csrf_token
    return user


LoggedIn = Annotated[CurrentUser, Depends(current_user)]
"""Shorthand for a route parameter: `def route(user: LoggedIn)`."""

PurposeText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=PURPOSE_MAX_LENGTH)
]
"""The one purpose check of the console (LG-02): a field type for query and body models, with the
audit log's own length limit, so a purpose the API accepts is one the log can keep."""


def csrf_protect(request: Request, user: LoggedIn) -> CurrentUser:
    """For writes: the `X-CSRF-Token` header must equal the session's token, else 403."""
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        expected: str = request.state.csrf_token
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise HTTPException(403, "CSRF token missing or wrong")
    return user


def forbid(
    request: Request,
    user: CurrentUser,
    what: str,
    object_id: str | None = None,
    *,
    action: Action | None = None,
    object_type: str | None = None,
) -> NoReturn:
    """Refuse and record the refusal. `what` names what was denied (an action value such as
    `view_clip`, or a route); the record's action is `action`, else `what` when it is an action
    value, else `view_live` (looking at the console)."""
    if action is None:
        action = Action(what) if what in Action._value2member_map_ else Action.VIEW_LIVE
    audit_log(request).append(
        user.id,
        action,
        object_type=object_type,
        object_id=object_id,
        details={"denied": what, "role": user.role, "path": request.url.path},
    )
    raise HTTPException(403, "not allowed for your role or scope")


def require_roles(*roles: str, action: Action | None = None) -> Callable[..., CurrentUser]:
    """Dependency factory: the current user if their role is one of `roles`, else 403 and an
    audit record (action `action`, default `view_live`, details naming the route)."""
    allowed = frozenset(roles)

    def dependency(request: Request, user: LoggedIn) -> CurrentUser:
        if user.role not in allowed:
            forbid(request, user, f"{request.method} {request.url.path}", action=action or Action.VIEW_LIVE)
        return user

    return dependency
