"""Decision checks that a NULL cannot slip through.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

SQL lets a CHECK pass when its condition is NULL, not only when it is true. The checks of 0003
read `state <> 'dismissed' OR reason IN (…)`: for a dismissal with no reason, `reason IN (…)` is
NULL, the whole condition is NULL, and the row was accepted, the very case HO-01 asks the
database to refuse ("dismissed ⇒ reason NOT NULL"). The same hole let a confirmation through
without a follow-up and `other` without a text. The conditions below say `IS NOT NULL` explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
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


DISMISS_CHECK = (
    f"state <> 'dismissed' OR (reason IS NOT NULL AND {_in_list('reason', DISMISS_REASONS)} "
    "AND (reason <> 'other' OR (reason_text IS NOT NULL AND length(reason_text) > 0)))"
)
FOLLOW_UP_CHECK = f"state <> 'confirmed' OR (follow_up IS NOT NULL AND {_in_list('follow_up', FOLLOW_UPS)})"

OLD_DISMISS_CHECK = (
    f"state <> 'dismissed' OR ({_in_list('reason', DISMISS_REASONS)} "
    "AND (reason <> 'other' OR length(reason_text) > 0))"
)
OLD_FOLLOW_UP_CHECK = f"state <> 'confirmed' OR {_in_list('follow_up', FOLLOW_UPS)}"


def _replace(dismiss: str, follow_up: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table into a new one with the new
    # checks (alert_states is small, and nothing references it). PostgreSQL alters it in place.
    with op.batch_alter_table("alert_states") as batch:
        batch.drop_constraint("ck_alert_states_dismiss_reason", type_="check")
        batch.drop_constraint("ck_alert_states_follow_up", type_="check")
        batch.create_check_constraint("ck_alert_states_dismiss_reason", dismiss)
        batch.create_check_constraint("ck_alert_states_follow_up", follow_up)


REPAIR_NOTE = "not recorded (accepted before schema 0004)"


def upgrade() -> None:
    # Rows the old checks let through would make the new ones fail and the upgrade stop. No reason
    # can be invented for them: they become `other` with a text saying the reason was never
    # recorded, and a confirmation without follow-up becomes `none` (nothing was recorded as done).
    # The ALERT_STATE audit records still show what was written at the time.
    reasons = ", ".join(repr(r) for r in DISMISS_REASONS)
    op.execute(
        "UPDATE alert_states SET reason = 'other', reason_text = "
        f"'{REPAIR_NOTE}' WHERE state = 'dismissed' AND (reason IS NULL OR reason NOT IN ({reasons}))"
    )
    op.execute(
        f"UPDATE alert_states SET reason_text = '{REPAIR_NOTE}' WHERE state = 'dismissed' "
        "AND reason = 'other' AND (reason_text IS NULL OR length(reason_text) = 0)"
    )
    follow_ups = ", ".join(repr(f) for f in FOLLOW_UPS)
    op.execute(
        "UPDATE alert_states SET follow_up = 'none' WHERE state = 'confirmed' "
        f"AND (follow_up IS NULL OR follow_up NOT IN ({follow_ups}))"
    )
    _replace(DISMISS_CHECK, FOLLOW_UP_CHECK)


def downgrade() -> None:
    _replace(OLD_DISMISS_CHECK, OLD_FOLLOW_UP_CHECK)
