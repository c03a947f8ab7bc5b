"""Ingest one published table into the observatory store through its mapping.

The whole pass is SQL over DuckDB's own readers (Parquet, CSV, gzip), because 1.4 M rows must load
in seconds on a small machine: parsing, validation and the reject reasons are column expressions
evaluated in one vectorised scan, and only the H3 indexing of coordinates runs in Python (one
C call per point). Each source row ends up either loaded or in `rejects` with its row number and
a reason; the row's content is never copied anywhere, and the columns the mapping does not name
are never read (`adresse` in DansMaRue stays in the source file).

Everything a dataset writes (its rows, its rejects, its provenance, and the removal of an older
version under `replace`) is one transaction: a crash or a refused file leaves the previous state.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
from h3.api import basic_int as h3

from lanterne.config.schema import BoundaryLayer, Config
from lanterne.core.assets import sha256_file
from lanterne.observatory.layers import ensure_layer_cells, load_layer
from lanterne.observatory.mapping import FileFormat, Kind, Mapping, MeasureSpec
from lanterne.observatory.store import FINEST_RESOLUTION, ObservatoryError, ObservatoryStore

if TYPE_CHECKING:
    from lanterne.audit import AuditLog

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")  # fmt: skip
MAX_COUNT = 2**31 - 1
"""`incidents.n` is an INTEGER: a larger count in one source row is a data error, not a crowd."""


@dataclass(frozen=True)
class IngestReport:
    dataset: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rejects_by_reason: dict[str, int]
    sha256: str
    seconds: float
    replaced: bool = False
    rows_outside_filter: int = 0
    """Rows the mapping's `filter` leaves out: not part of this dataset, so not in `rows_read`."""
    measures_loaded: int = 0


# --- personal identifiers in categories (OB-02) ------------------------------------------------
# A category is published in aggregate tables; a free-text field mapped as a category by mistake
# would publish whatever people typed. These patterns catch the identifiers that matter most; a
# category matching one is refused row by row (the value itself is never logged).
_PII_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an e-mail address", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    (
        "a French social security number (NIR)",
        re.compile(r"\b[12]\s?\d{2}\s?(0[1-9]|1[0-2]|[2-9]\d)\s?(\d{2}|2[AB])\s?\d{3}\s?\d{3}(\s?\d{2})?\b"),
    ),
    ("a phone number", re.compile(r"(?<![\w])(\+|00)?\d(?:[\s.\-()]{0,2}\d){8,14}(?![\w])")),
    (
        "a vehicle registration plate",
        re.compile(
            r"\b[A-HJ-NP-TV-Z]{2}[\s-]?\d{3}[\s-]?[A-HJ-NP-TV-Z]{2}\b"  # French SIV: AB-123-CD
            r"|\b\d{1,4}[\s-]?[A-Z]{1,3}[\s-]?(\d{2}|2[AB]|97\d)\b"  # French FNI: 1234 AB 56
        ),
    ),
)


def personal_identifier(text: str) -> str | None:
    """What kind of personal identifier `text` looks like, or None."""
    for kind, pattern in _PII_PATTERNS:
        if pattern.search(text):
            return kind
    return None


# --- SQL helpers ----------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class _Check:
    field: str
    condition: str
    reason: str


@dataclass
class _Source:
    """The source as a SQL relation with `__row` (1-based data row number) and its columns' types."""

    sql: str
    types: dict[str, str]


@dataclass
class _Plan:
    """The expressions computed per row, then the checks that refuse a row (first one wins)."""

    exprs: dict[str, str] = field(default_factory=dict)
    derived: dict[str, str] = field(default_factory=dict)
    """Computed from `exprs` (the channel of a category), in a second step."""
    checks: list[_Check] = field(default_factory=list)


def lanterne_version() -> str:
    try:
        return importlib.metadata.version("lanterne")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- reading the source -----------------------------------------------------------------------------


def _describe(cur: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    rows = cur.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def _require(file: Path, types: dict[str, str], needed: dict[str, str]) -> None:
    for column, key in needed.items():
        if column not in types:
            known = ", ".join(list(types)[:30])
            raise ObservatoryError(
                f"{file.name}: column {column!r} (mapping `{key}`) is not in the file; its columns are: {known}"
            )


def _open_parquet(cur: duckdb.DuckDBPyConnection, file: Path) -> _Source:
    relation = f"read_parquet({_lit(str(file))}, file_row_number = true)"
    try:
        types = _describe(cur, relation)
    except duckdb.Error as exc:
        raise ObservatoryError(f"{file.name}: cannot be read as Parquet ({_first_line(exc)})") from None
    types.pop("file_row_number", None)
    return _Source(f"(SELECT file_row_number + 1 AS __row, * FROM {relation})", types)


def _open_csv(
    cur: duckdb.DuckDBPyConnection, file: Path, mapping: Mapping, needed: dict[str, str]
) -> _Source:
    opts = mapping.csv
    # Every column as text: a malformed value becomes a reject for its row instead of making
    # DuckDB's type sniffer fail the file or silently turn the column into text for everyone.
    args = [
        _lit(str(file)),
        f"delim = {_lit(opts.delimiter)}",
        f"header = {'true' if opts.header else 'false'}",
        "all_varchar = true",
        f"encoding = {_lit(opts.encoding)}",
        "quote = '\"'",
    ]
    if opts.columns:
        args.append("names = [" + ", ".join(_lit(c) for c in opts.columns) + "]")
    relation = f"read_csv({', '.join(args)})"
    try:
        types = _describe(cur, relation)
        _require(file, types, needed)
        cols = ", ".join(_q(c) for c in dict.fromkeys(needed))
        # A table keeps the file's row order (insertion order), so its rowid is the row number.
        cur.execute(f"CREATE OR REPLACE TEMP TABLE __raw AS SELECT {cols} FROM {relation}")
    except duckdb.Error as exc:
        raise ObservatoryError(f"{file.name}: cannot be read as CSV ({_first_line(exc)})") from None
    return _Source("(SELECT rowid + 1 AS __row, * FROM __raw)", {c: "VARCHAR" for c in needed})


def _open_geojson(cur: duckdb.DuckDBPyConnection, file: Path, needed: dict[str, str]) -> _Source:
    # DuckDB's spatial extension cannot be installed offline; a FeatureCollection of points is
    # small enough for the json module, and only the mapped properties are kept.
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ObservatoryError(f"{file.name}: cannot be read as GeoJSON ({_first_line(exc)})") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise ObservatoryError(f"{file.name}: not a GeoJSON FeatureCollection (no `features` list)")
    columns: dict[str, list[Any]] = {c: [] for c in needed if not c.startswith("__")}
    lat: list[float | None] = []
    lon: list[float | None] = []
    geom_type: list[str | None] = []
    seen: set[str] = set()
    for feature in features:
        props = (feature or {}).get("properties") or {}
        seen.update(props)
        for c, values in columns.items():
            v = props.get(c)
            values.append(None if v is None else v if isinstance(v, str) else json.dumps(v))
        geometry = (feature or {}).get("geometry") or {}
        kind = geometry.get("type")
        coords = geometry.get("coordinates")
        geom_type.append(kind)
        if kind == "Point" and isinstance(coords, list) and len(coords) >= 2:
            lon.append(_float(coords[0]))
            lat.append(_float(coords[1]))
        else:
            lon.append(None)
            lat.append(None)
    for c, key in needed.items():
        if not c.startswith("__") and c not in seen:
            raise ObservatoryError(f"{file.name}: property {c!r} (mapping `{key}`) is in no feature")
    table = pa.table(
        {
            "__row": pa.array(np.arange(1, len(features) + 1, dtype=np.int64)),
            **{c: pa.array(v, type=pa.string()) for c, v in columns.items()},
            "__lat": pa.array(lat, type=pa.float64()),
            "__lon": pa.array(lon, type=pa.float64()),
            "__geom": pa.array(geom_type, type=pa.string()),
        }
    )
    cur.register("__geo", table)
    types = {c: "VARCHAR" for c in columns} | {"__lat": "DOUBLE", "__lon": "DOUBLE", "__geom": "VARCHAR"}
    return _Source("__geo", types)


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


# --- what the mapping asks for ----------------------------------------------------------------------


def _needed_columns(mapping: Mapping, wide: Sequence[str]) -> dict[str, str]:
    """Source column → the mapping key that names it (for error messages)."""
    needed: dict[str, str] = {}
    t = mapping.time
    for attr in ("column", "year_column", "date_column", "hour_column"):
        if getattr(t, attr):
            needed[getattr(t, attr)] = f"time.{attr}"
    loc = mapping.location
    if loc is not None:
        for attr in ("lat", "lon", "wkt", "point_text"):
            if getattr(loc, attr):
                needed[getattr(loc, attr)] = f"location.{attr}"
        if loc.area:
            needed[loc.area.column] = "location.area.column"
    if mapping.category and mapping.category.column:
        needed[mapping.category.column] = "category.column"
    if mapping.channel and mapping.channel.column:
        needed[mapping.channel.column] = "channel.column"
    if mapping.count:
        needed[mapping.count] = "count"
    for i, f in enumerate(mapping.filter):
        needed[f.column] = f"filter[{i}].column"
    for i, m in enumerate(mapping.measures):
        needed[m.column] = f"measures[{i}].column"
    for c in wide:
        needed[c] = "unpivot.columns"
    return needed


def _wide_columns(mapping: Mapping, header: Sequence[str]) -> list[str]:
    spec = mapping.unpivot
    if spec is None:
        return []
    if spec.columns is not None:
        return list(spec.columns)
    used = set(_needed_columns(mapping, ()))
    return [c for c in header if c not in used and c not in spec.exclude and c != "__row"]


class _Exprs:
    """SQL expressions over the source's columns, aware of their types (Parquet is typed, CSV is
    read as text)."""

    def __init__(self, types: dict[str, str], decimal_comma: bool) -> None:
        self.types = types
        self.decimal_comma = decimal_comma

    def is_numeric(self, col: str) -> bool:
        return self.types.get(col, "VARCHAR").split("(")[0] in NUMERIC_TYPES

    def text(self, col: str) -> str:
        return f"NULLIF(trim(CAST({_q(col)} AS VARCHAR)), '')"

    def present(self, col: str) -> str:
        if self.types.get(col, "VARCHAR") != "VARCHAR":
            # Typed (Parquet) values: formatting 1.4 M doubles as text just to test for NULL
            # costs seconds.
            return f"({_q(col)} IS NOT NULL)"
        return f"({self.text(col)} IS NOT NULL)"

    def raw_number(self, col: str) -> str:
        if self.is_numeric(col):
            return f"CAST({_q(col)} AS DOUBLE)"
        text = self.text(col)
        if self.decimal_comma:
            text = f"replace({text}, ',', '.')"
        return f"try_cast({text} AS DOUBLE)"

    def number(self, col: str) -> str:
        """NaN is how pandas writes an empty cell: it means missing, not a malformed value."""
        raw = self.raw_number(col)
        return f"(CASE WHEN isnan({raw}) THEN NULL ELSE {raw} END)"

    def bad_number(self, col: str) -> str:
        if self.is_numeric(col):
            return "false"
        return f"({self.present(col)} AND {self.raw_number(col)} IS NULL)"


_OFFSET_RE = r"\d:\d\d(:\d\d(\.\d+)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$"


def _time(plan: _Plan, x: _Exprs, mapping: Mapping) -> None:
    t = mapping.time
    tz = _lit(t.time_zone)
    what = f"`{t.format}`" if t.format else "ISO 8601"
    if t.column:
        col = t.column
        kind = x.types.get(col, "VARCHAR")
        if kind.startswith("TIMESTAMP WITH TIME ZONE"):
            ts = f"timezone({tz}, {_q(col)})"
        elif kind.startswith(("TIMESTAMP", "DATE")):
            ts = f"CAST({_q(col)} AS TIMESTAMP)"
        elif t.format:
            parsed = f"try_strptime({x.text(col)}, {_lit(t.format)})"
            ts = f"timezone({tz}, {parsed})" if "%z" in t.format or "%Z" in t.format else parsed
        else:
            text = x.text(col)
            ts = (
                f"(CASE WHEN regexp_matches({text}, {_lit(_OFFSET_RE)}) "
                f"THEN timezone({tz}, try_cast({text} AS TIMESTAMPTZ)) ELSE try_cast({text} AS TIMESTAMP) END)"
            )
        present = x.present(col)
        missing_reason, bad_reason = "time is missing", f"time is not a date/time ({what})"
    elif t.year_column:
        col = t.year_column
        year = f"CAST({_q(col)} AS INTEGER)" if x.is_numeric(col) else f"try_cast({x.text(col)} AS INTEGER)"
        year = f"({year} + {t.year_offset})"
        ts = f"(CASE WHEN {year} BETWEEN 1 AND 9999 THEN make_timestamp({year}, 1, 1, 0, 0, 0) END)"
        present = x.present(col)
        missing_reason, bad_reason = "year is missing", "year is not a whole number"
    else:
        assert t.date_column is not None
        dcol = t.date_column
        dkind = x.types.get(dcol, "VARCHAR")
        if dkind.startswith(("TIMESTAMP", "DATE")):
            day = f"CAST({_q(dcol)} AS DATE)"
        elif t.format:
            day = f"CAST(try_strptime({x.text(dcol)}, {_lit(t.format)}) AS DATE)"
        else:
            day = f"try_cast({x.text(dcol)} AS DATE)"
        if t.hour_column:
            hcol = t.hour_column
            hour = (
                f"CAST({_q(hcol)} AS INTEGER)"
                if x.is_numeric(hcol)
                else f"try_cast(regexp_extract({x.text(hcol)}, '^(\\d{{1,2}})', 1) AS INTEGER)"
            )
            next_day = (
                f" + to_days(CASE WHEN {hour} < {t.day_starts_at} THEN 1 ELSE 0 END)"
                if t.day_starts_at
                else ""
            )
            ts = f"(CASE WHEN {hour} BETWEEN 0 AND 23 THEN CAST({day} AS TIMESTAMP) + to_hours({hour}){next_day} END)"
            present = f"({x.present(dcol)} AND {x.present(hcol)})"
            missing_reason, bad_reason = (
                "date or hour is missing",
                f"date ({what}) or hour (0-23) is not valid",
            )
        else:
            ts = f"CAST({day} AS TIMESTAMP)"
            present = x.present(dcol)
            missing_reason, bad_reason = "date is missing", f"date is not a date ({what})"
    plan.exprs["ts_raw"] = ts
    plan.exprs["ts_present"] = present
    plan.checks += [
        _Check("time", "NOT ts_present", missing_reason),
        _Check("time", "ts_raw IS NULL", bad_reason),
        _Check(
            "time",
            "ts_raw < TIMESTAMP '1900-01-01' OR ts_raw >= TIMESTAMP '2100-01-01'",
            "time is outside 1900-2099",
        ),
    ]


_LAT_KEY = r"""['"]lat(?:itude)?['"]\s*:\s*([-+0-9.eE]+)"""
_LON_KEY = r"""['"](?:lon|lng|longitude)['"]\s*:\s*([-+0-9.eE]+)"""
_WKT_POINT = r"(?i)^\s*POINT\s*(?:Z\s*|M\s*|ZM\s*)?\(\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)"


def _location(plan: _Plan, x: _Exprs, mapping: Mapping) -> None:
    loc = mapping.location
    if loc is None or not loc.has_point:
        plan.exprs["lat"] = "CAST(NULL AS DOUBLE)"
        plan.exprs["lon"] = "CAST(NULL AS DOUBLE)"
    else:
        if loc.lat is not None and loc.lon is not None:
            lat, lon = x.number(loc.lat), x.number(loc.lon)
            plan.exprs["loc_present"] = f"({x.present(loc.lat)} OR {x.present(loc.lon)})"
            plan.exprs["loc_bad"] = f"({x.bad_number(loc.lat)} OR {x.bad_number(loc.lon)})"
            plan.checks.append(_Check("location", "loc_bad", "coordinates are not numbers"))
        elif loc.wkt is not None:
            text = x.text(loc.wkt)
            lon = f"try_cast(NULLIF(regexp_extract({text}, {_lit(_WKT_POINT)}, 1), '') AS DOUBLE)"
            lat = f"try_cast(NULLIF(regexp_extract({text}, {_lit(_WKT_POINT)}, 2), '') AS DOUBLE)"
            plan.exprs["loc_present"] = x.present(loc.wkt)
            plan.checks.append(
                _Check("location", "loc_present AND (lat IS NULL OR lon IS NULL)", "WKT is not a POINT")
            )
        elif loc.point_text is not None:
            text = x.text(loc.point_text)
            lat = f"try_cast(NULLIF(regexp_extract({text}, {_lit(_LAT_KEY)}, 1), '') AS DOUBLE)"
            lon = f"try_cast(NULLIF(regexp_extract({text}, {_lit(_LON_KEY)}, 1), '') AS DOUBLE)"
            plan.exprs["loc_present"] = x.present(loc.point_text)
            plan.checks.append(
                _Check(
                    "location",
                    "loc_present AND (lat IS NULL OR lon IS NULL)",
                    "point text has no lat and lon",
                )
            )
        else:
            lat, lon = "__lat", "__lon"
            plan.exprs["loc_present"] = "(__geom IS NOT NULL)"
            plan.checks.append(
                _Check("location", "__geom IS NOT NULL AND __geom <> 'Point'", "geometry is not a Point")
            )
            plan.checks.append(
                _Check(
                    "location",
                    "__geom = 'Point' AND (lat IS NULL OR lon IS NULL)",
                    "Point has no coordinates",
                )
            )
        plan.exprs["lat"] = lat
        plan.exprs["lon"] = lon
        plan.checks += [
            _Check(
                "location",
                "loc_present AND ((lat IS NULL) <> (lon IS NULL))",
                "coordinates incomplete (one of lat, lon)",
            ),
            _Check(
                "location",
                "lat NOT BETWEEN -90 AND 90 OR lon NOT BETWEEN -180 AND 180",
                "coordinates out of range",
            ),
        ]
    area = loc.area if loc is not None else None
    if area is None:
        plan.exprs["area_code"] = "CAST(NULL AS VARCHAR)"
        return
    text = x.text(area.column)
    if x.is_numeric(area.column) and x.types[area.column].split("(")[0] in ("FLOAT", "DOUBLE", "DECIMAL"):
        # 9.0 must become "9": a code is never fractional, and a float column is a CSV-writer artefact.
        text = f"NULLIF(CAST(try_cast({_q(area.column)} AS BIGINT) AS VARCHAR), '')"
    if area.pad:
        text = f"(CASE WHEN length({text}) < {area.pad} THEN lpad({text}, {area.pad}, '0') ELSE {text} END)"
    plan.exprs["area_code"] = f"({_lit(area.prefix)} || {text})" if area.prefix else text
    if area.required:
        plan.checks.append(_Check("area", "area_code IS NULL", "area code is missing"))


def _category_and_channel(plan: _Plan, x: _Exprs, mapping: Mapping) -> None:
    cat, chan = mapping.category, mapping.channel
    assert cat is not None and chan is not None
    if cat.column is not None:
        text = x.text(cat.column)
        if cat.rename:
            whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in cat.rename.items())
            text = f"(CASE {text} {whens} ELSE {text} END)"
        plan.exprs["category"] = text
    else:
        assert cat.value is not None
        plan.exprs["category"] = _lit(cat.value)
    plan.checks.append(_Check("category", "category IS NULL", "category is empty"))
    if chan.value is not None:
        plan.exprs["channel"] = _lit(str(chan.value))
    elif chan.column is not None:
        key = (
            f"(CASE WHEN {_q(chan.column)} THEN 'true' WHEN NOT {_q(chan.column)} THEN 'false' END)"
            if x.types.get(chan.column) == "BOOLEAN"
            else f"lower({x.text(chan.column)})"
        )
        whens = " ".join(f"WHEN {_lit(k.lower())} THEN {_lit(str(v))}" for k, v in chan.values.items())
        plan.exprs["channel"] = f"(CASE {key} {whens} END)"
        plan.checks.append(
            _Check("channel", "channel IS NULL", "channel value not listed in `channel.values`")
        )
    else:
        whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(str(v))}" for k, v in chan.by_category.items())
        default = _lit(str(chan.default)) if chan.default is not None else "NULL"
        plan.derived["channel"] = f"(CASE category {whens} ELSE {default} END)"
        plan.checks.append(
            _Check(
                "channel",
                "channel IS NULL",
                "category has no channel in `channel.by_category` and no default",
            )
        )
    if mapping.count:
        n = x.raw_number(mapping.count)
        plan.exprs["n"] = (
            f"(CASE WHEN {n} >= 0 AND {n} <= {MAX_COUNT} AND {n} = floor({n}) THEN CAST({n} AS INTEGER) END)"
        )
        plan.checks.append(_Check("count", "n IS NULL", "count is not a whole number ≥ 0"))
    else:
        plan.exprs["n"] = "1"


def _measures(plan: _Plan, x: _Exprs, measures: Sequence[MeasureSpec]) -> None:
    for i, m in enumerate(measures):
        plan.exprs[f"v{i}"] = x.number(m.column)
        plan.exprs[f"v{i}_bad"] = x.bad_number(m.column)
        plan.checks.append(_Check(m.column, f"v{i}_bad", "value is not a number"))


def _values_sql(plan: _Plan, source: _Source, mapping: Mapping, x: _Exprs) -> str:
    """Every value computed from the source columns, then those computed from them (a category's
    channel). Materialised once: the checks below read these columns instead of re-evaluating
    the parsing expressions in every branch of the reason CASE."""
    first = ["__row AS row_number"]
    if mapping.location is not None and mapping.location.geometry:
        first += ["__geom"]
    values = [f"{expr} AS {name}" for name, expr in plan.exprs.items()]
    where = " AND ".join(
        f"{x.text(f.column)} IN ({', '.join(_lit(v) for v in f.values)})" for f in mapping.filter
    )
    step1 = f"SELECT {', '.join(first + values)} FROM {source.sql} WHERE {where or 'true'}"
    derived = "".join(f", {expr} AS {name}" for name, expr in plan.derived.items())
    return f"SELECT *{derived} FROM ({step1})"


def _staged_sql(plan: _Plan, mapping: Mapping, h3_join: str, h3_col: str) -> str:
    """The first failing check of each row becomes its `field` and `reason` (NULL: loaded)."""
    reason = " ".join(f"WHEN {c.condition} THEN {_lit(c.reason)}" for c in plan.checks)
    fields = " ".join(f"WHEN {c.condition} THEN {_lit(c.field)}" for c in plan.checks)
    keep = [
        n
        for n in (*plan.exprs, *plan.derived)
        if n not in ("ts_raw", "lat", "lon") and not n.endswith(("_bad", "_present"))
    ]
    return (
        f"SELECT row_number, date_trunc({_lit(mapping.time.precision.value)}, ts_raw) AS ts, "
        f"{''.join(f'{n}, ' for n in keep)}{h3_col} AS h3, "
        f"CASE {fields} END AS field, CASE {reason} END AS reason FROM {h3_join or '__vals'}"
    )


def _h3_cells(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Resolution-10 cells of valid points (h3's C core, one call per point)."""
    to_cell = h3.latlng_to_cell
    return np.fromiter(
        (to_cell(a, b, FINEST_RESOLUTION) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)),
        dtype=np.int64,
        count=len(lat),
    )


def _sites(cur: duckdb.DuckDBPyConnection, mapping: Mapping, wide: Sequence[str]) -> dict[str, int | None]:
    """H3 cell of each site column (unpivot), from the sites file."""
    spec = mapping.unpivot
    if spec is None or spec.sites is None:
        return dict.fromkeys(wide)
    s = spec.sites
    if not s.file.is_file():
        raise ObservatoryError(f"{s.file}: sites file not found (mapping `unpivot.sites.file`)")
    try:
        rows = cur.execute(
            f"SELECT {_q(s.key)}, try_cast({_q(s.lat)} AS DOUBLE), try_cast({_q(s.lon)} AS DOUBLE) "
            f"FROM read_csv({_lit(str(s.file))}, all_varchar = true, header = true)"
        ).fetchall()
    except duckdb.Error as exc:
        raise ObservatoryError(f"{s.file.name}: cannot read the sites file ({_first_line(exc)})") from None
    where = {str(k).strip(): (lat, lon) for k, lat, lon in rows if k is not None}
    out: dict[str, int | None] = {}
    for column in wide:
        if column not in where:
            raise ObservatoryError(
                f"{s.file.name}: no row with {s.key} = {column!r}; add the site's location or list the columns in `unpivot.columns`"
            )
        lat, lon = where[column]
        ok = lat is not None and lon is not None and -90 <= lat <= 90 and -180 <= lon <= 180
        out[column] = h3.latlng_to_cell(lat, lon, FINEST_RESOLUTION) if ok else None
    return out


def ingest(
    store: ObservatoryStore,
    file: Path,
    mapping: Mapping,
    *,
    user_id: str,
    layers: Sequence[BoundaryLayer] = (),
    replace: bool = False,
) -> IngestReport:
    """Load `file` as dataset `mapping.id`. Raises `ObservatoryError` (and writes nothing) when the
    file cannot be read, a mapped column is missing or the dataset exists and `replace` is False."""
    started = perf_counter()
    file = Path(file)
    if not file.is_file():
        raise ObservatoryError(f"{file}: file not found; pass an existing CSV, Parquet or GeoJSON file")
    area = mapping.location.area if mapping.location else None
    if area is not None and layers and area.layer not in {layer.id for layer in layers}:
        raise ObservatoryError(
            f"mapping {mapping.id}: area layer {area.layer!r} is not in observatory.layers of the site config"
        )
    fmt = mapping.file_format(file)
    sha = sha256_file(file)
    dataset = mapping.id

    cur = store.cursor()
    try:
        if _exists(cur, dataset) and not replace:
            raise ObservatoryError(
                f"dataset {dataset!r} is already ingested; pass --replace to load this file instead"
            )
        # The source is opened before the transaction: a CSV is copied into a temporary table
        # whose row ids, outside a transaction, are the file's row order from 0.
        if fmt is FileFormat.PARQUET:
            source = _open_parquet(cur, file)
        elif fmt is FileFormat.CSV:
            # The header is needed to expand `unpivot` before choosing the columns to read.
            header = (
                _csv_header(cur, file, mapping) if mapping.unpivot and mapping.unpivot.columns is None else []
            )
            needed = _needed_columns(mapping, _wide_columns(mapping, header))
            source = _open_csv(cur, file, mapping, needed)
        else:
            if mapping.unpivot and mapping.unpivot.columns is None:
                raise ObservatoryError(
                    f"mapping {dataset}: with a GeoJSON file, list the site columns in `unpivot.columns`"
                )
            needed = _needed_columns(mapping, _wide_columns(mapping, ()))
            if mapping.location is not None and mapping.location.geometry:
                needed |= {
                    "__lat": "location.geometry",
                    "__lon": "location.geometry",
                    "__geom": "location.geometry",
                }
            source = _open_geojson(cur, file, needed)
        wide = _wide_columns(mapping, list(source.types))
        _require(file, source.types, _needed_columns(mapping, wide))
        if mapping.location is not None and mapping.location.geometry and fmt is not FileFormat.GEOJSON:
            raise ObservatoryError(f"mapping {dataset}: `location.geometry` needs a GeoJSON file")

        cur.execute("BEGIN TRANSACTION")
        try:
            replaced = _exists(cur, dataset)
            if replaced and not replace:
                raise ObservatoryError(
                    f"dataset {dataset!r} is already ingested; pass --replace to load this file instead"
                )
            x = _Exprs(source.types, mapping.csv.decimal == "," and fmt is FileFormat.CSV)
            plan = _Plan()
            _time(plan, x, mapping)
            _location(plan, x, mapping)
            measures: list[MeasureSpec] = []
            if mapping.kind is Kind.INCIDENTS:
                _category_and_channel(plan, x, mapping)
            else:
                measures = list(mapping.measures)
                if mapping.unpivot is not None:
                    measures += [
                        MeasureSpec(variable=mapping.unpivot.variable, column=c, site=c) for c in wide
                    ]
                _measures(plan, x, measures)
            try:
                cur.execute(f"CREATE OR REPLACE TEMP TABLE __vals AS {_values_sql(plan, source, mapping, x)}")
            except duckdb.Error as exc:
                raise ObservatoryError(f"{file.name}: cannot be read ({_first_line(exc)})") from None
            if mapping.kind is Kind.INCIDENTS:
                _refuse_personal_categories(cur, plan)

            h3_join, h3_col = "", "CAST(NULL AS BIGINT)"
            if mapping.location is not None and mapping.location.has_point:
                # Cells of in-range points only; a point at exactly (0, 0) is how several exports
                # write "no coordinates", and it is kept as unlocated rather than put off Africa.
                # One H3 call per distinct point, not per row: published coordinates are snapped
                # to blocks or addresses (Chicago: 357 k points for 1.38 M rows), and the Python
                # call is the one step of the pass that is not vectorised.
                usable = "lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180 AND NOT (lat = 0 AND lon = 0)"
                points = cur.execute(f"SELECT DISTINCT lat, lon FROM __vals WHERE {usable}").fetchnumpy()
                lat = np.asarray(points["lat"], dtype=np.float64)
                lon = np.asarray(points["lon"], dtype=np.float64)
                cells = _h3_cells(lat, lon)
                cur.register("__points", pa.table({"lat": lat, "lon": lon, "h3": cells}))
                cur.execute("CREATE OR REPLACE TEMP TABLE __cells AS SELECT * FROM __points")
                cur.unregister("__points")
                h3_join = "(SELECT v.*, c.h3 AS __h3 FROM __vals v LEFT JOIN __cells c ON c.lat = v.lat AND c.lon = v.lon)"
                h3_col = "__h3"
            # Views, not tables: the rows are written once, straight from the values to the store
            # (a staging copy of 1.4 M rows costs as much as the insert). `__checked` has no H3
            # join, for the rejects and the counts.
            cur.execute(
                f"CREATE OR REPLACE TEMP VIEW __staged AS {_staged_sql(plan, mapping, h3_join, h3_col)}"
            )
            cur.execute(
                "CREATE OR REPLACE TEMP VIEW __checked AS "
                f"{_staged_sql(plan, mapping, '', 'CAST(NULL AS BIGINT)')}"
            )
            layer_col = (
                f"CASE WHEN s.area_code IS NOT NULL THEN {_lit(area.layer)} END"
                if area
                else "CAST(NULL AS VARCHAR)"
            )

            if replaced:
                for table in ("incidents", "measures", "rejects"):
                    cur.execute(f"DELETE FROM {table} WHERE dataset = $d", {"d": dataset})
                cur.execute("DELETE FROM datasets WHERE id = $d", {"d": dataset})

            measures_loaded = 0
            if mapping.kind is Kind.INCIDENTS:
                cur.execute(
                    f"INSERT INTO incidents SELECT $d, s.ts, s.category, s.channel, s.h3, {layer_col}, s.area_code, s.n "
                    # In file order: sources are usually sorted by time, and a table stored in
                    # time order lets DuckDB skip row groups on every period filter.
                    "FROM __staged s WHERE s.reason IS NULL ORDER BY s.row_number",
                    {"d": dataset},
                )
            else:
                site_cells = _sites(cur, mapping, wide) if mapping.unpivot else {}
                for i, m in enumerate(measures):
                    if m.site is not None and m.site in site_cells:
                        cell = site_cells[m.site]
                        mh3 = str(cell) if cell is not None else "CAST(NULL AS BIGINT)"
                    else:
                        mh3 = "s.h3"
                    site = _lit(m.site) if m.site is not None else "CAST(NULL AS VARCHAR)"
                    res = cur.execute(
                        f"INSERT INTO measures SELECT $d, s.ts, $v, {site}, {mh3}, {layer_col}, s.area_code, s.v{i} "
                        f"FROM __staged s WHERE s.reason IS NULL AND s.v{i} IS NOT NULL ORDER BY s.row_number",
                        {"d": dataset, "v": m.variable},
                    ).fetchone()
                    measures_loaded += int(res[0]) if res else 0

            cur.execute(
                "INSERT INTO rejects SELECT $d, row_number, field, reason FROM __checked WHERE reason IS NOT NULL "
                "ORDER BY row_number",
                {"d": dataset},
            )
            counts = cur.execute("SELECT count(*) FROM __vals").fetchone()
            rows_read = int(counts[0]) if counts else 0
            by_reason = {
                f"{f}: {r}": int(n)
                for f, r, n in cur.execute(
                    "SELECT field, reason, count(*) FROM rejects WHERE dataset = $d GROUP BY ALL ORDER BY 3 DESC, 2",
                    {"d": dataset},
                ).fetchall()
            }
            rows_rejected = sum(by_reason.values())
            outside = 0
            if mapping.filter:
                total = cur.execute(f"SELECT count(*) FROM {source.sql}").fetchone()
                outside = int(total[0]) - rows_read if total else 0
            cur.execute(
                "INSERT INTO datasets VALUES ($id, $title, $kind, $origin, $licence, $file, $sha, $msha, $mjson, $tz, "
                "$prec, $read, $loaded, $rejected, $who, $at, $version)",
                {
                    "id": dataset,
                    "title": mapping.title,
                    "kind": mapping.kind.value,
                    "origin": mapping.origin,
                    "licence": mapping.licence,
                    "file": file.name,
                    "sha": sha,
                    "msha": mapping.sha256(),
                    "mjson": mapping.canonical_json(),
                    "tz": mapping.time.time_zone,
                    "prec": mapping.time.precision.value,
                    "read": rows_read,
                    "loaded": rows_read - rows_rejected,
                    "rejected": rows_rejected,
                    "who": user_id,
                    "at": datetime.now(UTC).replace(tzinfo=None),
                    "version": lanterne_version(),
                },
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    finally:
        for view in ("__staged", "__checked"):
            cur.execute(f"DROP VIEW IF EXISTS {view}")
        for table in ("__cells", "__vals", "__raw"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.close()

    if layers:
        for layer in layers:
            ensure_layer_cells(store, load_layer(layer))

    return IngestReport(
        dataset=dataset,
        rows_read=rows_read,
        rows_loaded=rows_read - rows_rejected,
        rows_rejected=rows_rejected,
        rejects_by_reason=by_reason,
        sha256=sha,
        seconds=perf_counter() - started,
        replaced=replaced,
        rows_outside_filter=outside,
        measures_loaded=measures_loaded,
    )


def record_dataset_change(
    audit: AuditLog, user_id: str, report: IngestReport, source: str, **hashes: str
) -> None:
    """The audit record of a dataset loaded or replaced, in one shape whether it came from a file
    (`source` is its name, `hashes` its mapping's) or from the cameras' counts, so that an auditor
    reads every change to the observatory the same way."""
    from lanterne.audit import Action

    audit.append(
        user_id,
        Action.DATASET_CHANGE,
        object_type="dataset",
        object_id=report.dataset,
        details={
            "change": "replaced" if report.replaced else "ingested",
            "file": source,
            "sha256": report.sha256,
            **hashes,
            "rows_read": report.rows_read,
            "rows_loaded": report.rows_loaded,
            "rows_rejected": report.rows_rejected,
        },
    )


def ingest_recorded(
    cfg: Config, file: Path, mapping: Mapping, *, user_id: str, replace: bool = False
) -> IngestReport:
    """`ingest` into the site's observatory store, indexed for its layers, and recorded in the
    console's audit log (a dataset change, with the file's hash and row counts). The audit log is
    reached first: an ingest that could not be recorded does not start."""
    from lanterne.audit import AuditLog
    from lanterne.store.db import check_connection, create_engine_for, migrate

    engine = create_engine_for(cfg.store.url)
    try:
        check_connection(engine)
        migrate(engine)
        audit = AuditLog(engine, key_path=cfg.audit.key_path, checkpoint_every=cfg.audit.checkpoint_every)
        store = ObservatoryStore.open(cfg.observatory.store)
        try:
            report = ingest(
                store, file, mapping, user_id=user_id, layers=cfg.observatory.layers, replace=replace
            )
        finally:
            store.close()
        record_dataset_change(audit, user_id, report, Path(file).name, mapping_sha256=mapping.sha256())
    finally:
        engine.dispose()
    return report


def _exists(cur: duckdb.DuckDBPyConnection, dataset: str) -> bool:
    row = cur.execute("SELECT count(*) FROM datasets WHERE id = $id", {"id": dataset}).fetchone()
    return bool(row and row[0])


def _csv_header(cur: duckdb.DuckDBPyConnection, file: Path, mapping: Mapping) -> list[str]:
    opts = mapping.csv
    if opts.columns:
        return list(opts.columns)
    try:
        return list(
            _describe(
                cur,
                f"read_csv({_lit(str(file))}, delim = {_lit(opts.delimiter)}, header = true, all_varchar = true, "
                f"encoding = {_lit(opts.encoding)})",
            )
        )
    except duckdb.Error as exc:
        raise ObservatoryError(f"{file.name}: cannot be read as CSV ({_first_line(exc)})") from None


def _refuse_personal_categories(cur: duckdb.DuckDBPyConnection, plan: _Plan) -> None:
    """Add a check per kind of identifier found among the categories. Categories are few (tens to
    hundreds): testing the distinct values in Python costs nothing, where a regular expression
    per row would cost seconds on 1.4 M rows."""
    distinct = [r[0] for r in cur.execute("SELECT DISTINCT category FROM __vals").fetchall()]
    flagged: dict[str, list[str]] = {}
    for value in distinct:
        kind = personal_identifier(str(value)) if value is not None else None
        if kind is not None:
            flagged.setdefault(kind, []).append(str(value))
    after = next(i for i, c in enumerate(plan.checks) if c.field == "category") + 1
    plan.checks[after:after] = [
        _Check(
            "category",
            f"category IN ({', '.join(_lit(v) for v in values)})",
            f"category looks like {kind} (OB-02)",
        )
        for kind, values in flagged.items()
    ]


# --- camera counts ----------------------------------------------------------------------------------

CAMERA_DATASET = "camera_counts"


@dataclass(frozen=True)
class _HourlyEntries:
    """Entries of one class into one camera zone during one local hour."""

    ts: datetime
    site: str
    variable: str
    h3: int
    value: int


def import_camera_counts(
    store: ObservatoryStore,
    counts: Sequence[Any],
    cameras: dict[str, tuple[float, float]],
    *,
    k: int,
    time_zone: str,
    user_id: str,
) -> IngestReport:
    """Copy the video store's zone statistics as hourly measures (dataset `camera_counts`,
    replaced on every import): entries per class, zone and hour, located at the camera's H3
    cell. Only counts: no track, no frame, nothing per person. An hourly value below `k` is not
    copied (OB-01) and is listed in the rejects; `counts` are `CountsRow`s of `Store.counts`."""
    from zoneinfo import ZoneInfo

    started = perf_counter()
    zone = ZoneInfo(time_zone)
    totals: dict[tuple[datetime, str, str], int] = {}
    for row in counts:
        local = row.bucket_start.astimezone(zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        for cls, n in row.entries.items():
            key = (local, f"{row.camera}/{row.zone}", f"entries_{cls}".replace(" ", "_"))
            totals[key] = totals.get(key, 0) + int(n)
    unknown = sorted({site.split("/")[0] for _, site, _ in totals} - set(cameras))
    if unknown:
        raise ObservatoryError(
            f"zone counts of camera {unknown[0]!r}, which is not in the site config; add it or purge its counts"
        )
    hourly = [
        _HourlyEntries(
            ts, site, variable, h3.latlng_to_cell(*cameras[site.split("/")[0]], FINEST_RESOLUTION), n
        )
        for (ts, site, variable), n in sorted(totals.items())
    ]
    kept = [h for h in hourly if h.value >= k]
    refused = [(i, h) for i, h in enumerate(hourly, start=1) if h.value < k]
    recipe = {
        "source": "zone_counts",
        "k": k,
        "time_zone": time_zone,
        "unit": "entries per class, zone and hour",
    }
    recipe_json = json.dumps(recipe, sort_keys=True)
    content = hashlib.sha256(
        json.dumps([(str(h.ts), h.site, h.variable, h.value) for h in hourly], separators=(",", ":")).encode()
    ).hexdigest()
    with store.transaction() as cur:
        for table in ("measures", "rejects"):
            cur.execute(f"DELETE FROM {table} WHERE dataset = $d", {"d": CAMERA_DATASET})
        replaced = _exists(cur, CAMERA_DATASET)
        cur.execute("DELETE FROM datasets WHERE id = $d", {"d": CAMERA_DATASET})
        if kept:
            frame = pa.table(
                {
                    "ts": pa.array([h.ts for h in kept], type=pa.timestamp("us")),
                    "site": [h.site for h in kept],
                    "variable": [h.variable for h in kept],
                    "h3": pa.array([h.h3 for h in kept], type=pa.int64()),
                    "value": pa.array([float(h.value) for h in kept], type=pa.float64()),
                }
            )
            cur.register("__camera", frame)
            cur.execute(
                "INSERT INTO measures SELECT $d, ts, variable, site, h3, NULL, NULL, value FROM __camera",
                {"d": CAMERA_DATASET},
            )
            cur.unregister("__camera")
        reason = f"count below k = {k} (OB-01)"
        if refused:
            cur.executemany(
                "INSERT INTO rejects VALUES ($d, $n, 'value', $r)",
                [{"d": CAMERA_DATASET, "n": i, "r": reason} for i, _ in refused],
            )
        cur.execute(
            "INSERT INTO datasets VALUES ($id, $title, 'measures', $origin, $licence, 'zone_counts', $sha, $msha, "
            "$mjson, $tz, 'hour', $read, $loaded, $rejected, $who, $at, $version)",
            {
                "id": CAMERA_DATASET,
                "title": "Camera zone entries per hour (Lanterne statistics mode)",
                "origin": "this site's Lanterne video store, table zone_counts",
                "licence": "the operator's own data; internal use",
                "sha": content,
                "msha": hashlib.sha256(recipe_json.encode()).hexdigest(),
                "mjson": recipe_json,
                "tz": time_zone,
                "read": len(hourly),
                "loaded": len(kept),
                "rejected": len(refused),
                "who": user_id,
                "at": datetime.now(UTC).replace(tzinfo=None),
                "version": lanterne_version(),
            },
        )
    return IngestReport(
        dataset=CAMERA_DATASET,
        rows_read=len(hourly),
        rows_loaded=len(kept),
        rows_rejected=len(refused),
        rejects_by_reason={f"value: {reason}": len(refused)} if refused else {},
        sha256=content,
        seconds=perf_counter() - started,
        replaced=replaced,
        measures_loaded=len(kept),
    )
