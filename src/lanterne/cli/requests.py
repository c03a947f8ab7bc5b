"""`lanterne requests add|list|answer|refuse`: people's requests for their own images (GDPR art. 15).

Exit codes: 0 done; 2 a user's mistake (missing field, window too long, answer outside the
request's window, request already closed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

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

requests_app = typer.Typer(
    help="Access requests: a person asks for the images of themselves (one-month deadline).",
    no_args_is_help=True,
)


@requests_app.command("add")
@user_errors
def add(
    config: ConfigOpt,
    requester: Annotated[str, typer.Option(help="The requester's name, to answer them.")],
    contact: Annotated[str, typer.Option(help="How to answer them (address, e-mail).")],
    start: Annotated[str, typer.Option(help="When they were there: from (ISO 8601 with a zone).")],
    end: Annotated[str, typer.Option(help="When they were there: until (at most 6 hours later).")],
    place: Annotated[str, typer.Option(help="Where they were.")],
    description: Annotated[str, typer.Option(help="What they say would let the agent find them.")] = "",
    received: Annotated[str | None, typer.Option(help="When the request arrived (default: now).")] = None,
    user: UserOpt = None,
) -> None:
    """Record a request as received; it is due one month later."""
    from lanterne.accountability.requests import register

    with opened_site(config) as site:
        r = register(
            site.store.engine,
            site.audit,
            requester=requester,
            contact=contact,
            window_start=parse_time(start, "--start"),
            window_end=parse_time(end, "--end"),
            place=place,
            description=description,
            received_at=parse_time(received, "--received") if received else datetime.now(UTC),
            recorded_by=user_id(user),
        )
    _console().print(
        f"access request {r.id} recorded; due {utc_text(r.deadline, seconds=False)}", highlight=False
    )


@requests_app.command("list")
@user_errors
def list_cmd(
    config: ConfigOpt,
    open_only: Annotated[bool, typer.Option("--open", help="Only the requests not answered yet.")] = False,
) -> None:
    """Requests by deadline, the most urgent first; overdue ones are marked."""
    from lanterne.accountability.requests import requests

    now = datetime.now(UTC)
    with opened_site(config) as site:
        rows = requests(site.store.engine, open_only=open_only)
    table = Table("id", "state", "received", "due", "window (UTC)", "place", "requester")
    for r in rows:
        state = "OVERDUE" if r.overdue(now) else r.state
        window = f"{utc_text(r.window_start, seconds=False)} - {r.window_end.astimezone(UTC):%H:%M}"
        table.add_row(
            str(r.id), state, utc_text(r.received_at, seconds=False), utc_text(r.deadline, seconds=False),
            window, r.place, r.requester,
        )  # fmt: skip
    _console().print(table)


def _box(value: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in value.split(","))
    except ValueError:
        raise CliError(
            f"--keep {value!r}: write x0,y0,x1,y1 in fractions of the frame, e.g. 0.4,0.3,0.6,0.9"
        ) from None
    return x0, y0, x1, y1


@requests_app.command("answer")
@user_errors
def answer(
    config: ConfigOpt,
    request: Annotated[int, typer.Argument(help="The request's number.")],
    camera: Annotated[str, typer.Option(help="The camera where the requester was found.")],
    start: Annotated[str, typer.Option(help="From (inside the request's window).")],
    end: Annotated[str, typer.Option(help="Until (inside the request's window).")],
    keep: Annotated[str, typer.Option(help="Where the requester is: x0,y0,x1,y1 (frame fractions).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="MP4 to hand over; its manifest goes beside it.")],
    user: UserOpt = None,
) -> None:
    """Export the range with the requester alone visible (everyone else hidden whole), signed and
    recorded, and close the request."""
    from lanterne.runtime.exports import answer_access_request

    with opened_site(config) as site:
        m = answer_access_request(
            site,
            request,
            camera,
            parse_time(start, "--start"),
            parse_time(end, "--end"),
            _box(keep),
            out,
            agent=user_id(user),
            now=datetime.now(UTC),
        )
    _console().print(f"access request {request} answered with export {m.export_id}: {out}", highlight=False)


@requests_app.command("refuse")
@user_errors
def refuse_cmd(
    config: ConfigOpt,
    request: Annotated[int, typer.Argument(help="The request's number.")],
    reason: Annotated[str, typer.Option(help="Why (the requester is told).")],
    user: UserOpt = None,
) -> None:
    """Close a request without images, with the reason the requester will be given."""
    from lanterne.accountability.requests import refuse

    with opened_site(config) as site:
        refuse(site.store.engine, site.audit, request, reason=reason, by=user_id(user), now=datetime.now(UTC))
    _console().print(f"access request {request} refused", highlight=False)
