"""The observatory's store: one DuckDB file with the ingested rows, their provenance and the
rows that were refused.

DuckDB rather than the console's SQLAlchemy store because the work is columnar: a month of counts
per H3 cell over 1.4 M rows is one scan, which DuckDB does in milliseconds where a row store needs
an index per view. The file is separate from the video store on purpose (OB-01): nothing here can
join an alert, and nothing in the video store can reach these rows.

Large deployments may keep the tables in PostgreSQL instead (`observatory.store` set to a
`postgresql://` URL): DuckDB's own engine still runs every query, reading and writing the
PostgreSQL tables through DuckDB's postgres extension, so the SQL of every module is the same for
both stores. The extension comes from the `duckdb-extension-postgres_scanner` package (a pinned
dependency) and is loaded from its file: nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import duckdb

from lanterne.core.errors import LanterneError

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


class StoreNotFoundError(ObservatoryError):
    """A read-only open of a store that nothing has been ingested into yet (no DuckDB file, or no
    observatory tables in the PostgreSQL schema): the console answers 404, not 503."""


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


WRITE_WAIT_S = 30.0
"""How long an ingest waits for the console's readers to let the file go."""

POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg", "postgres")
"""URL schemes of a PostgreSQL store (`postgresql+psycopg://` is the console store's SQLAlchemy
spelling, accepted so one URL can serve both)."""

_SEARCH_PATH = re.compile(r"(?:-c\s*|--)search_path\s*=\s*(\S+)")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class PostgresTarget:
    """Where a `postgresql://` store lives. `conninfo` goes to libpq unchanged (host, port, user,
    password, sslmode, options...); `schema` is the first entry of the URL's search_path
    (`?options=-csearch_path%3Dobservatory`), `public` without one; `shown` is the URL without its
    password, for messages and logs."""

    conninfo: str
    schema: str
    shown: str


def postgres_target(url: str) -> PostgresTarget | None:
    """The PostgreSQL store a URL names, None for a file path; any other scheme is refused."""
    if "://" not in url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ObservatoryError(
            f"observatory.store {parts.scheme}:// is not supported; give a DuckDB file path or a "
            "postgresql://user@host:port/database URL"
        )
    conninfo = urlunsplit(("postgresql", *parts[1:]))
    schema = "public"
    for key, value in parse_qsl(parts.query):
        found = _SEARCH_PATH.search(unquote(value)) if key == "options" else None
        if found:
            entries = [e.strip().strip('"') for e in found.group(1).split(",")]
            schema = next((e for e in entries if e and e != "$user"), schema)
    if not _IDENTIFIER.match(schema):
        raise ObservatoryError(
            f"observatory.store: schema {schema!r} in search_path is not a plain identifier "
            "(letters, digits, _ and $, at most 63)"
        )
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "&".join(
        f"{key}=***" if key == "password" else f"{key}={quote(value, safe='-_.')}"
        for key, value in parse_qsl(parts.query)
    )
    shown = urlunsplit(("postgresql", netloc, parts.path, query, ""))
    return PostgresTarget(conninfo=conninfo, schema=schema, shown=shown)


def _postgres_extension() -> Path:
    """The extension file of the installed `duckdb-extension-postgres_scanner` package, built for
    this DuckDB version (DuckDB refuses a file built for another one)."""
    try:
        import duckdb_extension_postgres_scanner as package
    except ImportError:
        raise ObservatoryError(
            "a postgresql:// observatory store needs the package duckdb-extension-postgres_scanner "
            f"(pip install duckdb-extension-postgres_scanner=={duckdb.__version__})"
        ) from None
    file = (
        Path(package.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / "postgres_scanner.duckdb_extension"
    )
    if not file.is_file():
        raise ObservatoryError(
            f"duckdb-extension-postgres_scanner has no build for DuckDB {duckdb.__version__}; "
            f"install duckdb-extension-postgres_scanner=={duckdb.__version__}"
        )
    return file


CONSOLE_TABLES_SQL = (
    "SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND c.relname IN ('alert_states', 'audit_records') "
    "GROUP BY n.nspname HAVING count(*) = 2 ORDER BY 1 LIMIT 1"
)
"""Schemas holding the console store's alert and audit tables (`lanterne.store`)."""

POSTGRES_INDEXES = (
    "incidents (ts)",
    "measures (ts)",
    'layer_cells (layer COLLATE "C", area_code COLLATE "C")',
)
"""PostgreSQL indexes for the filters DuckDB pushes down: a B-tree on `ts` answers a period (a
month of Chicago: 11 ms instead of a 250 ms scan) and costs nothing measurable at ingest, where
B-trees on dataset and category made Chicago's ingest 2.5 times slower, and a BRIN index on `ts`
read half the table (Chicago's file is not in time order). The extension compares text with
COLLATE "C", so a text index uses that collation or PostgreSQL could not use it. A DuckDB file
needs none: it skips row groups by their min/max."""

_ENGINE: duckdb.DuckDBPyConnection | None = None
_ENGINE_LOCK = threading.Lock()
_ALIASES = itertools.count()


def _postgres_engine() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process that runs the queries of every PostgreSQL store, each
    attached under its own name.

    Shared because loading the extension costs about 0.2 s (DuckDB checks its signature, which
    also proves the third-party wheel carries DuckDB's own signed build): per store, that would
    be paid by the console on every burst of requests (`ReaderPool`). Attaching costs about
    15 ms. Automatic installs are off so that nothing is ever fetched from the network."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            extension = _postgres_extension()
            con = duckdb.connect(
                ":memory:",
                config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
            )
            try:
                con.execute(f"LOAD {literal(str(extension))}")
                # One filtered COPY per scan rather than one per 1,000-page slice of the table:
                # PostgreSQL can then answer a month of one category from its index (11 ms on
                # Chicago against 250 ms for the slices), at the cost of a single stream for a
                # whole-table scan (docs/observatory.md, PostgreSQL).
                con.execute("SET GLOBAL pg_use_ctid_scan = false")
            except duckdb.Error as exc:
                con.close()
                raise ObservatoryError(
                    f"cannot load DuckDB's postgres extension from {extension.name}: {str(exc).splitlines()[0]}"
                ) from None
            _ENGINE = con
        return _ENGINE


def literal(text: str) -> str:
    """`text` as a SQL string literal: for the values the observatory splices into SQL (paths,
    connection strings, a mapping's category names), none of which is trusted to be free of quotes."""
    return "'" + text.replace("'", "''") + "'"


def quoted(name: str) -> str:
    """`name` as a SQL identifier (a schema, a source file's column)."""
    return '"' + name.replace('"', '""') + '"'


def lanterne_version() -> str:
    """The version recorded with every dataset and printed on every report, for provenance."""
    try:
        return importlib.metadata.version("lanterne")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


class ObservatoryStore:
    """One DuckDB file, or a PostgreSQL schema attached to a process-wide DuckDB (`open`).

    DuckDB allows one writing process per file; inside a process, a cursor per thread (`cursor()`)
    shares the database and its cache. A PostgreSQL store has no such lock: PostgreSQL's own
    transactions isolate an ingest from the console's readers."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: str,
        *,
        default: str | None = None,
        detach: str | None = None,
    ) -> None:
        self._con = con
        self.path = path
        self.cache_key = path if path != ":memory:" else f":memory:{secrets.token_hex(8)}"
        """What caches of derived figures (a dataset's time span, the audit's cube) are kept under:
        the file or database, so they outlive the console's reopening of the store between bursts
        of requests (their keys also hold the dataset's version, which every ingest changes); an
        in-memory store is its own."""
        self._default = default
        self._detach = detach
        self._lock = threading.Lock()

    @property
    def is_postgres(self) -> bool:
        return self._default is not None

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False) -> ObservatoryStore:
        """The store at a DuckDB file path or a `postgresql://` URL (see `postgres_target`).
        Read-only opens of a store nothing was ingested into raise `StoreNotFoundError`."""
        target = str(path)
        postgres = postgres_target(target)
        if postgres is not None:
            return cls._open_postgres(postgres, read_only=read_only)
        if read_only and not Path(target).is_file():
            raise StoreNotFoundError(
                f"observatory store {Path(target).name} does not exist yet; ingest a dataset first"
            )
        if not read_only:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        # The console holds the file read-only during a burst of requests and lets it go
        # `ReaderPool.LINGER_S` after the last one; a writer waits for such a pause rather than
        # failing at once (DuckDB's lock is per process: one writer, or any number of readers).
        deadline = time.monotonic() + (0 if read_only else WRITE_WAIT_S)
        while True:
            try:
                con = duckdb.connect(target, read_only=read_only)
                break
            except duckdb.IOException as exc:
                if time.monotonic() >= deadline:
                    raise ObservatoryError(
                        f"cannot open observatory store {Path(target).name}: {str(exc).splitlines()[0]}"
                        + ("" if read_only else " (is the console busy reading it? try again)")
                    ) from None
                time.sleep(0.2)
        if not read_only:
            for statement in SCHEMA:
                con.execute(statement)
        return cls(con, target)

    @classmethod
    def _open_postgres(cls, target: PostgresTarget, *, read_only: bool) -> ObservatoryStore:
        """Attach the database to the process's DuckDB and make the schema the default, so every
        unqualified table name of the modules' SQL (incidents, datasets...) means the PostgreSQL
        table. TEMP tables and views of an ingest stay in DuckDB's memory."""
        engine = _postgres_engine()
        alias = f"observatory_pg_{next(_ALIASES)}"
        with _ENGINE_LOCK:
            con = engine.cursor()
        try:
            try:
                con.execute(
                    f"ATTACH {literal(target.conninfo)} AS {alias} (TYPE postgres{', READ_ONLY' if read_only else ''})"
                )
            except duckdb.Error as exc:
                # libpq's reason without the URL DuckDB quotes (it may hold a password).
                reason = str(exc).splitlines()[0].split('": ', 1)[-1]
                raise ObservatoryError(f"cannot open observatory store {target.shown}: {reason}") from None
            default = f"{alias}.{quoted(target.schema)}"
            try:
                # OB-01: the observatory is never in the console's database, where an
                # attachment could reach the alerts (any schema of it, whatever this role may read).
                console = con.execute(
                    f"SELECT * FROM postgres_query({literal(alias)}, {literal(CONSOLE_TABLES_SQL)})"
                ).fetchall()
            except duckdb.Error as exc:
                con.execute(f"DETACH {alias}")
                raise ObservatoryError(
                    f"cannot read the catalog of observatory store {target.shown}: {str(exc).splitlines()[0]}"
                ) from None
            if console:
                con.execute(f"DETACH {alias}")
                raise ObservatoryError(
                    f"observatory store {target.shown} is the console's database (schema {console[0][0]} "
                    "holds its alerts); give the observatory a database of its own"
                )
            try:
                if not read_only:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {default}")
                con.execute(f"USE {default}")
                if not read_only:
                    for statement in SCHEMA:
                        con.execute(statement)
                    for i, columns in enumerate(POSTGRES_INDEXES):
                        table = columns.split(" ", 1)[0]
                        index = f"{quoted(target.schema)}.{table}"
                        ddl = f"CREATE INDEX IF NOT EXISTS observatory_{table}_{i} ON {index} {columns.split(' ', 1)[1]}"
                        con.execute(f"CALL postgres_execute({literal(alias)}, {literal(ddl)})")
                con.execute("SELECT 1 FROM datasets LIMIT 0")
            except duckdb.CatalogException:
                con.execute("USE memory.main")
                con.execute(f"DETACH {alias}")
                raise StoreNotFoundError(
                    f"observatory store {target.shown} has no observatory tables in schema "
                    f"{target.schema!r} yet; ingest a dataset first"
                ) from None
            except duckdb.Error as exc:
                con.execute("USE memory.main")
                con.execute(f"DETACH {alias}")
                raise ObservatoryError(
                    f"cannot prepare observatory store {target.shown}: {str(exc).splitlines()[0]}"
                ) from None
        finally:
            con.close()
        return cls(engine, target.shown, default=default, detach=alias)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for the calling thread (DuckDB connections are not shared across threads)."""
        with self._lock:
            cur = self._con.cursor()
        if self._default is not None:
            cur.execute(f"USE {self._default}")
        return cur

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

    def dataset(self, dataset: str) -> dict[str, Any] | None:
        """One dataset's id, kind, time zone and time precision, or None when it was never ingested."""
        rows = self.query(
            "SELECT id, kind, time_zone, time_precision FROM datasets WHERE id = $id", {"id": dataset}
        )
        return (
            dict(zip(("id", "kind", "time_zone", "time_precision"), rows[0], strict=True)) if rows else None
        )

    def spans(self) -> dict[str, tuple[Any, ...]]:
        """Per dataset: first and last time, whether it has located rows, its boundary layers and
        its channels (none for measures)."""
        return {
            r[0]: r[1:]
            for r in self.query(
                "SELECT dataset, min(ts), max(ts), count(h3) > 0, "
                "list(DISTINCT area_layer ORDER BY area_layer) FILTER (WHERE area_layer IS NOT NULL), "
                "list(DISTINCT channel ORDER BY channel) FROM incidents GROUP BY dataset "
                "UNION ALL SELECT dataset, min(ts), max(ts), count(h3) > 0, "
                "list(DISTINCT area_layer ORDER BY area_layer) FILTER (WHERE area_layer IS NOT NULL), "
                "[] FROM measures GROUP BY dataset"
            )
        }

    def variables(self) -> dict[str, list[str]]:
        """The measured variables of each measures dataset."""
        return {
            name: names
            for name, names in self.query(
                "SELECT dataset, list(DISTINCT variable ORDER BY variable) FROM measures GROUP BY dataset"
            )
        }

    def month_span(self, dataset: str) -> tuple[Any, Any]:
        """The whole months an incident dataset covers: the first month's start and the day after
        its last month, or (None, None) when it holds no incident."""
        low, high = self.query(
            "SELECT date_trunc('month', min(ts)), date_trunc('month', max(ts)) + INTERVAL 1 MONTH "
            "FROM incidents WHERE dataset = $d",
            {"d": dataset},
        )[0]
        return low, high

    def datasets(self) -> list[dict[str, Any]]:
        cur = self.cursor()
        try:
            rel = cur.execute("SELECT * FROM datasets ORDER BY id")
            names = [d[0] for d in rel.description]
            return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]
        finally:
            cur.close()

    def close(self) -> None:
        if not self.is_postgres:
            self._con.close()
            return
        # The process-wide engine stays; only this store's attachment (and its PostgreSQL
        # connections) goes.
        with self._lock:
            alias, self._detach = self._detach, None
            if alias is not None:
                with _ENGINE_LOCK:
                    cur = self._con.cursor()
                try:
                    cur.execute(f"DETACH DATABASE IF EXISTS {alias}")
                finally:
                    cur.close()


class ReaderPool:
    """One read-only store shared by the console's concurrent requests, closed `LINGER_S` after
    the last one ends.

    Opening per request costs about 22 ms and DuckDB's buffer cache with it (a month's beat map
    then takes twice as long); keeping the file open for good would block every ingest, since
    DuckDB lets a writer in only when no process reads. A page load is a burst of about eight
    requests, so a short linger pays the open once per burst and leaves the file free between
    them."""

    LINGER_S = 2.0

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._store: ObservatoryStore | None = None
        self._users = 0
        self._generation = 0

    def acquire(self) -> ObservatoryStore:
        """The shared store (opened if need be); pair each call with `release`."""
        with self._lock:
            if self._store is None:
                self._store = ObservatoryStore.open(self.path, read_only=True)
            self._users += 1
            return self._store

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._generation += 1
                timer = threading.Timer(self.LINGER_S, self._close_if_idle, args=(self._generation,))
                timer.daemon = True
                timer.start()

    def _close_if_idle(self, generation: int) -> None:
        with self._lock:
            if self._users == 0 and generation == self._generation and self._store is not None:
                self._store.close()
                self._store = None

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
