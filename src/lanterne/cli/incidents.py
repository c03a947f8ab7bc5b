"""`lanterne incidents list|show|open|note|notify|close|sweep`: malfunctions and personal-data
breaches (RK-05, SC-05).

`lanterne run` opens incidents by itself once a minute (a silent detector, a false-alarm spike, a
missed situation found by a recall audit) and `lanterne audit verify` opens a breach when it finds
the log altered; a person opens any other with `open`. The owner then adds notes, prints the
notification (`show --template`), records that it was sent (`notify`) and closes it with its cause
and remedy. A breach shows its 72-hour deadline and OVERDUE once it passed with the authority not
told. Every step is in the audit log. Exit codes: 0 done; 2 a user's mistake.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from lanterne.accountability.incidents import (
    KINDS,
    RECIPIENTS,
    Incident,
    IncidentError,
    Incidents,
    IncidentSweep,
    template,
)
from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, user_errors, user_id
from lanterne.cli.common import out_console as _console

incidents_app = typer.Typer(
    help="Incidents and breaches: list, show with the notification template, note, notify, close (RK-05, SC-05).",
    no_args_is_help=True,
)

IdArg = Annotated[int, typer.Argument(min=1, help="The incident's number.")]


def _when(ts: datetime | None) -> str:
    return "" if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _clock(i: Incident, now: datetime) -> str:
    """The breach's clock in words: what a DPO must see first."""
    if i.deadline is None:
        return ""
    if i.overdue(now):
        return f"OVERDUE (deadline {_when(i.deadline)})"
    if i.notified_at is not None:
        return f"notified {_when(i.notified_at)}"
    left = i.deadline - now
    return f"{left.total_seconds() / 3600:.0f} h left (deadline {_when(i.deadline)})"


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise IncidentError(f"--detected {value!r} is not an ISO date-time, e.g. 2026-12-05T21:40") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@incidents_app.command("list")
@user_errors
def list_(
    config: ConfigOpt,
    state: Annotated[str, typer.Option(help="open, closed or all.")] = "open",
    kind: Annotated[str | None, typer.Option(help=f"Only this kind: {', '.join(KINDS)}.")] = None,
) -> None:
    """Incidents, newest first (open ones by default), with a breach's 72-hour clock."""
    if state not in ("open", "closed", "all"):
        raise IncidentError(f"--state {state!r}: choose open, closed or all")
    now = datetime.now(UTC)
    with opened_site(config) as site:
        found = Incidents(site.store.engine, site.audit).list(
            state=None if state == "all" else state, kind=kind
        )
    if not found:
        _console().print(f"no {'' if state == 'all' else state + ' '}incident")
        return
    table = Table("id", "kind", "state", "opened (UTC)", "owner", "title", "72 h clock", title="Incidents")
    for i in found:
        table.add_row(str(i.id), i.kind, i.state, _when(i.opened_at), i.owner, i.title, _clock(i, now))
    _console().print(table)


@incidents_app.command("show")
@user_errors
def show(
    config: ConfigOpt,
    incident_id: IdArg,
    only_template: Annotated[
        bool, typer.Option("--template", help="Print only the notification (Markdown), e.g. into a file.")
    ] = False,
) -> None:
    """An incident, its timeline and the notification to send."""
    now = datetime.now(UTC)
    with opened_site(config) as site:
        i = Incidents(site.store.engine, site.audit).get(incident_id)
        cfg = site.cfg
    text = template(
        i, site=cfg.site, controller=cfg.public.controller, dpo_contact=cfg.public.dpo_contact, now=now
    )
    out = _console()
    if only_template:
        out.print(text, end="", markup=False, highlight=False)
        return
    out.print(f"incident {i.id} ({i.kind}, {i.state}): {i.title}", markup=False, highlight=False)
    out.print(
        f"owner {i.owner}; detected {_when(i.detected_at)} UTC; opened by {i.opened_by}", highlight=False
    )
    if i.deadline is not None:
        out.print(f"72-hour clock: {_clock(i, now)}", highlight=False)
    out.print(i.summary, markup=False, highlight=False)
    table = Table("at (UTC)", "who", "step", "what", title="Timeline")
    for e in i.entries:
        table.add_row(_when(e.at), e.author, e.step, e.body)
    out.print(table)
    out.print("--- notification ---", highlight=False)
    out.print(text, end="", markup=False, highlight=False)


@incidents_app.command("open")
@user_errors
def open_(
    config: ConfigOpt,
    title: Annotated[str, typer.Option(help="What happened, in a line.")],
    summary: Annotated[str, typer.Option(help="What happened and its effects so far (no personal data).")],
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(KINDS)}.")] = "manual",
    camera: Annotated[
        list[str] | None, typer.Option("--camera", help="A camera concerned (repeatable).")
    ] = None,
    detector: Annotated[
        list[str] | None, typer.Option("--detector", help="An event type concerned (repeatable).")
    ] = None,
    detected: Annotated[
        str | None, typer.Option(help="When it became known (ISO, UTC unless a zone is given); default now.")
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Who answers for it (default: you).")] = None,
    user: UserOpt = None,
) -> None:
    """Record an incident by hand; a breach gets its 72-hour deadline from --detected."""
    with opened_site(config) as site:
        known = {c.id for c in site.cfg.cameras}
        unknown = [c for c in camera or [] if c not in known]
        if unknown:
            raise IncidentError(f"--camera {unknown[0]!r} is not in the configuration; check the camera id")
        from lanterne.core.types import EventType

        bad = [d for d in detector or [] if d not in {str(t) for t in EventType}]
        if bad:
            raise IncidentError(f"--detector {bad[0]!r} is not one of the 8 event types")
        i, _ = Incidents(site.store.engine, site.audit).open(
            kind,
            title,
            summary,
            by=user_id(user),
            owner=owner,
            cameras=camera or [],
            detectors=detector or [],
            detected_at=_parse_time(detected),
        )
    said = f"incident {i.id} opened ({i.kind}), owner {i.owner}"
    if i.deadline is not None:
        said += f"; notify the authority by {_when(i.deadline)} UTC (GDPR art. 33)"
    _console().print(said, highlight=False)


@incidents_app.command("note")
@user_errors
def note(
    config: ConfigOpt,
    incident_id: IdArg,
    text: Annotated[str, typer.Option(help="What was checked or done (no personal data).")],
    owner: Annotated[str | None, typer.Option(help="Hand the incident to this user id.")] = None,
    user: UserOpt = None,
) -> None:
    """Add a note to the timeline (and change the owner with --owner)."""
    with opened_site(config) as site:
        i = Incidents(site.store.engine, site.audit).note(incident_id, text, by=user_id(user), owner=owner)
    _console().print(f"incident {i.id}: note added; owner {i.owner}", highlight=False)


@incidents_app.command("notify")
@user_errors
def notify(
    config: ConfigOpt,
    incident_id: IdArg,
    to: Annotated[str, typer.Option(help=f"Who was notified: {', '.join(RECIPIENTS)}.")],
    reference: Annotated[str, typer.Option(help="The recipient's receipt number, or how it was sent.")],
    user: UserOpt = None,
) -> None:
    """Record that the notification was sent; the first to the authority stops a breach's clock."""
    with opened_site(config) as site:
        i = Incidents(site.store.engine, site.audit).notify(incident_id, to, reference, by=user_id(user))
    said = f"incident {i.id}: notification to the {to} recorded"
    if i.deadline is not None and i.overdue(datetime.now(UTC)):
        said += "; it was after the 72-hour deadline: give the reasons for the delay (GDPR art. 33(1))"
    _console().print(said, highlight=False)


@incidents_app.command("close")
@user_errors
def close(
    config: ConfigOpt,
    incident_id: IdArg,
    cause: Annotated[str, typer.Option(help="What caused it.")],
    remedy: Annotated[str, typer.Option(help="What was done so that it does not happen again.")],
    user: UserOpt = None,
) -> None:
    """Close an incident with its cause and remedy."""
    with opened_site(config) as site:
        i = Incidents(site.store.engine, site.audit).close(incident_id, cause, remedy, by=user_id(user))
    _console().print(f"incident {i.id} closed", highlight=False)


@incidents_app.command("sweep")
@user_errors
def sweep(config: ConfigOpt) -> None:
    """Look for silent detectors, false-alarm spikes and recall misses now (`lanterne run` does it
    every minute)."""
    with opened_site(config) as site:
        opened = IncidentSweep(site.store.engine, site.audit, site.cfg)(datetime.now(UTC))
    if not opened:
        _console().print("no new incident")
    for i in opened:
        _console().print(f"incident {i.id} opened ({i.kind}): {i.title}", highlight=False)
