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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import duckdb
import numpy as np
import pyarrow as pa
from h3.api import basic_int as h3

from lanterne.audit import Action, AuditLog
from lanterne.config.schema import BoundaryLayer, Config
from lanterne.core.assets import sha256_file
from lanterne.observatory.ingest.expressions import (
    Exprs,
    plan_rows,
    refuse_personal_categories,
    staged_sql,
    values_sql,
)
from lanterne.observatory.ingest.readers import Source, first_line, open_source, site_cells
from lanterne.observatory.layers import ensure_layer_cells, load_layer
from lanterne.observatory.mapping import FileFormat, Kind, Mapping, MeasureSpec
from lanterne.observatory.store import (
    FINEST_RESOLUTION,
    ObservatoryError,
    ObservatoryStore,
    lanterne_version,
    literal,
)


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


@dataclass(frozen=True)
class _Loaded:
    """What one transaction wrote, for the report."""

    replaced: bool
    rows_read: int
    by_reason: dict[str, int]
    outside: int
    measures_loaded: int

    @property
    def rows_rejected(self) -> int:
        return sum(self.by_reason.values())


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

    cur = store.cursor()
    try:
        _refuse_existing(cur, mapping.id, replace)
        # The source is opened before the transaction: a CSV is copied into a temporary table
        # whose row ids, outside a transaction, are the file's row order from 0.
        source, wide = open_source(cur, file, mapping, fmt)
        cur.execute("BEGIN TRANSACTION")
        try:
            loaded = _load(cur, file, mapping, fmt, source, wide, replace=replace)
            _record_provenance(cur, mapping, file, sha, loaded, user_id)
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

    for layer in layers:
        ensure_layer_cells(store, load_layer(layer))

    return IngestReport(
        dataset=mapping.id,
        rows_read=loaded.rows_read,
        rows_loaded=loaded.rows_read - loaded.rows_rejected,
        rows_rejected=loaded.rows_rejected,
        rejects_by_reason=loaded.by_reason,
        sha256=sha,
        seconds=perf_counter() - started,
        replaced=loaded.replaced,
        rows_outside_filter=loaded.outside,
        measures_loaded=loaded.measures_loaded,
    )


def _refuse_existing(cur: duckdb.DuckDBPyConnection, dataset: str, replace: bool) -> bool:
    """Whether `dataset` is already in the store; refused unless it is to be replaced."""
    exists = dataset_exists(cur, dataset)
    if exists and not replace:
        raise ObservatoryError(
            f"dataset {dataset!r} is already ingested; pass --replace to load this file instead"
        )
    return exists


def _load(
    cur: duckdb.DuckDBPyConnection,
    file: Path,
    mapping: Mapping,
    fmt: FileFormat,
    source: Source,
    wide: Sequence[str],
    *,
    replace: bool,
) -> _Loaded:
    """Inside the transaction: stage the checked rows, drop an older version, write rows and rejects."""
    # Checked again inside the transaction: another process may have loaded it since.
    replaced = _refuse_existing(cur, mapping.id, replace)
    measures = _stage(cur, file, mapping, fmt, source, wide)
    if replaced:
        for table in ("incidents", "measures", "rejects"):
            cur.execute(f"DELETE FROM {table} WHERE dataset = $d", {"d": mapping.id})
        cur.execute("DELETE FROM datasets WHERE id = $d", {"d": mapping.id})
    measures_loaded = _write_rows(cur, mapping, wide, measures)
    return _tally(cur, mapping, source, replaced=replaced, measures_loaded=measures_loaded)


def _stage(
    cur: duckdb.DuckDBPyConnection,
    file: Path,
    mapping: Mapping,
    fmt: FileFormat,
    source: Source,
    wide: Sequence[str],
) -> list[MeasureSpec]:
    """The values of every row (`__vals`), then the views `__staged` (with H3 cells, to load) and
    `__checked` (without, for the rejects and the counts). Returns the measures read, wide
    columns included."""
    x = Exprs(source.types, mapping.csv.decimal == "," and fmt is FileFormat.CSV)
    measures: list[MeasureSpec] = []
    if mapping.kind is not Kind.INCIDENTS:
        measures = list(mapping.measures)
        if mapping.unpivot is not None:
            measures += [MeasureSpec(variable=mapping.unpivot.variable, column=c, site=c) for c in wide]
    plan = plan_rows(x, mapping, measures)
    try:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE __vals AS {values_sql(plan, source, mapping, x)}")
    except duckdb.Error as exc:
        raise ObservatoryError(f"{file.name}: cannot be read ({first_line(exc)})") from None
    if mapping.kind is Kind.INCIDENTS:
        refuse_personal_categories(cur, plan)
    h3_join, h3_col = _index_points(cur, mapping)
    # Views, not tables: the rows are written once, straight from the values to the store
    # (a staging copy of 1.4 M rows costs as much as the insert). `__checked` has no H3
    # join, for the rejects and the counts.
    cur.execute(f"CREATE OR REPLACE TEMP VIEW __staged AS {staged_sql(plan, mapping, h3_join, h3_col)}")
    cur.execute(
        f"CREATE OR REPLACE TEMP VIEW __checked AS {staged_sql(plan, mapping, '', 'CAST(NULL AS BIGINT)')}"
    )
    return measures


def _index_points(cur: duckdb.DuckDBPyConnection, mapping: Mapping) -> tuple[str, str]:
    """The relation with each row's H3 cell (`__cells` joined to `__vals`) and its cell column;
    ("", NULL) when the mapping has no point."""
    if mapping.location is None or not mapping.location.has_point:
        return "", "CAST(NULL AS BIGINT)"
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
    return (
        "(SELECT v.*, c.h3 AS __h3 FROM __vals v LEFT JOIN __cells c ON c.lat = v.lat AND c.lon = v.lon)",
        "__h3",
    )


def _h3_cells(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Resolution-10 cells of valid points (h3's C core, one call per point)."""
    to_cell = h3.latlng_to_cell
    return np.fromiter(
        (to_cell(a, b, FINEST_RESOLUTION) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)),
        dtype=np.int64,
        count=len(lat),
    )


def _write_rows(
    cur: duckdb.DuckDBPyConnection, mapping: Mapping, wide: Sequence[str], measures: Sequence[MeasureSpec]
) -> int:
    """The loaded rows (incidents, or one measure row per value) and the refused ones; returns
    the measure values loaded."""
    dataset = mapping.id
    area = mapping.location.area if mapping.location else None
    layer_col = (
        f"CASE WHEN s.area_code IS NOT NULL THEN {literal(area.layer)} END"
        if area
        else "CAST(NULL AS VARCHAR)"
    )
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
        cells = site_cells(cur, mapping, wide) if mapping.unpivot else {}
        for i, m in enumerate(measures):
            if m.site is not None and m.site in cells:
                cell = cells[m.site]
                mh3 = str(cell) if cell is not None else "CAST(NULL AS BIGINT)"
            else:
                mh3 = "s.h3"
            site = literal(m.site) if m.site is not None else "CAST(NULL AS VARCHAR)"
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
    return measures_loaded


def _tally(
    cur: duckdb.DuckDBPyConnection, mapping: Mapping, source: Source, *, replaced: bool, measures_loaded: int
) -> _Loaded:
    """Rows read, rejects by reason and rows outside the filter, counted from what was written."""
    counts = cur.execute("SELECT count(*) FROM __vals").fetchone()
    rows_read = int(counts[0]) if counts else 0
    by_reason = {
        f"{f}: {r}": int(n)
        for f, r, n in cur.execute(
            "SELECT field, reason, count(*) FROM rejects WHERE dataset = $d GROUP BY ALL ORDER BY 3 DESC, 2",
            {"d": mapping.id},
        ).fetchall()
    }
    outside = 0
    if mapping.filter:
        total = cur.execute(f"SELECT count(*) FROM {source.sql}").fetchone()
        outside = int(total[0]) - rows_read if total else 0
    return _Loaded(replaced, rows_read, by_reason, outside, measures_loaded)


def _record_provenance(
    cur: duckdb.DuckDBPyConnection, mapping: Mapping, file: Path, sha: str, loaded: _Loaded, user_id: str
) -> None:
    """The dataset's provenance row: where it came from, under which licence and mapping, and by whom."""
    cur.execute(
        "INSERT INTO datasets VALUES ($id, $title, $kind, $origin, $licence, $file, $sha, $msha, $mjson, $tz, "
        "$prec, $read, $loaded, $rejected, $who, $at, $version)",
        {
            "id": mapping.id,
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
            "read": loaded.rows_read,
            "loaded": loaded.rows_read - loaded.rows_rejected,
            "rejected": loaded.rows_rejected,
            "who": user_id,
            "at": datetime.now(UTC).replace(tzinfo=None),
            "version": lanterne_version(),
        },
    )


def dataset_exists(cur: duckdb.DuckDBPyConnection, dataset: str) -> bool:
    row = cur.execute("SELECT count(*) FROM datasets WHERE id = $id", {"id": dataset}).fetchone()
    return bool(row and row[0])


def record_dataset_change(
    audit: AuditLog, user_id: str, report: IngestReport, source: str, **hashes: str | int
) -> None:
    """The audit record of a dataset loaded or replaced, in one shape whether it came from a file
    (`source` is its name, `hashes` its mapping's and the governance record that approved it) or
    from the cameras' counts, so that an auditor reads every change to the observatory the same way."""
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
    cfg: Config,
    file: Path,
    mapping: Mapping,
    *,
    user_id: str,
    replace: bool = False,
    audit: AuditLog | None = None,
    provenance: dict[str, str | int] | None = None,
) -> IngestReport:
    """`ingest` into the site's observatory store, indexed for its layers, and recorded in the
    console's audit log (a dataset change, with the file's hash and row counts). The audit log is
    reached first: an ingest that could not be recorded does not start. `audit` is the site's log
    when the caller holds it open; `provenance` adds what the caller checked before loading (the
    mapping file's hash and the governance record that approved the source, GV-05), which this
    package cannot check itself: the governance register is a sibling it does not import."""
    own = audit is None
    if audit is None:
        audit = AuditLog.from_config(cfg)
    try:
        store = ObservatoryStore.open(cfg.observatory.store)
        try:
            report = ingest(
                store, file, mapping, user_id=user_id, layers=cfg.observatory.layers, replace=replace
            )
        finally:
            store.close()
        record_dataset_change(
            audit, user_id, report, Path(file).name, mapping_sha256=mapping.sha256(), **(provenance or {})
        )
    finally:
        if own:
            audit.close()
    return report
