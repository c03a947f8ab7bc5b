"""Review findings: what the automatic review of the audit log flags for the DPO (LG-06).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

One row per finding: the rule, the account concerned (a user id; none when several are), the
window, the audit records that show it (sequence numbers) with a one-line explanation, and the
DPO's handling (open, acknowledged, closed with a note). `dedupe_key` is unique so that a review
run again over the same records, or by two processes at once, never raises a finding twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("open", "acknowledged", "closed")


def upgrade() -> None:
    op.create_table(
        "review_findings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("account", sa.String(128), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("explanation", sa.String(500), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.CheckConstraint(
            f"state IN ({', '.join(repr(s) for s in STATES)})", name="ck_review_findings_state"
        ),
        sa.CheckConstraint("state != 'closed' OR length(note) > 0", name="ck_review_findings_note"),
    )
    op.create_index("ix_review_findings_account", "review_findings", ["account"])
    op.create_index("ix_review_findings_state_created", "review_findings", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_review_findings_state_created", table_name="review_findings")
    op.drop_index("ix_review_findings_account", table_name="review_findings")
    op.drop_table("review_findings")
