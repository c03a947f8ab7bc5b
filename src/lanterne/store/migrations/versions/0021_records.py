"""Records a DPO asks for: configuration snapshots (DC-03), the authorisation's event name,
responsible service and authorised recipients (LB-01, AC-06).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

`config_snapshots`: one row per configuration hash an event or a notice carries, holding the
canonical configuration that hash was computed over (credentials written in URLs replaced, and
named in `redacted`), so a hash seen on an alert can be resolved years later.
`authorisations` gains `manifestation` and `responsible_service` (the event the act is for and the service
the act names) and `recipients`, the services the act lets alerts and exports go to; NULL on rows
recorded before this revision, which named none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "config_snapshots",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("redacted", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen_by", sa.String(128), nullable=False),
    )
    with op.batch_alter_table("authorisations") as batch:
        batch.add_column(sa.Column("manifestation", sa.String(300), nullable=True))
        batch.add_column(sa.Column("responsible_service", sa.String(300), nullable=True))
        batch.add_column(sa.Column("recipients", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authorisations") as batch:
        batch.drop_column("recipients")
        batch.drop_column("responsible_service")
        batch.drop_column("manifestation")
    op.drop_table("config_snapshots")
