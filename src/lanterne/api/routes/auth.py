"""Logging in and out: the session cookie (HttpOnly, SameSite=Strict) and the CSRF token the page
keeps for its writes. Failed logins are throttled per login and per address, and recorded."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from lanterne.accountability.accounts import (
    LoginThrottle,
    authenticate,
    close_session,
    find_account,
    open_session,
    purge_sessions,
)
from lanterne.api.deps import COOKIE, EngineDep, LoggedIn, Writer, audit_log, now, user_of
from lanterne.api.schemas.auth import SessionOut, UserOut
from lanterne.api.schemas.common import ERRORS, Message
from lanterne.audit import Action

router = APIRouter(tags=["console"], responses=ERRORS)


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
    return 200, {"csrf_token": csrf, "user": user_of(account).public()}, token


@router.post(
    "/api/login",
    summary="Log in (JSON {login, password}); sets the session cookie",
    response_model=SessionOut,
)
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
def logout(request: Request, response: Response, user: Writer, engine: EngineDep) -> Message:
    token = request.cookies.get(COOKIE)
    if token:
        close_session(engine, token)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return Message(detail="logged out")


@router.get("/api/me", summary="The logged-in user and the session's CSRF token")
def me(request: Request, user: LoggedIn) -> SessionOut:
    return SessionOut(user=UserOut(**user.public()), csrf_token=request.state.csrf_token)
