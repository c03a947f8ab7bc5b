"""Live wall fallback: a `relay` stream carries a camera's anonymised picture to the console.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

A browser that cannot play WebRTC watches the wall as JPEG pictures the console decodes from the
camera's anonymised RTP stream (`lanterne.video.live.relay`). The console asks the camera's
process for that stream with a `live_streams` row of kind `relay`, anonymised like the shared
mountpoint's and, like it, serving no single view.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHAPE_BEFORE = "(kind = 'anonymised' AND view_id IS NULL) OR (kind = 'raw' AND view_id IS NOT NULL)"
SHAPE = "(kind IN ('anonymised', 'relay') AND view_id IS NULL) OR (kind = 'raw' AND view_id IS NOT NULL)"


def upgrade() -> None:
    with op.batch_alter_table("live_streams") as batch:
        batch.drop_constraint("ck_live_streams_kind", type_="check")
        batch.drop_constraint("ck_live_streams_shape", type_="check")
        batch.create_check_constraint("ck_live_streams_kind", "kind IN ('anonymised', 'raw', 'relay')")
        batch.create_check_constraint("ck_live_streams_shape", SHAPE)


def downgrade() -> None:
    op.execute("DELETE FROM live_streams WHERE kind = 'relay'")
    with op.batch_alter_table("live_streams") as batch:
        batch.drop_constraint("ck_live_streams_kind", type_="check")
        batch.drop_constraint("ck_live_streams_shape", type_="check")
        batch.create_check_constraint("ck_live_streams_kind", "kind IN ('anonymised', 'raw')")
        batch.create_check_constraint("ck_live_streams_shape", SHAPE_BEFORE)
