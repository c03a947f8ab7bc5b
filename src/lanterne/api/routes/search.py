"""Event search for operators and supervisors: situations by time, place, type and state.

What it deliberately cannot do: search for a person. There is no parameter about clothing, age,
gender, a face or any other attribute, and an unknown parameter is refused (422) rather than
ignored, so a client believing it filtered by one learns at once that it did not (décret 2023-828
art. 3 forbids such processing; red line of the project).

Every event points to recorded footage, and looking through recordings needs a stated purpose
(CSI L255-1): `purpose` is required on every search and stored in the audit record, together with
the filters (never free text about people: the filters are ids, types and times).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy import Connection, Select, func, select
from sqlalchemy.orm import aliased

from lanterne.accountability.alerts import AlertState
from lanterne.accountability.precision import latest_state
from lanterne.api.deps import CurrentUser, audit_log, forbid, require_roles
from lanterne.api.routes.cameras import STATIC
from lanterne.audit import Action
from lanterne.config import Config
from lanterne.core.types import EventType
from lanterne.store.tables import AlertStateRecord, EventRecord

ALLOWED = frozenset(
    {"from", "to", "camera", "zone", "type", "object_class", "state", "page", "page_size", "sort", "purpose"}
)
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class Sort(StrEnum):
    START = "start"
    START_DESC = "-start"
    CONFIDENCE = "confidence"
    """Most confident first: the order in which a reviewer wants to go through them."""


class EventOut(BaseModel):
    id: str
    type: str
    camera: str
    zone: str
    start: datetime
    end: datetime
    confidence: float
    object_class: str | None
    mode: str
    state: str


class SearchPage(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[EventOut]


def _utc(value: datetime | None, name: str) -> datetime | None:
    """Naive times are read as UTC (what the console sends); out-of-range ones are a 422."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(422, f"'{name}' is out of range; give an ISO 8601 time") from None


def _purpose(text: str | None) -> str:
    value = (text or "").strip()
    if not value:
        raise HTTPException(
            400, "searching recorded footage needs a purpose: add purpose=... (why you are searching)"
        )
    if len(value) > 1000:
        raise HTTPException(422, f"the purpose is {len(value)} characters long; shorten it to 1000")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise HTTPException(422, "the purpose contains control characters; write it as plain text")
    return value


Searcher = Annotated[CurrentUser, Depends(require_roles("operator", "supervisor"))]


COLUMNS = (
    EventRecord.id,
    EventRecord.type,
    EventRecord.camera,
    EventRecord.zone,
    EventRecord.start_ts,
    EventRecord.end_ts,
    EventRecord.confidence,
    EventRecord.object_class,
    EventRecord.mode,
)


def _latest_states(conn: Connection, event_ids: list[str]) -> dict[str, str]:
    """The latest step of each of these events (no entry: `new`), as `precision.latest_state`
    defines it: the step with no newer one for the same event."""
    if not event_ids:
        return {}
    step, newer = aliased(AlertStateRecord), aliased(AlertStateRecord)
    later = select(newer.id).where(newer.event_id == step.event_id, newer.id > step.id).exists()
    rows = conn.execute(select(step.event_id, step.state).where(step.event_id.in_(event_ids), ~later))
    return {r.event_id: r.state for r in rows}


def router(cfg: Config, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(tags=["search"])

    @api.get("/api/events", summary="Search events (purpose required; audited)")
    def search(
        request: Request,
        user: Searcher,
        purpose: Annotated[
            str | None, Query(max_length=1000, description="Why you search recordings.")
        ] = None,
        from_: Annotated[datetime | None, Query(alias="from", description="Start at or after.")] = None,
        to: Annotated[datetime | None, Query(description="Start before.")] = None,
        camera: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        zone: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        type: EventType | None = None,
        object_class: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
        state: AlertState | None = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=200)] = 50,
        sort: Sort = Sort.START_DESC,
    ) -> SearchPage:
        unknown = sorted(set(request.query_params.keys()) - ALLOWED)
        if unknown:
            # Rejected, not ignored: see the module docstring.
            raise HTTPException(
                422,
                f"unknown search parameter(s): {', '.join(unknown)}; allowed: {', '.join(sorted(ALLOWED))}",
            )
        reason = _purpose(purpose)
        since, until = _utc(from_, "from"), _utc(to, "to")
        if camera is not None and not user.sees(camera):
            forbid(request, user, "search_camera", camera, action=Action.SEARCH, object_type="camera")

        conds: list[Any] = []
        if "*" not in user.scope:
            conds.append(EventRecord.camera.in_(sorted(user.scope)))
        if camera is not None:
            conds.append(EventRecord.camera == camera)
        if zone is not None:
            conds.append(EventRecord.zone == zone)
        if type is not None:
            conds.append(EventRecord.type == str(type))
        if object_class is not None:
            conds.append(EventRecord.object_class == object_class)
        if since is not None:
            conds.append(EventRecord.start_ts >= since)
        if until is not None:
            conds.append(EventRecord.start_ts < until)
        q: Select[Any] = select(*COLUMNS).select_from(EventRecord)
        if state is not None:
            # Only a state filter needs every event's latest step; otherwise the page's states are
            # read for its rows alone (the join over all matches was most of a search's time).
            s, on = latest_state()
            q = q.outerjoin(s, on)
            conds.append(s.state.is_(None) if state is AlertState.NEW else s.state == str(state))
        q = q.where(*conds)

        order = {
            Sort.START: (EventRecord.start_ts.asc(), EventRecord.id),
            Sort.START_DESC: (EventRecord.start_ts.desc(), EventRecord.id),
            Sort.CONFIDENCE: (EventRecord.confidence.desc(), EventRecord.start_ts.desc(), EventRecord.id),
        }[sort]
        filters = {
            "from": since.isoformat() if since else None,
            "to": until.isoformat() if until else None,
            "camera": camera,
            "zone": zone,
            "type": str(type) if type else None,
            "object_class": object_class,
            "state": str(state) if state else None,
            "page": page,
            "page_size": page_size,
            "sort": str(sort),
        }
        # Recorded before the answer: a search the audit log refuses is not served.
        audit_log(request).append(
            user.id,
            Action.SEARCH,
            object_type="events",
            time_from=since,
            time_to=until,
            purpose=reason,
            details={k: v for k, v in filters.items() if v is not None},
        )
        with request.app.state.store.engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
            rows = conn.execute(q.order_by(*order).offset((page - 1) * page_size).limit(page_size)).all()
            states = _latest_states(conn, [r.id for r in rows])
        return SearchPage(
            total=total,
            page=page,
            page_size=page_size,
            items=[
                EventOut(
                    id=r.id,
                    type=r.type,
                    camera=r.camera,
                    zone=r.zone,
                    start=r.start_ts,
                    end=r.end_ts,
                    confidence=float(r.confidence),
                    object_class=r.object_class,
                    mode=r.mode,
                    state=states.get(r.id, str(AlertState.NEW)),
                )
                for r in rows
            ],
        )

    @api.get("/console/search", response_class=HTMLResponse, include_in_schema=False)
    def search_page() -> Response:
        return Response((STATIC / "search.html").read_bytes(), media_type="text/html; charset=utf-8")

    return api
