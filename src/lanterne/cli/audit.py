"""`lanterne audit …`: prove the log intact, hand an extract to an auditor, purge, publish the key.

Exit codes: 0 intact (or done), 1 the log or extract is broken, 2 a user mistake (bad config, no
purpose, unreadable file). A broken log is a finding, not a usage error, so it gets its own code
that a monitoring job can alert the DPO on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lanterne.cli.common import ConfigOpt, user_errors, user_id
from lanterne.core.errors import LanterneError

audit_app = typer.Typer(
    help="Prove the audit log intact, export extracts for auditors, purge, publish the signing key.",
    no_args_is_help=True,
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True, highlight=False)

UserOpt = Annotated[
    str, typer.Option("--user", help="Your user id, recorded in the audit log (default: your login).")
]


def _parse_when(value: str, *, end: bool) -> datetime:
    """A date (whole day; `--to` includes that day) or an ISO datetime (UTC unless it says otherwise)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise LanterneError(f"{value!r} is not a date; use YYYY-MM-DD or an ISO date-time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@audit_app.command("verify")
@user_errors
def verify_cmd(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Verify the site's log (YAML configuration).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Verify an extract offline instead.")
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option("--public-key", help="Trusted public key (PEM); repeat for rotated keys."),
    ] = None,
    witness: Annotated[
        list[Path] | None,
        typer.Option(
            "--witness",
            help="Another copy of a witness file (e.g. kept off-site) to check the log against; repeatable.",
        ),
    ] = None,
) -> None:
    """Check every record's hash and link, every signed checkpoint and, with --config, every head
    the witness files hold (deleted newest records show there); exit 1 at the first break."""
    from lanterne.audit import signing
    from lanterne.audit.verify import verify_extract, verify_log

    if (config is None) == (file is None):
        raise LanterneError(
            "pass either --config (the site's log) or --file (an extract), not both or neither"
        )
    keys = [signing.load_public_key(p) for p in public_key or []]
    if file is not None and witness:
        raise LanterneError("--witness checks the site's log: pass it with --config, not with --file")
    if file is not None:
        result = verify_extract(file, keys or None)
        if result.ok and not keys:
            out.print(
                f"extract signed by key {_extract_key_id(file)}: compare it with the key the site published"
            )
    else:
        from lanterne.audit.log import AuditLog
        from lanterne.config import load_config

        assert config is not None
        cfg = load_config(config)
        if cfg.audit.key_path.exists():
            keys.append(signing.load_private_key(cfg.audit.key_path).public_key())
        witnesses = list(witness or [])
        configured = cfg.audit.witness_path
        if configured.exists():
            witnesses.insert(0, configured)
        else:
            # A log from before witnesses, or a witness file removed: either way the DPO must know
            # that the newest records are not proven by it.
            out.print(f"no witness file at {configured}: deleted newest records would not show")
        remote = None
        if cfg.cluster.nats_url:
            from lanterne.cluster.witness import read_heads

            # A city's heads are also on NATS, out of the database administrator's reach.
            remote = read_heads(cfg.cluster.nats_url, cfg.site)
            out.print(f"witness stream: {len(remote)} signed heads")
        log = AuditLog.open(cfg.store.url)
        try:
            result = verify_log(log.engine, keys, witnesses, remote)
        finally:
            log.close()
    if result.ok:
        out.print(result.summary())
        return
    out.print(f"[bold red]{result.summary()}[/]")
    if config is not None:
        _open_breach(config, result.problem or result.summary(), result.first_bad_seq)
    raise typer.Exit(1)


def _open_breach(config: Path, problem: str, first_bad_seq: int | None) -> None:
    """A broken log is a personal-data breach until shown otherwise (SC-05): open its incident,
    with the 72-hour clock, once per finding."""
    from lanterne.accountability.incidents import open_breach
    from lanterne.cli.common import opened_site

    try:
        with opened_site(config) as site:
            incident, new = open_breach(site.store.engine, site.audit, problem, first_bad_seq)
    except LanterneError as exc:
        out.print(f"[bold red]the breach incident could not be opened: {exc}[/]")
        return
    said = "opened" if new else "already open" if incident.is_open else "already recorded"
    out.print(
        f"breach incident {incident.id} {said}; notify the CNIL by "
        f"{incident.deadline:%Y-%m-%d %H:%M} UTC: lanterne incidents show {incident.id} --config {config}",
        highlight=False,
    )


def _extract_key_id(path: Path) -> str:
    import json

    return str(json.loads(path.read_text(encoding="utf-8")).get("key_id", "?"))


@audit_app.command("export")
@user_errors
def export_cmd(
    config: ConfigOpt,
    from_: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD) or ISO date-time, UTC.")],
    to: Annotated[
        str, typer.Option("--to", help="Last day, included (YYYY-MM-DD), or ISO date-time (excluded).")
    ],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Extract file to write (JSON).")],
    purpose: Annotated[str | None, typer.Option(help="Why the extract is made (required).")] = None,
    recipient: Annotated[str | None, typer.Option(help="Who receives it (required).")] = None,
    user: UserOpt = "",
) -> None:
    """Write the records of a period with their chain proof, verifiable offline with `verify --file`."""
    from lanterne.audit.log import AuditLog
    from lanterne.audit.verify import export_extract
    from lanterne.config import load_config

    cfg = load_config(config)
    log = AuditLog.from_config(cfg)
    try:
        n = export_extract(
            log.engine,
            _parse_when(from_, end=False),
            _parse_when(to, end=True),
            out_path,
            user_id(user),
            cfg.audit.key_path,
            purpose=purpose,
            recipient=recipient,
            witnesses=log.witnesses,
        )
    finally:
        log.close()
    out.print(f"{n} records written to {out_path}; the export is recorded in the audit log")


@audit_app.command("purge")
@user_errors
def purge_cmd(config: ConfigOpt, user: UserOpt = "") -> None:
    """Delete audit records older than audit.retention_days (the purge itself is recorded)."""
    from lanterne.audit.log import AuditLog
    from lanterne.config import load_config

    cfg = load_config(config)
    log = AuditLog.from_config(cfg)
    try:
        n = log.purge(user_id=user_id(user))
        keep = log.keep_days()
    finally:
        log.close()
    out.print(f"{n} audit records older than {keep} days purged")


@audit_app.command("public-key")
@user_errors
def public_key_cmd(config: ConfigOpt) -> None:
    """Print the checkpoint public key (PEM), creating the key pair on first use; give it to auditors."""
    # The public key is what lets the DPO and auditors verify the log and extracts without
    # trusting the operator: publish it before the first checkpoint, keep a copy off-site.
    from lanterne.audit import signing
    from lanterne.config import load_config

    cfg = load_config(config)
    key = signing.load_or_create_key(cfg.audit.key_path)
    console.print(f"key id {signing.key_id(key.public_key())} ({cfg.audit.key_path})", highlight=False)
    out.print(signing.public_key_pem(key), end="")


@audit_app.command("review")
@user_errors
def review_cmd(
    config: ConfigOpt,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Start: a day (YYYY-MM-DD) or an ISO date-time, UTC (default: 24 h before --until).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="End: a day, included (YYYY-MM-DD), or an ISO date-time, excluded (default: now)."
        ),
    ] = None,
    week: Annotated[
        str | None,
        typer.Option(
            "--week", help="Review an ISO week (YYYY-Www, the site's time zone) instead of --since/--until."
        ),
    ] = None,
    pdf: Annotated[
        Path | None,
        typer.Option("--pdf", help="With --week: write the week's summary there, and as HTML beside it."),
    ] = None,
    user: UserOpt = "",
) -> None:
    """Review the audit log now (LG-06) and print what it flags for the DPO: bulk exports, unusual
    volumes, wide searches, refusals, open removals of privacy protection, access without a valid
    habilitation or outside shift hours, the same footage replayed by many, extracts of the log and
    reads of it by anyone but the DPO (pass --user with your console account's id). Findings are stored
    once (running it again adds nothing twice) and handled in the console (/console/review); the
    run is recorded, and so is a weekly summary."""
    from rich.table import Table

    from lanterne.accountability.log_review import review
    from lanterne.accountability.review_summary import week_bounds, weekly_summary, write_summary
    from lanterne.cli.common import opened_site, utc_text

    if week is not None and (since or until):
        raise LanterneError("give either --week or --since/--until, not both")
    if pdf is not None and week is None:
        raise LanterneError("--pdf writes a week's summary: add --week YYYY-Www")
    with opened_site(config) as site:
        if week is not None:
            start, end = week_bounds(week, site.cfg.review.time_zone)
        else:
            end = _parse_when(until, end=True) if until else datetime.now(UTC)
            start = _parse_when(since, end=False) if since else end - timedelta(hours=24)
        found = review(site.store, site.audit, site.cfg.review, start, end, by=user_id(user))
        written = None
        if week is not None and pdf is not None:
            summary = weekly_summary(site.store, site.audit, site.cfg.site, week, site.cfg.review.time_zone)
            written = (pdf, write_summary(summary, site.audit, pdf, user_id(user)))
    period = f"{utc_text(start, seconds=False)} to {utc_text(end, seconds=False)} UTC"
    if not found:
        out.print(f"no findings from {period}; the review is recorded in the audit log")
    else:
        table = Table("no.", "rule", "account", "window (UTC)", "state", "records", "explanation")
        for f in found:
            window = f"{utc_text(f.window_start, seconds=False)} - {utc_text(f.window_end, seconds=False)}"
            table.add_row(
                str(f.id),
                f.title,
                f.account or "(several)",
                window,
                f.state,
                str(len(f.evidence)),
                f.explanation,
            )
        out.print(table)
        out.print(f"{len(found)} findings from {period}; handle them in the console at /console/review")
    if written is not None:
        out.print(f"week {week} summarised in {written[0]} and {written[1]}; recorded in the audit log")
