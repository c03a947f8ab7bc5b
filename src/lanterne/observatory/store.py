"""The observatory's store: one DuckDB file with the ingested rows, their provenance and the
rows that were refused.

DuckDB rather than the console's SQLAlchemy store because the work is columnar: a month of counts
per H3 cell over 1.4 M rows is one scan, which DuckDB does in milliseconds where a row store needs
an index per view. The file is separate from the video store on purpose (OB-01): nothing here can
join an alert, and nothing in the video store can reach these rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb

from lanterne.errors import LanterneError

FINEST_RESOLUTION = 10
"""H3 resolution kept at ingest (edge about 66 m, 0.015 km²): coarser views are computed from it
by `h3_parent_sql`. Exact points are never stored (OB-02 asks for ≥ 100 m generalisation of what
is shown; a resolution-10 cell is the storage grain, views start at resolution 9)."""


class Channel(StrEnum):
    """Who produced a record: the first question of the bias audit (OB-04)."""

    CITIZEN_REPORT = "citizen_report"
    POLICE_INITIATED = "police_initiated"
    SENSOR = "sensor"
    OPERATOR = "operator"


class ObservatoryError(LanterneError):
    """A user's mistake with the observatory (bad mapping, unreadable file, unknown dataset)."""


SCHEMA = (
    """CREATE TABLE IF NOT EXISTS datasets (
        id VARCHAR PRIMARY KEY,
        title VARCHAR NOT NULL,
        kind VARCHAR NOT NULL CHECK (kind IN ('incidents', 'measures')),
        origin VARCHAR NOT NULL,
        licence VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL,
        mapping_sha256 VARCHAR NOT NULL,
        mapping_json VARCHAR NOT NULL,
        time_zone VARCHAR NOT NULL,
        time_precision VARCHAR NOT NULL CHECK (time_precision IN ('minute', 'hour', 'day', 'month', 'year')),
        rows_read BIGINT NOT NULL,
        rows_loaded BIGINT NOT NULL,
        rows_rejected BIGINT NOT NULL,
        ingested_by VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL,
        lanterne_version VARCHAR NOT NULL
    )""",
    # One row per source record (or per pre-aggregated source cell, with its count in `n`).
    # `ts` is the local wall-clock time in the dataset's time zone, truncated to its precision.
    """CREATE TABLE IF NOT EXISTS incidents (
        dataset VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        category VARCHAR NOT NULL,
        channel VARCHAR NOT NULL CHECK (channel IN ('citizen_report', 'police_initiated', 'sensor', 'operator')),
        h3 BIGINT,
        area_layer VARCHAR,
        area_code VARCHAR,
        n INTEGER NOT NULL DEFAULT 1 CHECK (n >= 0)
    )""",
    # Exposure and covariates: population, footfall, bike counts, weather, camera counts.
    """CREATE TABLE IF NOT EXISTS measures (
        dataset VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        variable VARCHAR NOT NULL,
        site VARCHAR,
        h3 BIGINT,
        area_layer VARCHAR,
        area_code VARCHAR,
        value DOUBLE NOT NULL
    )""",
    # Every refused source row with its reason: nothing is dropped silently. The row's content is
    # not kept (it may hold what the mapping was written to leave out), only where and why.
    """CREATE TABLE IF NOT EXISTS rejects (
        dataset VARCHAR NOT NULL,
        row_number BIGINT NOT NULL,
        field VARCHAR NOT NULL,
        reason VARCHAR NOT NULL
    )""",
    # Which area of a layer holds each H3 cell's centre: computed once per layer and cell.
    """CREATE TABLE IF NOT EXISTS layer_cells (
        layer VARCHAR NOT NULL,
        layer_sha256 VARCHAR NOT NULL,
        h3 BIGINT NOT NULL,
        area_code VARCHAR
    )""",
)


def h3_parent_sql(column: str, resolution: int) -> str:
    """SQL for the resolution-`resolution` parent of the H3 cells in `column`.

    H3 keeps the resolution in bits 52-55 and one 3-bit digit per finer resolution below; a
    parent sets the resolution and fills the finer digits with 7. Pure bit arithmetic, so it runs
    inside the scan (portable to PostgreSQL's BIGINT operators) instead of a Python call per row.
    """
    if not 0 <= resolution <= FINEST_RESOLUTION:
        raise ObservatoryError(f"H3 resolution {resolution} is outside 0-{FINEST_RESOLUTION}")
    keep = ~(0xF << 52) & (2**63 - 1)
    return f"(({column} & {keep}) | {resolution << 52} | {(1 << (45 - 3 * resolution)) - 1})"


class ObservatoryStore:
    """One DuckDB file. DuckDB allows one writing process per file; inside a process, a cursor
    per thread (`cursor()`) shares the database and its cache."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self._con = con
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False) -> ObservatoryStore:
        target = str(path)
        if "://" in target:
            raise ObservatoryError(
                f"observatory.store {target.split('://')[0]}:// is not supported; give a DuckDB file path"
            )
        if read_only and not Path(target).is_file():
            raise ObservatoryError(
                f"observatory store {Path(target).name} does not exist yet; ingest a dataset first"
            )
        if not read_only:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as exc:
            raise ObservatoryError(
                f"cannot open observatory store {Path(target).name}: {str(exc).splitlines()[0]}"
            ) from None
        if not read_only:
            for statement in SCHEMA:
                con.execute(statement)
        return cls(con, target)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for the calling thread (DuckDB connections are not shared across threads)."""
        with self._lock:
            return self._con.cursor()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self.cursor()
        try:
            return cur.execute(sql, params or {}).fetchall()
        finally:
            cur.close()

    def datasets(self) -> list[dict[str, Any]]:
        cur = self.cursor()
        try:
            rel = cur.execute("SELECT * FROM datasets ORDER BY id")
            names = [d[0] for d in rel.description]
            return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
        finally:
            cur.close()

    def close(self) -> None:
        self._con.close()
