"""Event search: situations by time, place, type and state, for operators and supervisors.

What it deliberately cannot do: search for a person. Its filters are ids, types, times and an
object class; none is about clothing, age, gender, a face or any other attribute (décret 2023-828
art. 3 forbids such processing; red line of the project). Who may search, the stated purpose and
the audit record are the caller's (`lanterne.api.routes.search`), since they come with a request.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, select

from lanterne.accountability.alerts import AlertState
from lanterne.accountability.precision import latest_state, newest_step
from lanterne.core.types import EventType
from lanterne.store.tables import EventRecord


class Sort(StrEnum):
    START = "start"
    START_DESC = "-start"
    CONFIDENCE = "confidence"
    """Most confident first: the order in which a reviewer wants to go through them."""


@dataclass(frozen=True, slots=True)
class EventFilters:
    """What a search narrows to; None means any. Times are aware (UTC)."""

    since: datetime | None = None
    until: datetime | None = None
    camera: str | None = None
    zone: str | None = None
    type: EventType | None = None
    object_class: str | None = None
    state: AlertState | None = None


@dataclass(frozen=True, slots=True)
class FoundEvent:
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


@dataclass(frozen=True, slots=True)
class SearchResult:
    total: int
    """Matches over all pages."""
    items: list[FoundEvent]


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
    """The current state of each of these events (no entry: `new`)."""
    if not event_ids:
        return {}
    step, newest = newest_step()
    rows = conn.execute(select(step.event_id, step.state).where(step.event_id.in_(event_ids), newest))
    return {r.event_id: r.state for r in rows}


def search_events(
    engine: Engine,
    scope: Collection[str],
    filters: EventFilters,
    *,
    sort: Sort = Sort.START_DESC,
    page: int = 1,
    page_size: int = 50,
) -> SearchResult:
    """One page of the events of the cameras in `scope` (`"*"`: every camera) that match
    `filters`, in `sort` order, with the total over all pages."""
    f = filters
    conds: list[Any] = []
    if "*" not in scope:
        conds.append(EventRecord.camera.in_(sorted(scope)))
    if f.camera is not None:
        conds.append(EventRecord.camera == f.camera)
    if f.zone is not None:
        conds.append(EventRecord.zone == f.zone)
    if f.type is not None:
        conds.append(EventRecord.type == str(f.type))
    if f.object_class is not None:
        conds.append(EventRecord.object_class == f.object_class)
    if f.since is not None:
        conds.append(EventRecord.start_ts >= f.since)
    if f.until is not None:
        conds.append(EventRecord.start_ts < f.until)
    q: Select[Any] = select(*COLUMNS).select_from(EventRecord)
    if f.state is not None:
        # Only a state filter needs every event's latest step; otherwise the page's states are
        # read for its rows alone (the join over all matches was most of a search's time).
        s, on = latest_state()
        q = q.outerjoin(s, on)
        conds.append(s.state.is_(None) if f.state is AlertState.NEW else s.state == str(f.state))
    q = q.where(*conds)

    order = {
        Sort.START: (EventRecord.start_ts.asc(), EventRecord.id),
        Sort.START_DESC: (EventRecord.start_ts.desc(), EventRecord.id),
        Sort.CONFIDENCE: (EventRecord.confidence.desc(), EventRecord.start_ts.desc(), EventRecord.id),
    }[sort]
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(q.subquery())).scalar_one())
        rows = conn.execute(q.order_by(*order).offset((page - 1) * page_size).limit(page_size)).all()
        states = _latest_states(conn, [r.id for r in rows])
    return SearchResult(
        total=total,
        items=[
            FoundEvent(
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
