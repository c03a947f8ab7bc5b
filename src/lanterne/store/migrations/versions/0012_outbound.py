"""Outbound: human-confirmed alerts waiting to be sent to MQTT and signed webhooks.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

One row per confirmed alert and configured destination, written in the transaction that records
the confirmation (the outbox pattern): a crash between the decision and the network loses
nothing, and an alert no person confirmed never has a row. The console's delivery thread sends
pending rows, retries with a doubling wait, and marks a row `dead` after the last attempt, for a
supervisor to retry. Rows go with their alert (ON DELETE CASCADE) when retention deletes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("pending", "sent", "dead")


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("destination", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.CheckConstraint(
            f"state IN ({', '.join(repr(s) for s in STATES)})", name="ck_outbound_messages_state"
        ),
    )
    op.create_index("ix_outbound_messages_event_id", "outbound_messages", ["event_id"])
    op.create_index("ix_outbound_messages_state_next", "outbound_messages", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbound_messages_state_next", table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_event_id", table_name="outbound_messages")
    op.drop_table("outbound_messages")
