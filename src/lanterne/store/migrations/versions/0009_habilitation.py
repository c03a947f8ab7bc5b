"""Who may see video: habilitation and training records, TOTP second factors, recovery codes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Habilitation and training rows are never edited except to revoke them, so the register shows who
was designated and trained when. A second factor is one row per account (re-enrolling replaces
it); recovery codes are salted hashes, spent once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _record_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "habilitations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("authority", sa.String(256), nullable=False),
        sa.Column("designated_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cameras", sa.String(4000), nullable=False),
        *_record_columns(),
        sa.CheckConstraint("length(authority) > 0", name="ck_habilitations_authority"),
    )
    op.create_index("ix_habilitations_user_id", "habilitations", ["user_id"])
    op.create_table(
        "trainings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("course", sa.String(256), nullable=False),
        sa.Column("completed_on", sa.DateTime(timezone=True), nullable=False),
        *_record_columns(),
        sa.CheckConstraint("length(course) > 0", name="ck_trainings_course"),
    )
    op.create_index("ix_trainings_user_id", "trainings", ["user_id"])
    op.create_table(
        "second_factors",
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=True),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "account_id", sa.String(32), sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("code_sha256", sa.String(64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_recovery_codes_account_id", "recovery_codes", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_recovery_codes_account_id", table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_table("second_factors")
    op.drop_index("ix_trainings_user_id", table_name="trainings")
    op.drop_table("trainings")
    op.drop_index("ix_habilitations_user_id", table_name="habilitations")
    op.drop_table("habilitations")
