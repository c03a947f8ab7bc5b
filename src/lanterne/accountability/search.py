"""Event search: situations by time, place, type and state, for operators and supervisors.

What it deliberately cannot do: search for a person. Its filters are ids, types, times and an
object class; none is about clothing, age, gender, a face or any other attribute (décret 2023-828
art. 3 forbids such processing; red line of the project). Who may search, the stated purpose and
the audit record are the caller's (`lanterne.api.routes.search`), since they come with a request.

At city scale (10 million events) a search must never touch every matching row: the state is the
event's own column (`events.state`, written with each decision), pages follow a keyset cursor
(the last row's sort key) instead of an OFFSET, and the count stops at `COUNT_CAP`, so each part
reads one index from its start and stops after a page. `docs/performance.md` has the figures.

Migration 0018 adds indexes for the usual conjunctions; where filters go together in a way no
index follows (a zone and an object class, say), even a capped count can read hundreds of
thousands of rows. On PostgreSQL the count therefore has a time budget
(`COUNT_BUDGET_MS`); past it the answer carries the planner's estimate, rounded and flagged as one
(`total_estimated`), never presented as a count.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, literal, select, tuple_
from sqlalchemy.exc import OperationalError

from lanterne.accountability.alerts import AlertState
from lanterne.core.types import EventType
from lanterne.store.tables import EventRecord

COUNT_CAP = 10_000
"""Counting stops here: beyond it a count costs a scan of every match (seconds over millions of
events) and tells an operator nothing more than "narrow the search"."""

COUNT_BUDGET_MS = 100
"""PostgreSQL's time for the count, after which the planner's estimate is given instead: half the
search's 200 ms goal. The page itself has no budget: it is what the operator asked for, and its
plan stops after one page."""

QUERY_CANCELED = "57014"
"""PostgreSQL's SQLSTATE for a statement stopped by `statement_timeout`."""


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
    """Matches over all pages, exact up to `COUNT_CAP`; `COUNT_CAP` when there are more."""
    total_exact: bool
    """False when counting stopped at the cap: there are more than `total` matches."""
    items: list[FoundEvent]
    next_cursor: str | None
    """Where the page after this one starts (`after=`); None on the last page."""
    total_estimated: bool = False
    """True when counting ran out of its time budget: `total` is then the planner's estimate,
    rounded to two significant digits ("about 120,000"), not a count (`total_exact` is False)."""


class CursorError(ValueError):
    """A cursor this search did not write, or one written for another order."""


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
    EventRecord.state,
)

# Every column of an order runs the same way, so that "after this row" is one row comparison that
# an index answers (the id breaks ties between events that started in the same microsecond).
_KEYS: dict[Sort, tuple[Any, ...]] = {
    Sort.START: (EventRecord.start_ts, EventRecord.id),
    Sort.START_DESC: (EventRecord.start_ts, EventRecord.id),
    Sort.CONFIDENCE: (EventRecord.confidence, EventRecord.start_ts, EventRecord.id),
}


def _key(sort: Sort, r: Any) -> list[Any]:
    ts = r.start_ts.astimezone(UTC).isoformat()
    return [float(r.confidence), ts, r.id] if sort is Sort.CONFIDENCE else [ts, r.id]


def encode_cursor(sort: Sort, key: list[Any]) -> str:
    """The cursor that starts the page after the row with sort key `key` (URL-safe text: the
    sort's name and the key, never more than times, ids and a confidence)."""
    raw = json.dumps([str(sort), *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(sort: Sort, cursor: str) -> tuple[Any, ...]:
    """The sort key in `cursor`, typed for comparison; CursorError names what is wrong."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        name, *key = raw
        if name != str(sort):
            raise CursorError(f"this cursor belongs to sort={name}; search again from the first page")
        if sort is Sort.CONFIDENCE:
            confidence, ts, event_id = key
            return float(confidence), _aware(datetime.fromisoformat(ts)), str(event_id)
        ts, event_id = key
        return _aware(datetime.fromisoformat(ts)), str(event_id)
    except CursorError:
        raise
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise CursorError(
            "'after' is not a cursor from a previous page; search again from the first page"
        ) from None


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive cursor time")
    return value.astimezone(UTC)


def _conditions(scope: Collection[str], f: EventFilters) -> list[Any]:
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
    if f.state is not None:
        st = EventRecord.state
        conds.append(st.is_(None) if f.state is AlertState.NEW else st == str(f.state))
    return conds


def _after(sort: Sort, key: tuple[Any, ...]) -> list[Any]:
    """Rows strictly after `key` in `sort` order. The bound on the first column alone is implied
    by the row comparison, but it is what an index whose other columns lead (camera, type…)
    can seek to, where the row comparison would only filter the rows it walks through."""
    cols = _KEYS[sort]
    ascending = sort is Sort.START
    row = tuple_(*cols)
    bound = tuple_(*(literal(v, c.type) for v, c in zip(key, cols, strict=True)))
    first = cols[0] >= key[0] if ascending else cols[0] <= key[0]
    return [first, row > bound if ascending else row < bound]


def search_statements(
    scope: Collection[str],
    filters: EventFilters,
    *,
    sort: Sort = Sort.START_DESC,
    page: int = 1,
    page_size: int = 50,
    after: str | None = None,
    count_cap: int = COUNT_CAP,
) -> tuple[Select[Any], Select[Any]]:
    """The two queries of a search: its page (one row more than `page_size`, which says whether
    another page follows) and its count, capped at `count_cap + 1`. Public so that a benchmark or
    a test can ask the database how it plans them."""
    conds = _conditions(scope, filters)
    q: Select[Any] = select(*COLUMNS).where(*conds)
    if after is not None:
        q = q.where(*_after(sort, decode_cursor(sort, after)))
    else:
        q = q.offset((page - 1) * page_size)
    order = [c.asc() if sort is Sort.START else c.desc() for c in _KEYS[sort]]
    q = q.order_by(*order).limit(page_size + 1)
    # Counted newest first: a bare LIMIT lets PostgreSQL pick a table scan that expects matches
    # spread evenly, and reads millions of rows when they cluster (a busy camera's one type: 0.5 s
    # over 10 M events); in start order it walks an index that ends with the start time, as a page
    # does (every sort). Nothing but the start time, though: an id to select or to order by is in
    # no filter's index, and fetching it from the table made counting 10,000 of a busy camera's
    # events 300 ms of scattered reads where the index alone answers in a few.
    matches = (
        select(literal(1))
        .select_from(EventRecord)
        .where(*conds)
        .order_by(EventRecord.start_ts.desc())
        .limit(count_cap + 1)
    )
    return q, select(func.count()).select_from(matches.subquery())


def about(n: int) -> int:
    """`n` rounded to two significant digits, so that an estimate does not read as a count.

    >>> about(123_456), about(87), about(1_049)
    (120000, 87, 1000)
    """
    if n < 100:
        return n
    scale = 10 ** (len(str(n)) - 2)
    return round(n / scale) * scale


def _estimate(conn: Connection, stmt: Select[Any]) -> int:
    """The planner's estimate of the rows `stmt` returns (PostgreSQL's EXPLAIN: no row is read).
    Extended statistics (migration 0018) keep it near the truth for correlated filters."""
    compiled = stmt.compile(dialect=conn.dialect)
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar_one()
    if isinstance(plan, str | bytes):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _budgeted_count(
    conn: Connection, count: Select[Any], matches: Select[Any], budget_ms: int
) -> tuple[int, bool]:
    """(count, estimated): the capped count if PostgreSQL finishes it within `budget_ms`, else
    the planner's estimate of every match. In a savepoint, so that the cancelled statement leaves
    the search's transaction usable (and takes its `SET LOCAL` with it)."""
    savepoint = conn.begin_nested()
    try:
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(budget_ms)}")
        total = int(conn.execute(count).scalar_one())
    except OperationalError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "sqlstate", None) != QUERY_CANCELED:
            raise
        return _estimate(conn, matches), True
    savepoint.commit()
    return total, False


def search_events(
    engine: Engine,
    scope: Collection[str],
    filters: EventFilters,
    *,
    sort: Sort = Sort.START_DESC,
    page: int = 1,
    page_size: int = 50,
    after: str | None = None,
    count_cap: int = COUNT_CAP,
    count_budget_ms: int | None = COUNT_BUDGET_MS,
) -> SearchResult:
    """One page of the events of the cameras in `scope` (`"*"`: every camera) that match
    `filters`, in `sort` order, with the count over all pages (exact up to `count_cap`).

    The page starts after the cursor `after` (from a previous page's `next_cursor`) or, without
    one, at `page` (an OFFSET: kept for the first pages, it reads every row it skips). A bad
    cursor raises CursorError. On PostgreSQL a count that takes longer than `count_budget_ms`
    (None: no budget) is replaced by the planner's estimate (`total_estimated`). SQLite, the
    embedded store of one site, counts up to the cap: its tables stay small enough."""
    q, count = search_statements(
        scope, filters, sort=sort, page=page, page_size=page_size, after=after, count_cap=count_cap
    )
    estimated = False
    with engine.connect() as conn, conn.begin():
        rows = conn.execute(q).all()
        if count_budget_ms is not None and conn.dialect.name == "postgresql":
            matches = select(EventRecord.id).where(*_conditions(scope, filters))
            total, estimated = _budgeted_count(conn, count, matches, count_budget_ms)
        else:
            total = int(conn.execute(count).scalar_one())
    more, rows = len(rows) > page_size, rows[:page_size]
    if estimated:
        # An estimate below what this page shows would contradict the page itself.
        total = about(max(total, len(rows) + (page - 1) * page_size + more))
    return SearchResult(
        total=total if estimated else min(total, count_cap),
        total_exact=not estimated and total <= count_cap,
        total_estimated=estimated,
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
                state=r.state or str(AlertState.NEW),
            )
            for r in rows
        ],
        next_cursor=encode_cursor(sort, _key(sort, rows[-1])) if more and rows else None,
    )
