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

from lanterne.cli.common import out_console, user_errors

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
