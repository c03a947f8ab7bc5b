"""Camera health: how each camera's worker keeps up with real time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

One row per camera, rewritten every few seconds by `lanterne run`: its lag behind real time, the
analysis rate it runs at against the configured one (lower while it sheds load), the frames it
dropped to catch up, its worker state and last error. The console reads it from another process;
`updated_at` tells a live row from one a stopped runner left behind.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("starting", "running", "shedding", "dropping", "failed", "finished", "stopped", "stalled")


def upgrade() -> None:
    op.create_table(
        "camera_health",
        sa.Column("camera", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lag_seconds", sa.Float(), nullable=True),
        sa.Column("analysis_fps", sa.Float(), nullable=False),
        sa.Column("configured_fps", sa.Float(), nullable=False),
        sa.Column("frames_dropped", sa.Integer(), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})", name="ck_camera_health_state"),
    )


def downgrade() -> None:
    op.drop_table("camera_health")
