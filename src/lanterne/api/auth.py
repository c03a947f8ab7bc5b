"""Console login, sessions, CSRF and role checks: the dependencies every console route uses.

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
from importlib.resources import files
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from lanterne.accounts import (
    Account,
    LoginThrottle,
    authenticate,
    close_session,
    find_account,
    open_session,
    purge_sessions,
)
from lanterne.accounts import session_for as _session_for
from lanterne.audit import Action, AuditLog
from lanterne.errors import LanterneError

if TYPE_CHECKING:
    from lanterne.config import Config

COOKIE = "lanterne_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

router = APIRouter(tags=["console"])


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


def _user(account: Account) -> CurrentUser:
    return CurrentUser(account.id, account.login, account.role, frozenset(account.scope))


# --- app wiring ------------------------------------------------------------------------------


def install(
    app: FastAPI, cfg: Config, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> APIRouter:
    """Give `app` what the console routes need (configuration, clock, login throttle, JSON error
    bodies) and return `router` for `app.include_router`. One call per app."""
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
    return router


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
    user = _user(session.account)
    request.state.user = user
    request.state.csrf_token = session.csrf_token
    return user


LoggedIn = Annotated[CurrentUser, Depends(current_user)]
"""Shorthand for a route parameter: `def route(user: LoggedIn)`."""


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


# --- routes ----------------------------------------------------------------------------------


def _login(request: Request, login: str, password: str) -> tuple[int, dict[str, Any], str | None]:
    """The whole login decision, run in the thread pool (argon2 takes about 0.16 s)."""
    state = request.app.state
    engine = state.store.engine
    when = now(request)
    throttle: LoginThrottle = state.login_throttle
    address = request.client.host if request.client else "unknown"
    keys = (f"login:{login.strip().lower()}", f"addr:{address}")
    if throttle.blocked(keys, when):
        # Not audited one by one: a guesser hammering a locked door would flood the log. The
        # failure that started the lockout is recorded with `"locked": true`.
        return 429, {"detail": "too many failed logins; try again in 15 minutes"}, None
    account = authenticate(engine, login, password)
    if account is None:
        known = find_account(engine, login) if login else None
        locked = throttle.failure(keys, when)
        audit_log(request).append(
            known.id if known is not None else "unknown",
            Action.LOGIN_FAILED,
            object_type="account" if known is not None else None,
            object_id=known.id if known is not None else None,
            details={
                "reason": "unknown_login"
                if known is None
                else ("disabled" if not known.active else "bad_password"),
                "locked": locked,
            },
        )
        return 401, {"detail": "wrong login or password"}, None
    throttle.success(keys[0])
    # Sessions past their shift are otherwise deleted only when presented again; a login is a
    # cheap moment to sweep those whose browser never came back.
    purge_sessions(engine, when)
    token, csrf = open_session(engine, account, state.cfg.console, when)
    audit_log(request).append(account.id, Action.LOGIN, object_type="account", object_id=account.id)
    return 200, {"csrf_token": csrf, "user": _user(account).public()}, token


@router.post("/api/login", summary="Log in (JSON {login, password}); sets the session cookie")
async def login(request: Request) -> JSONResponse:
    # The body is read by hand: FastAPI's validation error would echo the request, password included.
    try:
        body = await request.json()
    except ValueError:
        body = None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("login"), str)
        or not isinstance(body.get("password"), str)
        or len(body["login"]) > 256
        or len(body["password"]) > 1024
    ):
        return JSONResponse({"detail": "send JSON with a login and a password"}, status_code=400)
    status, payload, token = await run_in_threadpool(_login, request, body["login"], body["password"])
    response = JSONResponse(payload, status_code=status)
    if token is not None:
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            path="/",
            secure=request.url.scheme == "https",
        )
    return response


@router.post("/api/logout", summary="Log out (needs the CSRF header)")
def logout(request: Request, user: Annotated[CurrentUser, Depends(csrf_protect)]) -> JSONResponse:
    token = request.cookies.get(COOKIE)
    if token:
        close_session(request.app.state.store.engine, token)
    response = JSONResponse({"detail": "logged out"})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/api/me", summary="The logged-in user and the session's CSRF token")
def me(request: Request, user: LoggedIn) -> dict[str, Any]:
    return {"user": user.public(), "csrf_token": request.state.csrf_token}


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page() -> HTMLResponse:
    return HTMLResponse(files("lanterne.api").joinpath("static/login.html").read_text(encoding="utf-8"))
