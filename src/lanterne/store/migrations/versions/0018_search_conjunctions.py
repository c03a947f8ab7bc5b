"""Search at city scale, second step: conjunctions of correlated filters and the confidence order.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

Measured on 10 million events (docs/performance.md): PostgreSQL assumed type and object class
independent (an abandoned object is always a bag) and so did camera and zone, expected a handful
of matches, ANDed bitmaps of millions of rows and sorted them. Extended statistics (PostgreSQL
only; SQLite has no planner statistics of this kind) tell it how these columns go together.

The indexes the plans asked for, each with the start time right after its equality columns so
that a page and its capped count walk it newest first and stop:

- one camera's events of one type, the commonest pair of filters (counting 10,000 of a busy
  camera's intrusions read 25,000 table rows);
- decided events (a tenth: partial indexes, like 0011's) by state, of one camera by state, and of
  one type by state and object class (a review of one camera's confirmed cars, of the dismissed
  bags). The first two carry the other filters after the start time, so that a state with any
  of them is counted from the index alone: 0011's (state, start_ts) is rebuilt that way;
- the events nobody has decided yet (`new`: counting them read each one's table row for its
  state);
- the event type by confidence, the "most confident first" order, which sorted every match.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DECIDED = "state IS NOT NULL"
NEW = "state IS NULL"

STATISTICS: list[tuple[str, str, str]] = [
    # name, kinds, columns. `mcv` keeps the frequent pairs themselves (abandoned_object with
    # backpack), `dependencies` what one column says of the other, `ndistinct` how many pairs
    # exist (4,000 cameras have far fewer than 4,000 x 4 zones).
    ("st_events_type_class", "dependencies, mcv", "type, object_class"),
    ("st_events_camera_zone", "ndistinct, dependencies", "camera, zone"),
    ("st_events_camera_type", "ndistinct, dependencies", "camera, type"),
]


STATE_COLUMNS = ["state", "start_ts", "camera", "zone", "type", "object_class"]
"""The decided events' index of 0011, (state, start_ts), now carrying every other filter after
the start time: a state with a zone and a day (or any filter) is walked and counted from the
index alone, where each match cost a table read."""


def _state_index(columns: list[str]) -> None:
    op.create_index(
        "ix_events_state_start",
        "events",
        columns,
        postgresql_where=sa.text(DECIDED),
        sqlite_where=sa.text(DECIDED),
    )


def upgrade() -> None:
    op.drop_index("ix_events_state_start", table_name="events")
    _state_index(STATE_COLUMNS)
    op.create_index(
        "ix_events_camera_state_start",
        "events",
        ["camera", "state", "start_ts", "zone", "type", "object_class"],
        postgresql_where=sa.text(DECIDED),
        sqlite_where=sa.text(DECIDED),
    )
    op.create_index("ix_events_type_confidence", "events", ["type", "confidence", "start_ts", "id"])
    op.create_index("ix_events_camera_type_start", "events", ["camera", "type", "start_ts"])
    op.create_index(
        "ix_events_new_start",
        "events",
        ["start_ts"],
        postgresql_where=sa.text(NEW),
        sqlite_where=sa.text(NEW),
    )
    op.create_index(
        "ix_events_type_state_class_start",
        "events",
        ["type", "state", "object_class", "start_ts"],
        postgresql_where=sa.text(DECIDED),
        sqlite_where=sa.text(DECIDED),
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, kinds, columns in STATISTICS:
            op.execute(f"CREATE STATISTICS IF NOT EXISTS {name} ({kinds}) ON {columns} FROM events")
        # Statistics are empty until the next ANALYZE (autovacuum's may be hours away on a big,
        # quiet table); ANALYZE reads a fixed sample, a few seconds even at 10 M events.
        op.execute("ANALYZE events")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in reversed(STATISTICS):
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    op.drop_index("ix_events_type_state_class_start", table_name="events")
    op.drop_index("ix_events_new_start", table_name="events")
    op.drop_index("ix_events_camera_type_start", table_name="events")
    op.drop_index("ix_events_type_confidence", table_name="events")
    op.drop_index("ix_events_camera_state_start", table_name="events")
    op.drop_index("ix_events_state_start", table_name="events")
    _state_index(["state", "start_ts"])
