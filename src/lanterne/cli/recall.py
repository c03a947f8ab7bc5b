"""`lanterne recall …`: blinded recall audits (PM-03). A supervisor's audit is drawn here or in
the console; its windows are reviewed in the console (`/console/recall`), where they play
anonymised and without the system's alerts; its score is read here once it is closed.

The command line has no login: `--user` is recorded as given. The reviewer is named by login
(`--reviewer`), and must be a supervisor whose scope and habilitation cover the cameras: a refusal
is recorded. Nothing this command prints about an open audit mentions an alert.

Exit codes: 0 done; 2 a user's mistake or a refused step, printed on one line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

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
    from lanterne.accountability.recall import RecallAudit, RecallFigure

recall_app = typer.Typer(
    help="Blinded recall audits: random windows of footage reviewed without the alerts, then scored.",
    no_args_is_help=True,
)


def _share(f: RecallFigure) -> str:
    if f.recall is None or f.interval is None:
        return "n/a"
    low, high = f.interval
    return f"{100 * f.recall:.0f} % ({100 * low:.0f}–{100 * high:.0f} %)"


def _figures(title: str, figures: tuple[RecallFigure, ...]) -> Table:
    t = Table(
        title, "windows", "marked", "found", "recall (95 % interval)", "not watched", title_justify="left"
    )
    for f in figures:
        t.add_row(f.key, str(f.windows), str(f.marks), str(f.found), _share(f), str(f.unwatched))
    return t


@recall_app.command("start")
@user_errors
def recall_start(
    config: ConfigOpt,
    reviewer: Annotated[
        str, typer.Option("--reviewer", help="Login of the supervisor who reviews the windows.")
    ],
    camera: Annotated[list[str], typer.Option("--camera", help="Camera to draw from; repeat for several.")],
    since: Annotated[
        str | None,
        typer.Option("--from", help="Start of the range (ISO 8601 with zone; default: 7 days ago)."),
    ] = None,
    until: Annotated[str | None, typer.Option("--to", help="End of the range (default: now).")] = None,
    windows: Annotated[int, typer.Option("--windows", help="How many windows to draw.")] = 20,
    seconds: Annotated[int, typer.Option("--seconds", help="Length of each window (s).")] = 30,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Seconds around an alert within which a mark matches it.")
    ] = 5.0,
    user: UserOpt = None,
) -> None:
    """Draw the random windows of a new audit for a reviewer (recorded with the seed)."""
    from lanterne.accountability.accounts import find_account
    from lanterne.accountability.recall import Reviewer, start_audit

    now = datetime.now(UTC)
    start = parse_time(since, "--from") if since else now - timedelta(days=7)
    end = parse_time(until, "--to") if until else now
    with opened_site(config) as site:
        account = find_account(site.store.engine, reviewer)
        if account is None or not account.active:
            raise CliError(f"no active account {reviewer!r}; `lanterne users list` shows them")
        a = start_audit(
            site.store.engine,
            site.audit,
            site.cfg,
            reviewer=Reviewer(account.id, account.role, frozenset(account.scope)),
            cameras=camera,
            since=start,
            until=end,
            now=now,
            windows=windows,
            seconds=seconds,
            tolerance=tolerance,
            created_by=user_id(user),
        )
    _console().print(
        f"recall audit {a.id}: {len(a.windows)} windows of {a.window_seconds} s drawn over "
        f"{', '.join(a.cameras)} (seed {a.seed}); {reviewer} reviews them in the console at /console/recall",
        highlight=False,
    )


def _audit_row(t: Table, a: RecallAudit) -> None:
    t.add_row(
        str(a.id),
        a.state,
        a.reviewer,
        ", ".join(a.cameras),
        f"{a.reviewed}/{len(a.windows)}",
        utc_text(a.created_at, seconds=False),
        utc_text(a.closed_at, seconds=False) if a.closed_at else "",
    )


@recall_app.command("status")
@user_errors
def recall_status(
    config: ConfigOpt,
    audit_id: Annotated[
        int | None, typer.Argument(help="An audit's number; all audits when left out.")
    ] = None,
) -> None:
    """Audits and how far their review is; with a number, that audit's windows (never its alerts)."""
    from lanterne.accountability.recall import get_audit, list_audits

    with opened_site(config) as site:
        if audit_id is None:
            t = Table("id", "state", "reviewer", "cameras", "reviewed", "started (UTC)", "closed (UTC)")
            for a in list_audits(site.store.engine):
                _audit_row(t, a)
            _console().print(t)
            return
        a = get_audit(site.store.engine, audit_id)
    t = Table(
        "window",
        "camera",
        "from (UTC)",
        "to (UTC)",
        "reviewed",
        "marks",
        title=f"recall audit {a.id}: {a.state}",
    )
    for w in a.windows:
        t.add_row(
            str(w.seq),
            w.camera,
            utc_text(w.start),
            utc_text(w.end),
            utc_text(w.reviewed_at) if w.reviewed_at else "no",
            str(len(w.marks)),
        )
    _console().print(t)


@recall_app.command("close")
@user_errors
def recall_close(
    audit_id: Annotated[int, typer.Argument(help="The audit's number.")],
    config: ConfigOpt,
    note: Annotated[
        str | None, typer.Option("--note", help="Why it closes before every window was reviewed (recorded).")
    ] = None,
    user: UserOpt = None,
) -> None:
    """Close an audit now: its reviewed windows are scored, the others left out."""
    from lanterne.accountability.recall import close_audit, results

    with opened_site(config) as site:
        a = close_audit(
            site.store.engine,
            site.audit,
            site.cfg,
            audit_id,
            by=user_id(user),
            now=datetime.now(UTC),
            note=note,
        )
    r = results(a)
    _console().print(
        f"recall audit {a.id} closed: {r.reviewed} of {r.windows} windows reviewed, "
        f"{r.overall.found} of {r.overall.marks} situations found by the system ({_share(r.overall)})",
        highlight=False,
    )


def _figure_json(f: RecallFigure) -> dict[str, Any]:
    return {
        "key": f.key,
        "windows": f.windows,
        "marks": f.marks,
        "found": f.found,
        "unwatched": f.unwatched,
        "recall": f.recall,
        "interval": list(f.interval) if f.interval else None,
    }


@recall_app.command("report")
@user_errors
def recall_report(
    config: ConfigOpt,
    audit_id: Annotated[
        int | None,
        typer.Argument(help="A closed audit's number; all audits closed in the last year when left out."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Recall per detector and camera of a closed audit, and the alerts no mark matched; or, without
    a number, recall per detector over the audits closed in the last year (as published)."""
    from lanterne.accountability.recall import get_audit, published_recall, results

    with opened_site(config) as site:
        if audit_id is None:
            p = published_recall(site.store.engine, datetime.now(UTC))
            if as_json:
                body = {
                    "audits": p.audits,
                    "windows": p.windows,
                    "open_audits": p.open_audits,
                    "by_type": [_figure_json(f) for f in p.by_type],
                }
                typer.echo(json.dumps(body, indent=2))
                return
            _console().print(
                f"{p.audits} audit(s) closed in the last year, {p.windows} windows reviewed; "
                f"{p.open_audits} still open",
                highlight=False,
            )
            _console().print(_figures("detector", p.by_type))
            return
        r = results(get_audit(site.store.engine, audit_id))
    if as_json:
        body = {
            "windows": r.windows,
            "reviewed": r.reviewed,
            "unblinded": r.unblinded,
            "overall": _figure_json(r.overall),
            "by_type": [_figure_json(f) for f in r.by_type],
            "by_camera": [_figure_json(f) for f in r.by_camera],
            "unmarked": [
                {
                    "window": u.window,
                    "camera": u.camera,
                    "event_id": u.event_id,
                    "type": u.type,
                    "start": u.start.isoformat(),
                }
                for u in r.unmarked
            ],
        }
        typer.echo(json.dumps(body, indent=2))
        return
    _console().print(
        f"{r.reviewed} of {r.windows} windows reviewed: {r.overall.found} of {r.overall.marks} situations found "
        f"({_share(r.overall)}); {r.overall.unwatched} of a type their camera does not watch",
        highlight=False,
    )
    if r.unblinded:
        _console().print(
            f"{r.unblinded} window(s) not blind: the reviewer had looked at their alerts elsewhere",
            highlight=False,
        )
    _console().print(_figures("detector", r.by_type))
    _console().print(_figures("camera", r.by_camera))
    t = Table(
        "window",
        "camera",
        "alert",
        "type",
        "at (UTC)",
        title="alerts no mark matched (review their precision)",
    )
    for u in r.unmarked:
        t.add_row(str(u.window), u.camera, u.event_id, u.type, utc_text(u.start))
    _console().print(t)
