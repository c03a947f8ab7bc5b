"""`lanterne observatory report`: one area and period of one dataset, as a self-contained HTML
file and a PDF with the same content, for people outside the system (a council, a newspaper,
an inspection).

A report leaves the system, so it is built as a publication (OB-08): every count goes through
small-cell suppression with the configured k whatever the role of whoever asks, the caveat that
recorded incidents measure reporting and policing activity sits on the first page (OB-07), the
bias audit of the categories shown comes with it (OB-06), and a ranking of areas, when there is
one, comes with the feedback-loop simulation (OB-05). The last section is a provenance record:
the hashes of the source file, the mapping and the boundary layer, the parameters and the code
version, hashed together so that two reports can be compared by one line.

The HTML has no script and no external URL (it opens offline and passes any content security
policy); the map and charts are inline SVG. The PDF draws the same map as polygons and the same
charts as lines and rectangles, so neither depends on a browser.

This module says what a report is and builds it; `report_layout` lays out what both formats draw,
`report_html` and `report_pdf` render it (their functions are importable from here too).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from h3.api import basic_int as h3int

from lanterne.config.schema import ObservatorySettings
from lanterne.observatory.aggregate import (
    AreaRef,
    Filters,
    Grain,
    categories,
    counts_by_h3,
    counts_by_layer,
    period_end,
    profile,
    resolution_of,
    series,
)
from lanterne.observatory.bias import CategoryAudit, DiscoveredCategoryError, audit, hotspots
from lanterne.observatory.layers import Layer, load_layer
from lanterne.observatory.report_html import render_html as render_html
from lanterne.observatory.report_html import write_html as write_html
from lanterne.observatory.report_layout import class_breaks
from lanterne.observatory.report_pdf import render_pdf as render_pdf
from lanterne.observatory.report_pdf import write_pdf as write_pdf
from lanterne.observatory.store import ObservatoryError, ObservatoryStore
from lanterne.observatory.suppression import suppress
from lanterne.observatory.timeseries import Anomalies, Anomaly, decompose, find_anomalies

HTML_FILE = "report.html"
PDF_FILE = "report.pdf"

CAVEAT = (
    "Recorded incidents measure what was reported to and recorded by the police and the city, and "
    "where officers, cameras and patrols were looking: they are not the true rate of crime or "
    "nuisance. Categories that police activity produces (drug offences, weapons, prostitution) map "
    "enforcement, not offending. Compare areas only with the bias audit below, and never use these "
    "counts to judge a person."
)
"""OB-07: on the first page of every report, above the map, in the reader's way rather than in a footnote."""

DOW = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class MapArea:
    """One polygon of the map: a boundary area or an H3 cell, with its published count."""

    key: str
    label: str
    count: int | None
    """None when suppressed."""
    suppressed: bool
    rings: tuple[tuple[tuple[float, float], ...], ...]
    """Outer rings as (lon, lat); holes are left out, a choropleth does not need them."""

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.count is None else poisson_interval(self.count)


@dataclass(frozen=True)
class ReportMap:
    level: str
    areas: tuple[MapArea, ...]
    total: int | None
    """The published total of the map (None when it would reveal a suppressed cell)."""
    suppressed_cells: int
    unlocated: int | None
    """Rows without a place on this map; None when hidden or when the map is part of a larger one."""
    breaks: tuple[int, ...]
    """Lower bounds of the colour classes (the first is k)."""


@dataclass(frozen=True)
class ReportSeries:
    grain: Grain
    starts: tuple[datetime, ...]
    counts: tuple[int | None, ...]
    trend: tuple[float | None, ...]
    note: str | None = None


@dataclass(frozen=True)
class Profile:
    title: str
    labels: tuple[str, ...]
    counts: tuple[int | None, ...]


@dataclass(frozen=True)
class Report:
    """Everything a report shows, computed once and rendered twice (HTML, PDF)."""

    title: str
    subtitle: str
    generated_at: datetime
    dataset: str
    dataset_title: str
    category: str | None
    area: AreaRef | None
    area_label: str
    period: tuple[datetime, datetime]
    k: int
    caveat: str
    provenance: tuple[tuple[str, str], ...]
    map: ReportMap
    monthly: ReportSeries
    weekly: ReportSeries
    profiles: tuple[Profile, ...]
    anomalies: tuple[Anomaly, ...]
    audit_rows: tuple[CategoryAudit, ...]
    audit_notes: tuple[str, ...]
    ranking: tuple[tuple[str, int], ...]
    ranking_notes: tuple[str, ...]
    suppressed: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    lanterne_version: str
    inputs_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)


def poisson_interval(n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % interval of a Poisson count (Wilson-Hilferty approximation of Garwood's exact interval,
    within 1 % of it from n = 1): the uncertainty OB-07 asks to show beside every count."""
    if n <= 0:
        return 0.0, 3.689
    lower = n * (1 - 1 / (9 * n) - z / (3 * math.sqrt(n))) ** 3
    m = n + 1
    upper = m * (1 - 1 / (9 * m) + z / (3 * math.sqrt(m))) ** 3
    return max(lower, 0.0), upper


def lanterne_version() -> str:
    try:
        return importlib.metadata.version("lanterne")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


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


# --- Building a report --------------------------------------------------------------------------

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
    settings = {layer.id: layer for layer in cfg_observatory.layers}

    def layer(layer_id: str) -> Layer:
        if layer_id not in settings:
            raise ObservatoryError(
                f"layer {layer_id!r} is not configured; add it to observatory.layers or use one of: "
                f"{', '.join(settings) or 'none configured'}"
            )
        return load_layer(settings[layer_id])

    area_label = "whole dataset"
    if area is not None:
        if area.level.startswith("layer:"):
            lay = layer(area.level.removeprefix("layer:"))
            if area.key not in lay.codes:
                sample = ", ".join(lay.codes[:5])
                raise ObservatoryError(f"layer {lay.id} has no area {area.key!r}; codes look like {sample}")
            name = lay.labels.get(area.key, area.key)
            area_label = f"{lay.id} {area.key}" + (f" ({name})" if name != area.key else "")
        elif area.level.startswith("h3:"):
            area_label = f"H3 cell {area.key}"
        else:
            raise ObservatoryError(
                f"area {area.level}:{area.key} is neither layer:<id>:<code> nor h3:<res>:<cell>"
            )
    level = level or _default_level(store, dataset, area, settings)
    filters = Filters(dataset=dataset, category=category, start=start, end=end)

    report_map = _map(store, filters, level, area, k, layer)
    context = Filters(dataset=dataset, category=category)
    precision = str(sheet["time_precision"])
    monthly, _ = _series(store, context, Grain.MONTH, area, period, k, precision)
    weekly, weekly_context = _series(store, context, Grain.WEEK, area, period, k, precision)
    found = _anomalies(weekly_context, period)

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
    inputs = {
        "dataset_sha256": sheet["sha256"],
        "mapping_sha256": sheet["mapping_sha256"],
        "layers": layer_hashes,
        "parameters": dict(parameters),
        "lanterne_version": version,
    }
    inputs_sha256 = hashlib.sha256(
        json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()
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
    what = category or "all categories"
    period_text = _period_text(period)
    return Report(
        title=f"{sheet['title']}: {what}",
        subtitle=f"{area_label[0].upper() + area_label[1:]}, {period_text}",
        generated_at=now,
        dataset=dataset,
        dataset_title=str(sheet["title"]),
        category=category,
        area=area,
        area_label=area_label,
        period=period,
        k=k,
        caveat=CAVEAT,
        provenance=tuple(provenance),
        map=report_map,
        monthly=monthly,
        weekly=weekly,
        profiles=tuple(profiles),
        anomalies=tuple(found),
        audit_rows=tuple(audit_rows),
        audit_notes=tuple(audit_notes),
        ranking=tuple(ranking),
        ranking_notes=tuple(ranking_notes),
        suppressed=tuple(a.label for a in report_map.areas if a.suppressed),
        parameters=parameters,
        lanterne_version=version,
        inputs_sha256=inputs_sha256,
        extra={"anomaly_notes": getattr(found, "notes", ())},
    )


ANOMALY_THRESHOLD = 3.5


def _default_level(
    store: ObservatoryStore, dataset: str, area: AreaRef | None, settings: dict[str, Any]
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
    layer: Any,
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


def _inside(area: AreaRef, layer: Any, points: dict[str, tuple[float, float]]) -> set[str]:
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
    settings: dict[str, Any],
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
    settings: dict[str, Any],
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


# --- Command-line arguments ---------------------------------------------------------------------


def _unit_bounds(text: str, option: str) -> tuple[datetime, datetime]:
    """`2016` → the year, `2016-03` → the month, `2016-03-01` → the day, as [start, end)."""
    t = text.strip()
    try:
        if len(t) == 4:
            y = int(t)
            return datetime(y, 1, 1), datetime(y + 1, 1, 1)
        if len(t) == 7:
            first = datetime.strptime(t, "%Y-%m")
            return first, period_end(first, Grain.MONTH)
        day = date.fromisoformat(t)
    except ValueError:
        day = None
    if day is None:
        raise ObservatoryError(
            f"{option} {text!r} is not a year, month or day; write 2016, 2016-03 or 2016-03-01"
        )
    first = datetime(day.year, day.month, day.day)
    return first, first + timedelta(days=1)


def parse_period(
    period: str | None, date_from: str | None = None, date_to: str | None = None
) -> tuple[datetime, datetime]:
    """`--period 2016-01..2016-12` (both ends included, each a year, month or day), or `--from`
    and `--to` with the same forms. Returns [start, end) in the dataset's local time."""
    if period is not None:
        if date_from is not None or date_to is not None:
            raise ObservatoryError("give either --period or --from/--to, not both")
        first, _, last = period.partition("..")
        date_from, date_to = first, last or first
    if not date_from or not date_to:
        raise ObservatoryError(
            "the report needs a period; pass --period 2016-01..2016-12 (or --from and --to)"
        )
    start = _unit_bounds(date_from, "--from")[0]
    end = _unit_bounds(date_to, "--to")[1]
    if end <= start:
        raise ObservatoryError(f"period {date_from}..{date_to} ends before it starts; swap its ends")
    return start, end


def parse_area(text: str | None) -> AreaRef | None:
    """`districts:11` (or `layer:districts:11`) → that area of the layer; `h3:7:872664c1effffff` → one cell."""
    if text is None or not text.strip():
        return None
    parts = text.strip().split(":")
    if parts[0] == "h3" and len(parts) == 3 and parts[1].isdigit():
        return AreaRef(f"h3:{parts[1]}", parts[2].lower())
    if parts[0] == "layer":
        parts = parts[1:]
    if len(parts) == 2 and all(parts):
        return AreaRef(f"layer:{parts[0]}", parts[1])
    raise ObservatoryError(f"--area {text!r} is not LAYER:CODE (e.g. districts:11) or h3:<res>:<cell>")


def write_report(
    config: Path,
    *,
    dataset: str,
    out: Path,
    period: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    category: str | None = None,
    area: str | None = None,
    level: str | None = None,
    top: int = 10,
    formats: str = "html,pdf",
    purpose: str | None = None,
    recipient: str | None = None,
    user_id: str,
    now: datetime | None = None,
) -> list[Path]:
    """The `report` command: build, render in memory, record the export (Action.EXPORT with
    purpose, recipient and the files' hashes), then write. The audit record comes first, so a
    refused record (no purpose, no recipient) leaves no file behind."""
    from lanterne.audit import Action, AuditLog
    from lanterne.config import load_config
    from lanterne.store.db import check_connection, create_engine_for, migrate

    wanted = [f.strip().lower() for f in formats.split(",") if f.strip()]
    unknown = sorted(set(wanted) - {"html", "pdf"})
    if unknown or not wanted:
        raise ObservatoryError(f"--format {formats!r}: use html, pdf or html,pdf")
    span = parse_period(period, date_from, date_to)
    where = parse_area(area)
    cfg = load_config(config)
    store = ObservatoryStore.open(cfg.observatory.store, read_only=True)
    try:
        report = build_report(
            store,
            cfg.observatory,
            dataset=dataset,
            category=category,
            area=where,
            period=span,
            level=level,
            top=top,
            now=now,
        )
    finally:
        store.close()
    files: dict[Path, bytes] = {}
    if "html" in wanted:
        files[out / HTML_FILE] = render_html(report).encode("utf-8")
    if "pdf" in wanted:
        files[out / PDF_FILE] = render_pdf(report)
    engine = create_engine_for(cfg.store.url)
    try:
        check_connection(engine)
        migrate(engine)
        AuditLog(engine, key_path=cfg.audit.key_path, checkpoint_every=cfg.audit.checkpoint_every).append(
            user_id,
            Action.EXPORT,
            object_type="observatory_report",
            object_id=report.inputs_sha256[:16],
            purpose=purpose,
            recipient=recipient,
            details={
                "event": "observatory_report",
                "dataset": dataset,
                "category": category,
                "area": None if where is None else f"{where.level}:{where.key}",
                "period": [span[0].isoformat(), span[1].isoformat()],
                "k": report.k,
                "inputs_sha256": report.inputs_sha256,
                "files": {p.name: hashlib.sha256(b).hexdigest() for p, b in files.items()},
            },
        )
    finally:
        engine.dispose()
    out.mkdir(parents=True, exist_ok=True)
    for path, body in files.items():
        path.write_bytes(body)
    return list(files)
