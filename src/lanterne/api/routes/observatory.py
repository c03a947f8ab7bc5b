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
  ranges before any query (SQL only ever receives them as bound parameters).

The DuckDB file is opened read-only and shared by overlapping requests, then closed two seconds
after the last one (`ReaderPool`): DuckDB lets one process write a file only while no other
process holds it, so a console keeping it open for good would block `lanterne observatory
ingest`, and opening it for every request costs about 22 ms and the buffer cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import h3
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from lanterne.api.deps import CurrentUser, LoggedIn, audit_log, csrf_protect, forbid
from lanterne.api.routes.cameras import STATIC
from lanterne.audit import Action
from lanterne.config import Config
from lanterne.observatory.aggregate import (
    AreaMap,
    AreaRef,
    ExposureSpec,
    Filters,
    Grain,
    categories,
    counts_by_h3,
    counts_by_layer,
    profile,
    series,
    where_clause,
)
from lanterne.observatory.bias import CAVEAT, Hotspots
from lanterne.observatory.bias import audit as bias_audit
from lanterne.observatory.bias import hotspots as rank_hotspots
from lanterne.observatory.feedback import FeedbackResult
from lanterne.observatory.layers import Layer, load_layer
from lanterne.observatory.report import build_report, poisson_interval, render_html, render_pdf
from lanterne.observatory.store import (
    Channel,
    ObservatoryError,
    ObservatoryStore,
    ReaderPool,
    StoreNotFoundError,
)
from lanterne.observatory.suppression import suppress
from lanterne.observatory.timeseries import anomalies, cross_source, decompose

ID_PATTERN = r"^[a-z0-9_]{1,64}$"
LEVEL_PATTERN = r"^(h3:[0-9]{1,2}|layer:[a-z0-9_]{1,32})$"
AREA_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
MEASURE_PATTERN = r"^[a-z0-9_]{1,64}:[A-Za-z0-9_.-]{1,64}$"
H3_VIEW_RESOLUTIONS = range(5, 10)
"""Resolutions offered in the console: 5 (about 250 km²) to 9 (0.1 km², edge about 170 m). 10 is the
storage grain and is not shown (OB-02 asks for at least 100 m of generalisation)."""
MAX_CATEGORY = 200
RATE_PER = 1000.0
ROWS_LIMIT = 1000
FILTERS = frozenset({"dataset", "category", "channel", "from", "to"})
NO_STORE = (
    "no dataset ingested yet; run lanterne observatory ingest FILE --mapping MAPPING.yml "
    "--config CONFIG (see docs/observatory.md)"
)


# --- values in and out -----------------------------------------------------------------------


def _only(request: Request, allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params.keys()) - allowed)
    if unknown:
        # Rejected, not ignored: see the module docstring.
        raise HTTPException(
            422, f"unknown parameter(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


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


def _purpose(text: str | None, what: str = "reading individual incident rows") -> str:
    value = (text or "").strip()
    if not value:
        raise HTTPException(400, f"{what} needs a purpose: say why (it is recorded with the request)")
    if len(value) > 1000:
        raise HTTPException(422, f"the purpose is {len(value)} characters long; shorten it to 1000")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise HTTPException(422, "the purpose contains control characters; write it as plain text")
    return value


def jsonable(value: Any) -> Any:
    """Dataclasses, numpy arrays and datetimes of the observatory modules as JSON values; NaN and
    infinities (a trend not defined at the edges, a rate over zero exposure) become null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def _json(payload: Any, media_type: str = "application/json") -> JSONResponse:
    return JSONResponse(jsonable(payload), media_type=media_type)


@lru_cache(maxsize=65536)
def _hexagon(cell: str) -> list[list[float]]:
    """The cell's outline as a closed GeoJSON ring ([lon, lat]); cached because a month slider
    redraws the same cells again and again."""
    ring = [[round(lng, 6), round(lat, 6)] for lat, lng in h3.cell_to_boundary(cell)]
    ring.append(ring[0])
    return ring


def _cell(key: str | int) -> str:
    return h3.int_to_str(key) if isinstance(key, int) else str(key)


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
    rows = store.query(
        "SELECT id, kind, time_zone, time_precision FROM datasets WHERE id = $id", {"id": dataset}
    )
    if not rows:
        raise HTTPException(404, f"unknown dataset {dataset}; GET /api/observatory/datasets lists them")
    row = dict(zip(("id", "kind", "time_zone", "time_precision"), rows[0], strict=True))
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


# Query parameters shared by the routes.
DatasetParam = Annotated[str, Query(pattern=ID_PATTERN, description="Dataset id.")]
Category = Annotated[str | None, Query(max_length=MAX_CATEGORY, description="One category.")]
Channels = Annotated[list[Channel] | None, Query(description="Reporting channel(s); repeat.")]
From = Annotated[datetime | None, Query(alias="from", description="At or after (local time).")]
To = Annotated[datetime | None, Query(description="Before (local time).")]
Level = Annotated[str, Query(pattern=LEVEL_PATTERN, description="h3:5..h3:9 or layer:<id>.")]
AreaLevel = Annotated[str | None, Query(pattern=LEVEL_PATTERN)]
AreaKey = Annotated[str | None, Query(pattern=AREA_KEY_PATTERN)]
SERIES = FILTERS | {"grain", "area_level", "area_key"}


class ExportRequest(BaseModel):
    """What a report covers and why it leaves the system. Unknown fields are refused, like unknown
    query parameters."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(..., pattern=ID_PATTERN)
    category: str | None = Field(None, max_length=MAX_CATEGORY)
    from_: datetime | None = Field(None, alias="from")
    to: datetime | None = None
    level: str | None = Field(None, pattern=LEVEL_PATTERN)
    area_level: str | None = Field(None, pattern=LEVEL_PATTERN)
    area_key: str | None = Field(None, pattern=AREA_KEY_PATTERN)
    format: Literal["html", "pdf"] = "html"
    purpose: str = Field(..., max_length=1000)
    recipient: str = Field(..., max_length=256)


Write = Annotated[CurrentUser, Depends(csrf_protect)]


# --- the router ------------------------------------------------------------------------------


def router(cfg: Config, clock: Callable[[], datetime]) -> APIRouter:
    api = APIRouter(tags=["observatory"])
    obs = cfg.observatory
    k = obs.min_count
    layer_settings = {layer.id: layer for layer in obs.layers}

    def layer(layer_id: str) -> Layer:
        settings = layer_settings.get(layer_id)
        if settings is None:
            raise HTTPException(
                422,
                f"unknown layer {layer_id}; configured: {', '.join(layer_settings) or 'none'} "
                "(observatory.layers in the configuration)",
            )
        return load_layer(settings)

    def level_of(text: str) -> tuple[str, int | Layer]:
        kind, _, name = text.partition(":")
        if kind == "h3":
            res = int(name)
            if res not in H3_VIEW_RESOLUTIONS:
                raise HTTPException(422, f"H3 resolution {res} is outside 5-9")
            return text, res
        return text, layer(name)

    def record(
        request: Request, user: CurrentUser, what: str, details: dict[str, Any], purpose: str | None = None
    ) -> None:
        audit_log(request).append(
            user.id,
            Action.SEARCH,
            object_type="observatory",
            object_id=what,
            purpose=purpose,
            details=details,
        )

    def analyst(user: CurrentUser) -> bool:
        return user.role == "analyst"

    @api.get("/api/observatory/datasets", summary="Ingested datasets with their provenance")
    def datasets(request: Request, user: LoggedIn) -> JSONResponse:
        _only(request, frozenset())
        record(request, user, "datasets", {})
        with open_store(cfg) as store:
            spans = {
                r[0]: r[1:]
                for r in store.query(
                    "SELECT dataset, min(ts), max(ts), count(h3) > 0, "
                    "list(DISTINCT area_layer ORDER BY area_layer) FILTER (WHERE area_layer IS NOT NULL), "
                    "list(DISTINCT channel ORDER BY channel) FROM incidents GROUP BY dataset "
                    "UNION ALL SELECT dataset, min(ts), max(ts), count(h3) > 0, "
                    "list(DISTINCT area_layer ORDER BY area_layer) FILTER (WHERE area_layer IS NOT NULL), "
                    "[] FROM measures GROUP BY dataset"
                )
            }
            variables: dict[str, list[str]] = {
                name: names
                for name, names in store.query(
                    "SELECT dataset, list(DISTINCT variable ORDER BY variable) FROM measures GROUP BY dataset"
                )
            }
            out = []
            for d in store.datasets():
                first, last, located, area_layers, channels = spans.get(d["id"], (None, None, False, [], []))
                out.append(
                    {
                        "id": d["id"],
                        "title": d["title"],
                        "kind": d["kind"],
                        "origin": d["origin"],
                        "licence": d["licence"],
                        # The file's name only: the server's directories are nobody's business.
                        "source_file": Path(d["source_file"]).name,
                        "sha256": d["sha256"],
                        "mapping_sha256": d["mapping_sha256"],
                        "time_zone": d["time_zone"],
                        "time_precision": d["time_precision"],
                        "rows_read": d["rows_read"],
                        "rows_loaded": d["rows_loaded"],
                        "rows_rejected": d["rows_rejected"],
                        "ingested_at": d["ingested_at"],
                        "ingested_by": d["ingested_by"],
                        "first": first,
                        "last": last,
                        "located": bool(located),
                        "area_layers": [a for a in (area_layers or []) if a in layer_settings],
                        "channels": channels or [],
                        "variables": variables.get(d["id"], []),
                    }
                )
        return _json(
            {
                "datasets": out,
                "layers": [{"id": s.id, "label": s.id.replace("_", " ")} for s in obs.layers],
                "resolutions": list(H3_VIEW_RESOLUTIONS),
                "k": k,
                "analyst": analyst(user),
                "caveat": CAVEAT,
                "export": True,
            }
        )

    @api.get("/api/observatory/categories", summary="A dataset's categories with their counts")
    def dataset_categories(request: Request, user: LoggedIn, dataset: DatasetParam) -> JSONResponse:
        _only(request, frozenset({"dataset"}))
        record(request, user, "categories", {"dataset": dataset})
        with open_store(cfg) as store:
            _dataset(store, dataset)
            found = categories(store, dataset)
        counts = np.array([n for _, n in found], dtype=np.int64)
        # The dataset's total is public (provenance), so hiding one small category alone would
        # leave it as total minus the rest: the whole list is one suppression group.
        hidden = (
            np.zeros(len(found), dtype=bool)
            if analyst(user) or not len(found)
            else suppress(counts, [np.arange(len(found))], k)
        )
        return _json(
            {
                "dataset": dataset,
                "k": k,
                "analyst": analyst(user),
                "categories": [
                    {"name": name, "count": None if h else int(n), "suppressed": bool(h)}
                    for (name, n), h in zip(found, hidden, strict=True)
                ],
            }
        )

    @api.get("/api/observatory/map", summary="Counts by H3 cell or by area as GeoJSON")
    def area_map(
        request: Request,
        user: LoggedIn,
        dataset: DatasetParam,
        category: Category = None,
        channel: Channels = None,
        from_: From = None,
        to: To = None,
        level: Level = "h3:8",
        exposure: Annotated[
            str | None,
            Query(
                pattern=MEASURE_PATTERN,
                description="DATASET:VARIABLE of a measures dataset: rates per 1,000.",
            ),
        ] = None,
    ) -> JSONResponse:
        _only(request, FILTERS | {"level", "exposure"})
        scope = Scope(dataset, category, channel, from_, to)
        name, target = level_of(level)
        details = {**scope.details(), "level": name}
        spec = None
        if exposure is not None:
            if isinstance(target, int):
                raise HTTPException(422, "rates need areas: use exposure with level=layer:<id>")
            m_dataset, m_variable = exposure.split(":", 1)
            spec = ExposureSpec(m_dataset, m_variable, per=RATE_PER)
            details["exposure"] = exposure
        record(request, user, "map", details)
        exact = analyst(user)
        with open_store(cfg) as store:
            ds = _dataset(store, dataset)
            filters = scope.filters(ds["time_zone"])
            if isinstance(target, int):
                counted: AreaMap = counts_by_h3(store, filters, target, k=k, analyst=exact)
            else:
                if spec is not None:
                    _dataset(store, spec.dataset, kind="measures")
                counted = counts_by_layer(store, filters, target, k=k, analyst=exact, exposure=spec)
        features: list[dict[str, Any]] = []
        if isinstance(target, int):
            for c in counted.cells:
                features.append(
                    {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [_hexagon(_cell(c.key))]},
                        "properties": _area_properties(c.key, c.label, c),
                    }
                )
        else:
            by_code = {c.key: c for c in counted.cells}
            for f in target.geojson["features"]:
                code = str(f["properties"]["code"])
                c = by_code.get(code)
                features.append(
                    {
                        "type": "Feature",
                        "geometry": f["geometry"],
                        "properties": _area_properties(code, f["properties"].get("label"), c),
                    }
                )
        return _json(
            {
                "type": "FeatureCollection",
                "features": features,
                "level": counted.level,
                "k": counted.k,
                "total": counted.total,
                "suppressed_cells": counted.suppressed_cells,
                "unlocated": counted.unlocated,
                "analyst": exact,
                "caveat": CAVEAT,
                "rate_per": RATE_PER if spec is not None else None,
                "filters": details,
            },
            media_type="application/geo+json",
        )

    def area_ref(area_level: str | None, area_key: str | None) -> AreaRef | None:
        if (area_level is None) != (area_key is None):
            raise HTTPException(422, "give both area_level and area_key, or neither")
        if area_level is None or area_key is None:
            return None
        name, target = level_of(area_level)
        if isinstance(target, int):
            if not h3.is_valid_cell(area_key) or h3.get_resolution(area_key) != target:
                raise HTTPException(422, f"area_key is not an H3 cell of resolution {target}")
        elif area_key not in target.codes:
            raise HTTPException(422, f"area_key {area_key} is not an area of layer {target.id}")
        return AreaRef(name, area_key)

    @api.get("/api/observatory/series", summary="Counts per week or month with trend and seasonality")
    def count_series(
        request: Request,
        user: LoggedIn,
        dataset: DatasetParam,
        category: Category = None,
        channel: Channels = None,
        from_: From = None,
        to: To = None,
        grain: Grain = Grain.WEEK,
        area_level: AreaLevel = None,
        area_key: AreaKey = None,
    ) -> JSONResponse:
        _only(request, SERIES)
        scope = Scope(dataset, category, channel, from_, to)
        area = area_ref(area_level, area_key)
        details = {**scope.details(), "grain": str(grain)}
        if area is not None:
            details |= {"area_level": area.level, "area_key": area.key}
        record(request, user, "series", details)
        exact = analyst(user)
        with open_store(cfg) as store:
            ds = _dataset(store, dataset)
            points = series(store, scope.filters(ds["time_zone"]), grain, area=area, k=k, analyst=exact)
        decomposition = None
        if len(points) >= 3:
            # Suppressed periods go in as gaps (None): the model never sees a hidden count, so
            # its trend and seasonality cannot hand one back.
            d = decompose([p.start for p in points], [p.count for p in points], grain)
            decomposition = {
                "trend": d.trend,
                "weekly": d.weekly,
                "yearly": d.yearly,
                "yearly_profile": d.yearly_profile,
                "weekly_profile": d.weekly_profile,
                "notes": d.notes,
            }
        return _json(
            {
                "grain": grain,
                "k": k,
                "analyst": exact,
                "points": points,
                # OB-07: each shown count's 95 % Poisson interval (none for a suppressed one).
                "intervals": [_interval(p.count) for p in points],
                "decomposition": decomposition,
                "note": None if decomposition is not None or not points else "too few periods for a trend",
                "caveat": CAVEAT,
            }
        )

    @api.get("/api/observatory/profile", summary="Counts by hour of day, day of week or month")
    def count_profile(
        request: Request,
        user: LoggedIn,
        dataset: DatasetParam,
        by: Literal["hour", "dow", "month"],
        category: Category = None,
        channel: Channels = None,
        from_: From = None,
        to: To = None,
    ) -> JSONResponse:
        _only(request, FILTERS | {"by"})
        scope = Scope(dataset, category, channel, from_, to)
        record(request, user, "profile", {**scope.details(), "by": by})
        exact = analyst(user)
        with open_store(cfg) as store:
            ds = _dataset(store, dataset)
            bins = profile(store, scope.filters(ds["time_zone"]), by, k=k, analyst=exact)
        return _json(
            {
                "by": by,
                "k": k,
                "analyst": exact,
                "bins": [{"key": key, "count": n, "suppressed": n is None} for key, n in bins],
                # An hour-of-day profile of day-precision data has one bar at midnight: the page
                # says so instead of drawing it.
                "time_precision": ds["time_precision"],
            }
        )

    @api.get("/api/observatory/anomalies", summary="Unusual periods, explained in words")
    def unusual(
        request: Request,
        user: LoggedIn,
        dataset: DatasetParam,
        category: Category = None,
        channel: Channels = None,
        from_: From = None,
        to: To = None,
        grain: Grain = Grain.WEEK,
        area_level: AreaLevel = None,
        area_key: AreaKey = None,
        threshold: Annotated[float, Query(ge=2.0, le=10.0)] = 3.5,
    ) -> JSONResponse:
        _only(request, SERIES | {"threshold"})
        scope = Scope(dataset, category, channel, from_, to)
        area = area_ref(area_level, area_key)
        details = {**scope.details(), "grain": str(grain), "threshold": threshold}
        if area is not None:
            details |= {"area_level": area.level, "area_key": area.key}
        record(request, user, "anomalies", details)
        exact = analyst(user)
        with open_store(cfg) as store:
            ds = _dataset(store, dataset)
            found = anomalies(
                store,
                scope.filters(ds["time_zone"]),
                grain,
                area=area,
                k=k,
                analyst=exact,
                threshold=threshold,
            )
        return _json(
            {
                "grain": grain,
                "k": k,
                "analyst": exact,
                "anomalies": list(found),
                # Unusual periods whose count is hidden for this role are counted, not shown.
                "withheld": getattr(found, "withheld", 0),
                "notes": getattr(found, "notes", ()),
                "caveat": CAVEAT,
            }
        )

    @api.get("/api/observatory/cross", summary="Incidents beside weather, footfall or camera counts")
    def cross(
        request: Request,
        user: LoggedIn,
        dataset: DatasetParam,
        measure: Annotated[list[str], Query(description="dataset:variable of a measures dataset; repeat.")],
        category: Category = None,
        channel: Channels = None,
        from_: From = None,
        to: To = None,
        grain: Grain = Grain.WEEK,
        area_level: AreaLevel = None,
        area_key: AreaKey = None,
    ) -> JSONResponse:
        _only(request, SERIES | {"measure"})
        if not 1 <= len(measure) <= 4 or not all(re.fullmatch(MEASURE_PATTERN, m) for m in measure):
            raise HTTPException(422, "give 1 to 4 measure=DATASET:VARIABLE parameters")
        pairs = [tuple(m.split(":", 1)) for m in measure]
        scope = Scope(dataset, category, channel, from_, to)
        area = area_ref(area_level, area_key)
        details = {**scope.details(), "grain": str(grain), "measure": measure}
        if area is not None:
            details |= {"area_level": area.level, "area_key": area.key}
        record(request, user, "cross", details)
        exact = analyst(user)
        with open_store(cfg) as store:
            ds = _dataset(store, dataset)
            for m_dataset, _ in pairs:
                _dataset(store, m_dataset, kind="measures")
            result = cross_source(
                store,
                scope.filters(ds["time_zone"]),
                grain,
                [(a, b) for a, b in pairs],
                area=area,
                k=k,
                analyst=exact,
            )
        return _json({"grain": grain, "k": k, "analyst": exact, "cross": result, "caveat": CAVEAT})

    @api.get("/api/observatory/audit", summary="Bias audit of a dataset, per category")
    def dataset_audit(
        request: Request, user: LoggedIn, dataset: DatasetParam, level: Level = "h3:8"
    ) -> JSONResponse:
        _only(request, frozenset({"dataset", "level"}))
        name, target = level_of(level)
        record(request, user, "audit", {"dataset": dataset, "level": name})
        layers = {target.id: target} if isinstance(target, Layer) else {}
        with open_store(cfg) as store:
            _dataset(store, dataset)
            result = bias_audit(store, dataset, level=name, layers=layers, k=k, analyst=analyst(user))
        return _json({"analyst": analyst(user), "k": k, "audit": result})

    @api.get(
        "/api/observatory/hotspots",
        summary="Areas ranked by count, always with the bias audit and a feedback-loop simulation",
    )
    def hotspot_ranking(
        request: Request,
        user: LoggedIn,
        dataset: DatasetParam,
        category: Annotated[str, Query(max_length=MAX_CATEGORY, description="The category ranked.")],
        channel: Channels = None,
        from_: From = None,
        to: To = None,
        level: Level = "h3:8",
        top: Annotated[int, Query(ge=1, le=50)] = 10,
        include_discovered: Annotated[
            bool,
            Query(
                description="Rank a category that is mostly police-initiated anyway (refused by "
                "default: its ranking maps where police looked)."
            ),
        ] = False,
    ) -> JSONResponse:
        _only(request, FILTERS | {"level", "top", "include_discovered"})
        scope = Scope(dataset, category, channel, from_, to)
        name, target = level_of(level)
        # Recorded whatever its value: an auditor reading a ranking of police activity should
        # see that it was asked for on purpose.
        details = {**scope.details(), "level": name, "top": top, "include_discovered": include_discovered}
        record(request, user, "hotspots", details)
        exact = analyst(user)
        layers = {target.id: target} if isinstance(target, Layer) else {}
        with open_store(cfg) as store:
            ds = _dataset(store, dataset)
            result = rank_hotspots(
                store,
                scope.filters(ds["time_zone"]),
                name,
                top=top,
                k=k,
                layers=layers,
                analyst=exact,
                include_discovered=include_discovered,
            )
        return _json({"analyst": exact, "k": k, "hotspots": _hotspots(result), "caveat": CAVEAT})

    @api.get("/api/observatory/rows", summary="Individual incident rows (analyst role; purpose required)")
    def rows(
        request: Request,
        user: LoggedIn,
        dataset: DatasetParam,
        purpose: Annotated[str | None, Query(max_length=1000)] = None,
        category: Category = None,
        channel: Channels = None,
        from_: From = None,
        to: To = None,
        limit: Annotated[int, Query(ge=1, le=ROWS_LIMIT)] = 100,
    ) -> JSONResponse:
        _only(request, FILTERS | {"purpose", "limit"})
        if not analyst(user):
            forbid(
                request, user, "observatory_rows", dataset, action=Action.SEARCH, object_type="observatory"
            )
        reason = _purpose(purpose)
        scope = Scope(dataset, category, channel, from_, to)
        record(request, user, "rows", {**scope.details(), "limit": limit}, purpose=reason)
        with open_store(cfg) as store:
            ds = _dataset(store, dataset)
            f = scope.filters(ds["time_zone"])
            where, counted = where_clause(f)
            total = store.query(f"SELECT count(*) FROM incidents WHERE {where}", counted)[0][0]
            found = store.query(
                f"SELECT ts, category, channel, h3, area_layer, area_code, n FROM incidents WHERE {where} "
                "ORDER BY ts, category LIMIT $limit",
                {**counted, "limit": limit},
            )
        return _json(
            {
                "dataset": dataset,
                "total": total,
                "limit": limit,
                "rows": [
                    {
                        "ts": ts,
                        "category": cat,
                        "channel": ch,
                        "h3": h3.int_to_str(cell) if cell is not None else None,
                        "area_layer": al,
                        "area_code": ac,
                        "n": n,
                    }
                    for ts, cat, ch, cell, al, ac, n in found
                ],
            }
        )

    @api.post("/api/observatory/export", summary="A report (HTML or PDF), always suppressed; recorded")
    def export(request: Request, user: Write, body: ExportRequest) -> Response:
        reason = _purpose(body.purpose, "an export")
        recipient = body.recipient.strip()
        if not recipient or any(unicodedata.category(ch) == "Cc" for ch in recipient):
            raise HTTPException(400, "an export needs a recipient: who receives the report")
        scope = Scope(body.dataset, body.category, None, body.from_, body.to)
        area = area_ref(body.area_level, body.area_key)
        if body.level is not None:
            level_of(body.level)
        with open_store(cfg) as store:
            ds = _dataset(store, body.dataset)
            f = scope.filters(ds["time_zone"])
            start, end = f.start, f.end
            if start is None or end is None:
                # The whole span by default, in whole months (the report's tables are monthly).
                low, high = store.query(
                    "SELECT date_trunc('month', min(ts)), date_trunc('month', max(ts)) + INTERVAL 1 MONTH "
                    "FROM incidents WHERE dataset = $d",
                    {"d": body.dataset},
                )[0]
                if low is None:
                    raise HTTPException(404, f"dataset {body.dataset} has no incident to report on")
                start, end = start or low, end or high
            # A report leaves the system: `build_report` suppresses below k whoever asks (OB-08).
            report = build_report(
                store,
                obs,
                dataset=body.dataset,
                category=f.category,
                area=area,
                period=(start, end),
                level=body.level,
                now=clock(),
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
        audit_log(request).append(
            user.id,
            Action.EXPORT,
            object_type="observatory_report",
            object_id=report.inputs_sha256[:16],
            purpose=reason,
            recipient=recipient,
            details=details,
        )
        name = f"observatory-{body.dataset}-{start:%Y%m%d}-{end:%Y%m%d}.{body.format}"
        media = "text/html; charset=utf-8" if body.format == "html" else "application/pdf"
        return Response(
            content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
        )

    @api.get("/console/observatory", response_class=HTMLResponse, include_in_schema=False)
    def observatory_page() -> Response:
        # The page holds no data: its script asks the API, which checks the session.
        return Response((STATIC / "observatory.html").read_bytes(), media_type="text/html; charset=utf-8")

    return api


def _interval(count: int | None) -> list[float] | None:
    """The count's 95 % Poisson interval (OB-07: every indicator shows its uncertainty)."""
    if count is None:
        return None
    low, high = poisson_interval(count)
    return [round(low, 1), round(high, 1)]


def _area_properties(key: str, label: str | None, c: Any) -> dict[str, Any]:
    if c is None:
        # An area of the layer with no incident under the filters: a true zero, shown as such.
        return {
            "key": key, "label": label or key, "count": 0, "interval": _interval(0),
            "suppressed": False, "rate": None, "rate_interval": None,
        }  # fmt: skip
    count = None if c.suppressed else c.count
    rate = None if c.suppressed else c.rate
    band = _interval(count)
    return {
        "key": key,
        "label": c.label or label or key,
        "count": count,
        "interval": band,
        "suppressed": bool(c.suppressed),
        "rate": rate,
        # The rate's interval is the count's, over the same exposure.
        "rate_interval": (
            [round(rate * b / count, 3) for b in band] if rate is not None and band and count else None
        ),
    }


def _feedback(result: FeedbackResult) -> dict[str, Any]:
    """A simulation in the figures the panel shows; the per-round arrays are sampled weekly,
    enough for a sparkline, a tenth of the bytes."""
    return {
        "rounds": result.rounds,
        "top": result.top,
        "update": result.update,
        "discovered_share": result.discovered_share,
        "true_top_share": result.true_top_share,
        "final_record_top_share": result.final_record_top_share,
        "final_patrol_on_true_top": result.final_patrol_on_true_top,
        "final_estimate_gap": result.final_estimate_gap,
        "record_top_share": result.record_top_share[::7],
    }


def _hotspots(h: Hotspots) -> dict[str, Any]:
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
    return {
        "dataset": h.dataset,
        "category": h.category,
        "level": h.level,
        "k": h.k,
        "analyst": h.analyst,
        "ranking": h.ranking,
        "excluded_below_k": h.excluded_below_k,
        "audit": h.audit,
        "naive": _feedback(naive),
        "mitigated": _feedback(mitigated),
        "runaway": naive.final_record_top_share > max(1.5 * naive.true_top_share, naive.true_top_share + 0.1),
        "feedback_text": text,
        "warning": h.warning,
        "caveat": h.caveat,
    }
