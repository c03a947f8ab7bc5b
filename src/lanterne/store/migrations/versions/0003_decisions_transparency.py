"""Human decisions on alerts, detector suspensions, published public notices, and the decision
counts that outlive retention.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

`alert_states` is a history: one row per change (`acknowledged`, `confirmed`, `dismissed`) with
who and when; the current state of an alert is its latest row, `new` when it has none. A CHECK
makes a dismissal without a reason and a confirmation without a follow-up impossible (HO-01).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DISMISS_REASONS = (
    "reflection_or_light",
    "street_furniture",
    "person_at_rest",
    "owner_nearby",
    "test",
    "other",
)
FOLLOW_UPS = ("none", "monitoring", "field_request", "emergency_services")


def _in_list(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "alert_states",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("ts", ts, nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("reason_text", sa.String(500), nullable=True),
        sa.Column("follow_up", sa.String(32), nullable=True),
        sa.CheckConstraint(
            _in_list("state", ("acknowledged", "confirmed", "dismissed")), name="ck_alert_states_state"
        ),
        sa.CheckConstraint(
            f"state <> 'dismissed' OR ({_in_list('reason', DISMISS_REASONS)} "
            "AND (reason <> 'other' OR length(reason_text) > 0))",
            name="ck_alert_states_dismiss_reason",
        ),
        sa.CheckConstraint(
            f"state <> 'confirmed' OR {_in_list('follow_up', FOLLOW_UPS)}", name="ck_alert_states_follow_up"
        ),
    )
    op.create_index("ix_alert_states_event_id", "alert_states", ["event_id"])
    op.create_table(
        "suspensions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("started_by", sa.String(128), nullable=False),
        sa.Column("lifted_at", ts, nullable=True),
        sa.Column("lifted_by", sa.String(128), nullable=True),
        sa.Column("lift_note", sa.String(1000), nullable=True),
        sa.CheckConstraint(
            _in_list("cause", ("alert_rate", "precision_floor", "supervisor")), name="ck_suspensions_cause"
        ),
    )
    op.create_index("ix_suspensions_camera_type", "suspensions", ["camera", "type"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("published_at", ts, nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        sa.Column("config_sha256", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("location", sa.String(1000), nullable=False),
    )
    with op.batch_alter_table("event_aggregates") as batch:
        batch.add_column(sa.Column("confirmed", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("dismissed", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("dismiss_reasons", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event_aggregates") as batch:
        batch.drop_column("dismiss_reasons")
        batch.drop_column("dismissed")
        batch.drop_column("confirmed")
    op.drop_table("notices")
    op.drop_table("suspensions")
    op.drop_table("alert_states")
