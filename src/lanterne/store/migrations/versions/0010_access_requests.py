"""Access requests: people asking for their own images (GDPR art. 15).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

One row per request: who asked and how to answer them, when they received it and the one-month
deadline, the time window, place and description they gave, and what became of it (answered with
an export, or refused with a reason).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("open", "answered", "refused")


def upgrade() -> None:
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("requester", sa.String(200), nullable=False),
        sa.Column("contact", sa.String(300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(500), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(128), nullable=True),
        sa.Column("refusal_reason", sa.String(1000), nullable=True),
        sa.Column("export_id", sa.String(32), nullable=True),
        sa.CheckConstraint(
            f"state IN ({', '.join(repr(s) for s in STATES)})", name="ck_access_requests_state"
        ),
        sa.CheckConstraint(
            "state != 'refused' OR length(refusal_reason) > 0", name="ck_access_requests_refusal"
        ),
    )


def downgrade() -> None:
    op.drop_table("access_requests")
