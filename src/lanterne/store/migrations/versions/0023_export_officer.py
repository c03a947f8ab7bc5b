"""The export officer's role (AC-03): accounts may hold `export_officer`.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

Only the role check of `accounts` changes, and only to accept one more value. PostgreSQL alters
the check in place. SQLite cannot alter a constraint, and the usual batch rebuild would drop
`accounts`: with foreign keys on (they are, on every connection) dropping a table deletes its rows
first and cascades to `sessions`, `second_factors` and `recovery_codes`, so every enrolled second
factor would be lost. A check that only widens is the case SQLite's own documentation
(https://sqlite.org/lang_altertable.html, "making other kinds of table schema changes") handles by
rewriting the table's stored definition: every existing row already satisfies the wider check, so
nothing needs copying. A downgrade narrows the check, so it refuses while an export officer exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ROLES = ("operator", "supervisor", "auditor", "admin", "analyst")
NEW_ROLES = (*OLD_ROLES, "export_officer")


def _in_list(values: Sequence[str]) -> str:
    return f"role IN ({', '.join(repr(v) for v in values)})"


def _sqlite_rewrite(old: str, new: str) -> None:
    bind = op.get_bind()
    sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'accounts'")
    ).scalar()
    if sql is None or sql.count(old) != 1:
        raise RuntimeError(
            "the accounts table's role check is not the one this migration expects; "
            "compare it with `lanterne.store.tables.ROLES` before upgrading"
        )
    version = bind.execute(sa.text("PRAGMA schema_version")).scalar()
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'accounts'"),
        {"sql": sql.replace(old, new)},
    )
    # Other connections reload the schema when its version moves.
    bind.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    bind.execute(sa.text("PRAGMA writable_schema = OFF"))


def _replace(old: Sequence[str], new: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rewrite(_in_list(old), _in_list(new))
        return
    op.drop_constraint("ck_accounts_role", "accounts", type_="check")
    op.create_check_constraint("ck_accounts_role", "accounts", _in_list(new))


def upgrade() -> None:
    _replace(OLD_ROLES, NEW_ROLES)


def downgrade() -> None:
    held = (
        op.get_bind().execute(sa.text("SELECT count(*) FROM accounts WHERE role = 'export_officer'")).scalar()
    )
    if held:
        raise RuntimeError(
            f"{held} account(s) hold the export_officer role, which schema 0022 cannot store; "
            "stay on schema 0023 while they exist"
        )
    _replace(NEW_ROLES, OLD_ROLES)
