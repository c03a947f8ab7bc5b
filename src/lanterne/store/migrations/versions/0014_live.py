"""Live wall: views on the record, the streams camera processes feed, saved camera groups.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

`live_views` is LG-02 for live video: who watched which camera, for what purpose, from when to
when, anonymised or with protection removed (then under which permission, reason and reference,
and until when). `live_streams` tells the process that analyses a camera where to send its live
picture while somebody watches; it encodes only while a row exists. `live_groups` keeps each
operator's saved walls.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "kind IN ('anonymised', 'raw')"
END_REASONS = ("closed", "expired", "grant_ended", "refused")


def upgrade() -> None:
    op.create_table(
        "live_views",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(1000), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.Column("permission_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("raw_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(KINDS, name="ck_live_views_kind"),
        sa.CheckConstraint(
            f"end_reason IS NULL OR end_reason IN ({', '.join(repr(r) for r in END_REASONS)})",
            name="ck_live_views_end",
        ),
        sa.CheckConstraint(
            "kind = 'anonymised' OR (permission_id IS NOT NULL AND length(reason) > 0"
            " AND length(reference) > 0 AND raw_until IS NOT NULL)",
            name="ck_live_views_raw",
        ),
    )
    op.create_index("ix_live_views_open", "live_views", ["ended_at", "camera"])
    op.create_table(
        "live_streams",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("view_id", sa.Integer(), nullable=True),
        sa.Column("rtp_host", sa.String(255), nullable=False),
        sa.Column("rtp_port", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("banner", sa.String(300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(KINDS, name="ck_live_streams_kind"),
        sa.CheckConstraint(
            "(kind = 'anonymised' AND view_id IS NULL) OR (kind = 'raw' AND view_id IS NOT NULL)",
            name="ck_live_streams_shape",
        ),
    )
    op.create_index("ix_live_streams_camera", "live_streams", ["camera"])
    op.create_table(
        "live_groups",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(128), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("layout", sa.Integer(), nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("account", "title", name="uq_live_groups_account_title"),
        sa.CheckConstraint("layout IN (1, 4, 9, 16)", name="ck_live_groups_layout"),
    )


def downgrade() -> None:
    op.drop_table("live_groups")
    op.drop_index("ix_live_streams_camera", table_name="live_streams")
    op.drop_table("live_streams")
    op.drop_index("ix_live_views_open", table_name="live_views")
    op.drop_table("live_views")
