"""`lanterne config …`: check a configuration file, and generate its reference and JSON schema
from the schema itself, so the documentation cannot drift from what the loader accepts.

Exit codes: 0 valid (or done); 2 the file is invalid, with the field and the fix on one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lanterne.cli.common import (
    CliError,
    ConfigOpt,
    UserOpt,
    err_console,
    opened_site,
    out_console,
    user_errors,
    user_id,
)

config_app = typer.Typer(help="Check the configuration and generate its reference.", no_args_is_help=True)


@config_app.command("check")
@user_errors
def config_check(config: Annotated[Path, typer.Argument(help="YAML configuration file.")]) -> None:
    """Validate a configuration file."""
    from lanterne.config import config_hash, load_config

    cfg = load_config(config)
    zones = sum(len(c.zones) for c in cfg.cameras)
    out_console().print(
        f"{config}: valid ({len(cfg.cameras)} cameras, {zones} zones, mode {cfg.mode}, sha256 {config_hash(cfg)[:12]})"
    )


@config_app.command("docs")
def config_docs(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Generate the configuration reference (docs/config.md) from the schema."""
    from lanterne.config.docs import render

    text = render()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON schema of the configuration (for editors and settings forms)."""
    from lanterne.config.schema import Config

    sys.stdout.write(json.dumps(Config.model_json_schema(), indent=2) + "\n")


@config_app.command("snapshot")
@user_errors
def config_snapshot(
    sha256: Annotated[
        str, typer.Argument(help="Configuration hash, as an event or a notice carries it (or its start).")
    ],
    config: ConfigOpt,
    user: UserOpt = None,
) -> None:
    """Print the configuration stored under a hash (DC-03); the reading is audited."""
    from lanterne.accountability.snapshots import get

    with opened_site(config) as site:
        snap = get(site.store.engine, site.audit, sha256, user_id=user_id(user))
    sys.stdout.write(json.dumps(json.loads(snap.config), indent=2, sort_keys=True) + "\n")
    note = f"sha256 {snap.sha256}, first started {snap.first_seen_at.isoformat()} by {snap.first_seen_by}"
    if snap.redacted:
        note += f"; credentials replaced in {', '.join(snap.redacted)}"
    err_console().print(note, highlight=False)


@config_app.command("register-of-processing")
@user_errors
def register_of_processing(
    config: ConfigOpt,
    fmt: Annotated[str, typer.Option("--format", help="markdown or json.")] = "markdown",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Generate the register-of-processing entry (GDPR art. 30) from the configuration and the store."""
    from lanterne.accountability.register import entry, render_json, render_markdown

    if fmt not in ("markdown", "json"):
        raise CliError(f"--format {fmt!r} is not known; use markdown or json")
    with opened_site(config) as site:
        e = entry(site.cfg, site.store.engine, site.audit)
    text = render_json(e) if fmt == "json" else render_markdown(e)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
