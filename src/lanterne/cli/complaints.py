"""`lanterne complaints add|answer|list`: complaints about the system from the public or an
authority, and their answers (GV-07).

The DPO (or whoever receives them) records each complaint with the day it arrived, its channel, a
category from a closed list and a summary without personal data, then records the answer. The
oversight page in the console lists them; the public page publishes the counts per category and
state. Each step is in the audit log. Exit codes: 0 done; 2 a user's mistake.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from lanterne.accountability.complaints import (
    CATEGORIES,
    CHANNELS,
    NO_PERSONAL_DATA,
    STATES,
    ComplaintError,
    Complaints,
)
from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, user_errors, user_id
from lanterne.cli.common import out_console as _console

complaints_app = typer.Typer(
    help="Complaints about the system from the public or an authority: add, answer, list (GV-07).",
    no_args_is_help=True,
)


def _day(value: str | None, option: str, default: date) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ComplaintError(f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 2026-12-05") from None


@complaints_app.command("add")
@user_errors
def add(
    config: ConfigOpt,
    category: Annotated[str, typer.Option(help=f"What it is about: {', '.join(CATEGORIES)}.")],
    channel: Annotated[str, typer.Option(help=f"How it arrived: {', '.join(CHANNELS)}.")],
    summary: Annotated[str, typer.Option(help=f"What the complaint says. {NO_PERSONAL_DATA}")],
    received: Annotated[
        str | None, typer.Option(help="The day it arrived (YYYY-MM-DD); default today.")
    ] = None,
    user: UserOpt = None,
) -> None:
    """Record a complaint received about the system."""
    with opened_site(config) as site:
        register = Complaints(site.store.engine, site.audit)
        c = register.add(
            received_on=_day(received, "--received", register.today()),
            channel=channel,
            category=category,
            summary=summary,
            by=user_id(user),
        )
    _console().print(
        f"complaint {c.id} recorded ({c.category}, received {c.received_on} by {c.channel})", highlight=False
    )


@complaints_app.command("answer")
@user_errors
def answer(
    config: ConfigOpt,
    complaint_id: Annotated[int, typer.Argument(min=1, help="The complaint's number.")],
    text: Annotated[str, typer.Option("--answer", help=f"What was answered and done. {NO_PERSONAL_DATA}")],
    answered: Annotated[
        str | None, typer.Option(help="The day the answer was sent (YYYY-MM-DD); default today.")
    ] = None,
    user: UserOpt = None,
) -> None:
    """Record the answer to a complaint; it is then counted as answered."""
    with opened_site(config) as site:
        register = Complaints(site.store.engine, site.audit)
        c = register.answer(
            complaint_id,
            answered_on=_day(answered, "--answered", register.today()),
            answer=text,
            by=user_id(user),
        )
    days = (c.answered_on - c.received_on).days if c.answered_on else 0
    _console().print(
        f"complaint {c.id} answered on {c.answered_on} ({days} days after it arrived)", highlight=False
    )


@complaints_app.command("list")
@user_errors
def list_(
    config: ConfigOpt,
    state: Annotated[str, typer.Option(help=f"{', '.join(STATES)} or all.")] = "all",
    category: Annotated[
        str | None, typer.Option(help=f"Only this category: {', '.join(CATEGORIES)}.")
    ] = None,
) -> None:
    """Complaints, newest received first, with their answers."""
    if state not in (*STATES, "all"):
        raise ComplaintError(f"--state {state!r}: choose {', '.join(STATES)} or all")
    with opened_site(config) as site:
        found = Complaints(site.store.engine, site.audit).list(
            state=None if state == "all" else state, category=category
        )
    if not found:
        _console().print(f"no {'' if state == 'all' else state + ' '}complaint")
        return
    table = Table(
        "id", "received", "channel", "category", "state", "summary", "answered", "answer", title="Complaints"
    )
    for c in found:
        table.add_row(
            str(c.id),
            c.received_on.isoformat(),
            c.channel,
            c.category,
            c.state,
            c.summary,
            c.answered_on.isoformat() if c.answered_on else "",
            c.answer or "",
        )
    _console().print(table)
