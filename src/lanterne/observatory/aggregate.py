"""Counts by place and period: the numbers every observatory map, chart and report is drawn from.

Everything here returns aggregates. Outside the analyst role a count below k is hidden, with
enough other cells that no published sum gives it back (`suppression`). Every query is one
DuckDB scan with the user's values as parameters; the only text put into SQL is what this module
chose itself (a validated H3 resolution, a `date_trunc` unit from `Grain`, a precision interval).

Why these queries are fast on 1.4 M rows: the `ts` range and the dataset/category equality are
pushed into the scan, and DuckDB skips row groups by their min/max (rows are appended in source
order, which for the shared files is time order); a layer map is a hash join on a 64-bit cell
against `layer_cells` (tens of thousands of rows), never a point-in-polygon test per row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import h3
import numpy as np
from h3.api import basic_int as h3int

from lanterne.observatory.layers import Layer
from lanterne.observatory.store import (
    FINEST_RESOLUTION,
    Channel,
    ObservatoryError,
    ObservatoryStore,
    h3_parent_sql,
)
from lanterne.observatory.suppression import LEGAL_FLOOR, suppress, suppress_grouped

FINEST_SHOWN_RESOLUTION = FINEST_RESOLUTION - 1
"""Resolution 10 is the storage grain (about 66 m); outside the analyst role maps start at 9
(about 174 m edge), the ≥ 100 m generalisation OB-02 asks of what is shown."""


class Grain(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    """ISO week: starts on Monday (DuckDB's `date_trunc('week', …)`)."""
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True)
class Filters:
    """Which rows a view counts. `start`/`end` bound `[start, end)` in the dataset's local time."""

    dataset: str
    category: str | None = None
    channels: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class AreaRef:
    """One area of a map: `AreaRef("h3:8", "882664c1e3fffff")` or `AreaRef("layer:districts", "7")`."""

    level: str
    key: str


@dataclass(frozen=True)
class AreaCount:
    key: str
    label: str | None
    count: int | None
    """None when suppressed."""
    suppressed: bool
    exposure: float | None = None
    rate: float | None = None
    """count / exposure × per; None when the count is hidden (rate × exposure would give it back)."""


@dataclass(frozen=True)
class AreaMap:
    level: str
    cells: list[AreaCount]
    total: int | None
    """Rows of the filter that have an area. None outside the analyst role when publishing it would
    let someone recover a hidden count (it is itself below k, or the unlocated count is hidden)."""
    suppressed_cells: int
    k: int
    unlocated: int | None
    """Rows of the filter with no area on this map (no coordinates, outside every polygon). Treated
    as one more cell for suppression, since the filter's grand total is published by `series`."""
    grand_total: int | None = None
    """total + unlocated: every row of the filter. Shown unless it is itself below k; the number to
    print beside a map when `total` is hidden because a handful of rows had no location."""


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime
    count: int | None
    suppressed: bool


@dataclass(frozen=True)
class ExposureSpec:
    """The denominator of a rate: a measures dataset and variable (e.g. `fr_ssmsi_population`,
    `POP`), per `per` units."""

    dataset: str
    variable: str
    per: float = 1000.0


_PRECISION_INTERVAL = {
    "minute": "INTERVAL 1 MINUTE",
    "hour": "INTERVAL 1 HOUR",
    "day": "INTERVAL 1 DAY",
    "month": "INTERVAL 1 MONTH",
    "year": "INTERVAL 1 YEAR",
}
_PRECISION_RANK = {"minute": 0, "hour": 1, "day": 2, "month": 3, "year": 4}
_PROFILE_SQL = {"hour": "hour(ts)", "dow": "isodow(ts) - 1", "month": "month(ts)"}
_PROFILE_RANGE = {"hour": range(24), "dow": range(7), "month": range(1, 13)}
_PROFILE_NEEDS = {"hour": "hour", "dow": "day", "month": "month"}
_GRAIN_NEEDS = {
    Grain.HOUR: "hour",
    Grain.DAY: "day",
    Grain.WEEK: "day",
    Grain.MONTH: "month",
    Grain.YEAR: "year",
}


# --- checks -----------------------------------------------------------------------------------


def _check_k(k: int, analyst: bool) -> None:
    if not analyst and k < LEGAL_FLOOR:
        raise ObservatoryError(f"small-cell threshold k={k} is below the legal floor {LEGAL_FLOOR} (OB-08)")


@dataclass(frozen=True)
class _DatasetInfo:
    precision: str
    version: tuple[Any, ...]
    """Changes with every ingest of the dataset (cache key)."""


def _dataset(store: ObservatoryStore, dataset: str, kind: str = "incidents") -> _DatasetInfo:
    """The dataset's time precision and version; refuses unknown datasets so a typo is not an
    empty map."""
    rows = store.query(
        "SELECT kind, time_precision, sha256, ingested_at, rows_loaded FROM datasets WHERE id = $id",
        {"id": dataset},
    )
    if not rows:
        raise ObservatoryError(f"no dataset {dataset!r} in the observatory store; ingest it first")
    if rows[0][0] != kind:
        raise ObservatoryError(f"dataset {dataset!r} holds {rows[0][0]}, not {kind}; pick an {kind} dataset")
    return _DatasetInfo(precision=str(rows[0][1]), version=tuple(rows[0][2:]))


def _resolution(resolution: int, analyst: bool) -> int:
    finest = FINEST_RESOLUTION if analyst else FINEST_SHOWN_RESOLUTION
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 0 <= resolution <= finest:
        raise ObservatoryError(f"H3 resolution must be an integer from 0 to {finest}, not {resolution!r}")
    return resolution


def where_clause(filters: Filters) -> tuple[str, dict[str, Any]]:
    """The SQL condition on `incidents` selecting the filter's rows, with its bound parameters."""
    clauses = ["dataset = $dataset"]
    params: dict[str, Any] = {"dataset": filters.dataset}
    if filters.category is not None:
        clauses.append("category = $category")
        params["category"] = filters.category
    if filters.channels is not None:
        known = {c.value for c in Channel}
        unknown = sorted(set(filters.channels) - known)
        if unknown:
            raise ObservatoryError(f"unknown channel {unknown[0]!r}; use one of {sorted(known)}")
        if not filters.channels:
            clauses.append("FALSE")
        else:
            names = [f"channel{i}" for i in range(len(filters.channels))]
            clauses.append(f"channel IN ({', '.join('$' + n for n in names)})")
            params.update(zip(names, filters.channels, strict=True))
    if filters.start is not None:
        clauses.append("ts >= $start")
        params["start"] = filters.start
    if filters.end is not None:
        clauses.append("ts < $end")
        params["end"] = filters.end
    if filters.start is not None and filters.end is not None and filters.end <= filters.start:
        raise ObservatoryError("the period is empty: its end must come after its start")
    return " AND ".join(clauses), params


def _layer_id(level: str) -> str:
    layer_id = level.removeprefix("layer:")
    if (
        not layer_id
        or not all(c.islower() or c.isdigit() or c == "_" for c in layer_id)
        or len(layer_id) > 32
    ):
        raise ObservatoryError(f"unknown map level {level!r}; use h3:<resolution> or layer:<layer id>")
    return layer_id


def _descendants(cell: int, resolution: int) -> tuple[int, int]:
    """The range of 64-bit values holding every stored (resolution-10) cell under `cell`.

    Below the resolution bits a cell is its base cell then one 3-bit digit per resolution, so all
    resolution-10 descendants share the high bits and differ only in digits resolution+1…10: a
    BETWEEN on the raw column, which the scan filters without computing a parent per row.
    """
    at_finest = (cell & ~(0xF << 52)) | (FINEST_RESOLUTION << 52)
    free = ((1 << (3 * (FINEST_RESOLUTION - resolution))) - 1) << (3 * (15 - FINEST_RESOLUTION))
    return at_finest & ~free, at_finest | free


def _rows(
    store: ObservatoryStore, filters: Filters, info: _DatasetInfo, area: AreaRef | None, analyst: bool
) -> tuple[str, dict[str, Any]]:
    """A subquery of the filter's rows (`ts`, `n`) inside one area, any H3 resolution or any
    layer's area (same rule as `counts_by_layer`: the recorded code wins, the polygon holding the
    cell is the fallback)."""
    where, params = where_clause(filters)
    if area is None:
        return f"SELECT ts, n FROM incidents WHERE {where}", params
    if area.level.startswith("h3:"):
        try:
            resolution = int(area.level[3:])
            cell = h3int.str_to_int(area.key)
            valid = h3int.is_valid_cell(cell) and h3int.get_resolution(cell) == resolution
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise ObservatoryError(f"{area.key!r} is not an H3 cell of {area.level}")
        low, high = _descendants(cell, _resolution(resolution, analyst))
        return (
            f"SELECT ts, n FROM incidents WHERE {where} AND h3 BETWEEN $area_low AND $area_high",
            params | {"area_low": low, "area_high": high},
        )
    layer_id = _layer_id(area.level) if area.level.startswith("layer:") else _layer_id(area.level + "?")
    known = _memo(
        store,
        info,
        ("indexed", layer_id),
        lambda: bool(
            store.query(
                "SELECT 1 FROM layer_cells WHERE layer = $l UNION ALL "
                "SELECT 1 FROM incidents WHERE area_layer = $l LIMIT 1",
                {"l": layer_id},
            )
        ),
    )
    if not known:
        _MEMO.pop((store.cache_key, info.version, "indexed", layer_id), None)  # may be indexed later
        raise ObservatoryError(
            f"layer {layer_id!r} is not indexed in the store; configure it and ingest again"
        )
    params |= {"area_layer": layer_id, "area_code": area.key}
    cells = """SELECT ts, n FROM incidents
            SEMI JOIN (SELECT h3 FROM layer_cells WHERE layer = $area_layer AND area_code = $area_code) AS c
            USING (h3) WHERE """
    if layer_id not in _recorded_layers(store, filters.dataset, info):
        return cells + where, params
    # Two branches rather than one OR: the semi-join keeps the scan to the area's cells (about 3x
    # faster on Chicago than an OR that DuckDB evaluates as a mark join over every row).
    return (
        f"""SELECT ts, n FROM incidents WHERE {where} AND area_layer = $area_layer AND area_code = $area_code
            UNION ALL
            {cells} {where} AND (area_layer IS DISTINCT FROM $area_layer OR area_code IS NULL)""",
        params,
    )


_MEMO: dict[tuple[Any, ...], Any] = {}
_MEMO_LOCK = threading.Lock()


def _memo(
    store: ObservatoryStore, info: _DatasetInfo, key: tuple[Any, ...], compute: Callable[[], Any]
) -> Any:
    """Facts about a dataset that cost a full scan and change only with an ingest (its time span,
    the layers its rows carry codes for), kept per dataset version."""
    full = (store.cache_key, info.version, *key)
    with _MEMO_LOCK:
        if full in _MEMO:
            return _MEMO[full]
    value = compute()
    with _MEMO_LOCK:
        if len(_MEMO) > 1024:
            _MEMO.clear()
        _MEMO[full] = value
    return value


def _bounds(
    store: ObservatoryStore, filters: Filters, info: _DatasetInfo
) -> tuple[datetime | None, datetime | None]:
    """First and last time of the filter's rows (a scan of `ts` costing as much as the series)."""

    def compute() -> tuple[datetime | None, datetime | None]:
        where, params = where_clause(filters)
        low, high = store.query(f"SELECT min(ts), max(ts) FROM incidents WHERE {where}", params)[0]
        return low, high

    return _memo(store, info, ("bounds", filters), compute)


def _recorded_layers(store: ObservatoryStore, dataset: str, info: _DatasetInfo) -> frozenset[str]:
    """Layers the dataset's rows carry codes for (Chicago: beats only)."""

    def compute() -> frozenset[str]:
        rows = store.query(
            "SELECT DISTINCT area_layer FROM incidents WHERE dataset = $d AND area_layer IS NOT NULL",
            {"d": dataset},
        )
        return frozenset(str(r[0]) for r in rows)

    return _memo(store, info, ("layers", dataset), compute)


# --- maps -------------------------------------------------------------------------------------


def _parents(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Numpy twin of `h3_parent_sql`, for grouping siblings without a call per cell."""
    keep = ~(0xF << 52) & (2**63 - 1)
    return (cells & keep) | (resolution << 52) | ((1 << (45 - 3 * resolution)) - 1)


def _publish(
    level: str,
    keys: list[str],
    labels: list[str | None],
    counts: np.ndarray,
    unlocated: int,
    sibling_of: np.ndarray | None,
    k: int,
    analyst: bool,
    exposure: list[float | None] | None = None,
    per: float = 1000.0,
) -> AreaMap:
    n = len(keys)
    total = int(counts.sum())
    if analyst:
        hidden = np.zeros(n + 1, dtype=bool)
    else:
        # Index n is the unlocated rows: the filter's grand total is published (series, an H3 map
        # with another unlocated set), so they belong to the map's group like any cell.
        values = np.append(counts, unlocated)
        members = [np.arange(n + 1)]
        gids = [np.zeros(n + 1, dtype=np.int64)]
        if sibling_of is not None and n:
            _, inverse = np.unique(sibling_of, return_inverse=True)
            members.append(np.arange(n))
            gids.append(inverse.astype(np.int64) + 1)
        hidden = suppress_grouped(values, np.concatenate(members), np.concatenate(gids), k)
    cells = []
    for i in range(n):
        count = int(counts[i])
        shown = not hidden[i]
        exp = exposure[i] if exposure is not None else None
        cells.append(
            AreaCount(
                key=keys[i],
                label=labels[i],
                count=count if shown else None,
                suppressed=not shown,
                exposure=exp,
                rate=count / exp * per if shown and exp else None,
            )
        )
    total_shown = analyst or (not hidden[n] and not 0 < total < k)
    grand_total = total + unlocated
    return AreaMap(
        level=level,
        cells=cells,
        total=total if total_shown else None,
        suppressed_cells=int(hidden[:n].sum()),
        k=k,
        unlocated=unlocated if not hidden[n] else None,
        grand_total=grand_total if analyst or not 0 < grand_total < k else None,
    )


def counts_by_h3(
    store: ObservatoryStore, filters: Filters, resolution: int, *, k: int, analyst: bool = False
) -> AreaMap:
    """Counts per H3 cell at `resolution` (0-9, 10 for analysts); cells with no row are absent
    (a hexagon map draws them as zero)."""
    _check_k(k, analyst)
    _dataset(store, filters.dataset)
    resolution = _resolution(resolution, analyst)
    where, params = where_clause(filters)
    cur = store.cursor()
    try:
        result = cur.execute(
            f"SELECT {h3_parent_sql('h3', resolution)} AS cell, sum(n)::BIGINT AS count "
            f"FROM incidents WHERE {where} GROUP BY cell ORDER BY cell",
            params,
        ).fetchnumpy()
    finally:
        cur.close()
    cells = np.ma.getdata(result["cell"]).astype(np.int64)
    located = ~np.ma.getmaskarray(result["cell"])
    counts = np.asarray(result["count"], dtype=np.int64)
    unlocated = int(counts[~located].sum())
    cells, counts = cells[located], counts[located]
    return _publish(
        level=f"h3:{resolution}",
        keys=[h3.int_to_str(int(c)) for c in cells],
        labels=[None] * len(cells),
        counts=counts,
        unlocated=unlocated,
        sibling_of=_parents(cells, resolution - 1) if resolution > 0 else None,
        k=k,
        analyst=analyst,
    )


_AREA_SQL = """COALESCE(CASE WHEN t.area_layer = $layer THEN t.area_code END, c.area_code)"""
"""A row's area on a layer: the code the source recorded for this layer, else the polygon holding
its H3 cell (recorded beats win over geometry: they are what the police filed)."""


def _check_indexed(store: ObservatoryStore, layer: Layer, dataset: str) -> None:
    indexed = store.query(
        "SELECT 1 FROM layer_cells WHERE layer = $layer AND layer_sha256 = $sha LIMIT 1",
        {"layer": layer.id, "sha": layer.sha256},
    )
    if not indexed and store.query(
        "SELECT 1 FROM incidents WHERE dataset = $d AND h3 IS NOT NULL LIMIT 1", {"d": dataset}
    ):
        raise ObservatoryError(
            f"layer {layer.id!r} (this version of its file) is not indexed; ingest the dataset again "
            "with the layer configured"
        )


def counts_by_layer(
    store: ObservatoryStore,
    filters: Filters,
    layer: Layer,
    *,
    k: int,
    analyst: bool = False,
    exposure: ExposureSpec | None = None,
) -> AreaMap:
    """Counts per area of `layer`, every area listed (zeros included) plus codes the data carries
    that the boundary file lacks (label None).

    With `exposure`, each area's rate = count / exposure × per, where exposure is the sum of the
    measure's values in the area over the measure periods overlapping the filter's window (each
    measure row covers one period of its dataset's precision). For a stock such as annual
    population, a one-year window gives incidents per `per` residents that year and a three-year
    window per `per` person-years; a one-month window gives the month's count over the year's
    population, not an annualised rate. For a flow such as hourly footfall it is the sum of the
    flow over the window.
    """
    _check_k(k, analyst)
    _dataset(store, filters.dataset)
    _check_indexed(store, layer, filters.dataset)
    where, params = where_clause(filters)
    params |= {"layer": layer.id, "sha": layer.sha256}
    rows = store.query(
        f"""SELECT {_AREA_SQL} AS area, sum(t.n)::BIGINT
            FROM (SELECT * FROM incidents WHERE {where}) AS t
            LEFT JOIN layer_cells AS c ON c.layer = $layer AND c.layer_sha256 = $sha AND c.h3 = t.h3
            GROUP BY area""",
        params,
    )
    by_code = {code: int(count) for code, count in rows if code is not None}
    unlocated = sum(int(count) for code, count in rows if code is None)
    keys = list(layer.codes) + sorted(set(by_code) - set(layer.codes))
    exposures = _exposure(store, filters, layer, exposure, keys) if exposure is not None else None
    return _publish(
        level=f"layer:{layer.id}",
        keys=keys,
        labels=[layer.labels.get(key) for key in keys],
        counts=np.array([by_code.get(key, 0) for key in keys], dtype=np.int64),
        unlocated=unlocated,
        sibling_of=None,
        k=k,
        analyst=analyst,
        exposure=exposures,
        per=exposure.per if exposure is not None else 1000.0,
    )


def _exposure(
    store: ObservatoryStore, filters: Filters, layer: Layer, spec: ExposureSpec, keys: list[str]
) -> list[float | None]:
    precision = _dataset(store, spec.dataset, kind="measures").precision
    interval = _PRECISION_INTERVAL[precision]
    clauses = ["t.dataset = $exp_dataset", "t.variable = $exp_variable"]
    params: dict[str, Any] = {
        "exp_dataset": spec.dataset,
        "exp_variable": spec.variable,
        "layer": layer.id,
        "sha": layer.sha256,
    }
    if filters.end is not None:
        clauses.append("t.ts < $end")
        params["end"] = filters.end
    if filters.start is not None:
        clauses.append(f"t.ts + {interval} > $start")
        params["start"] = filters.start
    rows = store.query(
        f"""SELECT {_AREA_SQL} AS area, sum(t.value)
            FROM measures AS t
            LEFT JOIN layer_cells AS c ON c.layer = $layer AND c.layer_sha256 = $sha AND c.h3 = t.h3
            WHERE {" AND ".join(clauses)}
            GROUP BY area""",
        params,
    )
    values = {code: float(value) for code, value in rows if code is not None}
    return [values.get(key) for key in keys]


# --- time -------------------------------------------------------------------------------------


def _truncate(moment: datetime, grain: Grain) -> datetime:
    moment = moment.replace(second=0, microsecond=0, minute=0)
    if grain is Grain.HOUR:
        return moment
    moment = moment.replace(hour=0)
    if grain is Grain.DAY:
        return moment
    if grain is Grain.WEEK:
        return moment - timedelta(days=moment.weekday())
    moment = moment.replace(day=1)
    return moment if grain is Grain.MONTH else moment.replace(month=1)


MAX_PERIODS = 100_000
"""Longest dense series served: hourly over eleven years."""
_PERIOD_SECONDS = {Grain.HOUR: 3600, Grain.DAY: 86400, Grain.WEEK: 7 * 86400, Grain.MONTH: 0, Grain.YEAR: 0}
"""Months and years cannot exceed the cap within datetime's range; only fixed lengths are checked."""


def period_end(moment: datetime, grain: Grain) -> datetime:
    """The end of the period that starts at `moment` (the next one's start): calendar months and
    years, not fixed lengths, so February and leap years end where a reader expects."""
    if grain is Grain.HOUR:
        return moment + timedelta(hours=1)
    if grain is Grain.DAY:
        return moment + timedelta(days=1)
    if grain is Grain.WEEK:
        return moment + timedelta(days=7)
    if grain is Grain.MONTH:
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    return moment.replace(year=moment.year + 1)


def periods(first: datetime, last: datetime, grain: Grain) -> list[datetime]:
    """Every period start from `first`'s period to `last`'s, both included."""
    out = []
    moment, stop = _truncate(first, grain), _truncate(last, grain)
    while moment <= stop:
        out.append(moment)
        moment = period_end(moment, grain)
    return out


def series(
    store: ObservatoryStore,
    filters: Filters,
    grain: Grain,
    *,
    area: AreaRef | None = None,
    k: int,
    analyst: bool = False,
) -> list[SeriesPoint]:
    """Counts per period, dense: from the filter's start (or the first row of the filter, any area)
    to its end (or last row), every period has a point, zeros included. The whole series is one
    suppression group, its sum being the map total of the same window."""
    _check_k(k, analyst)
    info = _dataset(store, filters.dataset)
    precision = info.precision
    grain = Grain(grain)
    if _PRECISION_RANK[precision] > _PRECISION_RANK[_GRAIN_NEEDS[grain]]:
        raise ObservatoryError(
            f"dataset {filters.dataset!r} records time by {precision}; choose a grain of {precision} or coarser"
        )
    first = filters.start
    last = filters.end - timedelta(microseconds=1) if filters.end is not None else None
    if first is None or last is None:
        low, high = _bounds(store, filters, info)
        if low is None or high is None:
            return []
        first, last = first or low, last or high
    # A window reaching past the dataset's own span is cut to it: outside, no record means no
    # data, not zero incidents (and a window to the year 9999 would be millions of periods).
    span_low, span_high = _bounds(store, Filters(filters.dataset), info)
    if span_low is None or span_high is None:
        return []
    first, last = max(first, _truncate(span_low, grain)), min(last, span_high)
    if first > last:
        return []
    if _PERIOD_SECONDS[grain] and (last - first).total_seconds() / _PERIOD_SECONDS[grain] > MAX_PERIODS:
        raise ObservatoryError(
            f"a {grain.value} series from {first:%Y-%m-%d} to {last:%Y-%m-%d} has more than "
            f"{MAX_PERIODS:,} periods; choose a coarser grain or a shorter window"
        )
    rows_sql, params = _rows(store, filters, info, area, analyst)
    rows = store.query(
        f"SELECT date_trunc('{grain.value}', ts) AS period, sum(n)::BIGINT FROM ({rows_sql}) GROUP BY period",
        params,
    )
    found = {period: int(count) for period, count in rows}
    starts = periods(first, last, grain)
    counts = np.array([found.get(start, 0) for start in starts], dtype=np.int64)
    hidden = np.zeros(len(counts), dtype=bool) if analyst else suppress(counts, [np.arange(len(counts))], k)
    return [
        SeriesPoint(start=start, count=None if hide else int(count), suppressed=bool(hide))
        for start, count, hide in zip(starts, counts, hidden, strict=True)
    ]


def profile(
    store: ObservatoryStore,
    filters: Filters,
    by: Literal["hour", "dow", "month"],
    *,
    k: int,
    analyst: bool = False,
    area: AreaRef | None = None,
) -> list[tuple[int, int | None]]:
    """Counts by hour of day (0-23), day of week (0 = Monday … 6) or month (1-12), all values
    listed; None when suppressed. Refused when the dataset's time precision cannot say (an hour
    profile of dates would put everything at midnight)."""
    _check_k(k, analyst)
    if by not in _PROFILE_SQL:
        raise ObservatoryError(f"profile by {by!r} is not offered; use hour, dow or month")
    info = _dataset(store, filters.dataset)
    precision = info.precision
    if _PRECISION_RANK[precision] > _PRECISION_RANK[_PROFILE_NEEDS[by]]:
        raise ObservatoryError(
            f"dataset {filters.dataset!r} records time by {precision}; a {by} profile needs finer"
        )
    rows_sql, params = _rows(store, filters, info, area, analyst)
    rows = store.query(
        f"SELECT {_PROFILE_SQL[by]} AS slot, sum(n)::BIGINT FROM ({rows_sql}) GROUP BY slot", params
    )
    found = {int(slot): int(count) for slot, count in rows}
    slots = list(_PROFILE_RANGE[by])
    counts = np.array([found.get(slot, 0) for slot in slots], dtype=np.int64)
    hidden = np.zeros(len(counts), dtype=bool) if analyst else suppress(counts, [np.arange(len(counts))], k)
    return [(slot, None if hide else int(c)) for slot, c, hide in zip(slots, counts, hidden, strict=True)]


def incident_rows(store: ObservatoryStore, filters: Filters, limit: int) -> tuple[int, list[tuple[Any, ...]]]:
    """The rows an analyst asked for (OB-03: analysts only, with a purpose, checked by the
    caller): how many match, and the first `limit` by time and category, each as time, category,
    channel, H3 cell (int), area layer, area code and count. The same filters as every aggregate,
    so the rows are exactly those behind the analyst's map and series."""
    where, params = where_clause(filters)
    total = int(store.query(f"SELECT count(*) FROM incidents WHERE {where}", params)[0][0])
    found = store.query(
        f"SELECT ts, category, channel, h3, area_layer, area_code, n FROM incidents WHERE {where} "
        "ORDER BY ts, category LIMIT $limit",
        {**params, "limit": limit},
    )
    return total, found


def categories(store: ObservatoryStore, dataset: str) -> list[tuple[str, int]]:
    """Categories of a dataset with their row count, most frequent first (for pickers). Whole-
    dataset counts: a category with few rows over years says nothing about a place and time."""
    _dataset(store, dataset)
    rows = store.query(
        "SELECT category, sum(n)::BIGINT AS count FROM incidents WHERE dataset = $d "
        "GROUP BY category ORDER BY count DESC, category",
        {"d": dataset},
    )
    return [(str(category), int(count)) for category, count in rows]


def resolution_of(level: str) -> int:
    """`h3:8` → 8 (for callers that hold a level string)."""
    try:
        return int(level.removeprefix("h3:"))
    except ValueError:
        raise ObservatoryError(f"{level!r} is not an H3 level; use h3:<resolution>") from None
