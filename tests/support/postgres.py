"""The local PostgreSQL server the tests use (trust authentication, user `postgres`); an unreachable
server fails the test instead of skipping it."""

from __future__ import annotations

import os

import psycopg
import pytest

PG_ADMIN_DSN = os.environ.get("LANTERNE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
"""Server used for the PostgreSQL half of `db_url` (trust authentication, user `postgres`)."""


def admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL test server {PG_ADMIN_DSN} unreachable: {str(exc).splitlines()[0]}")
