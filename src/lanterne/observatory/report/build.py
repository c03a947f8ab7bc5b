"""Building a report: the figures of one area and period of one dataset, gathered from the
aggregation, the suppression, the time series and the bias audit, as the console would publish
them to someone outside the system (OB-08), with the provenance that lets two reports be compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from h3.api import basic_int as h3int

from lanterne.config.schema import BoundaryLayer, ObservatorySettings
from lanterne.observatory.aggregate import (
    AreaRef,
    Filters,
    Grain,
    categories,
    counts_by_h3,
    counts_by_layer,
    profile,
    resolution_of,
    series,
)
from lanterne.observatory.bias import CategoryAudit, DiscoveredCategoryError, audit, hotspots
from lanterne.observatory.layers import Layer, load_layer
from lanterne.observatory.report.layout import class_breaks
from lanterne.observatory.report.model import CAVEAT, MapArea, Profile, Report, ReportMap, ReportSeries
from lanterne.observatory.store import ObservatoryError, ObservatoryStore, lanterne_version
from lanterne.observatory.suppression import suppress
from lanterne.observatory.timeseries import Anomalies, Anomaly, decompose, find_anomalies

DOW = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

DEFAULT_H3_LEVEL = "h3:8"
"""About 0.7 km² a cell: fine enough to show a neighbourhood, coarse enough that most cells of a
month hold more than k."""


def build_report(
    store: ObservatoryStore,
    cfg_observatory: ObservatorySettings,
    *,
    dataset: str,
    category: str | None = None,
    area: AreaRef | None = None,
    period: tuple[datetime, datetime],
    level: str | None = None,
    top: int = 10,
    now: datetime | None = None,
) -> Report:
    """Compute everything a report shows for `dataset` (one `category` or all), inside `area` (a
    layer's area or an H3 cell; None for the whole dataset) over `period` = [start, end) in the
    dataset's local time, mapped at `level` (`h3:<res>` or `layer:<id>`; default: the layer the
    dataset records its areas in, else h3:8, and h3:8 inside an area).

    Always suppressed with k = `min_count`: a report leaves the system whoever asks for it (OB-08).
    `top` areas are ranked (0: no ranking), always beside the feedback-loop simulation (OB-05).
    """
    now = now or datetime.now(UTC)
    k = cfg_observatory.min_count
    start, end = period
    if end <= start:
        raise ObservatoryError("the report period is empty: its end must come after its start")
    sheet = _dataset_sheet(store, dataset, category)
    settings = {layer.id: layer for layer in cfg_observatory.layers}
    layer = partial(_configured_layer, settings)
    area_label = _area_label(area, layer)
    level = level or _default_level(store, dataset, area, settings)
    filters = Filters(dataset=dataset, category=category, start=start, end=end)

    report_map = _map(store, filters, level, area, k, layer)
    context = Filters(dataset=dataset, category=category)
    precision = str(sheet["time_precision"])
    monthly, _ = _series(store, context, Grain.MONTH, area, period, k, precision)
    weekly, weekly_context = _series(store, context, Grain.WEEK, area, period, k, precision)
    found = _anomalies(weekly_context, period)
    profiles = _profiles(store, filters, precision, k, area)

    audit_level = level if level.startswith("layer:") else DEFAULT_H3_LEVEL
    audit_rows, audit_notes = _audit(store, dataset, category, audit_level, settings, k)
    ranking, ranking_notes = _ranking(store, filters, report_map, top, k, area, settings)

    layer_ids = sorted(
        {x.removeprefix("layer:") for x in (level, area.level if area else "") if x.startswith("layer:")}
    )
    layer_hashes = {lid: layer(lid).sha256 for lid in layer_ids}
    parameters: tuple[tuple[str, str], ...] = (
        ("dataset", dataset),
        ("category", category or "all categories"),
        ("area", "whole dataset" if area is None else f"{area.level}:{area.key}"),
        ("period", f"[{start.isoformat()}, {end.isoformat()}) local time ({sheet['time_zone']})"),
        ("map level", level),
        ("small-cell threshold k", str(k)),
        ("ranking", f"top {top}" if top else "none"),
        ("anomalies", f"weekly, robust z ≥ {ANOMALY_THRESHOLD}, baseline from the whole dataset"),
        ("bias audit level", audit_level),
    )
    version = lanterne_version()
    what = category or "all categories"
    return Report(
        title=f"{sheet['title']}: {what}",
        subtitle=f"{area_label[0].upper() + area_label[1:]}, {_period_text(period)}",
        generated_at=now,
        dataset=dataset,
        dataset_title=str(sheet["title"]),
        category=category,
        area=area,
        area_label=area_label,
        period=period,
        k=k,
        caveat=CAVEAT,
        provenance=_provenance(sheet, dataset, layer_hashes),
        map=report_map,
        monthly=monthly,
        weekly=weekly,
        profiles=profiles,
        anomalies=tuple(found),
        audit_rows=tuple(audit_rows),
        audit_notes=tuple(audit_notes),
        ranking=tuple(ranking),
        ranking_notes=tuple(ranking_notes),
        suppressed=tuple(a.label for a in report_map.areas if a.suppressed),
        parameters=parameters,
        lanterne_version=version,
        inputs_sha256=_inputs_sha256(sheet, layer_hashes, parameters, version),
        extra={"anomaly_notes": getattr(found, "notes", ())},
    )


def _dataset_sheet(store: ObservatoryStore, dataset: str, category: str | None) -> dict[str, Any]:
    """The dataset's provenance row, once the request is known to make sense: an incidents
    dataset, holding `category` when one is asked for."""
    sheet = next((d for d in store.datasets() if d["id"] == dataset), None)
    if sheet is None:
        known = ", ".join(d["id"] for d in store.datasets()) or "none yet"
        raise ObservatoryError(f"no dataset {dataset!r} in the observatory store (known: {known})")
    if sheet["kind"] != "incidents":
        raise ObservatoryError(f"dataset {dataset!r} holds measures; a report maps an incidents dataset")
    if category is not None and not store.query(
        "SELECT 1 FROM incidents WHERE dataset = $d AND category = $c LIMIT 1", {"d": dataset, "c": category}
    ):
        some = ", ".join(name for name, _ in categories(store, dataset)[:5])
        raise ObservatoryError(f"dataset {dataset!r} has no category {category!r}; the largest are: {some}")
    return sheet


def _configured_layer(settings: dict[str, BoundaryLayer], layer_id: str) -> Layer:
    if layer_id not in settings:
        raise ObservatoryError(
            f"layer {layer_id!r} is not configured; add it to observatory.layers or use one of: "
            f"{', '.join(settings) or 'none configured'}"
        )
    return load_layer(settings[layer_id])


def _area_label(area: AreaRef | None, layer: Callable[[str], Layer]) -> str:
    """How the report names its area: a layer's code with its name, an H3 cell, or the whole dataset."""
    if area is None:
        return "whole dataset"
    if area.level.startswith("layer:"):
        lay = layer(area.level.removeprefix("layer:"))
        if area.key not in lay.codes:
            sample = ", ".join(lay.codes[:5])
            raise ObservatoryError(f"layer {lay.id} has no area {area.key!r}; codes look like {sample}")
        name = lay.labels.get(area.key, area.key)
        return f"{lay.id} {area.key}" + (f" ({name})" if name != area.key else "")
    if area.level.startswith("h3:"):
        return f"H3 cell {area.key}"
    raise ObservatoryError(f"area {area.level}:{area.key} is neither layer:<id>:<code> nor h3:<res>:<cell>")


def _profiles(
    store: ObservatoryStore, filters: Filters, precision: str, k: int, area: AreaRef | None
) -> tuple[Profile, ...]:
    """By hour, day of the week and month of the year, leaving out those finer than the dataset's
    time precision (a date-only source has no hour of the day)."""
    profiles = []
    for by, title, labels in (
        ("hour", "Incidents by hour of the day (local time)", tuple(f"{h:02d}" for h in range(24))),
        ("dow", "Incidents by day of the week", DOW),
        ("month", "Incidents by month of the year", MONTHS),
    ):
        if by == "hour" and precision not in ("minute", "hour"):
            continue
        if by == "dow" and precision in ("month", "year"):
            continue
        values = profile(store, filters, by, k=k, area=area)  # type: ignore[arg-type]
        profiles.append(Profile(title, labels, tuple(c for _, c in values)))
    return tuple(profiles)


def _provenance(
    sheet: dict[str, Any], dataset: str, layer_hashes: dict[str, str]
) -> tuple[tuple[str, str], ...]:
    """Where the figures come from: the source, its mapping, the ingest and the boundary layers."""
    provenance: list[tuple[str, str]] = [
        ("dataset", f"{sheet['title']} ({dataset})"),
        ("origin", str(sheet["origin"])),
        ("licence", str(sheet["licence"])),
        ("source file", Path(str(sheet["source_file"])).name),
        ("source sha256", str(sheet["sha256"])),
        ("mapping sha256", str(sheet["mapping_sha256"])),
        (
            "rows",
            f"{sheet['rows_read']:,} read, {sheet['rows_loaded']:,} loaded, {sheet['rows_rejected']:,} rejected "
            "(each rejected row is listed with its reason in the store)",
        ),
        ("time", f"{sheet['time_zone']}, recorded to the {sheet['time_precision']}"),
        (
            "ingested",
            f"{sheet['ingested_at']:%Y-%m-%d %H:%M} by {sheet['ingested_by']} (Lanterne {sheet['lanterne_version']})",
        ),
    ]
    provenance += [(f"layer {lid} sha256", sha) for lid, sha in layer_hashes.items()]
    return tuple(provenance)


def _inputs_sha256(
    sheet: dict[str, Any],
    layer_hashes: dict[str, str],
    parameters: tuple[tuple[str, str], ...],
    version: str,
) -> str:
    """One hash of everything the figures depend on, so that two reports compare by one line."""
    inputs = {
        "dataset_sha256": sheet["sha256"],
        "mapping_sha256": sheet["mapping_sha256"],
        "layers": layer_hashes,
        "parameters": dict(parameters),
        "lanterne_version": version,
    }
    return hashlib.sha256(
        json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()


ANOMALY_THRESHOLD = 3.5


def _default_level(
    store: ObservatoryStore, dataset: str, area: AreaRef | None, settings: dict[str, BoundaryLayer]
) -> str:
    """The layer the dataset records its areas in (Chicago's beats), so the map shows the areas
    the source itself used; H3 inside an area, where one polygon would say nothing."""
    if area is not None:
        return DEFAULT_H3_LEVEL
    rows = store.query(
        "SELECT area_layer, count(*) AS n FROM incidents WHERE dataset = $d AND area_layer IS NOT NULL "
        "GROUP BY area_layer ORDER BY n DESC",
        {"d": dataset},
    )
    for layer_id, _ in rows:
        if layer_id in settings:
            return f"layer:{layer_id}"
    return DEFAULT_H3_LEVEL


def _map(
    store: ObservatoryStore,
    filters: Filters,
    level: str,
    area: AreaRef | None,
    k: int,
    layer: Callable[[str], Layer],
) -> ReportMap:
    """The map at `level`, as the console publishes it for the same filters.

    Inside an area, the report shows the part of the whole map that lies in it (an H3 cell's
    centre, a layer polygon's inner point) rather than suppressing a sub-map of its own: a cell
    the console hides for secondary suppression then stays hidden here too, and two
    publications of the same cells can never be combined to recover one.
    """
    if level.startswith("h3:"):
        amap = counts_by_h3(store, filters, resolution_of(level), k=k)
        rings = {c.key: _h3_rings(c.key) for c in amap.cells}
        points = {key: _centre(r[0]) for key, r in rings.items()}
    elif level.startswith("layer:"):
        lay: Layer = layer(level.removeprefix("layer:"))
        amap = counts_by_layer(store, filters, lay, k=k)
        rings = {f["properties"]["code"]: _rings_of(f["geometry"]) for f in lay.geojson["features"]}
        points = {
            code: (p.x, p.y)
            for code, p in zip(lay.codes, shapely.point_on_surface(lay.polygons), strict=True)
        }
    else:
        raise ObservatoryError(f"map level {level!r} is not h3:<resolution> or layer:<id>")
    cells = amap.cells
    total, unlocated = amap.total, amap.unlocated
    if area is not None:
        inside = _inside(area, layer, points)
        cells = [c for c in cells if c.key in inside]
        # The sum of a part of the map is not published anywhere: the area's total is the sum of
        # its series, counted by the area's own rule (recorded code first).
        total, unlocated = None, None
    areas = tuple(
        MapArea(c.key, c.label or c.key, c.count, c.suppressed, rings.get(c.key, ())) for c in cells
    )
    return ReportMap(
        level=amap.level,
        areas=areas,
        total=total,
        suppressed_cells=sum(1 for a in areas if a.suppressed),
        unlocated=unlocated,
        breaks=class_breaks([a.count for a in areas if a.count is not None], k),
    )


def _centre(ring: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)


def _inside(area: AreaRef, layer: Callable[[str], Layer], points: dict[str, tuple[float, float]]) -> set[str]:
    """Keys of the map whose inner point lies in `area` (a layer polygon or an H3 cell)."""
    if area.level.startswith("h3:"):
        cell = h3int.str_to_int(area.key)
        res = resolution_of(area.level)
        return {key for key, (lon, lat) in points.items() if h3int.latlng_to_cell(lat, lon, res) == cell}
    lay: Layer = layer(area.level.removeprefix("layer:"))
    polygon = lay.polygons[lay.codes.index(area.key)]
    keys = list(points)
    xy = np.array([points[key] for key in keys], dtype=np.float64).reshape(-1, 2)
    hit = shapely.contains_xy(polygon, xy[:, 0], xy[:, 1]) if len(keys) else np.zeros(0, dtype=bool)
    return {key for key, h in zip(keys, hit, strict=True) if h}


_GRAIN_NEEDS = {Grain.WEEK: ("minute", "hour", "day"), Grain.MONTH: ("minute", "hour", "day", "month")}


@dataclass(frozen=True)
class _Context:
    """A whole-dataset series as published (suppressed), the baseline for trend and anomalies."""

    starts: list[datetime]
    values: list[int | None]


def _series(
    store: ObservatoryStore,
    context: Filters,
    grain: Grain,
    area: AreaRef | None,
    period: tuple[datetime, datetime],
    k: int,
    precision: str,
) -> tuple[ReportSeries, _Context]:
    """The period's slice of the whole-dataset series, with the trend fitted on the whole series.

    Counted exactly, then suppressed here with two groups: the whole series (its sum is the
    dataset total) and the period's slice (its sum is the map total). B's `series` would only
    know the first, and a slice with a single hidden month beside a published map total gives
    that month back. The trend is fitted on the suppressed values only, so it carries nothing
    the published counts do not.
    """
    if precision not in _GRAIN_NEEDS[grain]:
        note = f"No {grain.value}ly series: the dataset records time to the {precision}."
        return ReportSeries(grain, (), (), (), note), _Context([], [])
    start, end = period
    points = series(store, context, grain, area=area, k=k, analyst=True)
    published = series(store, context, grain, area=area, k=k)
    starts = [p.start for p in points]
    counts = np.array([p.count or 0 for p in points], dtype=np.int64)
    width = timedelta(days=7) if grain is Grain.WEEK else timedelta(0)
    inside = np.array([s < end and (s >= start or s + width > start) for s in starts], dtype=bool)
    groups = [np.arange(len(counts))]
    if inside.any():
        groups.append(np.flatnonzero(inside))
    hidden = suppress(counts, groups, k) if len(counts) else np.zeros(0, dtype=bool)
    # Whatever the console hides stays hidden: the union of two safe suppressions is safe for
    # every group of either (more hidden cells, never fewer).
    hidden |= np.array([p.suppressed for p in published], dtype=bool)
    values: list[int | None] = [None if h else int(c) for c, h in zip(counts, hidden, strict=True)]
    trend: list[float | None] = [None] * len(values)
    note = None
    per_year = 52 if grain is Grain.WEEK else 12
    if len(values) < 2 * per_year:
        # A year-long moving mean over less than two years is one flat average: drawn as a
        # "trend" it would look like a finding.
        note = f"No {grain.value}ly trend line: the dataset covers less than two years."
    else:
        try:
            d = decompose(starts, values, grain)
            trend = [None if not np.isfinite(t) else float(t) for t in d.trend]
        except (ValueError, ObservatoryError) as exc:
            note = f"No trend: {exc}."
    idx = np.flatnonzero(inside)
    return (
        ReportSeries(
            grain,
            tuple(starts[i] for i in idx),
            tuple(values[i] for i in idx),
            tuple(trend[i] for i in idx),
            note,
        ),
        _Context(starts, values),
    )


def _anomalies(context: _Context, period: tuple[datetime, datetime]) -> list[Anomaly]:
    """Weekly anomalies judged against the whole dataset (several years give the season's usual
    level), listed for the weeks of the period only."""
    if not context.starts:
        return []
    found = find_anomalies(context.starts, context.values, Grain.WEEK, threshold=ANOMALY_THRESHOLD)
    start, end = period
    kept = Anomalies(
        sorted((a for a in found if start <= a.start < end), key=lambda a: a.start),
        notes=getattr(found, "notes", ()),
    )
    return kept


def _audit(
    store: ObservatoryStore,
    dataset: str,
    category: str | None,
    level: str,
    settings: dict[str, BoundaryLayer],
    k: int,
) -> tuple[list[CategoryAudit], list[str]]:
    """The bias audit of the categories shown (one, or all), over the whole dataset: persistence
    needs several years, and a category's recording process does not change with the window."""
    layers = {lid: load_layer(s) for lid, s in settings.items() if level == f"layer:{lid}"}
    result = audit(store, dataset, level=level, layers=layers, k=k)
    if category is None:
        rows = list(result.categories)
    else:
        rows = [r for r in result.categories if r.category == category]
    notes = [
        f"Computed over the whole dataset (every year), at level {result.level} over {result.areas} areas. "
        "A category is recorded as discovered when police initiated at least half of its records: its map "
        "shows police activity, not where the offence is more common.",
    ]
    if category is not None and not rows:
        notes.append(f"{category} has fewer than {k} records in the whole dataset: its audit is withheld.")
    if result.suppressed_categories:
        notes.append(f"{result.suppressed_categories} categories with fewer than {k} records are left out.")
    if result.discovered_vs_reported is not None:
        notes.append(
            "The top 10 % of areas for discovered categories and for reported ones overlap with a Jaccard "
            f"index of {result.discovered_vs_reported:.2f} (1 = the same areas, 0 = none in common)."
        )
    notes.extend(result.drift_notes)
    return rows, notes


def _ranking(
    store: ObservatoryStore,
    filters: Filters,
    report_map: ReportMap,
    top: int,
    k: int,
    area: AreaRef | None,
    settings: dict[str, BoundaryLayer],
) -> tuple[list[tuple[str, int]], list[str]]:
    """The top areas of the map, only with the feedback-loop simulation (OB-05); counts as the
    map publishes them (an area the map hides for secondary suppression is not ranked)."""
    if top <= 0:
        return [], []
    if filters.category is None:
        return [], ["No ranking of areas: a ranking is only given for one category, with its audit."]
    if area is not None:
        return [], ["No ranking of areas: a ranking is given for a whole dataset's map, not inside one area."]
    level = report_map.level
    layers = {lid: load_layer(s) for lid, s in settings.items() if level == f"layer:{lid}"}
    try:
        # A report never ranks a category mostly found by police activity (OB-05): it would map
        # where police looked. The refusal is printed in its place.
        hs = hotspots(store, filters, level, top=top, k=k, layers=layers, include_discovered=False)
    except DiscoveredCategoryError as refused:
        return [], [f"No ranking of areas: {refused}."]
    shown = {a.key: a for a in report_map.areas if not a.suppressed and a.count is not None}
    ranking = [(shown[r.key].label, shown[r.key].count or 0) for r in hs.ranking if r.key in shown]
    notes = []
    if hs.warning:
        notes.append(hs.warning + ".")
    naive, mitigated = hs.naive, hs.mitigated
    notes.append(
        f"Feedback-loop simulation (Ensign et al. 2018), {naive.rounds} {hs.rounds_unit}s, patrols sent to "
        f"the top {naive.top} areas, {100 * naive.discovered_share:.0f} % of incidents found only by a patrol: "
        f"ranked again from every new record, the top {naive.top} areas end up with "
        f"{100 * naive.final_record_top_share:.0f} % of the records while they hold "
        f"{100 * naive.true_top_share:.0f} % of the simulated true incidents (gap between records and truth: "
        f"{naive.final_estimate_gap:.2f}); ranked from reported incidents only, "
        f"{100 * mitigated.final_record_top_share:.0f} % (gap {mitigated.final_estimate_gap:.2f})."
    )
    if hs.excluded_below_k:
        notes.append(f"{hs.excluded_below_k} areas with fewer than {k} records are never ranked.")
    notes.append(hs.caveat)
    return ranking, notes


def _rings_of(geometry: dict[str, Any]) -> tuple[tuple[tuple[float, float], ...], ...]:
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return tuple(tuple((float(x), float(y)) for x, y, *_ in poly[0]) for poly in polygons if poly)


def _h3_rings(key: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    cell = int(key, 16) if isinstance(key, str) else int(key)
    return (tuple((lng, lat) for lat, lng in h3int.cell_to_boundary(cell)),)


def _period_text(period: tuple[datetime, datetime]) -> str:
    start, end = period
    last = end - timedelta(days=1)
    return f"{start:%Y-%m-%d} to {last:%Y-%m-%d}"
