"""Keyframe requests for live streams: `live_streams.rtcp_port`.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06

The gateway's RTCP port of each stream, where the camera process announces itself and from where
Janus passes on its viewers' keyframe requests. Nullable: the fallback relay has none, and rows a
console wrote before this revision (streams that end with their viewers) simply get no requests.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("live_streams", sa.Column("rtcp_port", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("live_streams") as batch:
        batch.drop_column("rtcp_port")
