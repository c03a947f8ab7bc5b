"""`lanterne observatory …`: the analyst's jobs on the command line (ingest, inspect, report)."""

from __future__ import annotations

import typer

observatory_app = typer.Typer(
    help="Incident and open data: ingest with a mapping file, inspect provenance and rejects, write reports.",
    no_args_is_help=True,
)
