"""The cluster tests run against a real `nats-server -js` of their own (tests/support/nats.py)."""

import secrets
from collections.abc import Iterator

import pytest
from psycopg import sql

from tests.support.nats import nats_server
from tests.support.postgres import PG_ADMIN_DSN, admin_connection

__all__ = ["cluster_db", "nats_server"]


@pytest.fixture
def cluster_db() -> Iterator[str]:
    """A fresh database on the local PostgreSQL for one cluster test, as SQLAlchemy's URL: the
    workers and the ingester are separate processes, so they need a server, not a file."""
    name = f"lanterne_cluster_{secrets.token_hex(4)}"
    with admin_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
