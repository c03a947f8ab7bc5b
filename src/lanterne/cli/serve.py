"""`lanterne serve`: the console, the public transparency page (no login) and the API.

A one-command sub-app (a callback that runs without a sub-command), so that `main.py` registers
it with one line like every other group. Exit codes: 0 stopped; 2 a user's mistake (bad config).
"""

from __future__ import annotations

from typing import Annotated

import typer

from lanterne.cli.common import ConfigOpt, log_to_stderr, out_console, user_errors

serve_app = typer.Typer(help="Serve the console: the public page at /public, the API docs at /docs.")


@serve_app.callback(invoke_without_command=True)
@user_errors
def serve_command(
    config: ConfigOpt,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    verbose: Annotated[
        bool, typer.Option(help="INFO lines (the gateway's start, live streams and relays) besides warnings.")
    ] = True,
) -> None:
    """Serve the public transparency page (no login) and the console API."""
    log_to_stderr(verbose)
    from lanterne.accountability.networks import NetworkGate
    from lanterne.accountability.outbound import check_destinations
    from lanterne.api.app import serve
    from lanterne.config import load_config
    from lanterne.runtime.site import open_site

    cfg = load_config(config)
    with open_site(cfg) as site:  # AC-06: no destination the authorisations do not name
        check_destinations(cfg, site.store.engine, site.audit)
    # AC-04: whoever starts the console reads, every time, which workstations may use it.
    gate = NetworkGate(cfg.console.allowed_networks, cfg.console.trusted_proxies)
    out_console().print(gate.describe(), highlight=False)
    serve(cfg, host, port)
