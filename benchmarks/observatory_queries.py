"""Dashboard query latency on the 1.38 M-row Chicago store (goal: p95 ≤ 100 ms, and ≥ 10× a
straightforward pandas implementation of the same queries).

The two queries the observatory page runs on every interaction:

(a) counts per H3 cell (resolution 8) for one category and one month: NARCOTICS, July 2016;
(b) a weekly series for one police district (layer `districts`, district 11), all categories,
    2013-2017.

Both through the public functions (`counts_by_h3`, `series`), with small-cell suppression (k=10),
as the console calls them. The pandas side holds the same rows in memory (read once from the
store, not timed), filters with boolean masks and groups; it applies the same suppression, so
the two sides return the same numbers (checked before timing).

    .venv/bin/python benchmarks/observatory_queries.py [--store chicago.duckdb] [--runs 50]
        [--postgres postgresql://user@host:5432/database?options=-csearch_path%3Dobservatory]

Without --store, Chicago is ingested into a temporary store first (`lanterne.observatory.ingest`
with examples/observatory/chicago_crimes.yml, layers beats and districts).

With --postgres, Chicago is also ingested (timed, replacing any earlier copy) into that
PostgreSQL store, checked to give the same answers as the DuckDB file, and the same two queries
are timed on it: what a deployment pays for keeping the observatory in PostgreSQL.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from h3.api import basic_int as h3int

from lanterne.config.loader import load_config
from lanterne.observatory.aggregate import AreaRef, Filters, Grain, counts_by_h3, periods, series
from lanterne.observatory.ingest import ingest
from lanterne.observatory.mapping import load_mapping
from lanterne.observatory.store import ObservatoryStore
from lanterne.observatory.suppression import suppress, suppress_grouped

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "observatory"
K = 10
MAP_FILTERS = Filters("chicago_crimes", "NARCOTICS", start=datetime(2016, 7, 1), end=datetime(2016, 8, 1))
SERIES_FILTERS = Filters("chicago_crimes")
DISTRICT = AreaRef("layer:districts", "11")


def build_store(path: Path | str) -> ObservatoryStore:
    cfg = load_config(ROOT / "examples" / "observatory" / "site.yml")
    layers = [layer for layer in cfg.observatory.layers if layer.id in ("beats", "districts")]
    store = ObservatoryStore.open(path)
    report = ingest(
        store,
        DATA / "chicago_crimes_2013_2017.parquet",
        load_mapping(ROOT / "examples" / "observatory" / "chicago_crimes.yml"),
        user_id="benchmark",
        layers=layers,
        replace=True,
    )
    print(f"ingested {report.rows_loaded:,} rows into {store.path} in {report.seconds:.1f} s")
    return store


# --- the pandas implementation ----------------------------------------------------------------


def pandas_h3_map(df: pd.DataFrame, filters: Filters, resolution: int) -> dict[str, int | None]:
    rows = df[
        (df.dataset == filters.dataset)
        & (df.category == filters.category)
        & (df.ts >= filters.start)
        & (df.ts < filters.end)
        & df.h3.notna()
    ]
    parents = rows.h3.map(lambda c: h3int.cell_to_parent(int(c), resolution))
    counts = rows.n.groupby(parents).sum()
    unlocated = int(
        df.n[
            (df.dataset == filters.dataset)
            & (df.category == filters.category)
            & (df.ts >= filters.start)
            & (df.ts < filters.end)
            & df.h3.isna()
        ].sum()
    )
    cells = counts.index.to_numpy(dtype=np.int64)
    values = np.append(counts.to_numpy(dtype=np.int64), unlocated)
    n = len(cells)
    siblings = np.unique([h3int.cell_to_parent(int(c), resolution - 1) for c in cells], return_inverse=True)[
        1
    ]
    hidden = suppress_grouped(
        values,
        np.concatenate([np.arange(n + 1), np.arange(n)]),
        np.concatenate([np.zeros(n + 1, dtype=np.int64), siblings + 1]),
        K,
    )
    return {
        h3int.int_to_str(int(c)): None if h else int(v)
        for c, v, h in zip(cells, values, hidden, strict=False)
    }


def pandas_district_series(df: pd.DataFrame, cells: pd.DataFrame, code: str) -> list[int | None]:
    in_district = set(cells.h3[cells.area_code == code])
    recorded = (df.area_layer == "districts") & (df.area_code == code)
    located = ~((df.area_layer == "districts") & df.area_code.notna()) & df.h3.isin(in_district)
    rows = df[(df.dataset == SERIES_FILTERS.dataset) & (recorded | located)]
    weeks = rows.ts.dt.normalize() - pd.to_timedelta(rows.ts.dt.day_of_week, unit="D")
    counts = rows.n.groupby(weeks).sum()
    bounds = df.ts[df.dataset == SERIES_FILTERS.dataset]
    starts = pd.DatetimeIndex(periods(bounds.min(), bounds.max(), Grain.WEEK))
    values = counts.reindex(starts, fill_value=0).to_numpy(dtype=np.int64)
    hidden = suppress(values, [np.arange(len(values))], K)
    return [None if h else int(v) for v, h in zip(values, hidden, strict=True)]


# --- timing -----------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    fn()  # warm caches (DuckDB buffer pool, the layer index, pandas' first-call costs)
    ms = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - start) * 1000)
    return statistics.median(ms), float(np.percentile(ms, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="an existing store with chicago_crimes ingested")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--postgres", help="also ingest into and time this postgresql:// observatory store")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            store = ObservatoryStore.open(args.store, read_only=True)
        else:
            store = build_store(Path(tmp) / "chicago.duckdb")
        cur = store.cursor()
        df = cur.execute("SELECT * FROM incidents").df()
        layer_cells = cur.execute("SELECT h3, area_code FROM layer_cells WHERE layer = 'districts'").df()
        cur.close()
        df["category"] = df.category.astype("category")
        df["dataset"] = df.dataset.astype("category")
        df["area_layer"] = df.area_layer.astype("category")
        print(f"{len(df):,} rows; {len(layer_cells):,} cells indexed for districts")

        # Same answers first: a fast wrong query is not a result.
        duck_map = counts_by_h3(store, MAP_FILTERS, 8, k=K)
        assert {c.key: c.count for c in duck_map.cells} == pandas_h3_map(df, MAP_FILTERS, 8)
        duck_series = series(store, SERIES_FILTERS, Grain.WEEK, area=DISTRICT, k=K)
        assert [p.count for p in duck_series] == pandas_district_series(df, layer_cells, DISTRICT.key)

        cases = [
            (
                "(a) H3 res-8 map, NARCOTICS 2016-07",
                lambda: counts_by_h3(store, MAP_FILTERS, 8, k=K),
                lambda: pandas_h3_map(df, MAP_FILTERS, 8),
            ),
            (
                "(b) weekly series, district 11, 2013-2017",
                lambda: series(store, SERIES_FILTERS, Grain.WEEK, area=DISTRICT, k=K),
                lambda: pandas_district_series(df, layer_cells, DISTRICT.key),
            ),
        ]
        print(f"{'query':44} {'DuckDB p50':>10} {'p95':>7} {'pandas p50':>11} {'p95':>7} {'ratio p50':>9}")
        for name, duck, panda in cases:
            d50, d95 = timed(duck, args.runs)
            p50, p95 = timed(panda, args.runs)
            verdict = "ok" if d95 <= 100 else "over 100 ms"
            print(
                f"{name:44} {d50:8.1f}ms {d95:5.1f}ms {p50:9.1f}ms {p95:5.1f}ms {p50 / d50:8.1f}x  {verdict}"
            )
        if args.postgres:
            time_postgres(args.postgres, store, cases, args.runs)
        store.close()


def time_postgres(url: str, file_store: ObservatoryStore, cases: list[Any], runs: int) -> None:
    """The same queries through the same functions, with the rows in PostgreSQL."""
    started = time.perf_counter()
    ObservatoryStore.open(url).close()
    print(f"first open (loads the extension, attaches): {time.perf_counter() - started:.2f} s")
    build_store(url).close()
    started = time.perf_counter()
    store = ObservatoryStore.open(url, read_only=True)
    print(
        f"read-only open (the console's, extension loaded): {(time.perf_counter() - started) * 1000:.0f} ms"
    )
    assert counts_by_h3(store, MAP_FILTERS, 8, k=K) == counts_by_h3(file_store, MAP_FILTERS, 8, k=K)
    assert series(store, SERIES_FILTERS, Grain.WEEK, area=DISTRICT, k=K) == series(
        file_store, SERIES_FILTERS, Grain.WEEK, area=DISTRICT, k=K
    )
    queries = [
        (name, lambda: counts_by_h3(store, MAP_FILTERS, 8, k=K))
        if name.startswith("(a)")
        else (name, lambda: series(store, SERIES_FILTERS, Grain.WEEK, area=DISTRICT, k=K))
        for name, _, _ in cases
    ]
    print(f"{'query':44} {'PostgreSQL p50':>14} {'p95':>7} {'file p50':>9} {'ratio':>6}")
    for (name, duck, _), (_, pg) in zip(cases, queries, strict=True):
        f50, _f95 = timed(duck, runs)
        g50, g95 = timed(pg, runs)
        verdict = "ok" if g95 <= 100 else "over 100 ms"
        print(f"{name:44} {g50:12.1f}ms {g95:5.1f}ms {f50:7.1f}ms {g50 / f50:5.1f}x  {verdict}")
    store.close()


if __name__ == "__main__":
    main()
