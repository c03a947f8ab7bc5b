"""Small-cell suppression: hidden counts stay hidden, including from totals and coarser maps."""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pytest
from h3.api import basic_int as h3int

from lanterne.observatory.aggregate import (
    AreaMap,
    Filters,
    Grain,
    counts_by_h3,
    counts_by_layer,
    profile,
    series,
)
from lanterne.observatory.layers import load_layer
from lanterne.observatory.store import ObservatoryStore
from lanterne.observatory.suppression import group_is_safe, suppress
from tests.support.observatory_data import BEATS, DISTRICTS, K
from tests.support.observatory_data import CHICAGO as PARQUET

ALL = None  # marker: the whole vector is the only group


@pytest.mark.parametrize(
    ("counts", "groups", "hidden"),
    [
        # one small cell: it and the smallest other non-zero cell are hidden
        ([3, 12, 40, 25], ALL, [0, 1]),
        # nothing below k: nothing hidden
        ([10, 12, 40, 0], ALL, []),
        # zeros are shown and never chosen as the second cell
        ([0, 4, 0, 30, 11], ALL, [1, 4]),
        # two small cells adding up to k or more protect each other
        ([4, 6, 50], ALL, [0, 1]),
        # two small cells adding up to less than k (1 + 1 tells both are 1): one more is hidden
        ([1, 1, 50, 20], ALL, [0, 1, 3]),
        # a single non-zero cell below k cannot be protected by the group: its total is hidden instead
        ([3, 0, 0], ALL, [0]),
        # siblings: the small cell's sibling group needs a second hidden cell even though the map
        # already has two hidden cells elsewhere
        ([2, 30, 31, 3, 60, 70], [[0, 1, 2, 3, 4, 5], [0, 1, 2], [3, 4, 5]], [0, 1, 3, 4]),
        # a secondary cell chosen for one group can leave another group with exactly one hidden
        # cell: iterate until every group is safe
        ([5, 20, 100, 30, 200], [[0, 1], [1, 2], [2, 3, 4]], [0, 1, 2, 3]),
        # ties: the lower index is hidden (stable output)
        ([2, 15, 15], ALL, [0, 1]),
    ],
)
def test_suppression_table(counts: list[int], groups: list[list[int]] | None, hidden: list[int]) -> None:
    values = np.array(counts)
    index_groups = [np.arange(len(values))] if groups is ALL else [np.array(g) for g in groups]
    mask = suppress(values, index_groups, K)
    assert np.flatnonzero(mask).tolist() == hidden


def test_no_group_ever_exposes_a_hidden_cell() -> None:
    """Random count vectors and overlapping groups: after suppression every group has no hidden
    non-zero cell, or at least two adding up to k or more — unless every non-zero cell of the group
    is hidden (its sum is then below k and is itself a small count)."""
    rng = np.random.default_rng(2024)
    for _ in range(2000):
        n = int(rng.integers(1, 40))
        counts = rng.choice([0, 0, 1, 2, 3, 5, 8, 9, 10, 11, 20, 50, 400], size=n)
        groups = [np.arange(n)]
        for _ in range(int(rng.integers(0, 6))):
            groups.append(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False))
        k = int(rng.integers(5, 15))
        mask = suppress(counts, groups, k)
        assert not (mask & (counts == 0)).any()
        assert (mask[(counts > 0) & (counts < k)]).all()
        for g in groups:
            values = counts[g]
            everything_hidden = bool(mask[g][values > 0].all())
            # The exceptions cannot be fixed by hiding more here: a group whose hidden cells are all
            # its non-zero cells has their sum as its published sum (a small count: hidden where
            # published), and a group with one non-zero cell has that cell as its sum.
            alone = int((values > 0).sum()) == 1
            assert group_is_safe(counts, mask, g, k) or (everything_hidden and (values.sum() < k or alone))


# --- on the real Chicago store ---------------------------------------------------------------


@pytest.fixture
def store(chicago_store: ObservatoryStore) -> ObservatoryStore:
    """The session's Chicago store (conftest): the full parquet through the example mapping,
    layers beats and districts indexed. Read only here."""
    return chicago_store


FILTERS = [
    Filters("chicago_crimes", "NARCOTICS", start=datetime(2016, 7, 1), end=datetime(2016, 8, 1)),
    Filters("chicago_crimes", "HOMICIDE", start=datetime(2017, 1, 1), end=datetime(2018, 1, 1)),
    Filters(
        "chicago_crimes",
        "THEFT",
        channels=("police_initiated",),
        start=datetime(2015, 3, 1),
        end=datetime(2015, 4, 1),
    ),
]


def exact_h3(filters: Filters, resolution: int) -> tuple[dict[str, int], int]:
    """Counts per cell recomputed from the parquet with the h3 library (not the store's SQL)."""
    where = "primary_type = $c AND datetime_local >= $s AND datetime_local < $e"
    params = {"c": filters.category, "s": filters.start, "e": filters.end}
    if filters.channels == ("police_initiated",):
        where += " AND arrest"
    rows = duckdb.execute(f"SELECT lat, lon FROM '{PARQUET}' WHERE {where}", params).fetchall()
    counts: dict[str, int] = {}
    unlocated = 0
    for lat, lon in rows:
        if lat is None:
            unlocated += 1
            continue
        cell = h3int.int_to_str(h3int.cell_to_parent(h3int.latlng_to_cell(lat, lon, 10), resolution))
        counts[cell] = counts.get(cell, 0) + 1
    return counts, unlocated


def assert_safe_map(public: AreaMap, exact: AreaMap, k: int, siblings: bool) -> None:
    assert [c.key for c in public.cells] == [c.key for c in exact.cells]
    counts = np.array([c.count or 0 for c in exact.cells] + [exact.unlocated or 0])
    hidden = np.array([c.suppressed for c in public.cells] + [public.unlocated is None])
    for shown, true in zip(public.cells, exact.cells, strict=True):
        if shown.suppressed:
            assert shown.count is None and shown.rate is None
        else:
            assert shown.count == true.count and (shown.count == 0 or shown.count >= k)
    assert public.suppressed_cells == int(hidden[:-1].sum())
    assert public.total in (None, exact.total) and public.unlocated in (None, exact.unlocated)
    if public.total is not None:
        assert public.unlocated is not None and (exact.total == 0 or exact.total >= k)
    everything = np.arange(len(counts))
    assert group_is_safe(counts, hidden, everything, k) or counts.sum() < k
    if siblings:
        res = int(public.level.split(":")[1])
        parents = [h3int.cell_to_parent(h3int.str_to_int(c.key), res - 1) for c in exact.cells]
        for parent in set(parents):
            group = np.array([i for i, p in enumerate(parents) if p == parent])
            assert group_is_safe(counts, hidden, group, k) or counts[group].sum() < k


@pytest.mark.parametrize("filters", FILTERS, ids=["narcotics-month", "homicide-year", "theft-arrests-month"])
@pytest.mark.parametrize("resolution", [7, 9])
def test_h3_maps_never_show_a_small_count(store: ObservatoryStore, filters: Filters, resolution: int) -> None:
    expected, unlocated = exact_h3(filters, resolution)
    exact = counts_by_h3(store, filters, resolution, k=K, analyst=True)
    assert {c.key: c.count for c in exact.cells} == expected and exact.unlocated == unlocated
    assert exact.total == sum(expected.values())
    public = counts_by_h3(store, filters, resolution, k=K)
    assert public.suppressed_cells > 0  # the case is not vacuous
    assert_safe_map(public, exact, K, siblings=True)


@pytest.mark.parametrize("filters", FILTERS, ids=["narcotics-month", "homicide-year", "theft-arrests-month"])
def test_layer_maps_never_show_a_small_count(store: ObservatoryStore, filters: Filters) -> None:
    for settings in (BEATS, DISTRICTS):
        layer = load_layer(settings)
        exact = counts_by_layer(store, filters, layer, k=K, analyst=True)
        assert (
            exact.total + exact.unlocated == sum(exact_h3(filters, 9)[0].values()) + exact_h3(filters, 9)[1]
        )
        assert_safe_map(counts_by_layer(store, filters, layer, k=K), exact, K, siblings=False)


def test_series_and_profiles_hide_small_counts_in_pairs(store: ObservatoryStore) -> None:
    filters = Filters("chicago_crimes", "HOMICIDE", start=datetime(2016, 1, 1), end=datetime(2017, 1, 1))
    exact = series(store, filters, Grain.WEEK, k=K, analyst=True)
    public = series(store, filters, Grain.WEEK, k=K)
    counts = np.array([p.count for p in exact])
    hidden = np.array([p.suppressed for p in public])
    assert hidden.sum() >= 2 and group_is_safe(counts, hidden, np.arange(len(counts)), K)
    assert all(p.count == e.count for p, e in zip(public, exact, strict=True) if not p.suppressed)
    hours = profile(
        store,
        Filters("chicago_crimes", "HOMICIDE", start=datetime(2017, 1, 1), end=datetime(2017, 2, 1)),
        "hour",
        k=K,
    )
    assert all(c is None or c == 0 or c >= K for _, c in hours)
    assert sum(c is None for _, c in hours) != 1


def test_a_higher_k_hides_more(store: ObservatoryStore) -> None:
    low = counts_by_h3(store, FILTERS[0], 8, k=5)
    high = counts_by_h3(store, FILTERS[0], 8, k=20)
    assert high.suppressed_cells > low.suppressed_cells and high.k == 20
    assert all(c.count is None or c.count >= 20 or c.count == 0 for c in high.cells)
