"""Logging in and out: the session cookie (HttpOnly, SameSite=Strict) and the CSRF token the page
keeps for its writes. Failed logins are throttled per login and per address, and recorded.

Every account sends a second factor with the password (AC-04): the 6-digit TOTP code, or one
of its recovery codes, which is then spent. An account with none enrolled cannot log in.

Operators, supervisors and export officers log in only while they hold a valid habilitation and
training record (AC-05, HO-06): the console exists to show them footage, so an agent whose
designation lapsed is stopped at the door with the reason, not at the first snapshot. The records
are checked again at every video request, so one that lapses or is revoked mid-shift stops the
next picture.

City sign-in (OpenID Connect, `lanterne.accountability.oidc`) ends in the same place: the same
session cookie and CSRF token, the same `login`/`login_failed` records (with `"method": "oidc"`),
the same habilitation check. The browser goes to the provider and back as top-level navigations,
so each step answers with a redirect to the login page, which reads the outcome once from
`/api/login/oidc/outcome`: an error sentence, a session, or the TOTP code step when the provider
asserted no second factor."""

from __future__ import annotations

import hmac
import logging
import threading
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel

from lanterne.accountability.accounts import (
    LoginThrottle,
    authenticate,
    check_second_factor,
    close_session,
    find_account,
    get_account,
    has_second_factor,
    open_session,
    purge_sessions,
)
from lanterne.accountability.habilitation import may_view_video
from lanterne.accountability.oidc import (
    SIGN_IN_TTL,
    OidcClient,
    OidcError,
    SignIn,
    SignIns,
    role_for,
    second_factor_asserted,
    sync_account,
)
from lanterne.api.deps import COOKIE, RECORDING_ROLES, EngineDep, LoggedIn, Writer, audit_log, now, user_of
from lanterne.api.schemas.auth import SessionOut, UserOut
from lanterne.api.schemas.common import ERRORS, Message
from lanterne.audit import Action

log = logging.getLogger(__name__)

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
    refused = _second_factor(request, account.id, code, keys)
    if refused is not None:
        return refused
    if account.role in RECORDING_ROLES:
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
    request: Request, account_id: str, code: str | None, keys: tuple[str, str], *, method: str | None = None
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
        details={"reason": reason, "locked": locked} | ({"method": method} if method else {}),
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


# --- city sign-in (OpenID Connect) ------------------------------------------------------------

SIGN_IN_COOKIE = "lanterne_oidc"
SIGN_IN_PATH = "/api/login/oidc"
"""The sign-in cookie goes only to the OIDC routes. It is SameSite=Lax, not Strict: the provider
sends the browser back to the callback from its own site, and a Strict cookie would stay home."""
BACK_TO_LOGIN = "/login?oidc=1"
NOT_CONFIGURED = "sign-in with the city directory is not configured on this site (configuration `oidc:`)"
STATE_WRONG = "this sign-in expired or was not started from this browser; click the sign-in button again"
NO_ROLE = (
    "your directory account is in no group that gives access to Lanterne; ask the administrator "
    "to add you to one (or to map your group in `oidc.roles`)"
)
NO_FACTOR_OIDC = (
    "the city directory did not confirm a second factor for this sign-in and this account has no "
    "Lanterne code enrolled; sign in with the directory's second factor, or ask an administrator "
    "to enrol one (`lanterne users totp LOGIN`)"
)
CODE_STEP = (
    "the city directory did not confirm a second factor: type the 6-digit code from your Lanterne "
    "authenticator app (or a recovery code)"
)
_OIDC_LOCK = threading.Lock()


class OidcProvider(BaseModel):
    name: str
    url: str


class LoginMethods(BaseModel):
    """What the login page offers besides the login and password form."""

    oidc: OidcProvider | None


class SignInOutcome(BaseModel):
    """The end of a city sign-in, read once by the login page: a session (`csrf_token`, `user`),
    the code step (`step` = "code"), or a refusal (`detail`, with the refusal's status)."""

    step: str | None = None
    detail: str | None = None
    csrf_token: str | None = None
    user: UserOut | None = None


def _oidc(request: Request) -> tuple[OidcClient, SignIns] | None:
    """The app's OIDC client and sign-ins in progress, made at first use; None when `oidc:` is
    not configured."""
    state = request.app.state
    settings = state.cfg.oidc
    if settings is None:
        return None
    with _OIDC_LOCK:
        if getattr(state, "oidc", None) is None:
            client = OidcClient(settings, [c.id for c in state.cfg.cameras])
            state.oidc = (client, SignIns())
    return state.oidc  # type: ignore[no-any-return]


def _set_sign_in(request: Request, response: Response, key: str) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE,
        key,
        max_age=int(SIGN_IN_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        path=SIGN_IN_PATH,
        secure=request.url.scheme == "https",
    )


def _to_login_page(request: Request, key: str) -> RedirectResponse:
    """Back to the login page, which reads the sign-in `key` names (its outcome or code step)."""
    response = RedirectResponse(BACK_TO_LOGIN, status_code=303)
    _set_sign_in(request, response, key)
    return response


def _set_session(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", path="/", secure=request.url.scheme == "https"
    )


def _address_key(request: Request) -> str:
    return f"addr:{request.client.host if request.client else 'unknown'}"


def _refuse(
    request: Request,
    sign_ins: SignIns,
    status: int,
    detail: str,
    reason: str,
    account_id: str | None = None,
    **details: object,
) -> RedirectResponse:
    """Record a refused sign-in (`login_failed`, method oidc, never who the directory said it
    was) and send the browser to the login page, which shows `detail`.

    Counted against the client's address like a failed local login: a callback costs an audit
    record (and a request to the provider), so a script replaying forged callbacks is locked
    out after `console.max_failed_logins` instead of flooding the log. A missing second factor
    guesses nothing and is not counted, as for a local login."""
    when = now(request)
    locked = reason != "no_second_factor" and request.app.state.login_throttle.failure(
        (_address_key(request),), when
    )
    audit_log(request).append(
        account_id or "unknown",
        Action.LOGIN_FAILED,
        object_type="account" if account_id else None,
        object_id=account_id,
        details={"method": "oidc", "reason": reason, "locked": locked, **details},
    )
    key = sign_ins.add(SignIn(None, now(request), account_id, (status, {"detail": detail})))
    return _to_login_page(request, key)


def _admit(request: Request, account_id: str, second_factor: str) -> tuple[int, dict[str, Any], str | None]:
    """The end of a sign-in whose identity and second factor hold: habilitation and training for
    the roles that see footage, then the session, as for a local login."""
    engine = request.app.state.store.engine
    when = now(request)
    account = get_account(engine, account_id)
    if account is None or not account.active:
        return 403, {"detail": "this account is disabled in Lanterne; ask the administrator"}, None
    if account.role in RECORDING_ROLES:
        lapsed = may_view_video(engine, account.id, None, when)
        if lapsed is not None:
            audit_log(request).append(
                account.id,
                Action.LOGIN_FAILED,
                object_type="account",
                object_id=account.id,
                details={
                    "method": "oidc",
                    "reason": "no_valid_habilitation_or_training",
                    "why": lapsed,
                    "locked": False,
                },
            )
            return 403, {"detail": f"{account.role}s log in with valid records: {lapsed}"}, None
    purge_sessions(engine, when)
    token, csrf = open_session(engine, account, request.app.state.cfg.console, when)
    audit_log(request).append(
        account.id,
        Action.LOGIN,
        object_type="account",
        object_id=account.id,
        details={"method": "oidc", "second_factor": second_factor},
    )
    return 200, {"csrf_token": csrf, "user": user_of(account).public()}, token


@router.get(
    "/api/login/methods",
    summary="How one may log in here: the city directory's name when OpenID Connect is configured",
)
def login_methods(request: Request) -> LoginMethods:
    settings = request.app.state.cfg.oidc
    return LoginMethods(oidc=None if settings is None else OidcProvider(name=settings.name, url=SIGN_IN_PATH))


@router.get(
    SIGN_IN_PATH,
    summary="Sign in with the city directory: redirects to the OpenID provider",
    status_code=303,
    response_class=RedirectResponse,
)
def oidc_start(request: Request) -> Response:
    found = _oidc(request)
    if found is None:
        return JSONResponse({"detail": NOT_CONFIGURED}, status_code=404)
    client, sign_ins = found
    when = now(request)
    try:
        url, transaction = client.begin(when)
    except OidcError as exc:
        # Nobody has signed in yet: logged for the administrator, not an audit record.
        log.warning("city sign-in cannot start: %s", exc.reason)
        return _to_login_page(request, sign_ins.add(SignIn(None, when, outcome=(502, {"detail": str(exc)}))))
    response = RedirectResponse(url, status_code=303)
    _set_sign_in(request, response, sign_ins.add(SignIn(transaction, when)))
    return response


@router.get(
    SIGN_IN_PATH + "/callback",
    summary="The OpenID provider's redirect back: code exchange, ID token checks, account mapping",
    status_code=303,
    response_class=RedirectResponse,
)
def oidc_callback(request: Request) -> Response:
    found = _oidc(request)
    if found is None:
        return JSONResponse({"detail": NOT_CONFIGURED}, status_code=404)
    client, sign_ins = found
    engine = request.app.state.store.engine
    when = now(request)
    params = request.query_params
    throttle: LoginThrottle = request.app.state.login_throttle
    if throttle.blocked((_address_key(request),), when):
        # Not recorded one by one, as at the local door; the failure that locked is.
        sign_ins.pop(request.cookies.get(SIGN_IN_COOKIE))
        locked_out = (429, {"detail": "too many failed logins; try again in 15 minutes"})
        return _to_login_page(request, sign_ins.add(SignIn(None, when, outcome=locked_out)))
    # The transaction is spent whatever happens next: a code or state is good once.
    sign_in = sign_ins.pop(request.cookies.get(SIGN_IN_COOKIE))
    tx = sign_in.transaction if sign_in is not None and sign_in.created_at + sign_ins.ttl > when else None
    state = params.get("state") or ""
    if tx is None or not hmac.compare_digest(state.encode(), tx.state.encode()):
        return _refuse(request, sign_ins, 400, STATE_WRONG, "state_mismatch")
    if params.get("error"):
        # The provider's own error code (`access_denied`, `login_required`…): a short token from
        # RFC 6749 §4.1.2.1, kept only when it looks like one.
        code = params["error"] if params["error"].replace("_", "").isalnum() else "other"
        return _refuse(
            request,
            sign_ins,
            401,
            f"the city directory did not sign you in ({code[:40]}); try again",
            "provider_refused",
            error=code[:40],
        )
    try:
        identity = client.finish(params.get("code") or "", tx, iss=params.get("iss"))
    except OidcError as exc:
        return _refuse(request, sign_ins, 401, str(exc), exc.reason)
    settings = client.settings
    mapping = role_for(settings, identity.groups)
    if mapping is None:
        return _refuse(request, sign_ins, 403, NO_ROLE, "no_mapped_role", groups=len(identity.groups))
    try:
        account = sync_account(engine, audit_log(request), identity, mapping, when)
    except OidcError as exc:
        return _refuse(request, sign_ins, 403, str(exc), exc.reason, exc.account_id)
    if second_factor_asserted(settings, identity):
        factor = "provider"
    elif has_second_factor(engine, account.id):
        key = sign_ins.add(SignIn(None, when, account.id, (200, {"step": "code", "detail": CODE_STEP})))
        return _to_login_page(request, key)
    else:
        return _refuse(request, sign_ins, 403, NO_FACTOR_OIDC, "no_second_factor", account.id)
    status, payload, token = _admit(request, account.id, factor)
    response = _to_login_page(request, sign_ins.add(SignIn(None, when, account.id, (status, payload))))
    if token is not None:
        _set_session(request, response, token)
    return response


@router.get(
    SIGN_IN_PATH + "/outcome",
    summary="How the city sign-in of this browser ended (read once by the login page)",
    response_model=SignInOutcome,
    response_model_exclude_none=True,
)
def oidc_outcome(request: Request) -> JSONResponse:
    found = _oidc(request)
    if found is None:
        return JSONResponse({"detail": NOT_CONFIGURED}, status_code=404)
    _, sign_ins = found
    key = request.cookies.get(SIGN_IN_COOKIE)
    sign_in = sign_ins.get(key, now(request))
    if sign_in is None or sign_in.outcome is None:
        response = JSONResponse(
            {"detail": "no sign-in in progress; click the sign-in button"}, status_code=404
        )
        response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
        return response
    status, payload = sign_in.outcome
    response = JSONResponse(payload, status_code=status)
    if payload.get("step") != "code":
        sign_ins.pop(key)
        response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
    return response


def _oidc_code(request: Request, key: str | None, code: str) -> tuple[int, dict[str, Any], str | None]:
    found = _oidc(request)
    assert found is not None
    _, sign_ins = found
    when = now(request)
    sign_in = sign_ins.get(key, when)
    if sign_in is None or sign_in.account_id is None or sign_in.outcome is None:
        return 404, {"detail": "no sign-in waits for a code; click the sign-in button again"}, None
    if sign_in.outcome[1].get("step") != "code":
        return 404, {"detail": "no sign-in waits for a code; click the sign-in button again"}, None
    account = get_account(request.app.state.store.engine, sign_in.account_id)
    if account is None:
        return 404, {"detail": "no sign-in waits for a code; click the sign-in button again"}, None
    address = request.client.host if request.client else "unknown"
    keys = (f"login:{account.login}", f"addr:{address}")
    throttle: LoginThrottle = request.app.state.login_throttle
    if throttle.blocked(keys, when):
        return 429, {"detail": "too many failed logins; try again in 15 minutes"}, None
    refused = _second_factor(request, account.id, code, keys, method="oidc")
    if refused is not None:
        return refused
    throttle.success(keys[0])
    sign_ins.pop(key)
    return _admit(request, account.id, "totp")


@router.post(
    SIGN_IN_PATH + "/code",
    summary="The TOTP code that ends a city sign-in without the provider's second factor (JSON {code})",
    response_model=SessionOut,
)
async def oidc_code(request: Request) -> JSONResponse:
    if request.app.state.cfg.oidc is None:
        return JSONResponse({"detail": NOT_CONFIGURED}, status_code=404)
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str) or len(body["code"]) > 32:
        return JSONResponse({"detail": "send JSON with the code"}, status_code=400)
    status, payload, token = await run_in_threadpool(
        _oidc_code, request, request.cookies.get(SIGN_IN_COOKIE), body["code"]
    )
    response = JSONResponse(payload, status_code=status)
    if token is not None:
        _set_session(request, response, token)
    if status in (200, 403):
        response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
    return response
