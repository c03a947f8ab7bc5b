"""`lanterne retention …` and `lanterne hold …`: purge on demand, and legal holds.

Exit codes: 0 done; 1 the purge ran but could not delete everything (each failure printed);
2 a user's mistake (bad config, hold without a judicial reference, unknown event or hold).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from lanterne.cli.common import CliError, ConfigOpt, UserOpt, opened_site, parse_time, user_errors, user_id
from lanterne.cli.common import out_console as _console

retention_app = typer.Typer(
    help="Delete what is past retention (CSI L252-5: 30 days at most).", no_args_is_help=True
)
hold_app = typer.Typer(
    help="Legal holds: keep an event past retention for a judicial procedure.", no_args_is_help=True
)


def _now(value: str | None) -> datetime:
    real = datetime.now(UTC)
    if value is None:
        return real
    now = parse_time(value, "--now")
    # A future --now would destroy evidence before its retention ends: the law sets a maximum,
    # but an early deletion on the command line is also how evidence disappears on purpose.
    if now > real:
        raise CliError(f"--now {value!r} is in the future; it may only replay a purge as of an earlier time")
    return now


@retention_app.command("purge")
@user_errors
def purge_command(config: ConfigOpt, now: Annotated[str | None, typer.Option(
    "--now", help="Purge as of this ISO 8601 time (past only; default: now).")] = None,
    user: UserOpt = None) -> None:  # fmt: skip
    """Delete evidence, alerts and orphan files past retention now, and record the proof."""
    from lanterne.accountability.retention import purge

    with opened_site(config) as site:
        report = purge(
            site.store, site.cfg.store.evidence_dir, site.cfg.retention, site.audit, _now(now), user_id(user)
        )
    for line in report.lines():
        _console().print(line, highlight=False)
    if report.errors:
        raise typer.Exit(1)


@hold_app.command("add")
@user_errors
def hold_add(
    event_id: Annotated[str, typer.Argument(help="Id of the event to keep.")],
    config: ConfigOpt,
    reference: Annotated[
        str, typer.Option("--reference", help="Judicial reference (requisition, procedure).")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the event must be kept.")],
    user: UserOpt = None,
) -> None:
    """Keep an event and its evidence past retention until the hold is lifted."""
    from lanterne.accountability.retention import hold

    with opened_site(config) as site:
        h = hold(site.store, site.audit, event_id, reference, reason, user_id(user), datetime.now(UTC))
    _console().print(
        f"hold {h.id} placed on event {h.event_id} (reference {h.judicial_reference})", highlight=False
    )


@hold_app.command("lift")
@user_errors
def hold_lift(
    hold_id: Annotated[int, typer.Argument(help="Id of the hold (see `lanterne hold list`).")],
    config: ConfigOpt,
    user: UserOpt = None,
) -> None:
    """Lift a hold: the event is deleted at the next purge if it is past retention."""
    from lanterne.accountability.retention import lift

    with opened_site(config) as site:
        h = lift(site.store, site.audit, hold_id, user_id(user), datetime.now(UTC))
    _console().print(f"hold {h.id} on event {h.event_id} lifted", highlight=False)


@hold_app.command("list")
@user_errors
def hold_list(config: ConfigOpt) -> None:
    """All legal holds, active and lifted."""
    from lanterne.accountability.retention import holds

    with opened_site(config) as site:
        rows = holds(site.store)
    t = Table("id", "event", "reference", "placed", "by", "lifted", "by")
    for h in rows:
        t.add_row(
            str(h.id),
            h.event_id,
            h.judicial_reference,
            h.created_at.isoformat(timespec="seconds"),
            h.created_by,
            h.lifted_at.isoformat(timespec="seconds") if h.lifted_at else "active",
            h.lifted_by or "",
        )
    _console().print(t)
