"""Logging in and out: the session cookie (HttpOnly, SameSite=Strict) and the CSRF token the page
keeps for its writes. Failed logins are throttled per login and per address, and recorded.

Accounts that see video (or may remove privacy protection) send a second factor with the
password (AC-04): the 6-digit TOTP code, or one of their recovery codes, which is then spent.

Operators and supervisors log in only while they hold a valid habilitation and training record
(AC-05, HO-06): the console exists to show them footage, so an agent whose designation lapsed is
stopped at the door with the reason, not at the first snapshot. The records are checked again at
every video request, so one that lapses or is revoked mid-shift stops the next picture."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from lanterne.accountability.accounts import (
    LoginThrottle,
    authenticate,
    check_second_factor,
    close_session,
    find_account,
    has_second_factor,
    needs_second_factor,
    open_session,
    purge_sessions,
)
from lanterne.accountability.habilitation import may_view_video
from lanterne.api.deps import COOKIE, FOOTAGE_ROLES, EngineDep, LoggedIn, Writer, audit_log, now, user_of
from lanterne.api.schemas.auth import SessionOut, UserOut
from lanterne.api.schemas.common import ERRORS, Message
from lanterne.audit import Action

router = APIRouter(tags=["console"], responses=ERRORS)

CODE_MISSING = "this account needs the 6-digit code from its authenticator app (or a recovery code)"
NOT_ENROLLED = (
    "this account must log in with a second factor and has none; ask an administrator to enrol it "
    "(`lanterne users totp LOGIN`)"
)
CODE_WRONG = {
    "bad_code": "wrong code; type the 6 digits the authenticator app shows now, or an unused recovery code",
    "replayed_code": "that code was already used; wait for the next one (30 s) and type it",
}


def _login(
    request: Request, login: str, password: str, code: str | None = None
) -> tuple[int, dict[str, Any], str | None]:
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
    if needs_second_factor(engine, account, when):
        refused = _second_factor(request, account.id, code, keys)
        if refused is not None:
            return refused
    if account.role in FOOTAGE_ROLES:
        lapsed = may_view_video(engine, account.id, None, when)
        if lapsed is not None:
            # Not counted by the throttle: the password and code were right, nothing was guessed.
            audit_log(request).append(
                account.id,
                Action.LOGIN_FAILED,
                object_type="account",
                object_id=account.id,
                details={"reason": "no_valid_habilitation_or_training", "why": lapsed, "locked": False},
            )
            return 403, {"detail": f"{account.role}s log in with valid records: {lapsed}"}, None
    throttle.success(keys[0])
    # Sessions past their shift are otherwise deleted only when presented again; a login is a
    # cheap moment to sweep those whose browser never came back.
    purge_sessions(engine, when)
    token, csrf = open_session(engine, account, state.cfg.console, when)
    audit_log(request).append(account.id, Action.LOGIN, object_type="account", object_id=account.id)
    return 200, {"csrf_token": csrf, "user": user_of(account).public()}, token


def _second_factor(
    request: Request, account_id: str, code: str | None, keys: tuple[str, str]
) -> tuple[int, dict[str, Any], None] | None:
    """None when the second factor holds; else the refusal, recorded (`login_failed` with the
    reason) and counted by the throttle like a wrong password, since it may be a guess."""
    engine = request.app.state.store.engine
    when = now(request)
    if not has_second_factor(engine, account_id):
        reason, status, detail = "no_second_factor", 403, NOT_ENROLLED
    elif not code or not code.strip():
        reason, status, detail = "no_code", 401, CODE_MISSING
    else:
        failed = check_second_factor(engine, account_id, code, when)
        if failed is None:
            return None
        reason, status, detail = failed, 401, CODE_WRONG.get(failed, CODE_WRONG["bad_code"])
    locked = reason != "no_second_factor" and request.app.state.login_throttle.failure(keys, when)
    audit_log(request).append(
        account_id,
        Action.LOGIN_FAILED,
        object_type="account",
        object_id=account_id,
        details={"reason": reason, "locked": locked},
    )
    return status, {"detail": detail}, None


@router.post(
    "/api/login",
    summary="Log in (JSON {login, password, code}); sets the session cookie",
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
        or not isinstance(body.get("code") or "", str)
        or len(body.get("code") or "") > 32
    ):
        return JSONResponse({"detail": "send JSON with a login and a password"}, status_code=400)
    status, payload, token = await run_in_threadpool(
        _login, request, body["login"], body["password"], body.get("code") or None
    )
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
