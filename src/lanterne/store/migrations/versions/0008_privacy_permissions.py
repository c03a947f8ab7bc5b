"""Permissions to remove privacy protection from recorded video.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

One row per permission granted to a user by an administrator: the cameras it covers (or all), why
it was granted, until when, and its revocation. Rows are never edited otherwise, so the register
shows who could see unanonymised video when.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "privacy_permissions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("cameras", sa.String(4000), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("granted_by", sa.String(128), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.CheckConstraint("length(reason) > 0", name="ck_privacy_permissions_reason"),
    )
    op.create_index("ix_privacy_permissions_user_id", "privacy_permissions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_privacy_permissions_user_id", table_name="privacy_permissions")
    op.drop_table("privacy_permissions")
