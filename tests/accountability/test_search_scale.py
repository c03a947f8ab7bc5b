"""Search at scale (issue 12 item 6): the state column agrees with the decision history, keyset
pages cover every match exactly once in order, the count stops at its cap, and PostgreSQL answers
the main searches from indexes (no scan of the whole events table)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from lanterne.accountability.alerts import AlertState, acknowledge, confirm, dismiss
from lanterne.accountability.precision import latest_state
from lanterne.accountability.search import (
    CursorError,
    EventFilters,
    Sort,
    decode_cursor,
    encode_cursor,
    search_events,
    search_statements,
)
from lanterne.audit import AuditLog
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from lanterne.store.tables import EventRecord
from tests.support.console import CAMERAS as CONSOLE_CAMERAS
from tests.support.console import NOW as CONSOLE_NOW
from tests.support.console import Console, add_event

NOW = datetime(2026, 5, 4, 12, tzinfo=UTC)
CAMERAS = ("parvis", "quai-nord", "depot")


@pytest.fixture
def site(db_url: str) -> Iterator[tuple[Store, AuditLog]]:
    store = Store.open(db_url)
    yield store, AuditLog(store.engine)
    store.close()


def seed(store: Store, audit: AuditLog, n: int = 60) -> None:
    """`n` alerts over three cameras, in groups of three that start at the same instant (ties
    for the cursor) with repeated confidences, and every kind of decision history."""
    rng = random.Random(3)
    for i in range(n):
        ev = Event(
            f"a{i:03d}",
            rng.choice([EventType.FIRE, EventType.WRONG_WAY]),
            CAMERAS[i % 3],
            "z1",
            0.0,
            5.0,
            rng.choice([0.5, 0.7, 0.9]),
            (0.1, 0.1, 0.2, 0.2),
            False,
            "person",
        )
        store.upsert_event(ev, NOW - timedelta(minutes=i // 3), "alerts")
    e = store.engine
    for i in range(0, n, 2):
        eid = f"a{i:03d}"
        acknowledge(e, audit, eid, "op1", NOW)
        if i % 3 == 0:
            confirm(e, audit, eid, "op1", NOW, "monitoring")
        elif i % 3 == 1:
            dismiss(e, audit, eid, "op2", NOW, reason="street_furniture")


def old_state_ids(store: Store, state: AlertState) -> set[str]:
    """The events in `state` by the definition before migration 0011: their newest step among all
    decisions (no step: new)."""
    s, on = latest_state()
    cond = s.state.is_(None) if state is AlertState.NEW else s.state == str(state)
    q = select(EventRecord.id).select_from(EventRecord).outerjoin(s, on).where(cond)
    with store.engine.connect() as conn:
        return set(conn.execute(q).scalars())


def every_page(store: Store, filters: EventFilters, sort: Sort, size: int) -> list[str]:
    found = search_events(store.engine, ["*"], filters, sort=sort, page_size=size)
    out = [e.id for e in found.items]
    while found.next_cursor is not None:
        found = search_events(
            store.engine, ["*"], filters, sort=sort, page_size=size, after=found.next_cursor
        )
        assert len(found.items) <= size
        out += [e.id for e in found.items]
    return out


def test_the_state_column_is_the_latest_step(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    seed(store, audit)
    for state in AlertState:
        found = set(every_page(store, EventFilters(state=state), Sort.START_DESC, 50))
        assert found == old_state_ids(store, state), state
        assert found, f"the seed has events in state {state}"
    page = search_events(store.engine, ["*"], EventFilters(), page_size=200).items
    assert {e.id: e.state for e in page} == {
        eid: str(st) for st in AlertState for eid in old_state_ids(store, st)
    }


@pytest.mark.parametrize("sort", list(Sort))
def test_keyset_pages_cover_every_match_once_in_order(site: tuple[Store, AuditLog], sort: Sort) -> None:
    store, audit = site
    seed(store, audit)
    for filters in (EventFilters(), EventFilters(camera="depot"), EventFilters(state=AlertState.NEW)):
        whole = [e.id for e in search_events(store.engine, ["*"], filters, sort=sort, page_size=200).items]
        assert len(whole) == len(set(whole)) > 7
        for size in (1, 4, 7):
            assert every_page(store, filters, sort, size) == whole, (filters, size)


def test_the_count_stops_at_its_cap(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    seed(store, audit, n=30)
    capped = search_events(store.engine, ["*"], EventFilters(), page_size=5, count_cap=10)
    assert (capped.total, capped.total_exact, len(capped.items)) == (10, False, 5)
    exact = search_events(store.engine, ["*"], EventFilters(), count_cap=30)
    assert (exact.total, exact.total_exact) == (30, True)
    depot = search_events(store.engine, ["*"], EventFilters(camera="depot"), count_cap=10)
    assert (depot.total, depot.total_exact) == (10, True)
    assert search_events(store.engine, ["*"], EventFilters(camera="depot"), count_cap=9).total_exact is False


def test_a_cursor_is_refused_when_forged_or_from_another_order() -> None:
    cursor = encode_cursor(Sort.START_DESC, [NOW.isoformat(), "a001"])
    assert decode_cursor(Sort.START_DESC, cursor) == (NOW, "a001")
    with pytest.raises(CursorError, match="sort=-start"):
        decode_cursor(Sort.START, cursor)
    for bad in ("", "abc", encode_cursor(Sort.START, ["yesterday", "a"]), cursor[:-3]):
        with pytest.raises(CursorError):
            decode_cursor(Sort.START, bad)


# --- PostgreSQL plans -----------------------------------------------------------------------------

PLAN_CASES: list[tuple[EventFilters, Sort]] = [
    (EventFilters(), Sort.START_DESC),
    (EventFilters(camera="cam-017"), Sort.START_DESC),
    (EventFilters(zone="platform"), Sort.START_DESC),
    (EventFilters(type=EventType.FIRE), Sort.START_DESC),
    (EventFilters(object_class="suitcase"), Sort.START_DESC),
    (EventFilters(state=AlertState.CONFIRMED), Sort.START_DESC),
    (EventFilters(state=AlertState.NEW), Sort.START_DESC),
    (EventFilters(since=NOW - timedelta(hours=3), until=NOW - timedelta(hours=1)), Sort.START_DESC),
    (EventFilters(camera="cam-017", type=EventType.WRONG_WAY, state=AlertState.DISMISSED), Sort.START_DESC),
    (EventFilters(type=EventType.FIRE), Sort.CONFIDENCE),
]


def bulk_events(store: Store, n: int) -> None:
    """`n` events over 200 cameras and 30 days, 10 % of them decided, written in one statement
    (the plan depends on the table's size and spread, not on how rows arrived)."""
    rng = random.Random(5)
    types = [str(t) for t in EventType]
    rows: list[dict[str, Any]] = []
    for i in range(n):
        start = NOW - timedelta(seconds=rng.uniform(0, 30 * 86400))
        decided = rng.random() < 0.1
        rows.append(
            {
                "id": f"b{i:06d}",
                "type": rng.choice(types),
                "camera": f"cam-{rng.randrange(200):03d}",
                "zone": rng.choice(["entrance", "platform", "crossing"]),
                "start_ts": start,
                "end_ts": start + timedelta(seconds=10),
                "start_offset": 0.0,
                "end_offset": 10.0,
                "confidence": rng.random(),
                "x0": 0.1,
                "y0": 0.1,
                "x1": 0.2,
                "y1": 0.2,
                "object_class": rng.choice(["person", "car", "suitcase", None]),
                "ongoing": False,
                "mode": "alerts",
                "created_at": start,
                "state": rng.choice(["acknowledged", "confirmed", "dismissed"]) if decided else None,
            }
        )
    with store.engine.begin() as conn:
        conn.execute(insert(EventRecord), rows)
    # What autovacuum does to a table that grew: statistics, and the visibility map that lets a
    # count read the index alone.
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE events")


def plan(store: Store, stmt: Any) -> str:
    compiled = stmt.compile(dialect=store.engine.dialect)
    with store.engine.connect() as conn:
        return "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params))


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_answers_the_main_searches_from_indexes(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        bulk_events(store, 60_000)
        for filters, sort in PLAN_CASES:
            page, count = search_statements(["*"], filters, sort=sort)
            page_plan, count_plan = plan(store, page), plan(store, count)
            assert "Seq Scan on events" not in page_plan, (filters, sort, page_plan)
            assert "Index" in page_plan, page_plan
            if filters in (EventFilters(), EventFilters(state=AlertState.NEW)):
                # Every event, or the new ones (most of them, with no entry in the partial state
                # index): the count may read them in table order, stopping at the cap, under its Limit.
                nodes = [
                    line.strip().lstrip("-> ").split(" (")[0].strip() for line in count_plan.splitlines()
                ]
                assert nodes[:2] == ["Aggregate", "Limit"], count_plan
                assert not any("Seq Scan" in n for n in nodes[3:]), count_plan
            else:
                assert "Seq Scan on events" not in count_plan, (filters, count_plan)
        after = search_events(store.engine, ["*"], EventFilters(type=EventType.FIRE)).next_cursor
        page, _ = search_statements(["*"], EventFilters(type=EventType.FIRE), after=after)
        assert "Seq Scan on events" not in plan(store, page)
    finally:
        store.close()


# --- HTTP -----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("cheap_hashes")
def test_the_console_route_pages_by_cursor(console: Console) -> None:
    for i in range(7):
        add_event(console.store, f"h{i}", CONSOLE_CAMERAS[0], at=CONSOLE_NOW - timedelta(minutes=i // 2))
    console.as_user("oper")
    params: dict[str, str | int] = {"purpose": "cursor test, ref 2026-18", "page_size": 3}
    seen: list[str] = []
    body = console.client.get("/api/events", params=params).json()
    assert (body["total"], body["total_exact"], body["total_estimated"]) == (7, True, False)
    while True:
        seen += [e["id"] for e in body["items"]]
        if body["next"] is None:
            break
        body = console.client.get("/api/events", params={**params, "after": body["next"]}).json()
    # Newest first; events that started together come by id, the cursor's tie-break.
    assert seen == ["h1", "h0", "h3", "h2", "h5", "h4", "h6"]
    cursor = encode_cursor(Sort.START_DESC, [CONSOLE_NOW.isoformat(), "h0"])
    for bad in (
        {"after": "bm90LWEtY3Vyc29y"},
        {"after": cursor, "sort": "start"},
        {"after": cursor, "page": 2},
    ):
        r = console.client.get("/api/events", params={**params, **bad})
        assert r.status_code == 422, r.text
