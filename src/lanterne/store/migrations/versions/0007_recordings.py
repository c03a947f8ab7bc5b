"""Recordings: the index of the cameras' encrypted segments, and legal holds over camera time ranges.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Each segment row carries the sha256 of its file and that of the same camera's previous segment,
so the index is a hash chain per camera (SC-02). A hold covers a camera (or every camera, `camera`
NULL) over a time range; as for held events (0002), the database itself refuses to delete a
segment that an active hold overlaps, so neither a bug nor hand-written SQL can purge it (RT-02).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("open", "complete", "recovered", "lost")

# Overlap is inclusive at both ends: a hold ending exactly when a segment starts still keeps it,
# since the segment's first frame is the instant the hold names.
_HELD = """EXISTS (SELECT 1 FROM recording_holds h WHERE h.lifted_at IS NULL
             AND (h.camera IS NULL OR h.camera = old.camera)
             AND h.start_ts <= old.end_ts AND h.end_ts >= old.start_ts)"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER recording_segments_held_no_delete BEFORE DELETE ON recording_segments
       WHEN {_HELD}
       BEGIN SELECT RAISE(ABORT, 'recording segment under legal hold'); END""",
]

POSTGRES_TRIGGERS = [
    f"""CREATE FUNCTION lanterne_no_held_segment_delete() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF {_HELD.replace("old.", "OLD.")} THEN
           RAISE EXCEPTION 'recording segment under legal hold';
         END IF;
         RETURN OLD;
       END $$""",
    """CREATE TRIGGER recording_segments_held_no_delete BEFORE DELETE ON recording_segments
       FOR EACH ROW EXECUTE FUNCTION lanterne_no_held_segment_delete()""",
]


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "recording_segments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("start_ts", ts, nullable=False),
        sa.Column("end_ts", ts, nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("prev_sha256", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.CheckConstraint(
            f"state IN ({', '.join(repr(s) for s in STATES)})", name="ck_recording_segments_state"
        ),
        sa.CheckConstraint("end_ts >= start_ts", name="ck_recording_segments_order"),
        sa.UniqueConstraint("camera", "seq", name="uq_recording_segments_seq"),
    )
    op.create_index("ix_recording_segments_camera_start", "recording_segments", ["camera", "start_ts"])
    op.create_index("ix_recording_segments_end", "recording_segments", ["end_ts"])
    op.create_table(
        "recording_holds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=True),
        sa.Column("start_ts", ts, nullable=False),
        sa.Column("end_ts", ts, nullable=False),
        sa.Column("judicial_reference", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("placed_by", sa.String(128), nullable=False),
        sa.Column("placed_at", ts, nullable=False),
        sa.Column("lifted_at", ts, nullable=True),
        sa.Column("lifted_by", sa.String(128), nullable=True),
        sa.CheckConstraint("length(judicial_reference) > 0", name="ck_recording_holds_reference"),
        sa.CheckConstraint("end_ts > start_ts", name="ck_recording_holds_order"),
    )
    statements = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for stmt in statements:
        op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS recording_segments_held_no_delete ON recording_segments")
        op.execute("DROP FUNCTION IF EXISTS lanterne_no_held_segment_delete() CASCADE")
    else:
        op.execute("DROP TRIGGER IF EXISTS recording_segments_held_no_delete")
    op.drop_table("recording_holds")
    op.drop_table("recording_segments")
