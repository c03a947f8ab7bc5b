"""`lanterne export clip|verify`: recorded video handed over with its chain of custody.

Exit codes: 0 done / intact; 1 the export does not verify (each problem printed); 2 a user's
mistake (unknown camera, bad range, missing recipient or purpose).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, parse_time, user_errors, user_id
from lanterne.cli.common import out_console as _console

export_app = typer.Typer(
    help="Export recorded video, watermarked, anonymised and signed; verify an export.",
    no_args_is_help=True,
)


@export_app.command("clip")
@user_errors
def clip(
    config: ConfigOpt,
    camera: Annotated[str, typer.Option(help="Camera id.")],
    start: Annotated[str, typer.Option(help="Start, ISO 8601 with a time zone.")],
    end: Annotated[str, typer.Option(help="End, ISO 8601 with a time zone.")],
    recipient: Annotated[str, typer.Option(help="Who receives the copy (recorded, and burned in).")],
    purpose: Annotated[str, typer.Option(help="Why (a requisition, a case reference).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="MP4 file to write; its manifest goes beside it.")],
    expires: Annotated[
        str | None, typer.Option(help="When the copy must be destroyed (default: 30 days).")
    ] = None,
    unmasked_reference: Annotated[
        str | None,
        typer.Option(
            help="Export WITHOUT anonymisation under your permission (`lanterne privacy grant`), "
            "citing this requisition or case reference; recorded, and burned into every frame."
        ),
    ] = None,
    user: UserOpt = None,
) -> None:
    """Render a camera's recording between START and END, anonymised, with a visible watermark
    (export id, requester, recipient, dates), sign its manifest and record the export."""
    from lanterne.runtime.exports import export_recording

    with opened_site(config) as site:
        manifest = export_recording(
            site,
            camera,
            parse_time(start, "--start"),
            parse_time(end, "--end"),
            out,
            requester=user_id(user),
            recipient=recipient,
            purpose=purpose,
            now=datetime.now(UTC),
            expires=parse_time(expires, "--expires") if expires else None,
            unmasked_reference=unmasked_reference,
        )
    _console().print(
        f"export {manifest.export_id}: {out} ({manifest.frames} frames from {len(manifest.segments)} "
        f"segments), manifest {out.name}.manifest.json signed by key {manifest.key_id}",
        highlight=False,
    )


@export_app.command("verify")
@user_errors
def verify(
    file: Annotated[Path, typer.Argument(help="The exported MP4 (its manifest beside it).")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The site whose key must have signed it.")
    ] = None,
) -> None:
    """Say whether an export is intact, or name what changed: the video, the manifest, the signer."""
    from lanterne.audit import signing
    from lanterne.video.export import read_manifest, verify_export

    site_key = None
    if config is not None:
        from lanterne.config import load_config

        site_key = signing.load_or_create_key(load_config(config).audit.key_path).public_key()
    problems = verify_export(file, site_key)
    out = _console()
    for problem in problems:
        out.print(problem, highlight=False)
    if problems:
        raise typer.Exit(1)
    manifest = read_manifest(file)
    signer = (
        "this site's key"
        if site_key is not None
        else f"key {manifest.key_id} (compare it with the key the site published)"
    )
    out.print(
        f"{file.name}: intact; export {manifest.export_id} of camera {manifest.camera}, "
        f"{manifest.start} to {manifest.end}, by {manifest.requester} for {manifest.recipient}, signed by {signer}",
        highlight=False,
    )
