"""Incidents and breaches (RK-05, SC-05) for supervisors and the DPO.

- `GET /api/incidents?state=open&kind=breach` lists incidents, newest first, with a breach's
  deadline and whether it is overdue;
- `GET /api/incidents/{id}` gives one with its timeline and the notification template;
- `POST /api/incidents/{id}/notes` `{"text", "owner"?}` adds a note (and hands it over);
- `POST /api/incidents/{id}/notifications` `{"to": "authority" | "provider", "reference"}`
  records that the notification was sent;
- `POST /api/incidents/{id}/close` `{"cause", "remedy"}` closes it.

Each step is recorded (`incident`) before it stands. Supervisors and the DPO (`auditor`) reach
these; anyone else is refused and the refusal recorded. The page is `/console/incidents`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from lanterne.accountability.incidents import (
    INCIDENT_ROLES,
    IncidentConflict,
    IncidentError,
    IncidentNotFound,
    Incidents,
    template,
)
from lanterne.api.deps import AuditDep, ConfigDep, CurrentUser, EngineDep, Now, Writer, require_roles
from lanterne.api.schemas.common import ERRORS
from lanterne.api.schemas.incidents import (
    CloseIn,
    EntryOut,
    IncidentDetail,
    IncidentOut,
    IncidentsQuery,
    NotedIn,
    NotifiedIn,
)

T = TypeVar("T")
router = APIRouter(tags=["incidents"], responses=ERRORS)

Handler = Annotated[CurrentUser, Depends(require_roles(*INCIDENT_ROLES))]
"""Supervisors and the DPO; anyone else is refused (403, recorded)."""
IncidentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The incident's number.")]


def _detail(register: Incidents, incident_id: int, cfg: ConfigDep, now: Now) -> IncidentDetail:
    try:
        i = register.get(incident_id)
    except IncidentNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    text = template(
        i, site=cfg.site, controller=cfg.public.controller, dpo_contact=cfg.public.dpo_contact, now=now
    )
    return IncidentDetail(
        **IncidentOut.of(i, now).model_dump(), entries=[EntryOut.of(e) for e in i.entries], template=text
    )


def _step(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A service step, its refusals as the HTTP answers they are."""
    try:
        return fn(*args, **kwargs)
    except IncidentNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except IncidentConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except IncidentError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/api/incidents", summary="Incidents and breaches, newest first (supervisors, DPO)")
def list_incidents(
    user: Handler, engine: EngineDep, audit: AuditDep, now: Now, query: Annotated[IncidentsQuery, Query()]
) -> list[IncidentOut]:
    found = Incidents(engine, audit).list(state=query.state, kind=query.kind)
    return [IncidentOut.of(i, now) for i in found]


@router.get("/api/incidents/{incident_id}", summary="An incident, its timeline and its notification template")
def get_incident(
    incident_id: IncidentId, user: Handler, engine: EngineDep, audit: AuditDep, cfg: ConfigDep, now: Now
) -> IncidentDetail:
    return _detail(Incidents(engine, audit), incident_id, cfg, now)


@router.post("/api/incidents/{incident_id}/notes", summary="Add a note, or hand the incident over (recorded)")
def add_note(
    incident_id: IncidentId,
    body: NotedIn,
    user: Handler,
    _csrf: Writer,
    engine: EngineDep,
    audit: AuditDep,
    cfg: ConfigDep,
    now: Now,
) -> IncidentDetail:
    register = Incidents(engine, audit, clock=lambda: now)
    _step(register.note, incident_id, body.text, by=user.id, owner=body.owner)
    return _detail(register, incident_id, cfg, now)


@router.post(
    "/api/incidents/{incident_id}/notifications", summary="Record that the notification was sent (recorded)"
)
def add_notification(
    incident_id: IncidentId,
    body: NotifiedIn,
    user: Handler,
    _csrf: Writer,
    engine: EngineDep,
    audit: AuditDep,
    cfg: ConfigDep,
    now: Now,
) -> IncidentDetail:
    register = Incidents(engine, audit, clock=lambda: now)
    _step(register.notify, incident_id, body.to, body.reference, by=user.id)
    return _detail(register, incident_id, cfg, now)


@router.post("/api/incidents/{incident_id}/close", summary="Close with cause and remedy (recorded)")
def close_incident(
    incident_id: IncidentId,
    body: CloseIn,
    user: Handler,
    _csrf: Writer,
    engine: EngineDep,
    audit: AuditDep,
    cfg: ConfigDep,
    now: Now,
) -> IncidentDetail:
    register = Incidents(engine, audit, clock=lambda: now)
    _step(register.close, incident_id, body.cause, body.remedy, by=user.id)
    return _detail(register, incident_id, cfg, now)
