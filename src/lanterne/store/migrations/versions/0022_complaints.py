"""The complaint record (GV-07): complaints about the system from the public or an authority.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

`complaints`: one row per complaint (received date, channel, category from a closed list, a
summary, state `open` or `answered`, the answer's date and summary, who recorded and answered it
by user id). No column holds the complainant: names and contact details stay in the city's mail
register, out of this system.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = (
    "camera_placement",
    "false_alert",
    "discrimination",
    "privacy",
    "rights_request",
    "information",
    "misuse",
    "other",
)
CHANNELS = ("letter", "email", "web_form", "phone", "in_person", "authority")
STATES = ("open", "answered")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("summary", sa.String(1000), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("answered_on", sa.Date(), nullable=True),
        sa.Column("answer", sa.String(1000), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(128), nullable=True),
        sa.CheckConstraint(_in("category", CATEGORIES), name="ck_complaints_category"),
        sa.CheckConstraint(_in("channel", CHANNELS), name="ck_complaints_channel"),
        sa.CheckConstraint(_in("state", STATES), name="ck_complaints_state"),
        sa.CheckConstraint(
            "state = 'open' OR (answered_on IS NOT NULL AND length(answer) > 0)",
            name="ck_complaints_answered",
        ),
    )
    op.create_index("ix_complaints_state_received", "complaints", ["state", "received_on"])


def downgrade() -> None:
    op.drop_index("ix_complaints_state_received", table_name="complaints")
    op.drop_table("complaints")
