"""`lanterne privacy grant|revoke|list`: who may remove privacy protection from recorded video.

Exit codes: 0 done; 2 a user's mistake (no reason, no camera, a date out of bounds, an unknown
permission).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, parse_time, user_errors, user_id, utc_text
from lanterne.cli.common import out_console as _console

privacy_app = typer.Typer(
    help="Permissions to remove privacy protection (faces, plates) from recorded video.",
    no_args_is_help=True,
)


@privacy_app.command("grant")
@user_errors
def grant_cmd(
    config: ConfigOpt,
    to: Annotated[str, typer.Argument(help="Who receives it: a console login, or a user id.")],
    camera: Annotated[list[str], typer.Option(help="A camera id, or * for every camera; repeat.")],
    until: Annotated[str, typer.Option(help="End, ISO 8601 with a time zone (at most a year).")],
    reason: Annotated[str, typer.Option(help="Why this person needs it (e.g. judicial unit).")],
    user: UserOpt = None,
) -> None:
    """Grant TO the permission to see and export recorded video without anonymisation."""
    from lanterne.accountability.accounts import find_account
    from lanterne.accountability.privacy import grant

    with opened_site(config) as site:
        # A console login is recorded as its account id, the id every console request carries.
        account = find_account(site.store.engine, to)
        p = grant(
            site.store.engine,
            site.audit,
            user=account.id if account is not None else to,
            cameras=camera,
            until=parse_time(until, "--until"),
            reason=reason,
            granted_by=user_id(user),
            now=datetime.now(UTC),
        )
    _console().print(
        f"permission {p.id}: {p.user_id} may remove privacy protection on {', '.join(p.cameras)} "
        f"until {utc_text(p.valid_until)}; each use needs a reason and a reference and is recorded",
        highlight=False,
    )


@privacy_app.command("revoke")
@user_errors
def revoke_cmd(
    config: ConfigOpt,
    permission: Annotated[int, typer.Argument(help="The permission's number (`lanterne privacy list`).")],
    user: UserOpt = None,
) -> None:
    """End a permission now."""
    from lanterne.accountability.privacy import revoke

    with opened_site(config) as site:
        revoke(site.store.engine, site.audit, permission, revoked_by=user_id(user), now=datetime.now(UTC))
    _console().print(f"permission {permission} revoked", highlight=False)


@privacy_app.command("list")
@user_errors
def list_cmd(config: ConfigOpt) -> None:
    """The register of permissions, newest first."""
    from lanterne.accountability.privacy import permissions

    with opened_site(config) as site:
        rows = permissions(site.store.engine)
    table = Table("id", "user", "cameras", "reason", "granted by", "granted", "until", "revoked")
    for p in rows:
        table.add_row(
            str(p.id),
            p.user_id,
            ", ".join(p.cameras),
            p.reason,
            p.granted_by,
            utc_text(p.granted_at),
            utc_text(p.valid_until),
            utc_text(p.revoked_at) if p.revoked_at else "",
        )
    _console().print(table)
