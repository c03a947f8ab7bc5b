"""Engines and migrations.

SQLite is the default because a single-site install should need no database server; WAL mode lets
the console read while camera workers write, and the busy timeout makes concurrent writers queue
instead of failing. PostgreSQL is for sites with many cameras or several hosts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from lanterne.core.errors import LanterneError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for the lock. Writes are single short statements (milliseconds),
so ten seconds only runs out when something holds the database far too long, e.g. a backup tool."""


class StoreError(LanterneError):
    """The database cannot be used: bad URL, unreachable server, unwritable file."""


def redact(url: str | URL) -> str:
    """The URL as safe to print: the password is masked, since errors end up in logs."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        # Unparseable: we cannot tell where a password would be, so show only the scheme.
        return str(url).split("://", 1)[0] + "://…"


def _parse(url: str) -> URL:
    try:
        u = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"database URL {redact(url)!r} is not a valid URL; use e.g. 'sqlite:///lanterne.db' or "
            "'postgresql+psycopg://user@host/db'"
        ) from None
    backend = u.get_backend_name()
    if backend == "postgresql":
        # psycopg 3 is the only PostgreSQL driver we ship; a plain `postgresql://` URL would make
        # SQLAlchemy look for psycopg2 and fail with a confusing import error.
        return u.set(drivername="postgresql+psycopg")
    if backend != "sqlite":
        raise StoreError(
            f"database URL {redact(u)!r}: unsupported database {backend!r}; use 'sqlite:///…' or "
            "'postgresql+psycopg://…'"
        )
    return u


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL itself needs the lock when another worker is connecting.
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode can lose the last transactions on power loss but never corrupts the
        # file; FULL would fsync on every event write for little benefit to an alerting system.
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


def create_engine_for(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL, configured for many short concurrent writes.

    Does not connect yet; `check_connection` or `migrate` reports an unreachable database.

    >>> create_engine_for("sqlite://").dialect.name
    'sqlite'
    """
    u = _parse(url)
    try:
        if u.get_backend_name() == "sqlite":
            memory = u.database in (None, "", ":memory:")
            if not memory:
                parent = Path(u.database).expanduser().resolve().parent  # type: ignore[arg-type]
                if not parent.is_dir():
                    raise StoreError(
                        f"database URL {redact(u)!r}: directory {parent} does not exist; create it "
                        "or fix store.url"
                    )
            engine = create_engine(
                u,
                # An in-memory database exists per connection: share one across threads (tests).
                poolclass=StaticPool if memory else None,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(u, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"database URL {redact(u)!r}: {type(exc).__name__}; check store.url") from None


def describe_failure(engine_or_url: Engine | str, exc: SQLAlchemyError) -> StoreError:
    """Turn a driver error into one line that names the database but never its password.

    The driver's own message is kept only for its first line, which says *why* (refused, no such
    database, read-only file) but can echo the DSN on later lines for some drivers.
    """
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else engine_or_url
    why = str(exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc).strip()
    why = why.splitlines()[0] if why else type(exc).__name__
    if isinstance(url, URL) and url.password:
        why = why.replace(str(url.password), "***")
    return StoreError(
        f"database {redact(url)!r} cannot be used: {why}; check store.url and that it is reachable"
    )


def check_connection(engine: Engine) -> None:
    """Raise `StoreError` now rather than on the first event if the database is unreachable."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None


_MIGRATING = threading.Lock()


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Percent signs in a password would be read as interpolation by configparser.
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def migrate(url: str | Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (the newest by default). Safe to call at every start: a
    database already at head is left as it is."""
    from alembic import command

    engine = url if isinstance(url, Engine) else create_engine_for(url)
    cfg = _alembic_config(engine)
    try:
        # Alembic keeps its running migration in module globals: two threads of one process
        # opening stores at once (the console's lifespan beside a runner, a test beside a server)
        # would tear each other's context down ("KeyError: 'script'"). One at a time per process.
        with _MIGRATING, engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None


@contextmanager
def _store_errors(engine: Engine, describe_integrity_errors: bool) -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        if not describe_integrity_errors:
            raise
        raise describe_failure(engine, exc) from None
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None


@contextmanager
def transaction(engine: Engine, *, describe_integrity_errors: bool = False) -> Iterator[Connection]:
    """A plain transaction, committed at the end of the block. Database failures become one-line
    `StoreError`s. An `IntegrityError` is a programming error (unknown type, missing event for
    evidence) and propagates as is, unless `describe_integrity_errors`: for a caller whose
    constraint can be hit by a race (a legal hold on an event a purge is deleting), the user
    hears the one line instead of a traceback."""
    with _store_errors(engine, describe_integrity_errors), engine.begin() as conn:
        yield conn


@contextmanager
def locked_write(
    engine: Engine, table: str | None, *, describe_integrity_errors: bool = False
) -> Iterator[Connection]:
    """A transaction that holds a write lock from its first statement to its commit, for the
    read-then-write steps that must not interleave (chaining an audit record, deciding whether to
    suspend, deciding an alert): SQLite `BEGIN IMMEDIATE` (pysqlite would otherwise begin only at
    the first write, after the read), PostgreSQL a lock on `table` that plain reads do not wait
    for. With `table=None` PostgreSQL takes no lock here: the caller locks the rows it reads
    (`SELECT … FOR UPDATE`), so writers of different rows (decisions on different alerts) do not
    wait for each other. SQLite has a single write lock and cannot lock less than the database.
    Errors are handled as by `transaction`."""
    with _store_errors(engine, describe_integrity_errors), engine.connect() as conn:
        try:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif table is not None:
                conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
