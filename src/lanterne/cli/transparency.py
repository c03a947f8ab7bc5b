"""`lanterne transparency publish|show`: the public notice that must be out before alerts start
(TR-01), and what it says now.

Exit codes: 0 done; 2 a user's mistake (bad config, unreachable database).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, out_console, user_errors, user_id

transparency_app = typer.Typer(
    help="The public notice: publish it (needed before alerts mode starts) or show it.", no_args_is_help=True
)


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

    with opened_site(config) as site:
        pub = export(site.cfg, site.store.engine, out_dir, user_id(user), datetime.now(UTC))
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

    with opened_site(config) as site:
        data = public_data(site.cfg, site.store.engine, datetime.now(UTC))
        published = notice_published(site.cfg, site.store.engine)
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
