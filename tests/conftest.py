"""Shared fixtures.

`db_url` runs a test once on SQLite (a file in the test's tmp dir) and once on PostgreSQL (a fresh,
empty database per test on the local server, dropped afterwards). PostgreSQL is part of the test
environment here and in CI, so an unreachable server fails the tests instead of skipping them: a
skipped backend is an untested backend.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_ADMIN_DSN = os.environ.get("LANTERNE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
"""Server used for the PostgreSQL half of `db_url` (trust authentication, user `postgres`)."""

_SESSION_TAG = secrets.token_hex(4)
_NUMBERS = itertools.count()


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL test server {PG_ADMIN_DSN} unreachable: {str(exc).splitlines()[0]}")


@pytest.fixture(scope="session")
def _pg_databases() -> Iterator[list[str]]:
    """Names of the databases created in this session; any left behind are dropped at the end."""
    created: list[str] = []
    yield created
    with _admin() as conn:
        for name in created:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _pg_url(created: list[str]) -> Iterator[str]:
    name = f"lanterne_test_{_SESSION_TAG}_{next(_NUMBERS)}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    created.append(name)
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    created.remove(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lanterne.db'}"
        return
    yield from _pg_url(request.getfixturevalue("_pg_databases"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLite only, for what only SQLite needs testing (WAL, concurrent writers in one file)."""
    return f"sqlite:///{tmp_path / 'lanterne.db'}"
