"""The observatory in the console: maps, series, anomalies and the bias audit over ingested
incident data, for every logged-in role; individual rows for the `analyst` role only.

Three rules shape every route:

- **Aggregates only, suppressed unless analyst.** Every count leaves through the aggregation
  module with `analyst=user.role == "analyst"`: other roles get counts below k hidden together with
  enough neighbours that totals cannot recover them (OB-08). Rows (`/rows`) are for analysts alone,
  with a stated purpose, and a refusal is written to the audit log.
- **Everything asked is recorded.** Each call appends an audit record (`search`, object type
  `observatory`) with the filters: ids, times and levels, never row contents. The record is
  written before the answer, as for event search: a request the audit log refuses is not served.
- **Strict parameters.** An unknown parameter is refused (422) rather than ignored, so a client
  believing it filtered learns at once that it did not; values are checked against patterns and
  ranges before any query (SQL only ever receives them as bound parameters). The query models in
  `lanterne.api.schemas.observatory` hold both rules.

The DuckDB file is opened read-only and shared by overlapping requests, then closed two seconds
after the last one (`ReaderPool`): DuckDB lets one process write a file only while no other
process holds it, so a console keeping it open for good would block `lanterne observatory
ingest`, and opening it for every request costs about 22 ms and the buffer cache.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import h3
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from lanterne.api.deps import (
    AuditDep,
    ConfigDep,
    CurrentUser,
    LoggedIn,
    Now,
    Writer,
    forbid,
    required_purpose,
)
from lanterne.api.routes.pages import STATIC
from lanterne.api.schemas.common import ERRORS, GeoJSONResponse, Problem
from lanterne.api.schemas.observatory import (
    MAX_CATEGORY,
    MEASURE_PATTERN,
    AnomaliesOut,
    AnomaliesQuery,
    AnomalyOut,
    AreaFeature,
    AreaMapOut,
    AreaProperties,
    AuditOut,
    AuditQuery,
    CategoriesOut,
    CategoryAuditOut,
    CategoryCount,
    CrossOut,
    CrossQuery,
    CrossSourceOut,
    DatasetAuditOut,
    DatasetOut,
    DatasetQuery,
    DatasetsOut,
    DecompositionOut,
    ExportRequest,
    FeedbackOut,
    FilterQuery,
    HotspotsBody,
    HotspotsOut,
    HotspotsQuery,
    LayerOut,
    MapQuery,
    NoQuery,
    PointOut,
    ProfileBin,
    ProfileOut,
    ProfileQuery,
    RankedAreaOut,
    RowOut,
    RowsOut,
    RowsQuery,
    SeriesOut,
    SeriesQuery,
)
from lanterne.audit import Action, AuditLog
from lanterne.config import Config
from lanterne.observatory.aggregate import (
    AreaCount,
    AreaMap,
    AreaRef,
    ExposureSpec,
    Filters,
    Grain,
    SeriesPoint,
    categories,
    counts_by_h3,
    counts_by_layer,
    incident_rows,
    profile,
    series,
)
from lanterne.observatory.bias import CAVEAT, Hotspots
from lanterne.observatory.bias import audit as bias_audit
from lanterne.observatory.bias import hotspots as rank_hotspots
from lanterne.observatory.feedback import FeedbackResult
from lanterne.observatory.layers import Layer, load_layer
from lanterne.observatory.report import Report, build_report, poisson_interval, render_html, render_pdf
from lanterne.observatory.store import (
    Channel,
    ObservatoryError,
    ObservatoryStore,
    ReaderPool,
    StoreNotFoundError,
)
from lanterne.observatory.suppression import suppress
from lanterne.observatory.timeseries import anomalies, cross_source, decompose

H3_VIEW_RESOLUTIONS = range(5, 10)
"""Resolutions offered in the console: 5 (about 250 km²) to 9 (0.1 km², edge about 170 m). 10 is the
storage grain and is not shown (OB-02 asks for at least 100 m of generalisation)."""
RATE_PER = 1000.0
MEASURE = re.compile(MEASURE_PATTERN)
NO_STORE = (
    "no dataset ingested yet; run lanterne observatory ingest FILE --mapping MAPPING.yml "
    "--config CONFIG (see docs/observatory.md)"
)


router = APIRouter(tags=["observatory"], responses={**ERRORS, 503: {"model": Problem}})


# --- values in and out -----------------------------------------------------------------------


def _text(value: str | None, name: str) -> str | None:
    """Category names come from the source data (any script, spaces, punctuation): length and
    control characters are what can be checked; the value only ever reaches SQL as a parameter."""
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_CATEGORY:
        raise HTTPException(422, f"'{name}' must be 1 to {MAX_CATEGORY} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise HTTPException(422, f"'{name}' contains control characters")
    return value


@lru_cache(maxsize=65536)
def _hexagon(cell: str) -> list[list[float]]:
    """The cell's outline as a closed GeoJSON ring ([lon, lat]); cached because a month slider
    redraws the same cells again and again."""
    ring = [[round(lng, 6), round(lat, 6)] for lat, lng in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return ring


def _cell(key: str | int) -> str:
    return h3.int_to_str(key) if isinstance(key, int) else str(key)


def _interval(count: int | None) -> list[float] | None:
    """The count's 95 % Poisson interval (OB-07: every indicator shows its uncertainty)."""
    if count is None:
        return None
    low, high = poisson_interval(count)
    return [round(low, 1), round(high, 1)]


# --- the store, per request ------------------------------------------------------------------


_POOLS: dict[str, ReaderPool] = {}
_POOLS_LOCK = threading.Lock()


@contextmanager
def open_store(cfg: Config) -> Iterator[ObservatoryStore]:
    """The observatory store, read-only, shared by overlapping requests (see `ReaderPool`)."""
    target = cfg.observatory.store
    postgres = "://" in target
    if not postgres and not Path(target).is_file():
        raise HTTPException(404, NO_STORE)
    with _POOLS_LOCK:
        pool = _POOLS.setdefault(target, ReaderPool(target))
    try:
        store = pool.acquire()
    except StoreNotFoundError:
        # A PostgreSQL schema without the observatory's tables: nothing ingested yet, as for a
        # missing file.
        raise HTTPException(404, NO_STORE) from None
    except ObservatoryError:
        # For a file, the one reason left in practice is an ingest holding DuckDB's write lock:
        # a wait, not a fault. PostgreSQL has no such lock: its server is down or refuses us.
        raise HTTPException(
            503,
            "the observatory database cannot be reached; try again in a minute"
            if postgres
            else "the observatory store is being written (an ingest is running); try again in a minute",
        ) from None
    try:
        yield store
    finally:
        pool.release()


def _dataset(store: ObservatoryStore, dataset: str, kind: str | None = "incidents") -> dict[str, Any]:
    row = store.dataset(dataset)
    if row is None:
        raise HTTPException(404, f"unknown dataset {dataset}; GET /api/observatory/datasets lists them")
    if kind is not None and row["kind"] != kind:
        raise HTTPException(422, f"dataset {dataset} holds {row['kind']}, not {kind}")
    return row


def _local(value: datetime | None, zone: str, name: str) -> datetime | None:
    """Times in the dataset's own wall clock (how `ts` is stored). A time with an offset is
    converted to it; one without is taken as already local."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise HTTPException(422, f"'{name}' is out of range; give an ISO 8601 time") from None


class Scope:
    """What one request asked for, checked: the filters for the aggregation modules and the same
    filters as audit details."""

    def __init__(
        self,
        dataset: str,
        category: str | None,
        channels: list[Channel] | None,
        start: datetime | None,
        end: datetime | None,
    ) -> None:
        self.dataset = dataset
        self.category = _text(category, "category")
        self.channels = tuple(sorted({str(c) for c in channels})) if channels else None
        self.start, self.end = start, end

    @classmethod
    def of(cls, params: FilterQuery) -> Scope:
        return cls(params.dataset, params.category, params.channel, params.from_, params.to)

    def filters(self, zone: str) -> Filters:
        # Compared once both are in the dataset's wall clock: one may carry an offset and the
        # other not (a naive time is already local).
        start, end = _local(self.start, zone, "from"), _local(self.end, zone, "to")
        if start is not None and end is not None and start >= end:
            raise HTTPException(422, "'from' must be before 'to'")
        return Filters(
            dataset=self.dataset, category=self.category, channels=self.channels, start=start, end=end
        )

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dataset": self.dataset}
        if self.category is not None:
            out["category"] = self.category
        if self.channels:
            out["channel"] = list(self.channels)
        if self.start is not None:
            out["from"] = self.start.isoformat()
        if self.end is not None:
            out["to"] = self.end.isoformat()
        return out


# --- who asks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One request to the observatory: the site's observatory settings, who asks, and the audit
    log that records the request before it is answered."""

    cfg: Config
    user: CurrentUser
    log: AuditLog

    @property
    def k(self) -> int:
        return self.cfg.observatory.min_count

    @property
    def analyst(self) -> bool:
        return self.user.role == "analyst"

    def store(self) -> AbstractContextManager[ObservatoryStore]:
        return open_store(self.cfg)

    def record(self, what: str, details: dict[str, Any], purpose: str | None = None) -> None:
        self.log.append(
            self.user.id,
            Action.SEARCH,
            object_type="observatory",
            object_id=what,
            purpose=purpose,
            details=details,
        )

    def layer(self, layer_id: str) -> Layer:
        configured = {layer.id: layer for layer in self.cfg.observatory.layers}
        settings = configured.get(layer_id)
        if settings is None:
            raise HTTPException(
                422,
                f"unknown layer {layer_id}; configured: {', '.join(configured) or 'none'} "
                "(observatory.layers in the configuration)",
            )
        return load_layer(settings)

    def level(self, text: str) -> tuple[str, int | Layer]:
        """A level parameter as the aggregation modules take it: an H3 resolution or a layer."""
        kind, _, name = text.partition(":")
        if kind == "h3":
            res = int(name)
            if res not in H3_VIEW_RESOLUTIONS:
                raise HTTPException(422, f"H3 resolution {res} is outside 5-9")
            return text, res
        return text, self.layer(name)

    def area(self, area_level: str | None, area_key: str | None) -> AreaRef | None:
        if (area_level is None) != (area_key is None):
            raise HTTPException(422, "give both area_level and area_key, or neither")
        if area_level is None or area_key is None:
            return None
        name, target = self.level(area_level)
        if isinstance(target, int):
            if not h3.is_valid_cell(area_key) or h3.get_resolution(area_key) != target:
                raise HTTPException(422, f"area_key is not an H3 cell of resolution {target}")
        elif area_key not in target.codes:
            raise HTTPException(422, f"area_key {area_key} is not an area of layer {target.id}")
        return AreaRef(name, area_key)

    def series_scope(self, params: SeriesQuery, **asked: Any) -> tuple[Scope, AreaRef | None, dict[str, Any]]:
        """A series request checked, with its audit details: the filters, the grain, what else
        was `asked`, then the area."""
        scope = Scope.of(params)
        area = self.area(params.area_level, params.area_key)
        details = {**scope.details(), "grain": str(params.grain), **asked}
        if area is not None:
            details |= {"area_level": area.level, "area_key": area.key}
        return scope, area, details


async def reading(cfg: ConfigDep, user: LoggedIn, log: AuditDep) -> Reading:
    # async: it only bundles what the other dependencies found, no need for a worker thread.
    return Reading(cfg, user, log)


ReadingDep = Annotated[Reading, Depends(reading)]


# --- datasets and categories -----------------------------------------------------------------


@router.get("/api/observatory/datasets", summary="Ingested datasets with their provenance")
def datasets(obs: ReadingDep, _params: Annotated[NoQuery, Query()]) -> DatasetsOut:
    obs.record("datasets", {})
    with obs.store() as store:
        found = _datasets(store, {layer.id for layer in obs.cfg.observatory.layers})
    return DatasetsOut(
        datasets=found,
        layers=[LayerOut(id=s.id, label=s.id.replace("_", " ")) for s in obs.cfg.observatory.layers],
        resolutions=list(H3_VIEW_RESOLUTIONS),
        k=obs.k,
        analyst=obs.analyst,
        caveat=CAVEAT,
        export=True,
    )


def _datasets(store: ObservatoryStore, layer_ids: set[str]) -> list[DatasetOut]:
    """Every dataset's provenance with the span, layers, channels and variables it holds."""
    spans = store.spans()
    variables = store.variables()
    out = []
    for d in store.datasets():
        first, last, located, area_layers, channels = spans.get(d["id"], (None, None, False, [], []))
        out.append(
            DatasetOut(
                id=d["id"],
                title=d["title"],
                kind=d["kind"],
                origin=d["origin"],
                licence=d["licence"],
                source_file=Path(d["source_file"]).name,
                sha256=d["sha256"],
                mapping_sha256=d["mapping_sha256"],
                time_zone=d["time_zone"],
                time_precision=d["time_precision"],
                rows_read=d["rows_read"],
                rows_loaded=d["rows_loaded"],
                rows_rejected=d["rows_rejected"],
                ingested_at=d["ingested_at"],
                ingested_by=d["ingested_by"],
                first=first,
                last=last,
                located=bool(located),
                area_layers=[a for a in (area_layers or []) if a in layer_ids],
                channels=channels or [],
                variables=variables.get(d["id"], []),
            )
        )
    return out


@router.get("/api/observatory/categories", summary="A dataset's categories with their counts")
def dataset_categories(obs: ReadingDep, params: Annotated[DatasetQuery, Query()]) -> CategoriesOut:
    obs.record("categories", {"dataset": params.dataset})
    with obs.store() as store:
        _dataset(store, params.dataset)
        found = categories(store, params.dataset)
    counts = np.array([n for _, n in found], dtype=np.int64)
    # The dataset's total is public (provenance), so hiding one small category alone would
    # leave it as total minus the rest: the whole list is one suppression group.
    hidden = (
        np.zeros(len(found), dtype=bool)
        if obs.analyst or not len(found)
        else suppress(counts, [np.arange(len(found))], obs.k)
    )
    return CategoriesOut(
        dataset=params.dataset,
        k=obs.k,
        analyst=obs.analyst,
        categories=[
            CategoryCount(name=name, count=None if h else int(n), suppressed=bool(h))
            for (name, n), h in zip(found, hidden, strict=True)
        ],
    )


# --- the map ---------------------------------------------------------------------------------


@router.get(
    "/api/observatory/map",
    response_class=GeoJSONResponse,
    summary="Counts by H3 cell or by area as GeoJSON",
)
def area_map(obs: ReadingDep, params: Annotated[MapQuery, Query()]) -> AreaMapOut:
    scope = Scope.of(params)
    name, target = obs.level(params.level)
    details = {**scope.details(), "level": name}
    spec = None
    if params.exposure is not None:
        if isinstance(target, int):
            raise HTTPException(422, "rates need areas: use exposure with level=layer:<id>")
        m_dataset, m_variable = params.exposure.split(":", 1)
        spec = ExposureSpec(m_dataset, m_variable, per=RATE_PER)
        details["exposure"] = params.exposure
    obs.record("map", details)
    with obs.store() as store:
        ds = _dataset(store, params.dataset)
        filters = scope.filters(ds["time_zone"])
        if isinstance(target, int):
            counted: AreaMap = counts_by_h3(store, filters, target, k=obs.k, analyst=obs.analyst)
        else:
            if spec is not None:
                _dataset(store, spec.dataset, kind="measures")
            counted = counts_by_layer(store, filters, target, k=obs.k, analyst=obs.analyst, exposure=spec)
    return AreaMapOut(
        features=_features(target, counted),
        level=counted.level,
        k=counted.k,
        total=counted.total,
        suppressed_cells=counted.suppressed_cells,
        unlocated=counted.unlocated,
        analyst=obs.analyst,
        caveat=CAVEAT,
        rate_per=RATE_PER if spec is not None else None,
        filters=details,
    )


def _features(target: int | Layer, counted: AreaMap) -> list[AreaFeature]:
    """Hexagons drawn from their cells; areas with the layer's own polygons, every area of the
    layer included (one without incident is a true zero)."""
    if isinstance(target, int):
        return [
            AreaFeature(
                geometry={"type": "Polygon", "coordinates": [_hexagon(_cell(c.key))]},
                properties=_area_properties(c.key, c.label, c),
            )
            for c in counted.cells
        ]
    by_code = {c.key: c for c in counted.cells}
    features = []
    for f in target.geojson["features"]:
        code = str(f["properties"]["code"])
        features.append(
            AreaFeature(
                geometry=f["geometry"],
                properties=_area_properties(code, f["properties"].get("label"), by_code.get(code)),
            )
        )
    return features


def _area_properties(key: str, label: str | None, c: AreaCount | None) -> AreaProperties:
    if c is None:
        # An area of the layer with no incident under the filters: a true zero, shown as such.
        return AreaProperties(
            key=key, label=label or key, count=0, interval=_interval(0),
            suppressed=False, rate=None, rate_interval=None,
        )  # fmt: skip
    count = None if c.suppressed else c.count
    rate = None if c.suppressed else c.rate
    band = _interval(count)
    return AreaProperties(
        key=key,
        label=c.label or label or key,
        count=count,
        interval=band,
        suppressed=bool(c.suppressed),
        rate=rate,
        # The rate's interval is the count's, over the same exposure.
        rate_interval=(
            [round(rate * b / count, 3) for b in band] if rate is not None and band and count else None
        ),
    )


# --- series, profile, anomalies, cross-source ------------------------------------------------


@router.get("/api/observatory/series", summary="Counts per week or month with trend and seasonality")
def count_series(obs: ReadingDep, params: Annotated[SeriesQuery, Query()]) -> SeriesOut:
    scope, area, details = obs.series_scope(params)
    obs.record("series", details)
    with obs.store() as store:
        ds = _dataset(store, params.dataset)
        points = series(
            store, scope.filters(ds["time_zone"]), params.grain, area=area, k=obs.k, analyst=obs.analyst
        )
    decomposition = _decomposition(points, params.grain) if len(points) >= 3 else None
    return SeriesOut(
        grain=params.grain,
        k=obs.k,
        analyst=obs.analyst,
        points=[PointOut.model_validate(p, from_attributes=True) for p in points],
        intervals=[_interval(p.count) for p in points],
        decomposition=decomposition,
        note=None if decomposition is not None or not points else "too few periods for a trend",
        caveat=CAVEAT,
    )


def _decomposition(points: list[SeriesPoint], grain: Grain) -> DecompositionOut:
    # Suppressed periods go in as gaps (None): the model never sees a hidden count, so its trend
    # and seasonality cannot hand one back.
    d = decompose([p.start for p in points], [p.count for p in points], grain)
    return DecompositionOut.model_validate(d, from_attributes=True)


@router.get("/api/observatory/profile", summary="Counts by hour of day, day of week or month")
def count_profile(obs: ReadingDep, params: Annotated[ProfileQuery, Query()]) -> ProfileOut:
    scope = Scope.of(params)
    obs.record("profile", {**scope.details(), "by": params.by})
    with obs.store() as store:
        ds = _dataset(store, params.dataset)
        bins = profile(store, scope.filters(ds["time_zone"]), params.by, k=obs.k, analyst=obs.analyst)
    return ProfileOut(
        by=params.by,
        k=obs.k,
        analyst=obs.analyst,
        bins=[ProfileBin(key=key, count=n, suppressed=n is None) for key, n in bins],
        time_precision=ds["time_precision"],
    )


@router.get("/api/observatory/anomalies", summary="Unusual periods, explained in words")
def unusual(obs: ReadingDep, params: Annotated[AnomaliesQuery, Query()]) -> AnomaliesOut:
    scope, area, details = obs.series_scope(params, threshold=params.threshold)
    obs.record("anomalies", details)
    with obs.store() as store:
        ds = _dataset(store, params.dataset)
        found = anomalies(
            store,
            scope.filters(ds["time_zone"]),
            params.grain,
            area=area,
            k=obs.k,
            analyst=obs.analyst,
            threshold=params.threshold,
        )
    return AnomaliesOut(
        grain=params.grain,
        k=obs.k,
        analyst=obs.analyst,
        anomalies=[AnomalyOut.model_validate(a, from_attributes=True) for a in found],
        withheld=getattr(found, "withheld", 0),
        notes=list(getattr(found, "notes", ())),
        caveat=CAVEAT,
    )


@router.get("/api/observatory/cross", summary="Incidents beside weather, footfall or camera counts")
def cross(obs: ReadingDep, params: Annotated[CrossQuery, Query()]) -> CrossOut:
    measure = params.measure
    if not 1 <= len(measure) <= 4 or not all(MEASURE.fullmatch(m) for m in measure):
        raise HTTPException(422, "give 1 to 4 measure=DATASET:VARIABLE parameters")
    pairs = [(m_dataset, variable) for m_dataset, _, variable in (m.partition(":") for m in measure)]
    scope, area, details = obs.series_scope(params, measure=measure)
    obs.record("cross", details)
    with obs.store() as store:
        ds = _dataset(store, params.dataset)
        for m_dataset, _ in pairs:
            _dataset(store, m_dataset, kind="measures")
        result = cross_source(
            store,
            scope.filters(ds["time_zone"]),
            params.grain,
            pairs,
            area=area,
            k=obs.k,
            analyst=obs.analyst,
        )
    return CrossOut(
        grain=params.grain,
        k=obs.k,
        analyst=obs.analyst,
        cross=CrossSourceOut.model_validate(result, from_attributes=True),
        caveat=CAVEAT,
    )


# --- bias audit and hotspots -----------------------------------------------------------------


@router.get("/api/observatory/audit", summary="Bias audit of a dataset, per category")
def dataset_audit(obs: ReadingDep, params: Annotated[AuditQuery, Query()]) -> AuditOut:
    name, target = obs.level(params.level)
    obs.record("audit", {"dataset": params.dataset, "level": name})
    layers = {target.id: target} if isinstance(target, Layer) else {}
    with obs.store() as store:
        _dataset(store, params.dataset)
        result = bias_audit(store, params.dataset, level=name, layers=layers, k=obs.k, analyst=obs.analyst)
    return AuditOut(
        analyst=obs.analyst, k=obs.k, audit=DatasetAuditOut.model_validate(result, from_attributes=True)
    )


@router.get(
    "/api/observatory/hotspots",
    summary="Areas ranked by count, always with the bias audit and a feedback-loop simulation",
)
def hotspot_ranking(obs: ReadingDep, params: Annotated[HotspotsQuery, Query()]) -> HotspotsOut:
    scope = Scope.of(params)
    name, target = obs.level(params.level)
    # Recorded whatever its value: an auditor reading a ranking of police activity should
    # see that it was asked for on purpose.
    details = {
        **scope.details(),
        "level": name,
        "top": params.top,
        "include_discovered": params.include_discovered,
    }
    obs.record("hotspots", details)
    layers = {target.id: target} if isinstance(target, Layer) else {}
    with obs.store() as store:
        ds = _dataset(store, params.dataset)
        result = rank_hotspots(
            store,
            scope.filters(ds["time_zone"]),
            name,
            top=params.top,
            k=obs.k,
            layers=layers,
            analyst=obs.analyst,
            include_discovered=params.include_discovered,
        )
    return HotspotsOut(analyst=obs.analyst, k=obs.k, hotspots=_hotspots(result), caveat=CAVEAT)


def _feedback(result: FeedbackResult) -> FeedbackOut:
    """A simulation in the figures the panel shows; the per-round arrays are sampled weekly,
    enough for a sparkline, a tenth of the bytes."""
    return FeedbackOut(
        rounds=result.rounds,
        top=result.top,
        update=result.update,
        discovered_share=result.discovered_share,
        true_top_share=result.true_top_share,
        final_record_top_share=result.final_record_top_share,
        final_patrol_on_true_top=result.final_patrol_on_true_top,
        final_estimate_gap=result.final_estimate_gap,
        record_top_share=result.record_top_share[::7].tolist(),
    )


def _hotspots(h: Hotspots) -> HotspotsBody:
    """The ranking with the category's audit and the two simulations, plus the result in words:
    a number on its own would let the ranking be read without its consequence (OB-05)."""
    naive, mitigated = h.naive, h.mitigated
    text = (
        f"Simulated {naive.rounds} {h.rounds_unit}s of patrols sent to the top {naive.top} areas, the "
        f"ranking refreshed from every record: those areas end up holding "
        f"{naive.final_record_top_share:.0%} of the records, while the {naive.top} areas with the most "
        f"incidents hold {naive.true_top_share:.0%} of them. Refreshed from reported incidents only: "
        f"{mitigated.final_record_top_share:.0%}."
    )
    return HotspotsBody(
        dataset=h.dataset,
        category=h.category,
        level=h.level,
        k=h.k,
        analyst=h.analyst,
        ranking=[RankedAreaOut.model_validate(a, from_attributes=True) for a in h.ranking],
        excluded_below_k=h.excluded_below_k,
        audit=CategoryAuditOut.model_validate(h.audit, from_attributes=True),
        naive=_feedback(naive),
        mitigated=_feedback(mitigated),
        runaway=naive.final_record_top_share > max(1.5 * naive.true_top_share, naive.true_top_share + 0.1),
        feedback_text=text,
        warning=h.warning,
        caveat=h.caveat,
    )


# --- rows (analysts) and export --------------------------------------------------------------


@router.get("/api/observatory/rows", summary="Individual incident rows (analyst role; purpose required)")
def rows(request: Request, obs: ReadingDep, params: Annotated[RowsQuery, Query()]) -> RowsOut:
    if not obs.analyst:
        forbid(
            request,
            obs.user,
            "observatory_rows",
            params.dataset,
            action=Action.SEARCH,
            object_type="observatory",
        )
    reason = required_purpose(
        params.purpose,
        "reading individual incident rows needs a purpose: say why (it is recorded with the request)",
    )
    scope = Scope.of(params)
    obs.record("rows", {**scope.details(), "limit": params.limit}, purpose=reason)
    with obs.store() as store:
        ds = _dataset(store, params.dataset)
        total, found = incident_rows(store, scope.filters(ds["time_zone"]), params.limit)
    return RowsOut(
        dataset=params.dataset,
        total=total,
        limit=params.limit,
        rows=[
            RowOut(
                ts=ts,
                category=cat,
                channel=ch,
                h3=h3.int_to_str(cell) if cell is not None else None,
                area_layer=al,
                area_code=ac,
                n=n,
            )
            for ts, cat, ch, cell, al, ac, n in found
        ],
    )


@router.post(
    "/api/observatory/export",
    summary="A report (HTML or PDF), always suppressed; recorded",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
)
def export(body: ExportRequest, obs: ReadingDep, _csrf: Writer, now: Now) -> Response:
    reason = required_purpose(
        body.purpose, "an export needs a purpose: say why (it is recorded with the request)"
    )
    recipient = body.recipient.strip()
    if not recipient or any(unicodedata.category(ch) == "Cc" for ch in recipient):
        raise HTTPException(400, "an export needs a recipient: who receives the report")
    scope = Scope(body.dataset, body.category, None, body.from_, body.to)
    area = obs.area(body.area_level, body.area_key)
    if body.level is not None:
        obs.level(body.level)
    with obs.store() as store:
        ds = _dataset(store, body.dataset)
        f = scope.filters(ds["time_zone"])
        start, end = _report_period(store, body.dataset, f)
        # A report leaves the system: `build_report` suppresses below k whoever asks (OB-08).
        report = build_report(
            store,
            obs.cfg.observatory,
            dataset=body.dataset,
            category=f.category,
            area=area,
            period=(start, end),
            level=body.level,
            now=now,
        )
    content = render_html(report).encode("utf-8") if body.format == "html" else render_pdf(report)
    details: dict[str, Any] = {
        **scope.details(),
        "period": [start.isoformat(), end.isoformat()],
        "format": body.format,
        "k": report.k,
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    if body.level is not None:
        details["level"] = body.level
    if area is not None:
        details |= {"area_level": area.level, "area_key": area.key}
    # Recorded before it is handed over: an export the audit log refuses is not served.
    _record_export(obs, report, reason, recipient, details)
    name = f"observatory-{body.dataset}-{start:%Y%m%d}-{end:%Y%m%d}.{body.format}"
    media = "text/html; charset=utf-8" if body.format == "html" else "application/pdf"
    return Response(
        content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _report_period(store: ObservatoryStore, dataset: str, f: Filters) -> tuple[datetime, datetime]:
    """The period asked for; by default the dataset's whole span, in whole months (the report's
    tables are monthly)."""
    start, end = f.start, f.end
    if start is None or end is None:
        low, high = store.month_span(dataset)
        if low is None:
            raise HTTPException(404, f"dataset {dataset} has no incident to report on")
        start, end = start or low, end or high
    return start, end


def _record_export(
    obs: Reading, report: Report, purpose: str, recipient: str, details: dict[str, Any]
) -> None:
    obs.log.append(
        obs.user.id,
        Action.EXPORT,
        object_type="observatory_report",
        object_id=report.inputs_sha256[:16],
        purpose=purpose,
        recipient=recipient,
        details=details,
    )


@router.get("/console/observatory", response_class=HTMLResponse, include_in_schema=False)
def observatory_page() -> Response:
    # The page holds no data: its script asks the API, which checks the session.
    return Response((STATIC / "observatory.html").read_bytes(), media_type="text/html; charset=utf-8")
