"""`lanterne alerts …` and `lanterne suspensions …`: operators' decisions, measured precision and
detector suspensions from the command line, until the console does the same on screen.

There are no accounts or roles yet (the console brings them): `--user` is recorded as given, in the
decision and in the audit log; who may lift a suspension is therefore a matter of procedure today.

Exit codes: 0 done; 2 a user's mistake or a refused step (unknown alert, acknowledge first, a
decision already taken, a dismissal without reason), printed on one line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lanterne.cli.common import ConfigOpt, UserOpt, user_errors, user_id
from lanterne.cli.common import out_console as _console
from lanterne.core.errors import LanterneError

if TYPE_CHECKING:
    from pathlib import Path

    from lanterne.accountability.suspension import Suspensions
    from lanterne.audit import AuditLog
    from lanterne.config import Config
    from lanterne.core.types import EventType
    from lanterne.store import Store

alerts_app = typer.Typer(
    help="Acknowledge, confirm and dismiss alerts; measured precision.", no_args_is_help=True
)
suspensions_app = typer.Typer(
    help="Detectors suspended on a camera (alert flood, precision below the floor, supervisor).",
    no_args_is_help=True,
)


class CliError(LanterneError):
    pass


AlertId = Annotated[str, typer.Argument(help="Alert (event) id, as `lanterne alerts list` shows it.")]


def _open(config: Path) -> tuple[Config, Store, AuditLog]:
    from lanterne.audit import AuditLog
    from lanterne.config import load_config
    from lanterne.store import Store

    cfg = load_config(config)
    store = Store.open(cfg.store.url)
    audit = AuditLog(store.engine, key_path=cfg.audit.key_path, checkpoint_every=cfg.audit.checkpoint_every)
    return cfg, store, audit


def _when(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- alerts ---------------------------------------------------------------------------------


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
    _cfg, store, _audit = _open(config)
    try:
        rows = list_alerts(store.engine, state=state, camera=camera, limit=limit)
    finally:
        store.close()
    t = Table("id", "type", "camera", "zone", "start (UTC)", "confidence", "state")
    for a in rows:
        t.add_row(a.id, str(a.type), a.camera, a.zone, _when(a.start), f"{a.confidence:.2f}", str(a.state))
    _console().print(t)


@alerts_app.command("ack")
@user_errors
def ack_command(alert_id: AlertId, config: ConfigOpt, user: UserOpt = None) -> None:
    """Acknowledge an alert: someone is looking at it."""
    from lanterne.accountability.alerts import acknowledge

    _cfg, store, audit = _open(config)
    try:
        acknowledge(store.engine, audit, alert_id, user_id(user), datetime.now(UTC))
    finally:
        store.close()
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
    from lanterne.store.tables import FOLLOW_UPS

    if follow_up is None:
        raise DecisionError(
            f"a confirmation needs a follow-up, one of {', '.join(FOLLOW_UPS)}; pass --follow-up"
        )
    _cfg, store, audit = _open(config)
    try:
        confirm(store.engine, audit, alert_id, user_id(user), datetime.now(UTC), follow_up)
    finally:
        store.close()
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

    _cfg, store, audit = _open(config)
    try:
        dismiss(store.engine, audit, alert_id, user_id(user), datetime.now(UTC), reason, text)
    finally:
        store.close()
    _console().print(f"alert {alert_id} dismissed ({reason})", highlight=False)


@alerts_app.command("history")
@user_errors
def history_command(alert_id: AlertId, config: ConfigOpt) -> None:
    """Every step taken on an alert, oldest first."""
    from lanterne.accountability.alerts import history

    _cfg, store, _audit = _open(config)
    try:
        steps = history(store.engine, alert_id)
    finally:
        store.close()
    if not steps:
        _console().print(f"alert {alert_id} is new: nobody has acknowledged it yet", highlight=False)
        return
    t = Table("time (UTC)", "state", "by", "reason", "text", "follow-up")
    for s in steps:
        t.add_row(
            _when(s.ts), str(s.state), s.user_id, s.reason or "", s.reason_text or "", s.follow_up or ""
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

    _cfg, store, _audit = _open(config)
    try:
        rows = precision_table(store.engine, datetime.now(UTC), None if since_start else days)
    finally:
        store.close()
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


# --- suspensions ----------------------------------------------------------------------------


def _suspensions(config: Path) -> tuple[Config, Store, Suspensions]:
    from lanterne.accountability.suspension import Suspensions

    cfg, store, audit = _open(config)
    return cfg, store, Suspensions(store.engine, audit, cfg.suspension)


def _event_type(name: str) -> EventType:
    from lanterne.core.types import EventType

    try:
        return EventType(name.strip())
    except ValueError:
        raise CliError(
            f"event type {name!r} is unknown; use one of {', '.join(str(t) for t in EventType)}"
        ) from None


NoteOpt = Annotated[str | None, typer.Option("--note", help="What was reviewed and decided (required).")]


@suspensions_app.command("list")
@user_errors
def suspensions_list(
    config: ConfigOpt,
    active: Annotated[bool, typer.Option("--active", help="Only suspensions not yet lifted.")] = False,
) -> None:
    """Suspensions, oldest first, with their cause and who lifted them."""
    _cfg, store, sus = _suspensions(config)
    try:
        rows = sus.list(active_only=active)
    finally:
        store.close()
    t = Table("id", "camera", "detector", "cause", "since (UTC)", "by", "lifted (UTC)", "by", "note")
    for s in rows:
        t.add_row(
            str(s.id),
            s.camera,
            str(s.type),
            s.cause,
            _when(s.started_at),
            s.started_by,
            _when(s.lifted_at) if s.lifted_at else "active",
            s.lifted_by or "",
            s.lift_note or str(s.details.get("note", "")),
        )
    _console().print(t)


@suspensions_app.command("suspend")
@user_errors
def suspensions_suspend(
    camera: Annotated[str, typer.Argument(help="Camera id.")],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="Detector (event type), e.g. fire.")],
    config: ConfigOpt,
    note: NoteOpt = None,
    user: UserOpt = None,
) -> None:
    """Suspend a detector on a camera by hand, until a supervisor lifts it."""
    cfg, store, sus = _suspensions(config)
    try:
        if camera not in {c.id for c in cfg.cameras}:
            raise CliError(f"camera {camera!r} is not in the configuration; use one of its cameras[].id")
        s = sus.suspend(camera, _event_type(event_type), user_id(user), note or "")
    finally:
        store.close()
    _console().print(f"suspension {s.id}: {s.type} suspended on camera {s.camera}", highlight=False)


@suspensions_app.command("lift")
@user_errors
def suspensions_lift(
    suspension_id: Annotated[int, typer.Argument(help="Id shown by `lanterne suspensions list`.")],
    config: ConfigOpt,
    note: NoteOpt = None,
    user: UserOpt = None,
) -> None:
    """Lift a suspension after review; the note records the review."""
    _cfg, store, sus = _suspensions(config)
    try:
        s = sus.lift(suspension_id, user_id(user), note or "")
    finally:
        store.close()
    _console().print(f"suspension {s.id} lifted: {s.type} runs again on camera {s.camera}", highlight=False)
