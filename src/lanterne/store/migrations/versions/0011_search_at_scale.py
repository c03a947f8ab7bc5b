"""Search at city scale: each event's current decision state on its own row, and the indexes that
let a search stop after one page.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08

`events.state` is the latest step of `alert_states` (NULL: `new`), written by the transaction that
inserts the step (`accountability.alerts`), so a state filter reads one column instead of finding
every event's newest step among all decisions, and rows can be read newest first from an index
until a page is full. The history in `alert_states` stays the record; this column is derived from
it, and the upgrade fills it from there.

The indexes follow the search's filters, each ending with the start time (and the id, the keyset
cursor's tie-break) so that a filtered search walks one index in order and stops after a page and
its capped count. Decided events are a minority: their index is partial on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DECIDED = "state IS NOT NULL"

INDEXES: list[tuple[str, list[str]]] = [
    ("ix_events_start_id", ["start_ts", "id"]),
    ("ix_events_zone_start", ["zone", "start_ts"]),
    ("ix_events_object_class_start", ["object_class", "start_ts"]),
]


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch: rebuilding `events` on SQLite would drop its legal-hold
    # trigger (0002).
    op.add_column("events", sa.Column("state", sa.String(16), nullable=True))
    op.execute(
        "UPDATE events SET state = (SELECT s.state FROM alert_states s WHERE s.event_id = events.id "
        "ORDER BY s.id DESC LIMIT 1) WHERE EXISTS (SELECT 1 FROM alert_states s WHERE s.event_id = events.id)"
    )
    for name, columns in INDEXES:
        op.create_index(name, "events", columns)
    op.create_index(
        "ix_events_state_start",
        "events",
        ["state", "start_ts"],
        postgresql_where=sa.text(DECIDED),
        sqlite_where=sa.text(DECIDED),
    )
    op.create_index("ix_alert_states_event_id_id", "alert_states", ["event_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_alert_states_event_id_id", table_name="alert_states")
    op.drop_index("ix_events_state_start", table_name="events")
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name="events")
    with op.batch_alter_table("events", recreate="never") as batch:
        batch.drop_column("state")
