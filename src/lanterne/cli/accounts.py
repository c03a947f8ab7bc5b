"""`lanterne users …`: console accounts from the command line (the admin's job, AC-01…AC-05).

Besides accounts: the habilitation and training records that every video access checks
(`habilitate`, `train`, `records`, `revoke-record`) and the TOTP second factor that every
account logs in with (`totp`).

Passwords come from a hidden prompt (typed twice) or, for scripts, from the first line of standard
input with `--password-stdin`; they are never echoed, logged or passed on the command line, where
`ps` and the shell history would keep them.

Exit codes: 0 done; 2 a user's mistake (unknown camera or role, weak password, login taken).
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lanterne.cli.common import (
    CliError,
    ConfigOpt,
    UserOpt,
    opened_site,
    parse_time,
    user_errors,
    user_id,
    utc_text,
)
from lanterne.cli.common import out_console as _console

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from lanterne.config import Config

users_app = typer.Typer(
    help="Console accounts: add, list, disable; habilitation and training records; second factor.",
    no_args_is_help=True,
)

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
    role: Annotated[
        str, typer.Option("--role", help="operator, supervisor, export_officer, auditor, admin or analyst.")
    ],
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
    # Every account logs in with a second factor (AC-04): say the next step, or the person's
    # first login is the one that tells them.
    _console().print(
        f"next: `lanterne users totp {account.login}` enrols its second factor; it cannot log in without one",
        highlight=False,
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


# --- who may see video ------------------------------------------------------------------------

DateOpt = Annotated[
    str | None,
    typer.Option(
        "--date", help="When it was decided or passed: YYYY-MM-DD (UTC) or ISO 8601 (default: now)."
    ),
]
ExpiresOpt = Annotated[
    str | None,
    typer.Option("--expires", help="Expiry: YYYY-MM-DD (UTC) or ISO 8601 (default: a year after --date)."),
]


def _when(value: str | None, option: str) -> datetime | None:
    """A day (midnight UTC) or a full ISO 8601 time with its zone."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return parse_time(value, option)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _account_of(engine: Engine, login: str) -> str:
    from lanterne.accountability.accounts import AccountError, find_account

    account = find_account(engine, login)
    if account is None:
        raise AccountError("no account has that login; see `lanterne users list`")
    return account.id


@users_app.command("habilitate")
@user_errors
def habilitate_command(
    login: Login,
    config: ConfigOpt,
    authority: Annotated[
        str, typer.Option("--authority", help="Who designated the person, e.g. 'Maire de Lanterne'.")
    ],
    scope: Annotated[str, typer.Option("--scope", help="Camera ids, comma-separated, or '*' for all.")],
    when: DateOpt = None,
    expires: ExpiresOpt = None,
    user: UserOpt = None,
) -> None:
    """Record the designation that lets LOGIN see video (AC-01): authority, date, scope, expiry."""
    from lanterne.accountability.habilitation import habilitate

    now = datetime.now(UTC)
    with opened_site(config) as site:
        cameras = parse_scope(scope, site.cfg)
        h = habilitate(
            site.store.engine,
            site.audit,
            user=_account_of(site.store.engine, login),
            authority=authority,
            designated_on=_when(when, "--date") or now,
            cameras=cameras,
            expires=_when(expires, "--expires"),
            recorded_by=user_id(user),
            now=now,
        )
    _console().print(
        f"habilitation {h.id}: {login} may see video of {', '.join(h.cameras)} "
        f"until {utc_text(h.expires_at, seconds=False)} (designated by {h.authority})",
        highlight=False,
    )


@users_app.command("train")
@user_errors
def train_command(
    login: Login,
    config: ConfigOpt,
    course: Annotated[str, typer.Option("--course", help="The course or certificate passed.")],
    when: DateOpt = None,
    expires: ExpiresOpt = None,
    user: UserOpt = None,
) -> None:
    """Record a course LOGIN passed (HO-06: data protection, the system's limits and failures)."""
    from lanterne.accountability.habilitation import train

    now = datetime.now(UTC)
    with opened_site(config) as site:
        t = train(
            site.store.engine,
            site.audit,
            user=_account_of(site.store.engine, login),
            course=course,
            completed_on=_when(when, "--date") or now,
            expires=_when(expires, "--expires"),
            recorded_by=user_id(user),
            now=now,
        )
    _console().print(
        f"training {t.id}: {login} passed {t.course!r}, valid until {utc_text(t.expires_at, seconds=False)}",
        highlight=False,
    )


@users_app.command("records")
@user_errors
def records_command(
    config: ConfigOpt,
    login: Annotated[str | None, typer.Argument(help="Only this account's records.")] = None,
) -> None:
    """The register of habilitations and training records, newest first, revoked ones included."""
    from lanterne.accountability.accounts import list_accounts
    from lanterne.accountability.habilitation import habilitations, trainings

    with opened_site(config) as site:
        engine = site.store.engine
        only = _account_of(engine, login) if login is not None else None
        logins = {a.id: a.login for a in list_accounts(engine)}
        habs, courses = habilitations(engine, only), trainings(engine, only)
    now = datetime.now(UTC)
    t = Table("habilitation", "login", "authority", "designated", "cameras", "expires", "state")
    for h in habs:
        state = "revoked" if h.revoked_at else ("valid" if h.valid_at(now) else "expired")
        t.add_row(
            str(h.id),
            logins.get(h.user_id, h.user_id),
            h.authority,
            utc_text(h.designated_on, seconds=False),
            ", ".join(h.cameras),
            utc_text(h.expires_at, seconds=False),
            state,
        )
    _console().print(t)
    c = Table("training", "login", "course", "passed", "expires", "state")
    for tr in courses:
        state = "revoked" if tr.revoked_at else ("valid" if tr.valid_at(now) else "expired")
        c.add_row(
            str(tr.id),
            logins.get(tr.user_id, tr.user_id),
            tr.course,
            utc_text(tr.completed_on, seconds=False),
            utc_text(tr.expires_at, seconds=False),
            state,
        )
    _console().print(c)


@users_app.command("revoke-record")
@user_errors
def revoke_record_command(
    kind: Annotated[str, typer.Argument(help="habilitation or training.")],
    record: Annotated[int, typer.Argument(help="The record's number (`lanterne users records`).")],
    config: ConfigOpt,
    user: UserOpt = None,
) -> None:
    """End a habilitation or a training record now; the next video request is refused."""
    from lanterne.accountability.habilitation import revoke

    if kind not in ("habilitation", "training"):
        raise CliError(f"unknown record kind {kind!r}; use 'habilitation' or 'training'")
    with opened_site(config) as site:
        revoke(site.store.engine, site.audit, kind, record, revoked_by=user_id(user), now=datetime.now(UTC))
    _console().print(f"{kind} {record} revoked")


@users_app.command("totp")
@user_errors
def totp_command(login: Login, config: ConfigOpt, user: UserOpt = None) -> None:
    """Enrol LOGIN's second factor (AC-04), replacing any previous one: prints, once, the secret
    for the authenticator app and ten one-time recovery codes. Give them to the person only."""
    from lanterne.accountability.accounts import enrol_second_factor

    with opened_site(config) as site:
        enrolment = enrol_second_factor(site.store.engine, site.audit, login, user_id(user))
    out = _console()
    out.print("Scan or type this into the authenticator app; it is not shown again:", highlight=False)
    out.print(f"  {enrolment.uri}", highlight=False)
    out.print(f"  secret: {enrolment.secret}", highlight=False)
    out.print("Recovery codes, each good once (keep them apart from the phone):", highlight=False)
    for code in enrolment.recovery_codes:
        out.print(f"  {code}", highlight=False)
