"""Supervisors' stop controls over HTTP (HO-03): stop one detector on a camera, a camera, or the
site, and lift a stop. Supervisors only, CSRF-protected, every action audited by `Stops`.

A supervisor can only stop what they may see: a camera outside their scope is refused (403, and
the refusal is audited), and only a supervisor whose scope is every camera may stop the whole site,
since a site stop halts cameras they are not responsible for. Lifting follows the same rule.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from lanterne.accountability.stops import StopError
from lanterne.api.deps import ConfigDep, CurrentUser, StopsDep, Supervisor, Writer, forbid
from lanterne.api.schemas.common import ERRORS
from lanterne.api.schemas.stops import StopOut, StopRequest
from lanterne.audit import Action

router = APIRouter(tags=["controls"], responses=ERRORS)


def _may_touch(request: Request, user: CurrentUser, scope: str, camera: str | None) -> None:
    if scope == "site":
        if "*" not in user.scope:
            forbid(request, user, "stop_site", "site", action=Action.STOP, object_type="site")
        return
    assert camera is not None
    if not user.sees(camera):
        forbid(request, user, "stop_camera", camera, action=Action.STOP, object_type="camera")


@router.get("/api/stops", summary="Stops, active first then the latest lifted")
def list_stops(user: Supervisor, stops: StopsDep) -> list[StopOut]:
    history = stops.history(limit=200)
    visible = [s for s in history if s.scope == "site" or (s.camera is not None and user.sees(s.camera))]
    visible.sort(key=lambda s: (not s.active, -s.id))
    return [StopOut.of(s) for s in visible]


@router.post("/api/stops", status_code=201, summary="Stop a detector, a camera or the site")
def place_stop(
    body: StopRequest,
    request: Request,
    user: Supervisor,
    _csrf: Writer,
    cfg: ConfigDep,
    stops: StopsDep,
) -> StopOut:
    if body.scope != "site":
        if not body.camera:
            raise HTTPException(422, f"a {body.scope} stop needs a camera")
        if body.camera not in {c.id for c in cfg.cameras}:
            raise HTTPException(404, f"camera {body.camera!r} is not in the configuration")
    if body.scope == "detector" and body.type is None:
        raise HTTPException(422, "a detector stop needs the event type")
    if body.scope != "detector" and body.type is not None:
        raise HTTPException(422, f"a {body.scope} stop takes no event type; use scope 'detector'")
    if body.scope == "site" and body.camera is not None:
        raise HTTPException(422, "a site stop takes no camera; use scope 'camera'")
    _may_touch(request, user, body.scope, body.camera)
    try:
        if body.scope == "detector":
            assert body.camera is not None and body.type is not None
            placed = stops.stop_detector(body.camera, body.type, user.id, body.reason)
        elif body.scope == "camera":
            assert body.camera is not None
            placed = stops.stop_camera(body.camera, user.id, body.reason)
        else:
            placed = stops.stop_site(user.id, body.reason)
    except StopError as exc:
        raise HTTPException(422, str(exc)) from None
    _ring(request)
    return StopOut.of(placed)


@router.post("/api/stops/{stop_id}/lift", summary="Lift a stop; inference resumes within a second")
def lift_stop(
    stop_id: int,
    request: Request,
    user: Supervisor,
    _csrf: Writer,
    stops: StopsDep,
) -> StopOut:
    current = stops.get(stop_id) if -(2**31) < stop_id < 2**31 else None
    if current is None:
        raise HTTPException(404, f"stop {stop_id} does not exist")
    _may_touch(request, user, current.scope, current.camera)
    try:
        lifted = stops.lift(stop_id, user.id)
    except StopError as exc:
        raise HTTPException(409, str(exc)) from None
    _ring(request)
    return StopOut.of(lifted)


def _ring(request: Request) -> None:
    """In a city, tell every worker now (`lanterne.cluster.control`); they would read the store
    within `FALLBACK_SECONDS` anyway."""
    bell = getattr(request.app.state, "control", None)
    if bell is not None:
        bell.announce("stops")
