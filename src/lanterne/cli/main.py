"""The `lanterne` command. Its commands mirror the user's jobs; a user's mistake ends with one
line naming the problem and the fix and a non-zero exit, never a traceback.

This module only assembles: each command group lives in the module of the same name
(`lanterne alerts` in `cli/alerts.py`, …), the engine's top-level commands in `cli/run.py`. The
order of the lines below is the order of `lanterne --help`.
"""

from __future__ import annotations

import typer

from lanterne.cli.accounts import users_app
from lanterne.cli.alerts import alerts_app
from lanterne.cli.audit import audit_app
from lanterne.cli.authorisation import authorisation_app
from lanterne.cli.cluster import cluster_app
from lanterne.cli.complaints import complaints_app
from lanterne.cli.config import config_app
from lanterne.cli.dpia import dpia_app
from lanterne.cli.envelope import envelope_app
from lanterne.cli.exports import export_app
from lanterne.cli.fria import fria_app
from lanterne.cli.governance import governance_app
from lanterne.cli.incidents import incidents_app
from lanterne.cli.masks import masks_app
from lanterne.cli.observatory import observatory_app
from lanterne.cli.privacy import privacy_app
from lanterne.cli.recall import recall_app
from lanterne.cli.recordings import recordings_app
from lanterne.cli.report import report_app
from lanterne.cli.requests import requests_app
from lanterne.cli.retention import hold_app, retention_app
from lanterne.cli.risks import risks_app
from lanterne.cli.run import run_app
from lanterne.cli.serve import serve_app
from lanterne.cli.suspension import suspensions_app
from lanterne.cli.transparency import transparency_app

app = typer.Typer(
    name="lanterne",
    help="Public-space video analytics that detects situations, never identities.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(run_app)  # analyze, run, anonymize, demo: top-level commands, no group name
app.add_typer(cluster_app)  # worker, ingest: top-level too, beside run (docs/scaling.md)
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(authorisation_app, name="authorisation")
app.add_typer(retention_app, name="retention")
app.add_typer(hold_app, name="hold")
app.add_typer(recordings_app, name="recordings")
app.add_typer(export_app, name="export")
app.add_typer(privacy_app, name="privacy")
app.add_typer(masks_app, name="masks")
app.add_typer(envelope_app, name="envelope")
app.add_typer(requests_app, name="requests")
app.add_typer(alerts_app, name="alerts")
app.add_typer(suspensions_app, name="suspensions")
app.add_typer(recall_app, name="recall")
app.add_typer(transparency_app, name="transparency")
app.add_typer(report_app, name="report")
app.add_typer(dpia_app, name="dpia")
app.add_typer(fria_app, name="fria")
app.add_typer(governance_app, name="governance")
app.add_typer(risks_app, name="risks")
app.add_typer(incidents_app, name="incidents")
app.add_typer(complaints_app, name="complaints")
app.add_typer(serve_app, name="serve")
app.add_typer(users_app, name="users")
app.add_typer(observatory_app, name="observatory")

if __name__ == "__main__":
    app()
