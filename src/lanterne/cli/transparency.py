"""`lanterne transparency publish|show`, `lanterne dpia` and `lanterne serve`.

`dpia` and `serve` read like top-level commands but are one-command sub-apps (a callback that runs
without a sub-command), so that `cli.py` registers them with one line each like every other
group. Exit codes: 0 done; 2 a user's mistake (bad config, unreachable database).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lanterne.cli.common import ConfigOpt, UserOpt, out_console, user_errors, user_id

transparency_app = typer.Typer(
    help="The public notice: publish it (needed before alerts mode starts) or show it.", no_args_is_help=True
)
dpia_app = typer.Typer(help="Write the impact-assessment draft (Markdown and PDF).")
serve_app = typer.Typer(help="Serve the console: the public page at /public, the API docs at /docs.")


@transparency_app.command("publish")
@user_errors
def publish_command(
    config: ConfigOpt,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Directory to publish (e.g. the web server's document root).")
    ] = Path("public"),
    user: UserOpt = None,
) -> None:
    """Write index.html, transparency.json and cameras.geojson, and record the publication."""
    from lanterne.accountability.transparency.render import export
    from lanterne.config import load_config
    from lanterne.store import Store

    cfg = load_config(config)
    store = Store.open(cfg.store.url)
    try:
        pub = export(cfg, store.engine, out_dir, user_id(user), datetime.now(UTC))
    finally:
        store.close()
    out_console().print(
        f"public notice {pub.notice_id} published in {pub.out_dir} for configuration {pub.config_sha256[:12]} "
        f"(content sha256 {pub.content_sha256[:12]}); alerts mode may start with this configuration",
        highlight=False,
    )


@transparency_app.command("show")
@user_errors
def show_command(
    config: ConfigOpt,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full JSON instead of a summary.")
    ] = False,
) -> None:
    """What the public page says now, and whether it has been published for this configuration."""
    from lanterne.accountability.transparency.data import public_data
    from lanterne.accountability.transparency.render import notice_published, render_json
    from lanterne.config import load_config
    from lanterne.store import Store

    cfg = load_config(config)
    store = Store.open(cfg.store.url)
    try:
        data = public_data(cfg, store.engine, datetime.now(UTC))
        published = notice_published(cfg, store.engine)
    finally:
        store.close()
    console = out_console()
    if as_json:
        typer.echo(render_json(data), nl=False)
        return
    t = Table("camera", "location", "detectors", "status", "authorisation", title=data.site)
    for c in data.cameras:
        t.add_row(
            c.id,
            f"{c.lat:.5f}, {c.lon:.5f}",
            ", ".join(c.watched) or "–",
            c.status,
            ", ".join(f"{a.reference} until {a.valid_until[:10]}" for a in c.authorisations) or "–",
        )
    console.print(t)
    console.print(
        f"{len(data.register)} authorisation(s) in the register, {len(data.monthly)} monthly figure(s); "
        + (
            "notice published for this configuration"
            if published
            else "notice NOT published for this configuration"
        ),
        highlight=False,
    )


@dpia_app.callback(invoke_without_command=True)
@user_errors
def dpia_command(
    config: ConfigOpt,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("dpia"),
    user: UserOpt = None,
) -> None:
    """Write dpia-draft.md and dpia-draft.pdf, pre-filled from the configuration and measured figures."""
    from lanterne.accountability.dpia import write_dpia
    from lanterne.config import load_config
    from lanterne.store import Store

    cfg = load_config(config)
    store = Store.open(cfg.store.url)
    try:
        md, pdf = write_dpia(cfg, store.engine, out_dir, user_id(user), datetime.now(UTC))
    finally:
        store.close()
    out_console().print(f"impact-assessment draft: {md} and {pdf}", highlight=False)


@serve_app.callback(invoke_without_command=True)
@user_errors
def serve_command(
    config: ConfigOpt,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the public transparency page (no login) and the console API."""
    from lanterne.api.app import serve
    from lanterne.config import load_config

    serve(load_config(config), host, port)
