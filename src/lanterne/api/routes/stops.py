"""Supervisors' stop controls over HTTP (HO-03): stop one detector on a camera, a camera, or the
site, and lift a stop. Supervisors only, CSRF-protected, every action audited by `Stops`.

A supervisor can only stop what they may see: a camera outside their scope is refused (403, and
the refusal is audited), and only a supervisor whose scope is every camera may stop the whole site,
since a site stop halts cameras they are not responsible for. Lifting follows the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from lanterne.accountability.stops import Stop, StopError, Stops
from lanterne.api.deps import CurrentUser, audit_log, csrf_protect, forbid, require_roles
from lanterne.audit import Action
from lanterne.config import Config
from lanterne.core.types import EventType


class StopRequest(BaseModel):
    """Unknown fields are refused (422): a typo must not silently widen or narrow a stop."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["detector", "camera", "site"]
    camera: str | None = Field(None, max_length=64, description="Required for `detector` and `camera`.")
    type: EventType | None = Field(None, description="Required for `detector`.")
    reason: str = Field(..., min_length=1, max_length=1000, description="Why inference must stop.")


class StopOut(BaseModel):
    id: int
    scope: str
    camera: str | None
    type: str | None
    reason: str
    started_at: datetime
    started_by: str
    lifted_at: datetime | None
    lifted_by: str | None
    active: bool


def stop_out(s: Stop) -> StopOut:
    return StopOut(
        id=s.id,
        scope=s.scope,
        camera=s.camera,
        type=str(s.type) if s.type is not None else None,
        reason=s.reason,
        started_at=s.started_at,
        started_by=s.started_by,
        lifted_at=s.lifted_at,
        lifted_by=s.lifted_by,
        active=s.active,
    )


def stops_for(request: Request, clock: Callable[[], datetime]) -> Stops:
    """The app's one `Stops` (its cache is shared by every request of the process)."""
    stops: Stops | None = getattr(request.app.state, "stops", None)
    if stops is None:
        stops = Stops(request.app.state.store.engine, audit_log(request), clock)
        request.app.state.stops = stops
    return stops


Supervisor = Annotated[CurrentUser, Depends(require_roles("supervisor"))]
Csrf = Annotated[CurrentUser, Depends(csrf_protect)]


def router(cfg: Config, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(tags=["controls"])
    cameras = {c.id for c in cfg.cameras}

    def _may_touch(request: Request, user: CurrentUser, scope: str, camera: str | None) -> None:
        if scope == "site":
            if "*" not in user.scope:
                forbid(request, user, "stop_site", "site", action=Action.STOP, object_type="site")
            return
        assert camera is not None
        if not user.sees(camera):
            forbid(request, user, "stop_camera", camera, action=Action.STOP, object_type="camera")

    @api.get("/api/stops", summary="Stops, active first then the latest lifted")
    def list_stops(request: Request, user: Supervisor) -> list[StopOut]:
        history = stops_for(request, clock).history(limit=200)
        visible = [s for s in history if s.scope == "site" or (s.camera is not None and user.sees(s.camera))]
        visible.sort(key=lambda s: (not s.active, -s.id))
        return [stop_out(s) for s in visible]

    @api.post("/api/stops", status_code=201, summary="Stop a detector, a camera or the site")
    def place_stop(
        body: StopRequest,
        request: Request,
        user: Supervisor,
        _csrf: Csrf,
    ) -> StopOut:
        if body.scope != "site":
            if not body.camera:
                raise HTTPException(422, f"a {body.scope} stop needs a camera")
            if body.camera not in cameras:
                raise HTTPException(404, f"camera {body.camera!r} is not in the configuration")
        if body.scope == "detector" and body.type is None:
            raise HTTPException(422, "a detector stop needs the event type")
        if body.scope != "detector" and body.type is not None:
            raise HTTPException(422, f"a {body.scope} stop takes no event type; use scope 'detector'")
        if body.scope == "site" and body.camera is not None:
            raise HTTPException(422, "a site stop takes no camera; use scope 'camera'")
        _may_touch(request, user, body.scope, body.camera)
        stops = stops_for(request, clock)
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
        return stop_out(placed)

    @api.post("/api/stops/{stop_id}/lift", summary="Lift a stop; inference resumes within a second")
    def lift_stop(
        stop_id: int,
        request: Request,
        user: Supervisor,
        _csrf: Csrf,
    ) -> StopOut:
        stops = stops_for(request, clock)
        current = stops.get(stop_id) if -(2**31) < stop_id < 2**31 else None
        if current is None:
            raise HTTPException(404, f"stop {stop_id} does not exist")
        _may_touch(request, user, current.scope, current.camera)
        try:
            return stop_out(stops.lift(stop_id, user.id))
        except StopError as exc:
            raise HTTPException(409, str(exc)) from None

    return api
