"""Incidents, breaches and the risk register (RK-05, SC-05, RK-01).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

`incidents`: one row per malfunction or personal-data breach (kind, state, title, summary, owner,
cameras and detectors by id, when it became known, the breach's 72-hour deadline, when the
authority was told, cause and remedy once closed; `dedupe_key` for what the sweep opened).
`incident_entries`: its timeline (opened, evidence, note, notified, closed). `risks`: the living
risk register (category, detector, owner, likelihood, severity, residual level, measures, next
review date). No column holds a person.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("detector_silent", "false_alarm_spike", "recall_miss", "breach", "manual")
STATES = ("open", "closed")
STEPS = ("opened", "evidence", "note", "notified", "closed")
CATEGORIES = ("safety", "fundamental_rights", "misuse")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.String(2000), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=False),
        sa.Column("detectors", sa.JSON(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(128), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(128), nullable=True),
        sa.Column("cause", sa.String(1000), nullable=True),
        sa.Column("remedy", sa.String(1000), nullable=True),
        sa.CheckConstraint(_in("kind", KINDS), name="ck_incidents_kind"),
        sa.CheckConstraint(_in("state", STATES), name="ck_incidents_state"),
        sa.CheckConstraint(
            "state = 'open' OR (closed_at IS NOT NULL AND length(cause) > 0 AND length(remedy) > 0)",
            name="ck_incidents_closed",
        ),
    )
    op.create_index("ix_incidents_state_opened", "incidents", ["state", "opened_at"])
    op.create_index("ix_incidents_dedupe_key", "incidents", ["dedupe_key"])
    op.create_table(
        "incident_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("step", sa.String(16), nullable=False),
        sa.Column("body", sa.String(2000), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.CheckConstraint(_in("step", STEPS), name="ck_incident_entries_step"),
    )
    op.create_index("ix_incident_entries_case_id", "incident_entries", ["case_id"])
    op.create_table(
        "risks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("detector", sa.String(32), nullable=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("likelihood", sa.Integer(), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=True),
        sa.Column("residual", sa.Integer(), nullable=True),
        sa.Column("measures", sa.String(2000), nullable=False),
        sa.Column("next_review", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(128), nullable=True),
        sa.CheckConstraint(_in("category", CATEGORIES), name="ck_risks_category"),
        sa.CheckConstraint("likelihood IS NULL OR likelihood BETWEEN 1 AND 4", name="ck_risks_likelihood"),
        sa.CheckConstraint("severity IS NULL OR severity BETWEEN 1 AND 4", name="ck_risks_severity"),
        sa.CheckConstraint("residual IS NULL OR residual BETWEEN 1 AND 4", name="ck_risks_residual"),
    )
    op.create_index("ix_risks_next_review", "risks", ["next_review"])


def downgrade() -> None:
    op.drop_index("ix_risks_next_review", table_name="risks")
    op.drop_table("risks")
    op.drop_index("ix_incident_entries_case_id", table_name="incident_entries")
    op.drop_table("incident_entries")
    op.drop_index("ix_incidents_dedupe_key", table_name="incidents")
    op.drop_index("ix_incidents_state_opened", table_name="incidents")
    op.drop_table("incidents")
