"""Blinded recall audits: drawn windows of recorded footage, the reviewer's marks, and their
match to the system's alerts (PM-03).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08

`recall_audits`: one row per audit (reviewer, range, cameras, window length, matching tolerance,
the seed of the draw, open or closed). `recall_windows`: the windows drawn (camera, start, end),
when each was reviewed, and once scored the event types its camera watched, the alerts no mark
matched and whether the reviewer had looked at one of its alerts (the blinding flag).
`recall_marks`: the situations the reviewer marked (type, seconds into the window, optional zone)
and the alert each was matched to. No column holds free text about a scene.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("open", "closed")
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


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "recall_audits",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("range_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("range_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.Column("tolerance_seconds", sa.Float(), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(128), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.CheckConstraint(_in("state", STATES), name="ck_recall_audits_state"),
        sa.CheckConstraint("range_end > range_start", name="ck_recall_audits_range"),
        sa.CheckConstraint("state = 'open' OR closed_at IS NOT NULL", name="ck_recall_audits_closed"),
    )
    op.create_index("ix_recall_audits_state_closed", "recall_audits", ["state", "closed_at"])
    op.create_table(
        "recall_windows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "audit_id", sa.Integer(), sa.ForeignKey("recall_audits.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("watched", sa.JSON(), nullable=True),
        sa.Column("unmarked", sa.JSON(), nullable=True),
        sa.Column("unblinded", sa.Boolean(), nullable=True),
        sa.UniqueConstraint("audit_id", "seq", name="uq_recall_windows_seq"),
        sa.CheckConstraint("end_ts > start_ts", name="ck_recall_windows_order"),
    )
    op.create_table(
        "recall_marks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "window_id", sa.Integer(), sa.ForeignKey("recall_windows.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("offset_s", sa.Float(), nullable=False),
        sa.Column("zone", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("matched_event", sa.String(64), nullable=True),
        sa.CheckConstraint(_in("type", EVENT_TYPES), name="ck_recall_marks_type"),
        sa.CheckConstraint("offset_s >= 0", name="ck_recall_marks_offset"),
    )
    op.create_index("ix_recall_marks_window_id", "recall_marks", ["window_id"])


def downgrade() -> None:
    op.drop_index("ix_recall_marks_window_id", table_name="recall_marks")
    op.drop_table("recall_marks")
    op.drop_table("recall_windows")
    op.drop_index("ix_recall_audits_state_closed", table_name="recall_audits")
    op.drop_table("recall_audits")
