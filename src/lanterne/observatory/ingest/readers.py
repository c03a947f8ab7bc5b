"""The source file as a SQL relation: DuckDB's own readers for Parquet and CSV (any delimiter, a
decimal comma, a BOM, gzip), the json module for GeoJSON points, and the unpivot's sites file.

Only the columns the mapping names are read: the others (`adresse` in DansMaRue) never leave the
source file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from h3.api import basic_int as h3

from lanterne.observatory.mapping import FileFormat, Mapping
from lanterne.observatory.store import FINEST_RESOLUTION, ObservatoryError, literal, quoted


@dataclass
class Source:
    """The source as a SQL relation with `__row` (1-based data row number) and its columns' types."""

    sql: str
    types: dict[str, str]


def open_source(
    cur: duckdb.DuckDBPyConnection, file: Path, mapping: Mapping, fmt: FileFormat
) -> tuple[Source, list[str]]:
    """The source and its wide columns (the sites of an `unpivot`). Raises `ObservatoryError` when
    the file cannot be read or a mapped column is not in it."""
    dataset = mapping.id
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
    return source, wide


def first_line(exc: BaseException) -> str:
    """DuckDB's errors run to several lines of context; the user reads the first, after the file's name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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


def _open_parquet(cur: duckdb.DuckDBPyConnection, file: Path) -> Source:
    relation = f"read_parquet({literal(str(file))}, file_row_number = true)"
    try:
        types = _describe(cur, relation)
    except duckdb.Error as exc:
        raise ObservatoryError(f"{file.name}: cannot be read as Parquet ({first_line(exc)})") from None
    types.pop("file_row_number", None)
    return Source(f"(SELECT file_row_number + 1 AS __row, * FROM {relation})", types)


def _open_csv(cur: duckdb.DuckDBPyConnection, file: Path, mapping: Mapping, needed: dict[str, str]) -> Source:
    opts = mapping.csv
    # Every column as text: a malformed value becomes a reject for its row instead of making
    # DuckDB's type sniffer fail the file or silently turn the column into text for everyone.
    args = [
        literal(str(file)),
        f"delim = {literal(opts.delimiter)}",
        f"header = {'true' if opts.header else 'false'}",
        "all_varchar = true",
        f"encoding = {literal(opts.encoding)}",
        "quote = '\"'",
    ]
    if opts.columns:
        args.append("names = [" + ", ".join(literal(c) for c in opts.columns) + "]")
    relation = f"read_csv({', '.join(args)})"
    try:
        types = _describe(cur, relation)
        _require(file, types, needed)
        cols = ", ".join(quoted(c) for c in dict.fromkeys(needed))
        # A table keeps the file's row order (insertion order), so its rowid is the row number.
        cur.execute(f"CREATE OR REPLACE TEMP TABLE __raw AS SELECT {cols} FROM {relation}")
    except duckdb.Error as exc:
        raise ObservatoryError(f"{file.name}: cannot be read as CSV ({first_line(exc)})") from None
    return Source("(SELECT rowid + 1 AS __row, * FROM __raw)", {c: "VARCHAR" for c in needed})


def _open_geojson(cur: duckdb.DuckDBPyConnection, file: Path, needed: dict[str, str]) -> Source:
    # DuckDB's spatial extension cannot be installed offline; a FeatureCollection of points is
    # small enough for the json module, and only the mapped properties are kept.
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ObservatoryError(f"{file.name}: cannot be read as GeoJSON ({first_line(exc)})") from None
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
    return Source("__geo", types)


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _csv_header(cur: duckdb.DuckDBPyConnection, file: Path, mapping: Mapping) -> list[str]:
    opts = mapping.csv
    if opts.columns:
        return list(opts.columns)
    try:
        return list(
            _describe(
                cur,
                f"read_csv({literal(str(file))}, delim = {literal(opts.delimiter)}, header = true, all_varchar = true, "
                f"encoding = {literal(opts.encoding)})",
            )
        )
    except duckdb.Error as exc:
        raise ObservatoryError(f"{file.name}: cannot be read as CSV ({first_line(exc)})") from None


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


def site_cells(
    cur: duckdb.DuckDBPyConnection, mapping: Mapping, wide: Sequence[str]
) -> dict[str, int | None]:
    """H3 cell of each site column (unpivot), from the sites file."""
    spec = mapping.unpivot
    if spec is None or spec.sites is None:
        return dict.fromkeys(wide)
    s = spec.sites
    if not s.file.is_file():
        raise ObservatoryError(f"{s.file}: sites file not found (mapping `unpivot.sites.file`)")
    try:
        rows = cur.execute(
            f"SELECT {quoted(s.key)}, try_cast({quoted(s.lat)} AS DOUBLE), try_cast({quoted(s.lon)} AS DOUBLE) "
            f"FROM read_csv({literal(str(s.file))}, all_varchar = true, header = true)"
        ).fetchall()
    except duckdb.Error as exc:
        raise ObservatoryError(f"{s.file.name}: cannot read the sites file ({first_line(exc)})") from None
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
