"""Event search for operators and supervisors: situations by time, place, type and state.

What it deliberately cannot do: search for a person. There is no parameter about clothing, age,
gender, a face or any other attribute, and an unknown parameter is refused (422) rather than
ignored, so a client believing it filtered by one learns at once that it did not (décret 2023-828
art. 3 forbids such processing; red line of the project). `SearchQuery` forbids extra fields;
`deps.unknown_parameters` words the refusal.

Every event points to recorded footage, and looking through recordings needs a stated purpose
(CSI L255-1): `purpose` is required on every search and stored in the audit record, together with
the filters (never free text about people: the filters are ids, types and times).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from lanterne.accountability.search import CursorError, EventFilters, decode_cursor, search_events
from lanterne.api.deps import AuditDep, EngineDep, Viewer, forbid, required_purpose
from lanterne.api.schemas.common import ERRORS
from lanterne.api.schemas.search import EventOut, SearchPage, SearchQuery
from lanterne.audit import Action

PURPOSE_REQUIRED = "searching recorded footage needs a purpose: add purpose=... (why you are searching)"

router = APIRouter(tags=["search"], responses=ERRORS)


def _utc(value: datetime | None, name: str) -> datetime | None:
    """Naive times are read as UTC (what the console sends); out-of-range ones are a 422."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(422, f"'{name}' is out of range; give an ISO 8601 time") from None


@router.get("/api/events", summary="Search events (purpose required; audited)")
def search(
    request: Request,
    user: Viewer,
    query: Annotated[SearchQuery, Query()],
    engine: EngineDep,
    audit: AuditDep,
) -> SearchPage:
    q = query
    reason = required_purpose(q.purpose, PURPOSE_REQUIRED)
    since, until = _utc(q.from_, "from"), _utc(q.to, "to")
    if q.camera is not None and not user.sees(q.camera):
        forbid(request, user, "search_camera", q.camera, action=Action.SEARCH, object_type="camera")
    filters = {
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
        "camera": q.camera,
        "zone": q.zone,
        "type": str(q.type) if q.type else None,
        "object_class": q.object_class,
        "state": str(q.state) if q.state else None,
        "page": q.page,
        "after": q.after,
        "page_size": q.page_size,
        "sort": str(q.sort),
    }
    if q.after is not None and q.page != 1:
        raise HTTPException(422, "give either 'after' (a cursor) or 'page', not both")
    # Checked before the audit record too: a cursor this server did not write is refused unserved.
    if q.after is not None:
        try:
            decode_cursor(q.sort, q.after)
        except CursorError as exc:
            raise HTTPException(422, str(exc)) from None
    # Recorded before the answer: a search the audit log refuses is not served.
    audit.append(
        user.id,
        Action.SEARCH,
        object_type="events",
        time_from=since,
        time_to=until,
        purpose=reason,
        details={k: v for k, v in filters.items() if v is not None},
    )
    found = search_events(
        engine,
        user.scope,
        EventFilters(since, until, q.camera, q.zone, q.type, q.object_class, q.state),
        sort=q.sort,
        page=q.page,
        page_size=q.page_size,
        after=q.after,
    )
    return SearchPage(
        total=found.total,
        total_exact=found.total_exact,
        total_estimated=found.total_estimated,
        page=q.page,
        page_size=q.page_size,
        items=[EventOut.model_validate(e, from_attributes=True) for e in found.items],
        next=found.next_cursor,
    )
