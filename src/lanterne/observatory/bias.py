"""The bias audit: how the records were produced, before anyone reads them as "where crime is".

A recorded incident is the product of a behaviour (an offence, an accident) and of a recording
process (a resident who calls, a patrol that stops someone, a sensor that counts). When police
activity produces most of a category's records (drug offences, weapons, public order), its map
shows where police looked; ranking areas by it and sending patrols there produces more records
there (Lum & Isaac 2016; Ensign et al. 2018). The audit measures this from the data itself, per
category and per area level (OB-04 to OB-07):

- who recorded it: the share of each reporting channel; a category whose police-initiated share
  is at least `DISCOVERED_THRESHOLD` is "discovered" and shown as police activity, not crime;
- how concentrated it is: the Gini coefficient of counts over areas and the share of incidents
  in the top 10 % of areas;
- how persistent its top areas are from year to year (the runaway loop's signature);
- how the reporting channels differ between areas, and how coverage (coordinates, area codes,
  channels, categories) drifts over the years.

Everything is an aggregate over areas and years; nothing is computed about a person and nothing
here scores anything (OB-03). `hotspots` is the only ranking of areas the observatory produces,
and it never comes without the category's audit and a feedback-loop simulation (OB-05); a
discovered category is not ranked at all unless the caller asks for it explicitly.

Which areas count: the areas of the level that hold at least one record of the dataset (any
category, any year). A category's Gini and top-decile share are computed over all of them, zeros
included: an area where the dataset records burglaries but never a drug arrest is evidence of
concentration, and leaving it out would make every rare category look evenly spread. Areas that
hold no record of the dataset at all are left out because nothing distinguishes "no incident"
from "not covered by this source" there (a boundary layer can extend beyond a source's area).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from lanterne.observatory.aggregate import (
    _AREA_SQL,
    Filters,
    _check_indexed,
    _check_k,
    _dataset,
    _resolution,
    where_clause,
)
from lanterne.observatory.feedback import Allocation, FeedbackResult, Update, feedback_loop
from lanterne.observatory.store import (
    Channel,
    ObservatoryError,
    ObservatoryStore,
    h3_parent_sql,
)

if TYPE_CHECKING:
    from lanterne.observatory.layers import Layer

DISCOVERED_THRESHOLD = 0.5
"""Police-initiated share from which a category is "discovered" (research §6.1: found by police
activity more often than reported). Chicago: NARCOTICS 99.6 %, WEAPONS VIOLATION 79 %, CRIMINAL
TRESPASS 67 % are above; BATTERY 23 %, THEFT 11 %, BURGLARY 5.5 % are below."""

DRIFT_STEP = 0.10
"""A coverage share (coordinates, area codes, a channel) moving by at least this much between
consecutive years is reported as a drift note: smaller year-to-year moves are ordinary."""

PARTIAL_YEAR = 0.5
"""A year with fewer records than this fraction of the median year is flagged (partial year,
missing source files)."""

CAVEAT = (
    "Recorded incidents reflect reporting and policing activity, not true crime rates: an area "
    "with more records may have more offences, more residents who report, or more patrols that "
    "find them. Categories marked as police activity mostly record where police looked."
)
"""OB-07: shown beside every audit, map and ranking."""

CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)


class DiscoveredCategoryError(ObservatoryError):
    """A ranking of a category mostly found by police activity, not asked for explicitly (OB-05)."""


@dataclass(frozen=True)
class CategoryAudit:
    """How one category's records were produced and how they spread over the areas."""

    category: str
    total: int
    channel_shares: dict[str, float]
    """Share of the category's records per reporting channel (sums to 1)."""
    discovered: bool
    """Police-initiated share ≥ `DISCOVERED_THRESHOLD`: shown as police activity, not crime."""
    gini: float
    """Gini coefficient of the category's counts over the level's areas (zeros included):
    0 = every area has the same count, (n-1)/n = one area has them all."""
    top10_share: float
    """Share of the located records that fall in the top 10 % of areas (round(n/10), at least 1)."""
    persistence: float | None
    """Mean Jaccard overlap of the top-10 % area sets between consecutive years; None with fewer
    than two years."""
    areas: int
    """Number of areas the statistics are computed over (the level's areas with any record of
    the dataset)."""
    areas_with_records: int
    unlocated: int
    """Records of the category without an area at this level (left out of Gini and top share)."""

    @property
    def police_initiated_share(self) -> float:
        return self.channel_shares.get(Channel.POLICE_INITIATED.value, 0.0)

    @property
    def shown_as(self) -> str:
        """How displays must name it (OB-04)."""
        return "police activity" if self.discovered else "recorded incidents"


@dataclass(frozen=True)
class AreaChannelMix:
    """The reporting channels of one area: who records here (reporting-propensity audit)."""

    key: str
    label: str | None
    total: int | None
    """None when suppressed (fewer than k records, outside the analyst role)."""
    channel_shares: dict[str, float | None] | None
    """Share per channel; a channel with 0 < count < k is None outside the analyst role, and so is
    the next smallest one when it alone would let 1 − the others reveal it."""
    suppressed: bool


@dataclass(frozen=True)
class YearCoverage:
    """Missing data in one year: what share of records can be placed, and by whom recorded."""

    year: int
    records: int
    located_share: float
    """Share with an H3 cell (coordinates at ingest)."""
    coded_share: float
    """Share with an area code from the source (commune, beat, département)."""
    channel_shares: dict[str, float]


@dataclass(frozen=True)
class CategoryOverlap:
    """How far the top-10 % areas of a discovered and a reported category coincide."""

    discovered: str
    reported: str
    jaccard: float


@dataclass(frozen=True)
class DatasetAudit:
    dataset: str
    level: str
    k: int
    analyst: bool
    categories: list[CategoryAudit]
    """Largest first. Outside the analyst role, categories with fewer than k records in the
    whole dataset are left out (counted in `suppressed_categories`)."""
    suppressed_categories: int
    areas: int
    channel_mix: list[AreaChannelMix]
    suppressed_areas: int
    coverage: list[YearCoverage]
    drift_notes: list[str]
    """Plain-language notes on coverage breaks ("coordinates absent in 2009")."""
    overlaps: list[CategoryOverlap]
    """Every discovered × reported pair of audited categories."""
    discovered_vs_reported: float | None
    """Jaccard overlap of the top-10 % areas of all discovered records pooled and of all
    reported records pooled; None when one side is empty."""
    caveat: str = CAVEAT

    def category(self, name: str) -> CategoryAudit:
        for row in self.categories:
            if row.category == name:
                return row
        raise ObservatoryError(f"category {name!r} is not in the audit of {self.dataset}")


# --------------------------------------------------------------------------------------------
# Statistics


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 when all equal or all zero).

    >>> gini(np.array([5, 5, 5, 5]))
    0.0
    >>> gini(np.array([0, 0, 0, 8]))
    0.75
    """
    x = np.sort(np.asarray(counts, dtype=float))
    n = x.size
    total = x.sum()
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(2.0 * (ranks * x).sum() / (n * total) - (n + 1) / n)


def top_decile_size(areas: int) -> int:
    """How many areas make the top 10 %: round(n/10), at least one (27 of Chicago's 274 beats)."""
    return max(1, round(areas / 10))


def top_areas(counts: np.ndarray, size: int) -> frozenset[int]:
    """Indices of the `size` areas with the most records, plus any area tied with the last one;
    areas with none left out. Keeping ties (rather than breaking them by code order) makes the
    overlap figures independent of how a source spells its codes ("0421" or "421")."""
    if counts.size == 0:
        return frozenset()
    threshold = max(np.sort(counts)[-min(size, counts.size)], 1)
    return frozenset(int(i) for i in np.flatnonzero(counts >= threshold))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def persistence(by_year: np.ndarray, size: int) -> float | None:
    """Mean Jaccard of consecutive years' top areas; `by_year` is areas × years."""
    if by_year.shape[1] < 2:
        return None
    sets = [top_areas(by_year[:, y], size) for y in range(by_year.shape[1])]
    # Two consecutive years without any record say nothing about persistence: skipped.
    pairs = [jaccard(a, b) for a, b in itertools.pairwise(sets) if a or b]
    return float(np.mean(pairs)) if pairs else None


# --------------------------------------------------------------------------------------------
# Levels and the counting query


@dataclass(frozen=True)
class _Level:
    text: str
    resolution: int | None
    layer: Layer | None
    layer_id: str | None


def _parse_level(level: str, layers: Mapping[str, Layer], analyst: bool) -> _Level:
    kind, _, arg = level.partition(":")
    if kind == "h3":
        try:
            wanted = int(arg)
        except ValueError:
            raise ObservatoryError(
                f"level {level!r} is not understood; use h3:<resolution> or layer:<id>"
            ) from None
        return _Level(level, _resolution(wanted, analyst), None, None)
    if kind == "layer" and arg:
        if arg not in layers:
            raise ObservatoryError(
                f"level {level}: no boundary layer {arg!r} is configured; add it under observatory.layers"
            )
        return _Level(level, None, layers[arg], arg)
    raise ObservatoryError(f"level {level!r} is not understood; use h3:<resolution> or layer:<id>")


def _area_sql(level: _Level) -> tuple[str, str, dict[str, Any]]:
    """(area expression over `t` = incidents, join clause, parameters) placing each incident in
    an area of `level`; the expression is NULL for an incident without an area there. Layers
    place rows the way `aggregate.counts_by_layer` does, so the audit and the maps agree."""
    if level.resolution is not None:
        # Grouped as a BIGINT and formatted after the aggregation: formatting 1.4 M cells to
        # text before grouping costs seconds, formatting a thousand groups costs nothing.
        return h3_parent_sql("t.h3", level.resolution), "", {}
    assert level.layer is not None
    return (
        _AREA_SQL,
        "LEFT JOIN layer_cells AS c ON c.layer = $layer AND c.layer_sha256 = $sha AND c.h3 = t.h3",
        {"layer": level.layer.id, "sha": level.layer.sha256},
    )


@dataclass(frozen=True)
class _Cube:
    """Counts by category × area × year × channel, with coverage counts, as dense arrays."""

    categories: list[str]
    areas: list[str]
    years: list[int]
    counts: np.ndarray
    """category × area × year × channel; area index len(areas) holds records without an area."""
    located: np.ndarray
    """category × year: records with an H3 cell."""
    coded: np.ndarray
    """category × year: records with an area code."""


def _encode(column: pa.ChunkedArray) -> tuple[list[str], np.ndarray]:
    """(sorted distinct values, index of each row's value): dictionary encoding in Arrow's C++,
    about ten times faster than numpy's unique over Python strings."""
    encoded = column.combine_chunks().dictionary_encode()
    names = encoded.dictionary.to_pylist()
    order = np.argsort(np.array(names, dtype=object)) if names else np.zeros(0, dtype=np.int64)
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    return [names[i] for i in order], rank[encoded.indices.to_numpy(zero_copy_only=False)]


def _cube(store: ObservatoryStore, filters: Filters, level: _Level) -> _Cube:
    where, params = where_clause(filters)
    area, join, area_params = _area_sql(level)
    params |= area_params
    cur = store.cursor()
    try:
        key = "format('{:x}', area)" if level.resolution is not None else "area"
        table = cur.execute(
            f"""SELECT category, coalesce({key}, '') AS area, year, channel, n, located, coded
                FROM (SELECT t.category, {area} AS area, year(t.ts) AS year, t.channel,
                             sum(t.n)::BIGINT AS n,
                             coalesce(sum(t.n) FILTER (WHERE t.h3 IS NOT NULL), 0)::BIGINT AS located,
                             coalesce(sum(t.n) FILTER (WHERE t.area_code IS NOT NULL), 0)::BIGINT AS coded
                      FROM (SELECT * FROM incidents WHERE {where}) AS t {join}
                      GROUP BY ALL)""",
            params,
        ).to_arrow_table()
    finally:
        cur.close()
    cat_names, cat_idx = _encode(table["category"])
    area_names, area_idx = _encode(table["area"])
    # Records without an area ('') go to the extra last index so one array holds them all.
    if area_names and area_names[0] == "":
        area_names = area_names[1:]
        area_idx = np.where(area_idx == 0, len(area_names), area_idx - 1)
    year_values = table["year"].to_numpy()
    year_names, year_idx = np.unique(year_values, return_inverse=True)
    chan_names, chan_local = _encode(table["channel"])
    chan_idx = np.array([CHANNELS.index(c) for c in chan_names], dtype=np.int64)[chan_local]
    n = table["n"].to_numpy()
    shape = (len(cat_names), len(area_names) + 1, year_names.size, len(CHANNELS))
    # bincount over a flat index: np.add.at is several times slower for 100 k groups.
    flat = np.ravel_multi_index((cat_idx, area_idx, year_idx, chan_idx), shape)
    counts = np.bincount(flat, weights=n, minlength=int(np.prod(shape))).astype(np.int64).reshape(shape)
    cy = np.ravel_multi_index((cat_idx, year_idx), shape[::2])
    size = shape[0] * shape[2]
    located = np.bincount(cy, weights=table["located"].to_numpy(), minlength=size).astype(np.int64)
    coded = np.bincount(cy, weights=table["coded"].to_numpy(), minlength=size).astype(np.int64)
    return _Cube(
        categories=cat_names,
        areas=area_names,
        years=[int(y) for y in year_names],
        counts=counts,
        located=located.reshape(shape[::2]),
        coded=coded.reshape(shape[::2]),
    )


_CUBES: OrderedDict[tuple[Any, ...], _Cube] = OrderedDict()
_CUBES_LOCK = threading.Lock()
_CUBES_KEPT = 8


def _dataset_cube(store: ObservatoryStore, dataset: str, level: _Level) -> _Cube:
    """The whole dataset's cube, kept while the dataset and the layer are unchanged: the audit
    panel and every hotspot request of a dataset read the same cube, and a re-ingest (new
    `ingested_at`) or a redrawn layer (new sha256) makes a new key."""
    version = _dataset(store, dataset).version
    if level.layer is not None:
        _check_indexed(store, level.layer, dataset)
    key = (store.cache_key, dataset, level.text, level.layer.sha256 if level.layer else None, *version)
    with _CUBES_LOCK:
        if key in _CUBES:
            _CUBES.move_to_end(key)
            return _CUBES[key]
    cube = _cube(store, Filters(dataset), level)
    with _CUBES_LOCK:
        _CUBES[key] = cube
        while len(_CUBES) > _CUBES_KEPT:
            _CUBES.popitem(last=False)
    return cube


def _label(level: _Level, key: str) -> str | None:
    return level.layer.labels.get(key) if level.layer is not None else None


# --------------------------------------------------------------------------------------------
# The audit


def _category_audit(cube: _Cube, c: int) -> CategoryAudit:
    counts = cube.counts[c]  # area(+unlocated) × year × channel
    total = int(counts.sum())
    by_channel = counts.sum(axis=(0, 1))
    shares = {ch: float(by_channel[j] / total) if total else 0.0 for j, ch in enumerate(CHANNELS)}
    by_area_year = counts[:-1].sum(axis=2)
    by_area = by_area_year.sum(axis=1)
    located = int(by_area.sum())
    size = top_decile_size(by_area.size)
    return CategoryAudit(
        category=cube.categories[c],
        total=total,
        channel_shares=shares,
        discovered=shares[Channel.POLICE_INITIATED.value] >= DISCOVERED_THRESHOLD,
        gini=gini(by_area),
        top10_share=float(np.sort(by_area)[-size:].sum() / located) if located else 0.0,
        persistence=persistence(by_area_year, size),
        areas=int(by_area.size),
        areas_with_records=int((by_area > 0).sum()),
        unlocated=total - located,
    )


def _suppress_shares(counts: np.ndarray, k: int) -> list[bool]:
    """Which channel shares of one area to hide: primary (0 < count < k) and, when exactly one
    is hidden, the next smallest non-zero one, so that 1 − the shown shares reveals neither."""
    hidden = [0 < int(v) < k for v in counts]
    if sum(hidden) == 1:
        candidates = [j for j, v in enumerate(counts) if v > 0 and not hidden[j]]
        if candidates:
            hidden[min(candidates, key=lambda j: counts[j])] = True
    return hidden


def _channel_mix(cube: _Cube, level: _Level, k: int, analyst: bool) -> tuple[list[AreaChannelMix], int]:
    by_area = cube.counts[:, :-1].sum(axis=(0, 2))  # area × channel
    out: list[AreaChannelMix] = []
    suppressed = 0
    for a, key in enumerate(cube.areas):
        row = by_area[a]
        total = int(row.sum())
        if not analyst and total < k:
            suppressed += 1
            out.append(AreaChannelMix(key, _label(level, key), None, None, True))
            continue
        hidden = [False] * len(CHANNELS) if analyst else _suppress_shares(row, k)
        shares = {ch: None if hidden[j] else float(row[j] / total) for j, ch in enumerate(CHANNELS)}
        out.append(AreaChannelMix(key, _label(level, key), total, shares, False))
    return out, suppressed


def _coverage(cube: _Cube) -> list[YearCoverage]:
    by_year = cube.counts.sum(axis=(0, 1))  # year × channel
    located = cube.located.sum(axis=0)
    coded = cube.coded.sum(axis=0)
    out = []
    for y, year in enumerate(cube.years):
        records = int(by_year[y].sum())
        out.append(
            YearCoverage(
                year=year,
                records=records,
                located_share=float(located[y] / records),
                coded_share=float(coded[y] / records),
                channel_shares={ch: float(by_year[y, j] / records) for j, ch in enumerate(CHANNELS)},
            )
        )
    return out


def _pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def _year_span(years: list[int]) -> str:
    return str(years[0]) if len(years) == 1 else f"{years[0]}–{years[-1]}"


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(first, last) index of each run of consecutive True values."""
    runs: list[tuple[int, int]] = []
    for i, flag in enumerate(flags):
        if flag and runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        elif flag:
            runs.append((i, i))
    return runs


def _absence_notes(what: str, years: list[int], present: list[bool]) -> list[str]:
    notes = []
    for first, last in _runs([not p for p in present]):
        if first == 0 and last == len(years) - 1:
            continue
        if first == 0:
            notes.append(f"{what} absent before {years[last + 1]}")
        elif last == len(years) - 1:
            notes.append(f"{what} absent from {years[first]}")
        else:
            notes.append(f"{what} absent in {_year_span(years[first : last + 1])}")
    return notes


def _share_notes(what: str, years: list[int], shares: list[float]) -> list[str]:
    """Absences (a share of exactly 0 while other years have some) and steps ≥ DRIFT_STEP."""
    if max(shares) < 0.05:
        return []  # a channel or field this source never really uses: nothing drifts
    notes = _absence_notes(what, years, [s > 0 for s in shares])
    for y in range(1, len(years)):
        before, after = shares[y - 1], shares[y]
        if before > 0 and after > 0 and abs(after - before) >= DRIFT_STEP:
            verb = "rises" if after > before else "falls"
            notes.append(
                f"share of records with {what} {verb} from {_pct(before)} in {years[y - 1]} to {_pct(after)} in {years[y]}"
            )
    return notes


def drift_notes(
    coverage: list[YearCoverage], category_years: Mapping[str, Sequence[int]] | None = None
) -> list[str]:
    """Plain-language notes on format and coverage drift over the years.

    `category_years`: for each category worth a note (at least k records), its count per year
    in `coverage` order; categories that appear or disappear are a category-scheme break.
    """
    if not coverage:
        return []
    years = [c.year for c in coverage]
    notes: list[str] = []
    gaps = [y for y in range(years[0], years[-1] + 1) if y not in set(years)]
    if gaps:
        notes.append(f"no records at all in {', '.join(str(y) for y in gaps)}")
    median = float(np.median([c.records for c in coverage]))
    for c in coverage:
        if c.records < PARTIAL_YEAR * median:
            notes.append(
                f"{c.year} has {_pct(c.records / median)} of a median year's records (partial year or missing source files?)"
            )
    notes += _share_notes("coordinates", years, [c.located_share for c in coverage])
    notes += _share_notes("an area code", years, [c.coded_share for c in coverage])
    for ch in CHANNELS:
        notes += _share_notes(f"channel {ch}", years, [c.channel_shares.get(ch, 0.0) for c in coverage])
    for category, per_year in (category_years or {}).items():
        notes += _absence_notes(f"category {category}", years, [v > 0 for v in per_year])
    return notes


def audit(
    store: ObservatoryStore,
    dataset: str,
    *,
    level: str = "h3:8",
    layers: Mapping[str, Layer] | None = None,
    k: int,
    analyst: bool = False,
) -> DatasetAudit:
    """Audit how `dataset`'s records were produced, per category, over the areas of `level`
    ("h3:<resolution>" or "layer:<id>" with the layer in `layers`).

    One aggregation query (category × area × year × channel) feeds every figure, so the audit
    of the 1.4 M Chicago rows takes well under a second on beats.
    """
    _check_k(k, analyst)
    lvl = _parse_level(level, layers or {}, analyst)
    cube = _dataset_cube(store, dataset, lvl)
    rows = [_category_audit(cube, c) for c in range(len(cube.categories))]
    kept = [r for r in rows if analyst or r.total >= k]
    kept.sort(key=lambda r: (-r.total, r.category))
    mix, suppressed_areas = _channel_mix(cube, lvl, k, analyst)

    index = {name: i for i, name in enumerate(cube.categories)}
    areas_by_cat = cube.counts[:, :-1].sum(axis=(2, 3))  # category × area
    size = top_decile_size(len(cube.areas))
    tops = {r.category: top_areas(areas_by_cat[index[r.category]], size) for r in kept}
    discovered = [r.category for r in kept if r.discovered]
    reported = [r.category for r in kept if not r.discovered]
    overlaps = [CategoryOverlap(d, r, jaccard(tops[d], tops[r])) for d in discovered for r in reported]
    pooled: float | None = None
    if discovered and reported:
        d_sum = areas_by_cat[[index[c] for c in discovered]].sum(axis=0)
        r_sum = areas_by_cat[[index[c] for c in reported]].sum(axis=0)
        pooled = jaccard(top_areas(d_sum, size), top_areas(r_sum, size))

    coverage = _coverage(cube)
    per_year = cube.counts.sum(axis=(1, 3))  # category × year
    notable = {r.category: per_year[index[r.category]].tolist() for r in kept if r.total >= k}
    return DatasetAudit(
        dataset=dataset,
        level=lvl.text,
        k=k,
        analyst=analyst,
        categories=kept,
        suppressed_categories=len(rows) - len(kept),
        areas=len(cube.areas),
        channel_mix=mix,
        suppressed_areas=suppressed_areas,
        coverage=coverage,
        drift_notes=drift_notes(coverage, notable),
        overlaps=overlaps,
        discovered_vs_reported=pooled,
    )


# --------------------------------------------------------------------------------------------
# Hotspots: the only ranking, always with its audit and its feedback loop


@dataclass(frozen=True)
class RankedArea:
    rank: int
    key: str
    label: str | None
    count: int


@dataclass(frozen=True)
class Hotspots:
    """A ranking of areas that cannot be read without what produced it (OB-05)."""

    dataset: str
    category: str
    level: str
    k: int
    analyst: bool
    ranking: list[RankedArea]
    excluded_below_k: int
    """Areas left out of the ranking because they hold fewer than k records (not analyst)."""
    audit: CategoryAudit
    naive: FeedbackResult
    """Patrols sent to the ranked areas, the ranking refreshed from every new record."""
    mitigated: FeedbackResult
    """The same patrols, the ranking refreshed from reported incidents only."""
    rounds_unit: str
    warning: str | None
    """Set when the category is discovered: the ranking maps police activity."""
    caveat: str = CAVEAT


def _simulation_rates(cube: _Cube, c: int, days: int) -> np.ndarray:
    """True rates per area and day for the simulation: the category's reported (not
    police-initiated) records, add-one smoothed, scaled to the category's daily total.

    The smoothing matters for discovered categories: with a few hundred reported drug records
    over 274 beats the rates come out nearly even, the assumption Lum & Isaac's survey data
    supported for drug use. A victim-reported category keeps its own geography."""
    police = CHANNELS.index(Channel.POLICE_INITIATED.value)
    counts = cube.counts[c, :-1]
    reported = counts.sum(axis=1).sum(axis=1) - counts[:, :, police].sum(axis=1)
    smoothed = reported.astype(float) + 1.0
    return smoothed / smoothed.sum() * (counts.sum() / max(days, 1))


def hotspots(
    store: ObservatoryStore,
    filters: Filters,
    level: str,
    *,
    top: int = 10,
    k: int,
    layers: Mapping[str, Layer] | None = None,
    analyst: bool = False,
    include_discovered: bool = False,
    rounds: int = 365,
    seed: int = 0,
) -> Hotspots:
    """Rank the areas of `level` by `filters.category`'s count, bundled with the category's audit
    and a feedback-loop simulation seeded from the data. Outside the analyst role, areas with
    fewer than k records are never ranked.

    A discovered category (mostly police-initiated) is refused unless `include_discovered`:
    its ranking maps where police looked, and sending patrols there is the loop Ensign et al.
    describe, so it is left out of rankings by default (research note §6.1, OB-05). Asked for
    anyway, it comes with the same audit, warning and simulation as any other.

    The simulation sends `top` areas' worth of patrols to the `top` ranked areas for `rounds`
    days, with the category's own police-initiated share as the share of incidents that only a
    patrol can find, and compares a ranking refreshed from every record (naive) with one
    refreshed from reported incidents only (mitigated).
    """
    if filters.category is None:
        raise ObservatoryError("a hotspot ranking needs one category; choose it in the filters")
    if top < 1:
        raise ObservatoryError(f"top = {top}: rank at least one area")
    _check_k(k, analyst)
    lvl = _parse_level(level, layers or {}, analyst)
    category = filters.category

    # The audit row describes the category over the whole dataset (persistence needs years,
    # Gini needs every area of the dataset); the ranking follows the filters.
    whole = _dataset_cube(store, filters.dataset, lvl)
    if category not in whole.categories:
        raise ObservatoryError(f"category {category!r} has no records in {filters.dataset}")
    c = whole.categories.index(category)
    row = _category_audit(whole, c)
    if row.discovered and not include_discovered:
        raise DiscoveredCategoryError(
            f"{category} is {row.police_initiated_share * 100:.1f} % police-initiated: a ranking would "
            "map where police looked; pass include_discovered to rank it anyway, with the audit"
        )

    ranked = _cube(store, filters, lvl)
    by_area = ranked.counts[0, :-1].sum(axis=(1, 2)) if ranked.categories else np.zeros(0, dtype=np.int64)
    eligible = by_area >= (1 if analyst else k)
    excluded = int(((by_area > 0) & ~eligible).sum())
    order = [i for i in np.lexsort((np.arange(by_area.size), -by_area)) if eligible[i]][:top]
    ranking = [
        RankedArea(rank=r + 1, key=ranked.areas[i], label=_label(lvl, ranked.areas[i]), count=int(by_area[i]))
        for r, i in enumerate(order)
    ]

    span = store.query(
        "SELECT min(ts), max(ts) FROM incidents WHERE dataset = $dataset", {"dataset": filters.dataset}
    )[0]
    rates = _simulation_rates(whole, c, (span[1] - span[0]).days + 1)
    sim_top = min(top, rates.size)
    share = row.police_initiated_share
    common: dict[str, Any] = {
        "rounds": rounds,
        "discovered_share": share,
        "allocation": Allocation.TOP,
        "top": sim_top,
        "patrols": float(sim_top),
        "seed": seed,
    }
    warning = None
    if row.discovered:
        warning = (
            f"{category}: {share * 100:.1f} % of the records are police-initiated; this ranking shows "
            "where police looked (police activity), not where the offence is more common, and "
            "patrolling it feeds the loop simulated below"
        )
    return Hotspots(
        dataset=filters.dataset,
        category=category,
        level=lvl.text,
        k=k,
        analyst=analyst,
        ranking=ranking,
        excluded_below_k=excluded,
        audit=row,
        naive=feedback_loop(rates, update=Update.NAIVE, **common),
        mitigated=feedback_loop(rates, update=Update.REPORTED, **common),
        rounds_unit="day",
        warning=warning,
    )
