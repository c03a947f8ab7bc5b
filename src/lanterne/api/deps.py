"""What every console route depends on: sessions, CSRF and role checks, and the app's
configuration, clock, database and audit log.

A route declares who may call it and what it needs, as annotated parameters (the FastAPI
template's style: one alias per dependency, so a handler can be read, and called, on its own)::

    @router.get("/api/alerts")
    def alerts(user: Viewer, engine: EngineDep, now: Now) -> list[AlertOut]: ...

    @router.post("/api/stops")
    def stop(user: Supervisor, _: Writer, stops: StopsDep) -> StopOut: ...

The session lives in an HttpOnly, SameSite=Strict cookie (script cannot read it, other sites
cannot send it); writes also need the `X-CSRF-Token` header, which the page got at login. Every
refusal of an authenticated user is written to the audit log (AC-03).
"""

from __future__ import annotations

import hmac
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, BeforeValidator, StringConstraints
from sqlalchemy import Engine

from lanterne.accountability.accounts import (
    EXPORT_ROLES,
    Account,
    LoginThrottle,
)
from lanterne.accountability.accounts import session_for as _session_for
from lanterne.accountability.alerts import find_alert
from lanterne.accountability.habilitation import may_view_video
from lanterne.accountability.stops import Stops
from lanterne.audit import Action, AuditLog
from lanterne.audit.log import PURPOSE_MAX_LENGTH
from lanterne.config import Config
from lanterne.core.errors import LanterneError, RecordingError
from lanterne.runtime.exports import renderer_for
from lanterne.video.playback import Renderer

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

    async def user_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server log (uvicorn prints it), never to the browser.
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    app.add_exception_handler(LanterneError, user_error)
    app.add_exception_handler(RequestValidationError, unknown_parameters)
    app.add_exception_handler(Exception, server_error)


async def unknown_parameters(request: Request, exc: Exception) -> JSONResponse:
    """A query parameter the route does not take is refused (422), never ignored: a client that
    believes it filtered by one must learn at once that it did not (no search on people, décret
    2023-828 art. 3). Query models forbid extra fields; this turns pydantic's refusal into one
    sentence naming the unknown and the allowed parameters, which the pages show as it is. Any
    other validation error keeps FastAPI's usual body."""
    assert isinstance(exc, RequestValidationError)
    unknown = sorted(
        {
            str(e["loc"][-1])
            for e in exc.errors()
            if e.get("type") == "extra_forbidden" and tuple(e.get("loc", ()))[:1] == ("query",)
        }
    )
    if not unknown:
        return await request_validation_exception_handler(request, exc)
    allowed = sorted(_query_names(request))
    hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
    return JSONResponse({"detail": f"unknown parameter(s): {', '.join(unknown)}{hint}"}, status_code=422)


def _query_names(request: Request) -> set[str]:
    """The query parameter names of the matched route's query model(s)."""
    route = request.scope.get("route")
    names: set[str] = set()
    for field in getattr(getattr(route, "dependant", None), "query_params", ()):
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names.update(f.alias or name for name, f in model.model_fields.items())
        else:
            names.add(field.alias)
    return names


def config(request: Request) -> Config:
    """The app's configuration (set by `install`)."""
    return request.app.state.cfg  # type: ignore[no-any-return]


def clock(request: Request) -> Callable[[], datetime]:
    """The app's clock itself, for what reads the time more than once (a live stream, the stops'
    cache); tests control it through `create_app(cfg, clock=...)`."""
    return request.app.state.clock  # type: ignore[no-any-return]


def now(request: Request) -> datetime:
    """The app's clock, read once for the request."""
    return request.app.state.clock()  # type: ignore[no-any-return]


def engine(request: Request) -> Engine:
    """The store's database engine (the store opens with the app's lifespan)."""
    return request.app.state.store.engine  # type: ignore[no-any-return]


def audit_log(request: Request) -> AuditLog:
    """The app's audit log, opened with the site in the app's lifespan (`runtime.site.open_site`)."""
    return request.app.state.audit  # type: ignore[no-any-return]


def stops(request: Request) -> Stops:
    """The app's one `Stops`: its cache of active stops is shared by every request of the process."""
    found: Stops | None = getattr(request.app.state, "stops", None)
    if found is None:
        found = Stops(request.app.state.store.engine, audit_log(request), request.app.state.clock)
        request.app.state.stops = found
    return found


_RENDERER_LOCK = threading.Lock()


def renderer(request: Request) -> Renderer:
    """The app's one read path for recorded video (`lanterne.video.playback`), made on first use:
    it loads the person detector and the anonymiser's models, which a server that never plays a
    recording should not pay for. A missing or unreadable key file is a 503 naming the fix."""
    found: Renderer | None = getattr(request.app.state, "renderer", None)
    if found is not None:
        return found
    with _RENDERER_LOCK:
        found = getattr(request.app.state, "renderer", None)
        if found is None:
            try:
                found = renderer_for(request.app.state.cfg, request.app.state.store)
            except RecordingError as exc:
                raise HTTPException(503, detail=str(exc)) from None
            request.app.state.renderer = found
    return found


ConfigDep = Annotated[Config, Depends(config)]
ClockDep = Annotated[Callable[[], datetime], Depends(clock)]
Now = Annotated[datetime, Depends(now)]
EngineDep = Annotated[Engine, Depends(engine)]
AuditDep = Annotated[AuditLog, Depends(audit_log)]
StopsDep = Annotated[Stops, Depends(stops)]
RendererDep = Annotated[Renderer, Depends(renderer)]


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


def _plain_text(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("the purpose contains control characters; write it as plain text")
    return value


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


PurposeText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=PURPOSE_MAX_LENGTH),
    AfterValidator(_plain_text),
]
"""The one purpose check of the console (LG-02): a field type for query and body models, with the
audit log's own length limit, so a purpose the API accepts is one the log can keep, and no control
characters (the purpose is printed in audit exports as it was typed)."""

MaybePurpose = Annotated[PurposeText | None, BeforeValidator(_blank_is_none)]
"""A purpose parameter that may be left out: absent or blank reads as None, so that the route
answers its own 400 saying why it needs one (`required_purpose`) instead of a bare 422."""


def required_purpose(purpose: str | None, refusal: str) -> str:
    """The stated purpose, or 400 with `refusal` (which says why one is needed)."""
    if purpose is None:
        raise HTTPException(400, refusal)
    return purpose


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
    reason: str | None = None,
) -> NoReturn:
    """Refuse and record the refusal. `what` names what was denied (an action value such as
    `view_clip`, or a route); the record's action is `action`, else `what` when it is an action
    value, else `access_denied` (nothing was viewed, so no view action fits). `reason`, when
    given, is both recorded and answered, in place of the generic refusal."""
    if action is None:
        action = Action(what) if what in Action._value2member_map_ else Action.ACCESS_DENIED
    audit_log(request).append(
        user.id,
        action,
        object_type=object_type,
        object_id=object_id,
        details={"denied": what, "role": user.role, "path": request.url.path}
        | ({"reason": reason} if reason else {}),
    )
    raise HTTPException(403, reason or "not allowed for your role or scope")


def require_roles(*roles: str, action: Action | None = None) -> Callable[..., CurrentUser]:
    """Dependency factory: the current user if their role is one of `roles`, else 403 and an
    audit record (action `action`, default `access_denied`, details naming the route)."""
    allowed = frozenset(roles)

    def dependency(request: Request, user: LoggedIn) -> CurrentUser:
        if user.role not in allowed:
            forbid(
                request, user, f"{request.method} {request.url.path}", action=action or Action.ACCESS_DENIED
            )
        return user

    return dependency


FOOTAGE_ROLES = ("operator", "supervisor")
"""Who sees alerts, snapshots, clips, the live wall and the map; auditors and admins see no footage
(AC-02), and export officers see recordings only (AC-03)."""
RECORDING_ROLES = (*FOOTAGE_ROLES, *EXPORT_ROLES)
"""Who looks into recorded footage (a camera's timeline, a stretch played back): the watchers, and
the export officer, who checks a stretch before handing it over (the copy shows it anyway; a
playback is at least recorded with its purpose). Each needs a habilitation at login and at every
request, as any role that sees pixels (AC-01, AC-05)."""

Viewer = Annotated[CurrentUser, Depends(require_roles(*FOOTAGE_ROLES))]
"""Operators and supervisors; anyone else is refused (403, recorded)."""
RecordingReader = Annotated[CurrentUser, Depends(require_roles(*RECORDING_ROLES))]
"""Operators, supervisors and export officers; anyone else is refused (403, recorded)."""


def _cleared(request: Request, user: CurrentUser) -> CurrentUser:
    """`user`, if at this moment they hold a habilitation covering the camera and a training
    record (AC-01, AC-05, HO-06); else 403 with the one-line reason, recorded as `access_denied`.
    Asked at every request that serves pixels, not once at login: a record revoked or lapsed
    mid-shift stops the next snapshot. The camera is the route's `{camera}`, or the camera of its
    `{alert_id}` (an unknown alert checks any camera, and the route answers 404)."""
    camera = request.path_params.get("camera")
    if camera is None and "alert_id" in request.path_params:
        alert = find_alert(engine(request), request.path_params["alert_id"])
        camera = alert.camera if alert is not None else None
    if camera is not None and not user.sees(camera):
        return user  # outside the account's scope: the route refuses it and records what was tried
    why = may_view_video(engine(request), user.id, camera, now(request))
    if why is not None:
        forbid(request, user, "video", camera, action=Action.ACCESS_DENIED, object_type="camera", reason=why)
    return user


def video_viewer(request: Request, user: Viewer) -> CurrentUser:
    """An operator or supervisor cleared to see video now (`_cleared`)."""
    return _cleared(request, user)


def recording_viewer(request: Request, user: RecordingReader) -> CurrentUser:
    """An operator, supervisor or export officer cleared to see video now (`_cleared`)."""
    return _cleared(request, user)


VideoViewer = Annotated[CurrentUser, Depends(video_viewer)]
"""A `Viewer` cleared to see video now: every route that serves a snapshot, a clip or live video.
The alert list, an alert's details and its history show no pixels and stay `Viewer`."""
RecordingViewer = Annotated[CurrentUser, Depends(recording_viewer)]
"""A `RecordingReader` cleared to see video now: the routes that serve recorded footage."""
Supervisor = Annotated[CurrentUser, Depends(require_roles("supervisor"))]
ExportOfficer = Annotated[CurrentUser, Depends(require_roles(*EXPORT_ROLES))]
"""The role that hands footage out (exports, answers to access requests); anyone else is refused
(403, recorded)."""
Writer = Annotated[CurrentUser, Depends(csrf_protect)]
"""A write: the session's CSRF token must come with it."""
