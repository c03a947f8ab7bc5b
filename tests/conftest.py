"""Shared fixtures.

`db_url` runs a test once on SQLite (a file in the test's tmp dir) and once on PostgreSQL (an empty
schema per test in a database created for the session on the local server and dropped at its end). PostgreSQL is part of the test
environment here and in CI, so an unreachable server fails the tests instead of skipping them: a
skipped backend is an untested backend.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from lanterne.config.schema import BoundaryLayer
from lanterne.observatory.store import ObservatoryStore
from tests.support import observatory_data
from tests.support.postgres import PG_ADMIN_DSN, admin_connection

_SESSION_TAG = secrets.token_hex(4)
_NUMBERS = itertools.count()

pytest_plugins = ["tests.support.console", "tests.support.observatory_api"]


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str]:
    """One database for the test session (`lanterne_test_<random>`), dropped at the end."""
    name = f"lanterne_test_{_SESSION_TAG}"
    with admin_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _pg_url(database_url: str) -> Iterator[str]:
    # A fresh schema per test, selected through the connection's search_path, gives every test an
    # empty database (Alembic's version table included) in milliseconds; CREATE DATABASE per test
    # forces a checkpoint and costs about a second on a loaded machine.
    schema = f"t{next(_NUMBERS)}"
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield f"{database_url}?options=-csearch_path%3D{schema}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lanterne.db'}"
        return
    yield from _pg_url(request.getfixturevalue("_pg_database"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLite only, for what only SQLite needs testing (WAL, concurrent writers in one file)."""
    return f"sqlite:///{tmp_path / 'lanterne.db'}"


# --- observatory ------------------------------------------------------------------------------------
# The shared, published data (never copied into the repository) and the example mappings.
OBS_DATA, OBS_EXAMPLES = observatory_data.DATA, observatory_data.EXAMPLES


@pytest.fixture(scope="session")
def obs_layers() -> dict[str, BoundaryLayer]:
    """The boundary layers of examples/observatory/site.yml, by id (beats, districts,
    arrondissements, quartiers, departements, communes, marseille)."""
    from lanterne.config import load_config

    cfg = load_config(OBS_EXAMPLES / "site.yml")
    return {layer.id: layer for layer in cfg.observatory.layers}


@pytest.fixture(scope="session")
def chicago_store(
    tmp_path_factory: pytest.TempPathFactory, obs_layers: dict[str, BoundaryLayer]
) -> Iterator[ObservatoryStore]:
    """The full Chicago file (1,382,764 rows) ingested once per test process through
    examples/observatory/chicago_crimes.yml, with layers beats and districts indexed. Read-only."""
    from lanterne.observatory.ingest import ingest
    from lanterne.observatory.mapping import load_mapping

    store = ObservatoryStore.open(tmp_path_factory.mktemp("chicago") / "observatory.duckdb")
    ingest(
        store,
        OBS_DATA / "chicago_crimes_2013_2017.parquet",
        load_mapping(OBS_EXAMPLES / "chicago_crimes.yml"),
        user_id="test",
        layers=[obs_layers["beats"], obs_layers["districts"]],
    )
    yield store
    store.close()
