"""`lanterne alerts …`: operators' decisions and measured precision from the command line, the
same steps as the console's alert queue.

The command line has no login: `--user` is recorded as given, in the decision and in the audit
log, so who may run these commands is a matter of who may read the configuration and database.

Exit codes: 0 done; 2 a user's mistake or a refused step (unknown alert, acknowledge first, a
decision already taken, a dismissal without reason), printed on one line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from lanterne.cli.common import CliError, ConfigOpt, UserOpt, opened_site, user_errors, user_id, utc_text
from lanterne.cli.common import out_console as _console

alerts_app = typer.Typer(
    help="Acknowledge, confirm and dismiss alerts; measured precision.", no_args_is_help=True
)

AlertId = Annotated[str, typer.Argument(help="Alert (event) id, as `lanterne alerts list` shows it.")]


@alerts_app.command("list")
@user_errors
def list_command(
    config: ConfigOpt,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only alerts in this state: new, acknowledged, confirmed, dismissed."),
    ] = None,
    camera: Annotated[str | None, typer.Option("--camera", help="Only alerts from this camera id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 200,
) -> None:
    """Alerts, newest first, with where each stands."""
    from lanterne.accountability.alerts import AlertState, list_alerts

    if state is not None and state not in {str(s) for s in AlertState}:
        raise CliError(
            f"--state {state!r} is not a state; use one of {', '.join(str(s) for s in AlertState)}"
        )
    with opened_site(config) as site:
        rows = list_alerts(site.store.engine, state=state, camera=camera, limit=limit)
    t = Table("id", "type", "camera", "zone", "start (UTC)", "confidence", "state")
    for a in rows:
        t.add_row(a.id, str(a.type), a.camera, a.zone, utc_text(a.start), f"{a.confidence:.2f}", str(a.state))
    _console().print(t)


@alerts_app.command("ack")
@user_errors
def ack_command(alert_id: AlertId, config: ConfigOpt, user: UserOpt = None) -> None:
    """Acknowledge an alert: someone is looking at it."""
    from lanterne.accountability.alerts import acknowledge

    with opened_site(config) as site:
        acknowledge(site.store.engine, site.audit, alert_id, user_id(user), datetime.now(UTC))
    _console().print(f"alert {alert_id} acknowledged", highlight=False)


@alerts_app.command("confirm")
@user_errors
def confirm_command(
    alert_id: AlertId,
    config: ConfigOpt,
    follow_up: Annotated[
        str | None,
        typer.Option(
            "--follow-up",
            help="What you decided: none, monitoring, field_request, emergency_services. Recorded only: "
            "Lanterne dispatches nothing.",
        ),
    ] = None,
    user: UserOpt = None,
) -> None:
    """Confirm an acknowledged alert: the situation is real."""
    from lanterne.accountability.alerts import DecisionError, confirm
    from lanterne.accountability.outbound import outbox_for
    from lanterne.store.tables import FOLLOW_UPS

    if follow_up is None:
        raise DecisionError(
            f"a confirmation needs a follow-up, one of {', '.join(FOLLOW_UPS)}; pass --follow-up"
        )
    with opened_site(config) as site:
        # Queued for the configured destinations; `lanterne serve` delivers them.
        outbox = outbox_for(site.cfg)
        confirm(site.store.engine, site.audit, alert_id, user_id(user), datetime.now(UTC), follow_up, outbox)
    _console().print(f"alert {alert_id} confirmed (follow-up: {follow_up}, recorded only)", highlight=False)


@alerts_app.command("dismiss")
@user_errors
def dismiss_command(
    alert_id: AlertId,
    config: ConfigOpt,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            help="Why the detector was wrong: reflection_or_light, street_furniture, person_at_rest, "
            "owner_nearby, test, other.",
        ),
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="What it was (required with 'other').")] = None,
    user: UserOpt = None,
) -> None:
    """Dismiss an acknowledged alert, with the reason it was wrong."""
    from lanterne.accountability.alerts import dismiss

    with opened_site(config) as site:
        dismiss(site.store.engine, site.audit, alert_id, user_id(user), datetime.now(UTC), reason, text)
    _console().print(f"alert {alert_id} dismissed ({reason})", highlight=False)


@alerts_app.command("history")
@user_errors
def history_command(alert_id: AlertId, config: ConfigOpt) -> None:
    """Every step taken on an alert, oldest first."""
    from lanterne.accountability.alerts import history

    with opened_site(config) as site:
        steps = history(site.store.engine, alert_id)
    if not steps:
        _console().print(f"alert {alert_id} is new: nobody has acknowledged it yet", highlight=False)
        return
    t = Table("time (UTC)", "state", "by", "reason", "text", "follow-up")
    for s in steps:
        t.add_row(
            utc_text(s.ts), str(s.state), s.user_id, s.reason or "", s.reason_text or "", s.follow_up or ""
        )
    _console().print(t)


@alerts_app.command("precision")
@user_errors
def precision_command(
    config: ConfigOpt,
    days: Annotated[int, typer.Option("--days", min=1, help="Window in days before now.")] = 30,
    since_start: Annotated[
        bool, typer.Option("--since-start", help="Since the first alert, deleted ones included.")
    ] = False,
) -> None:
    """Per detector and camera: alerts, confirmed, dismissed (by reason), precision."""
    from lanterne.accountability.precision import precision_table

    with opened_site(config) as site:
        rows = precision_table(site.store.engine, datetime.now(UTC), None if since_start else days)
    title = "since start" if since_start else f"last {days} days"
    t = Table(
        "camera",
        "detector",
        "alerts",
        "confirmed",
        "dismissed",
        "precision",
        "95 % interval",
        "dismissal reasons",
        title=title,
    )
    for p in rows:
        t.add_row(
            p.camera or "all",
            str(p.type),
            str(p.alerts),
            str(p.confirmed),
            str(p.dismissed),
            "n/a" if p.precision is None else f"{p.precision:.3f}",
            "" if p.interval is None else f"{p.interval[0]:.2f}–{p.interval[1]:.2f}",
            ", ".join(f"{k} {v}" for k, v in p.reasons.items()),
        )
    _console().print(t)
