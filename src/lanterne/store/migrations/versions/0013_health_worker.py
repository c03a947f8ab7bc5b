"""Camera health names the process that runs the camera.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

With many workers (`lanterne worker`, docs/scaling.md) a camera moves between machines; the
console and `/metrics` say which one holds it now, and a worker that hands a camera over must not
overwrite the new owner's row with its own last "stopped". NULL for rows written before, and by
no particular process.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("camera_health") as batch:
        batch.add_column(sa.Column("worker", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("camera_health") as batch:
        batch.drop_column("worker")
