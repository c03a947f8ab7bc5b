"""`lanterne masks validate|status`: who checked each camera's privacy masks (LB-06).

A camera alerts only once someone who looked at its view has recorded that its masks cover the
windows and entrances of dwellings (or that it shows none); a mask changed since needs a new
check. Exit codes: 0 done; 2 a user's mistake (unknown camera, no note, no user).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from lanterne.cli.common import CliError, ConfigOpt, UserOpt, opened_site, user_errors, user_id
from lanterne.cli.common import out_console as _console

masks_app = typer.Typer(
    help="Privacy masks over dwellings (LB-06): record who checked them; a camera alerts only then.",
    no_args_is_help=True,
)


@masks_app.command("validate")
@user_errors
def validate_cmd(
    config: ConfigOpt,
    camera: Annotated[str, typer.Argument(help="The camera whose masks were checked.")],
    note: Annotated[
        str, typer.Option(help="What was checked, e.g. 'view walked: windows of no. 12 covered'.")
    ],
    user: UserOpt = None,
) -> None:
    """Record that the camera's current masks were checked against its view."""
    from lanterne.accountability.masks import validate_masks

    with opened_site(config) as site:
        cam = next((c for c in site.cfg.cameras if c.id == camera), None)
        if cam is None:
            raise CliError(f"camera {camera!r} is not in the configuration; check its id")
        digest = validate_masks(site.audit, cam, user_id(user), note)
    _console().print(
        f"camera {camera}: {len(cam.privacy_masks)} privacy masks validated (sha256 {digest[:12]}…); "
        "it may alert under its authorisations",
        highlight=False,
    )


@masks_app.command("status")
@user_errors
def status_cmd(config: ConfigOpt) -> None:
    """Each camera, its masks and whether their current form was validated."""
    from lanterne.accountability.masks import validated

    with opened_site(config) as site:
        done = validated(site.audit, list(site.cfg.cameras))
        cameras = list(site.cfg.cameras)
    table = Table("camera", "masks", "validated")
    for c in cameras:
        table.add_row(c.id, str(len(c.privacy_masks)), "yes" if c.id in done else "NO: no alerting")
    _console().print(table)
