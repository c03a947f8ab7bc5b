"""`lanterne users …`: console accounts from the command line (the admin's job, AC-01).

Passwords come from a hidden prompt (typed twice) or, for scripts, from the first line of standard
input with `--password-stdin`; they are never echoed, logged or passed on the command line, where
`ps` and the shell history would keep them.

Exit codes: 0 done; 2 a user's mistake (unknown camera or role, weak password, login taken).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, user_errors, user_id, utc_text
from lanterne.cli.common import out_console as _console

if TYPE_CHECKING:
    from lanterne.config import Config

users_app = typer.Typer(help="Console accounts: add, list, disable.", no_args_is_help=True)

Login = Annotated[str, typer.Argument(help="Login the person types: 3-64 characters among a-z 0-9 . _ -")]


def parse_scope(text: str, cfg: Config) -> list[str]:
    """`*` or comma-separated camera ids, each one known to the configuration."""
    from lanterne.accountability.accounts import ALL_CAMERAS, AccountError

    items = [s.strip() for s in text.split(",") if s.strip()]
    if items == [ALL_CAMERAS]:
        return items
    known = {c.id for c in cfg.cameras}
    unknown = [s for s in items if s not in known]
    if unknown or not items:
        raise AccountError(
            f"unknown camera {unknown[0] if unknown else '(none)'!r} in --scope; "
            f"use '*' or camera ids from the configuration ({', '.join(sorted(known))})"
        )
    return items


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


@users_app.command("add")
@user_errors
def add_command(
    login: Login,
    config: ConfigOpt,
    role: Annotated[str, typer.Option("--role", help="operator, supervisor, auditor, admin or analyst.")],
    scope: Annotated[
        str, typer.Option("--scope", help="Camera ids the account may see, comma-separated, or '*' for all.")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    user: UserOpt = None,
) -> None:
    """Create a console account; the password is asked for (hidden, twice)."""
    from lanterne.accountability.accounts import create_account

    with opened_site(config) as site:
        cameras = parse_scope(scope, site.cfg)
        account = create_account(
            site.store.engine, site.audit, login, role, cameras, _password(password_stdin), user_id(user)
        )
    _console().print(
        f"account {account.id} created: {account.login}, {account.role}, {', '.join(account.scope)}"
    )


@users_app.command("list")
@user_errors
def list_command(config: ConfigOpt) -> None:
    """Every account, disabled ones included (the audit log refers to their ids)."""
    from lanterne.accountability.accounts import list_accounts

    with opened_site(config) as site:
        accounts = list_accounts(site.store.engine)
    t = Table("id", "login", "role", "scope", "created", "disabled")
    for a in accounts:
        t.add_row(
            a.id,
            a.login,
            a.role,
            ", ".join(a.scope),
            utc_text(a.created_at, seconds=False),
            utc_text(a.disabled_at, seconds=False) if a.disabled_at else "",
        )
    _console().print(t)


@users_app.command("disable")
@user_errors
def disable_command(login: Login, config: ConfigOpt, user: UserOpt = None) -> None:
    """Disable an account and end its sessions now."""
    from lanterne.accountability.accounts import disable_account

    with opened_site(config) as site:
        account = disable_account(site.store.engine, site.audit, login, user_id(user))
    _console().print(f"account {account.id} disabled; its sessions are closed")
