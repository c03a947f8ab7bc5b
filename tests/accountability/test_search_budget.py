"""The search's count under a time budget, and the plans migration 0018 gives on PostgreSQL
(issue 12 item 6): a count that runs out of time becomes the planner's rounded estimate, flagged
as one, the page is served all the same and the connection stays usable; SQLite counts exactly;
the conjunctions and the confidence order read the indexes made for them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from lanterne.accountability.alerts import AlertState
from lanterne.accountability.search import EventFilters, Sort, about, search_events, search_statements
from lanterne.audit import AuditLog
from lanterne.core.types import EventType
from lanterne.store import Store
from tests.accountability.test_search_scale import bulk_events, plan, seed
from tests.conftest import _pg_url

N = 60_000


@pytest.fixture(scope="module")
def big(_pg_database: str) -> Iterator[Store]:
    """60,000 events in a PostgreSQL schema shared by this module's tests (loading takes seconds)."""
    with contextmanager(_pg_url)(_pg_database) as url:
        store = Store.open(url)
        try:
            bulk_events(store, N)
            yield store
        finally:
            store.close()


def test_about_keeps_two_significant_digits() -> None:
    assert [about(n) for n in (0, 99, 100, 149, 12_345, 123_456, 9_999_999)] == [
        0,
        99,
        100,
        150,
        12_000,
        120_000,
        10_000_000,
    ]


def test_a_count_out_of_time_is_an_estimate_said_as_one(big: Store) -> None:
    # Counting all 60,000 rows takes well over 1 ms: the budget runs out.
    found = search_events(big.engine, ["*"], EventFilters(), count_cap=10 * N, count_budget_ms=1)
    assert (found.total_exact, found.total_estimated) == (False, True)
    assert N / 2 <= found.total <= 2 * N and found.total == about(found.total)
    assert len(found.items) == 50 and found.next_cursor is not None  # the page is served anyway
    # The cancelled count left nothing behind: the same pooled connection counts in full next.
    exact = search_events(big.engine, ["*"], EventFilters(), count_cap=10 * N, count_budget_ms=None)
    assert (exact.total, exact.total_exact, exact.total_estimated) == (N, True, False)
    with big.engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"


def test_a_count_within_budget_is_exact_or_capped(big: Store) -> None:
    capped = search_events(big.engine, ["*"], EventFilters(), count_budget_ms=5_000)
    assert (capped.total, capped.total_exact, capped.total_estimated) == (10_000, False, False)
    one_camera = search_events(big.engine, ["*"], EventFilters(camera="cam-017"), count_budget_ms=5_000)
    assert one_camera.total_exact and not one_camera.total_estimated
    assert 150 < one_camera.total < 450  # 60,000 over 200 cameras


def test_sqlite_counts_exactly_whatever_the_budget(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/s.db")
    try:
        seed(store, AuditLog(store.engine), n=60)
        found = search_events(store.engine, ["*"], EventFilters(), page_size=5, count_budget_ms=1)
        assert (found.total, found.total_exact, found.total_estimated) == (60, True, False)
    finally:
        store.close()


def test_postgresql_has_the_extended_statistics(big: Store) -> None:
    with big.engine.connect() as conn:
        names = set(conn.execute(text("SELECT stxname FROM pg_statistic_ext")).scalars())
    assert {"st_events_type_class", "st_events_camera_zone", "st_events_camera_type"} <= names


def test_the_confidence_order_walks_its_index_instead_of_sorting(big: Store) -> None:
    page, _ = search_statements(["*"], EventFilters(type=EventType.FIRE), sort=Sort.CONFIDENCE)
    page_plan = plan(big, page)
    assert "ix_events_type_confidence" in page_plan and "Sort" not in page_plan, page_plan


def test_decided_events_of_one_camera_come_from_their_index(big: Store) -> None:
    """A few matches here, which PostgreSQL may sort; at 10 M events the same index is walked in
    order (benchmarks/search_scale.py prints the plans)."""
    filters = EventFilters(camera="cam-017", state=AlertState.CONFIRMED, object_class="car")
    for stmt in search_statements(["*"], filters):
        assert "ix_events_camera_state_start" in plan(big, stmt)
