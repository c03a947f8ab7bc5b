"""Accountability: the append-only audit log and its signed checkpoints, deployment
authorisations, legal holds, and the anonymous daily aggregates that outlive retention.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

The audit tables refuse UPDATE and DELETE through triggers, on SQLite and PostgreSQL alike
(CNIL délib. 2021-122: logs write-only, no overwrite). The one exception is the retention purge of
audit records: a DELETE passes only for records older than the audit retention, which a CHECK
constraint keeps between 6 months and 3 years, so no code path of the application can remove a
record younger than 6 months. A held event cannot be deleted while its hold is active.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
       BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END""",
    """CREATE TRIGGER audit_records_guarded_delete BEFORE DELETE ON audit_records
       WHEN julianday(old.ts) >= julianday('now') - (SELECT keep_days FROM audit_settings WHERE id = 1)
       BEGIN SELECT RAISE(ABORT, 'audit_records is append-only (only records past retention may be purged)'); END""",
    """CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END""",
    """CREATE TRIGGER audit_checkpoints_guarded_delete BEFORE DELETE ON audit_checkpoints
       WHEN julianday(old.ts) >= julianday('now') - (SELECT keep_days FROM audit_settings WHERE id = 1)
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only (only checkpoints past retention may be purged)'); END""",
    """CREATE TRIGGER events_held_no_delete BEFORE DELETE ON events
       WHEN EXISTS (SELECT 1 FROM legal_holds WHERE event_id = old.id AND lifted_at IS NULL)
       BEGIN SELECT RAISE(ABORT, 'event under legal hold'); END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION lanterne_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'UPDATE' THEN
           RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
         END IF;
         IF OLD.ts >= now() - make_interval(days => (SELECT keep_days FROM audit_settings WHERE id = 1)) THEN
           RAISE EXCEPTION '% is append-only (only records past retention may be purged)', TG_TABLE_NAME;
         END IF;
         RETURN OLD;
       END $$""",
    """CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
       FOR EACH ROW EXECUTE FUNCTION lanterne_append_only()""",
    """CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
       FOR EACH ROW EXECUTE FUNCTION lanterne_append_only()""",
    """CREATE FUNCTION lanterne_no_held_delete() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM legal_holds WHERE event_id = OLD.id AND lifted_at IS NULL) THEN
           RAISE EXCEPTION 'event under legal hold';
         END IF;
         RETURN OLD;
       END $$""",
    """CREATE TRIGGER events_held_no_delete BEFORE DELETE ON events
       FOR EACH ROW EXECUTE FUNCTION lanterne_no_held_delete()""",
    # TRUNCATE bypasses row triggers: refuse it on the audit tables too.
    """CREATE FUNCTION lanterne_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
    """CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
       FOR EACH STATEMENT EXECUTE FUNCTION lanterne_no_truncate()""",
    """CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
       FOR EACH STATEMENT EXECUTE FUNCTION lanterne_no_truncate()""",
]


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "audit_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("keep_days", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_settings_single"),
        sa.CheckConstraint("keep_days BETWEEN 183 AND 1096", name="ck_audit_settings_keep_days"),
    )
    op.execute("INSERT INTO audit_settings (id, keep_days) VALUES (1, 365)")
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", ts, nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=True),
        sa.Column("object_id", sa.String(128), nullable=True),
        sa.Column("time_from", ts, nullable=True),
        sa.Column("time_to", ts, nullable=True),
        sa.Column("purpose", sa.String(1000), nullable=True),
        sa.Column("recipient", sa.String(256), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_records_ts", "audit_records", ["ts"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", ts, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(256), nullable=False),
    )
    op.create_table(
        "authorisations",
        sa.Column("reference", sa.String(128), primary_key=True),
        sa.Column("legal_basis", sa.String(500), nullable=False),
        sa.Column("authority", sa.String(500), nullable=False),
        sa.Column("valid_from", ts, nullable=False),
        sa.Column("valid_until", ts, nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("impact_assessments", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("revoked_at", ts, nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.Column("revoke_reason", sa.String(1000), nullable=True),
        sa.CheckConstraint("valid_until > valid_from", name="ck_authorisations_dates"),
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("judicial_reference", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("lifted_at", ts, nullable=True),
        sa.Column("lifted_by", sa.String(128), nullable=True),
        sa.CheckConstraint("length(judicial_reference) > 0", name="ck_legal_holds_reference"),
    )
    op.create_index("ix_legal_holds_event_id", "legal_holds", ["event_id"])
    op.create_table(
        "event_aggregates",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("camera", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.UniqueConstraint("day", "camera", "type", "mode", name="uq_event_aggregates_key"),
    )
    statements = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for stmt in statements:
        op.execute(stmt)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_held_no_delete ON events")
        for fn in ("lanterne_append_only", "lanterne_no_held_delete", "lanterne_no_truncate"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}() CASCADE")
    else:
        op.execute("DROP TRIGGER IF EXISTS events_held_no_delete")
    for table in (
        "event_aggregates",
        "legal_holds",
        "authorisations",
        "audit_checkpoints",
        "audit_records",
        "audit_settings",
    ):
        op.drop_table(table)
