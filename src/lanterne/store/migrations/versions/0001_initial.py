"""Initial schema: events, their evidence files, and statistics-mode zone counts.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Migrations are append-only: never edit one that has shipped, add the next number instead. The
operations are written out in full rather than imported from `lanterne.store.tables`, which will
have moved on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_TYPES = (
    "abandoned_object",
    "weapon",
    "wrong_way",
    "zone_intrusion",
    "person_down",
    "crowd_movement",
    "crowd_density",
    "fire",
)


def _in_list(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("start_ts", ts, nullable=False),
        sa.Column("end_ts", ts, nullable=False),
        sa.Column("start_offset", sa.Float(), nullable=False),
        sa.Column("end_offset", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("x0", sa.Float(), nullable=False),
        sa.Column("y0", sa.Float(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("object_class", sa.String(32), nullable=True),
        sa.Column("ongoing", sa.Boolean(), nullable=False),
        sa.Column("model_hash", sa.String(64), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.CheckConstraint(_in_list("type", EVENT_TYPES), name="ck_events_type"),
        sa.CheckConstraint(_in_list("mode", ("alerts", "evaluation")), name="ck_events_mode"),
        sa.CheckConstraint("end_offset >= start_offset", name="ck_events_order"),
    )
    op.create_index("ix_events_camera_start", "events", ["camera", "start_ts"])
    op.create_index("ix_events_type_start", "events", ["type", "start_ts"])

    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.CheckConstraint(_in_list("kind", ("snapshot", "clip")), name="ck_evidence_kind"),
        sa.UniqueConstraint("event_id", "path", name="uq_evidence_event_path"),
    )
    op.create_index("ix_evidence_event_id", "evidence", ["event_id"])

    op.create_table(
        "zone_counts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("bucket_start", ts, nullable=False),
        sa.Column("bucket_seconds", sa.Float(), nullable=False),
        sa.Column("max_people", sa.Integer(), nullable=False),
        sa.Column("mean_people", sa.Float(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.UniqueConstraint("camera", "zone", "bucket_start", name="uq_zone_counts_bucket"),
    )
    op.create_index("ix_zone_counts_bucket_start", "zone_counts", ["bucket_start"])


def downgrade() -> None:
    op.drop_table("zone_counts")
    op.drop_table("evidence")
    op.drop_table("events")
