"""Change control: fundamental-rights impact assessments and signed governance records (GV-02, GV-05).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

`fria_records`: one row per fundamental-rights impact assessment (AI Act art. 27), its reference,
date and six elements as text; an authorisation names it among its `impact_assessments`.
`governance_records`: one row per approved change (a model's sha256, the hash of the thresholds,
zones, event types or an observatory source), with who approved it, when, why, the link to the
updated public notice, and an Ed25519 signature by the site's audit key over all of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANGES = ("model", "thresholds", "zones", "event_types", "observatory_source")


def upgrade() -> None:
    op.create_table(
        "fria_records",
        sa.Column("reference", sa.String(128), primary_key=True),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("processes", sa.Text(), nullable=False),
        sa.Column("period", sa.Text(), nullable=False),
        sa.Column("affected", sa.Text(), nullable=False),
        sa.Column("risks", sa.Text(), nullable=False),
        sa.Column("oversight", sa.Text(), nullable=False),
        sa.Column("mitigation", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "governance_records",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("change", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("notice_url", sa.String(500), nullable=False),
        sa.Column("approved_by", sa.String(128), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.CheckConstraint(
            f"change IN ({', '.join(repr(c) for c in CHANGES)})", name="ck_governance_records_change"
        ),
    )
    op.create_index("ix_governance_records_change_sha256", "governance_records", ["change", "sha256"])


def downgrade() -> None:
    op.drop_index("ix_governance_records_change_sha256", table_name="governance_records")
    op.drop_table("governance_records")
    op.drop_table("fria_records")
