"""`lanterne governance approve|status|list`: signed governance records of changes (GV-05).

A new detector model, changed thresholds, zones or event types take effect in alerts mode only
once someone approved them here, and an observatory source is ingested only once approved:
`approve` signs a record with the site's audit key (who, what by sha256, when, why, the updated
DPIA and FRIA, the link to the updated public notice) and writes it to the audit log; `lanterne
run` refuses to start while the configuration runs something unapproved, and `lanterne
observatory ingest` refuses a mapping file nobody approved. Without `--file` or `--sha256`,
`approve` approves what the configuration runs now for each `--what`; an observatory source (its
mapping file), or a model before it is deployed, is approved by its file. Exit codes: 0 done; 2 a
user's mistake (no summary, no notice link, no DPIA, a FRIA nobody recorded, an unknown kind of
change).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lanterne.accountability.governance import (
    GATED,
    Approval,
    Change,
    Governance,
    GovernanceError,
    change_sha256,
    parse_change,
)
from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, user_errors, user_id
from lanterne.cli.common import out_console as _console

governance_app = typer.Typer(
    help="Signed approvals of new models, thresholds, zones, event types and sources (GV-05).",
    no_args_is_help=True,
)

WHATS = ", ".join(c.value for c in Change)


def _said(a: Approval) -> str:
    return (
        f"governance record {a.id}: {a.change} sha256 {a.sha256[:12]}… approved by {a.approved_by} "
        f"(signed by key {a.key_id}; DPIA {a.dpia}; FRIA {a.fria}; notice {a.notice_url})"
    )


@governance_app.command("approve")
@user_errors
def approve(
    config: ConfigOpt,
    what: Annotated[list[str], typer.Option("--what", help=f"What is approved (repeatable): {WHATS}.")],
    ref: Annotated[str, typer.Option("--ref", help="Link to the updated public notice.")],
    summary: Annotated[str, typer.Option("--summary", help="What changed and why it was approved.")],
    dpia: Annotated[
        str | None, typer.Option("--dpia", help="Link or reference of the DPIA updated for this change.")
    ] = None,
    fria: Annotated[
        str | None,
        typer.Option("--fria", help="Reference of the recorded FRIA updated for this change (fria list)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Approve this file's sha256 (a model, an observatory mapping file)."),
    ] = None,
    sha256: Annotated[str | None, typer.Option("--sha256", help="Approve this sha256.")] = None,
    user: UserOpt = None,
) -> None:
    """Sign and record the approval of a change; alerts mode runs only approved changes."""
    changes = list(dict.fromkeys(parse_change(w) for w in what))
    explicit = None
    if file is not None or sha256 is not None:
        if file is not None and sha256 is not None:
            raise GovernanceError("give --file or --sha256, not both")
        if len(changes) != 1:
            raise GovernanceError("--file and --sha256 approve one change; give a single --what")
        if file is not None:
            from lanterne.core.assets import sha256_file

            if not file.is_file():
                raise GovernanceError(f"{file}: file not found; pass the model or mapping file reviewed")
            explicit = sha256_file(file)
        else:
            explicit = sha256
    with opened_site(config) as site:
        register = Governance(site.store.engine, site.audit)
        if explicit is not None:
            done = [
                register.approve(
                    changes[0],
                    explicit,
                    notice_url=ref,
                    summary=summary,
                    user_id=user_id(user),
                    dpia=dpia,
                    fria=fria,
                )
            ]
        else:
            done = register.approve_config(
                site.cfg,
                changes,
                notice_url=ref,
                summary=summary,
                user_id=user_id(user),
                dpia=dpia,
                fria=fria,
            )
    for a in done:
        _console().print(_said(a), highlight=False)


@governance_app.command("status")
@user_errors
def status(config: ConfigOpt) -> None:
    """What the configuration runs now, by sha256, and whether each carries a valid record."""
    with opened_site(config) as site:
        pending = {p.change: p for p in Governance(site.store.engine, site.audit).pending(site.cfg)}
        current = {c: change_sha256(site.cfg, c) for c in GATED}
    table = Table("change", "sha256 in use", "approved", title="Governance (GV-05)")
    for change, digest in current.items():
        p = pending.get(change)
        state = "yes" if p is None else "NO: alerts mode refused" + p.ignored()
        table.add_row(str(change), digest, state)
    _console().print(table)


@governance_app.command("list")
@user_errors
def list_(config: ConfigOpt) -> None:
    """Every governance record, with the DPIA and FRIA it names and whether it counts."""
    with opened_site(config) as site:
        register = Governance(site.store.engine, site.audit)
        records = register.list()
        keys = register.keys()
    if not records:
        _console().print("no governance record: alerts mode refuses to start (GV-05)")
        return
    table = Table(
        "id",
        "change",
        "sha256",
        "approved by",
        "at (UTC)",
        "DPIA",
        "FRIA",
        "notice",
        "signature",
        title="Governance records",
    )
    for a in records:
        if not a.verified(keys):
            state = "BAD: ignored"
        elif not a.assessed:
            state = "valid, no DPIA/FRIA: ignored"
        else:
            state = "valid"
        table.add_row(
            str(a.id),
            str(a.change),
            f"{a.sha256[:12]}…",
            a.approved_by,
            a.approved_at.strftime("%Y-%m-%d %H:%M"),
            a.dpia or "none",
            a.fria or "none",
            a.notice_url,
            state,
        )
    _console().print(table)
