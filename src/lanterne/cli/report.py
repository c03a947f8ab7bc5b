"""`lanterne report operations|quarterly|verify`: the operating figures of the detectors (PM-01,
PM-06) and the signed quarterly public report (PM-04, PM-07).

Exit codes: 0 done / intact; 1 the report does not verify (each problem printed); 2 a user's
mistake (bad period, unreachable database, a directory that is not empty).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, parse_time, user_errors, user_id
from lanterne.cli.common import out_console as _console

report_app = typer.Typer(
    help="Operating figures per detector and camera; the signed quarterly public report.",
    no_args_is_help=True,
)

NowOpt = Annotated[
    str | None, typer.Option("--now", help="As of this time (ISO 8601 with a zone), to re-run a past report.")
]


def _pct(v: float | None, interval: tuple[float, float] | None = None) -> str:
    if v is None:
        return "n/a"
    if interval is None:
        return f"{100 * v:.0f} %"
    return f"{100 * v:.0f} % ({100 * interval[0]:.0f}–{100 * interval[1]:.0f} %)"


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f}"


@report_app.command("operations")
@user_errors
def operations_command(
    config: ConfigOpt,
    period: Annotated[
        str, typer.Option(help="A week (2026-W49), a month (2026-11) or a quarter (2026Q4), UTC.")
    ],
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Alerts, decisions, dismissal reasons, confirmed share (95 % interval), alerts per camera-hour,
    time to acknowledge and the follow-ups of confirmations, per detector and camera."""
    from lanterne.accountability.operations import operations, period_bounds

    since, until = period_bounds(period)
    with opened_site(config) as site:
        watched = {
            c.id: sorted({str(t) for z in c.zones for t in z.events.enabled()})
            for c in site.cfg.cameras
            if camera is None or c.id == camera
        }
        ops = operations(site.store.engine, since, until, watched=watched)
    rows = [r for r in ops.rows if camera is None or r.camera == camera]
    by_type = ops.by_type if camera is None else ()
    out = _console()
    if as_json:
        body = {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "rows": [r.to_json() for r in rows],
            "by_type": [r.to_json() for r in by_type],
        }
        out.print_json(json.dumps(body))
        return
    t = Table(
        "camera",
        "type",
        "alerts",
        "confirmed",
        "dismissed (reasons)",
        "confirmed share (95 %)",
        "per camera-h",
        "ack median / p90 s",
        "useful / no action / unknown",
        title=f"Operations {period.upper()} ({since:%Y-%m-%d} to {until:%Y-%m-%d}, UTC)",
        title_justify="left",
    )
    for r in [*rows, *by_type]:
        reasons = ", ".join(f"{k} {n}" for k, n in r.reasons.items())
        rate = r.alerts_per_camera_hour
        t.add_row(
            r.camera or "all",
            r.type,
            str(r.alerts),
            str(r.confirmed),
            f"{r.dismissed}" + (f" ({reasons})" if reasons else ""),
            _pct(r.confirmed_share, r.interval),
            "n/a" if rate is None else f"{rate:.3f}",
            f"{_s(r.ack_median_s)} / {_s(r.ack_p90_s)}",
            f"{r.useful} / {r.without_action} / {r.follow_up_unknown}",
        )
    out.print(t)
    if not rows:
        out.print("no alert and no watched detector in this period", highlight=False)


@report_app.command("quarterly")
@user_errors
def quarterly_command(
    config: ConfigOpt,
    quarter: Annotated[str, typer.Option(help="The quarter, e.g. 2026Q4.")],
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="A new or empty directory for the report's files.")
    ],
    now: NowOpt = None,
    user: UserOpt = None,
) -> None:
    """Write the quarter's open data (CSV, JSON) and PDF, sign their sha256 with the site's audit
    key, and record the publication."""
    from lanterne.accountability.quarterly import build_quarterly, write_report
    from lanterne.audit.signing import key_id, load_or_create_key

    at = parse_time(now, "--now") if now else datetime.now(UTC)
    with opened_site(config) as site:
        key = load_or_create_key(site.cfg.audit.key_path)
        report = build_quarterly(site.cfg, site.store.engine, quarter, at)
        hashes = write_report(report, out_dir, key, site.audit, user_id(user))
    partial = "" if report["complete"] else " (the quarter is not over: figures are partial)"
    _console().print(
        f"quarterly report {report['quarter']} written in {out_dir}: {len(hashes)} files, SHA256SUMS signed "
        f"by key {key_id(key.public_key())}{partial}; check it with `lanterne report verify {out_dir}`",
        highlight=False,
    )


@report_app.command("verify")
@user_errors
def verify_command(
    directory: Annotated[Path, typer.Argument(help="The report's directory.")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The site whose audit key must have signed it.")
    ] = None,
) -> None:
    """Say whether a report is intact, or name each file altered, missing or added, and a wrong signer."""
    from lanterne.accountability.quarterly import signer, verify_report
    from lanterne.audit import signing

    site_key = None
    if config is not None:
        from lanterne.config import load_config

        site_key = signing.load_private_key(load_config(config).audit.key_path).public_key()
    problems = verify_report(directory, site_key)
    out = _console()
    for problem in problems:
        out.print(problem, highlight=False)
    if problems:
        raise typer.Exit(1)
    who = (
        "this site's key"
        if site_key is not None
        else f"key {signer(directory)} (compare it with the key the site published)"
    )
    out.print(f"{directory}: intact, every file matches SHA256SUMS, signed by {who}", highlight=False)
