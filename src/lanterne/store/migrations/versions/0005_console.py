"""Operator console: local accounts, server-side sessions, and supervisors' stop controls.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

An account's `id` is what the audit log records; `login` is only what the person types. Sessions
store the sha256 of the cookie token, never the token. A stop covers one detector on a camera,
every detector on a camera, or the whole site, until a supervisor lifts it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("operator", "supervisor", "auditor", "admin", "analyst")


def _in_list(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("login", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("disabled_at", ts, nullable=True),
        sa.CheckConstraint(_in_list("role", ROLES), name="ck_accounts_role"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column(
            "account_id", sa.String(32), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("last_seen", ts, nullable=False),
        sa.Column("expires_at", ts, nullable=False),
    )
    op.create_index("ix_sessions_account_id", "sessions", ["account_id"])
    op.create_table(
        "stops",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("camera", sa.String(64), nullable=True),
        sa.Column("type", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("started_by", sa.String(128), nullable=False),
        sa.Column("lifted_at", ts, nullable=True),
        sa.Column("lifted_by", sa.String(128), nullable=True),
        sa.CheckConstraint(_in_list("scope", ("detector", "camera", "site")), name="ck_stops_scope"),
        sa.CheckConstraint(
            "(scope = 'site' AND camera IS NULL AND type IS NULL)"
            " OR (scope = 'camera' AND camera IS NOT NULL AND type IS NULL)"
            " OR (scope = 'detector' AND camera IS NOT NULL AND type IS NOT NULL)",
            name="ck_stops_shape",
        ),
    )


def downgrade() -> None:
    op.drop_table("stops")
    op.drop_table("sessions")
    op.drop_table("accounts")
