"""`lanterne recordings …`: the recorded segments' keys, their verification, legal holds on
camera time ranges, and retention on demand.

Exit codes: 0 done; 1 `verify` found problems (each printed) or a purge could not delete
everything; 2 a user's mistake (bad config, key file readable by others, hold without a judicial
reference).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from lanterne.cli.common import (
    CliError,
    ConfigOpt,
    UserOpt,
    opened_site,
    parse_time,
    user_errors,
    user_id,
    utc_text,
)
from lanterne.cli.common import out_console as _console

recordings_app = typer.Typer(
    help="Recorded video: keys, verification, legal holds and retention (30 days at most).",
    no_args_is_help=True,
)


@recordings_app.command("rotate-key")
@user_errors
def rotate_key(config: ConfigOpt, user: UserOpt = None) -> None:
    """Add a new recording key: new segments use it from the recorder's next start, older ones
    stay readable with the keys already in the file."""
    from lanterne.audit import Action
    from lanterne.video.recording import KeyRing

    with opened_site(config) as site:
        ring = KeyRing.load_or_create(site.cfg.recording.key_file)
        key_id = ring.rotate()
        site.audit.append(
            user_id(user),
            Action.CONFIG_CHANGE,
            object_type="recording_key",
            object_id=key_id,
            details={"operation": "rotate", "keys": len(ring.ids())},
        )
    _console().print(
        f"recording key {key_id} added to {ring.path}; restart `lanterne run` to use it, and back the file up",
        highlight=False,
    )


@recordings_app.command("keys")
@user_errors
def keys_command(config: ConfigOpt) -> None:
    """The keys in the key file and how many segments each one reads."""
    from sqlalchemy import func, select

    from lanterne.store.tables import RecordingSegmentRecord as R
    from lanterne.video.recording import KeyRing

    with opened_site(config) as site:
        ring = KeyRing.load(site.cfg.recording.key_file)
        with site.store.engine.connect() as conn:
            used = dict(conn.execute(select(R.key_id, func.count()).group_by(R.key_id)).all())
    t = Table("key", "created", "segments", "use")
    newest = ring.newest[0]
    for kid, created in ring.ids():
        use = "new segments" if kid == newest else ("reading" if used.get(kid) else "unused: may be retired")
        t.add_row(kid, created[:19], str(used.get(kid, 0)), use)
    _console().print(t)


@recordings_app.command("retire-key")
@user_errors
def retire_key(
    key_id: Annotated[str, typer.Argument(help="Id of a key no segment uses any more.")],
    config: ConfigOpt,
    user: UserOpt = None,
) -> None:
    """Remove an old key once retention has deleted every segment it encrypted."""
    from sqlalchemy import func, select

    from lanterne.audit import Action
    from lanterne.store.tables import RecordingSegmentRecord as R
    from lanterne.video.recording import KeyRing

    with opened_site(config) as site:
        ring = KeyRing.load(site.cfg.recording.key_file)
        with site.store.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(R).where(R.key_id == key_id)).scalar_one()
        if n:
            raise CliError(
                f"recording key {key_id} still reads {n} segments; wait until retention has deleted them"
            )
        ring.retire(key_id)
        site.audit.append(
            user_id(user), Action.CONFIG_CHANGE, object_type="recording_key", object_id=key_id,
            details={"operation": "retire"},
        )  # fmt: skip
    _console().print(f"recording key {key_id} retired from {ring.path}", highlight=False)


@recordings_app.command("verify")
@user_errors
def verify_command(
    config: ConfigOpt,
    camera: Annotated[str | None, typer.Option("--camera", help="Only this camera.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Read segments from this ISO 8601 time.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Read segments up to this ISO 8601 time.")
    ] = None,
) -> None:
    """Check every segment's file against its recorded sha256, its encryption, and each camera's
    hash chain; print each problem on one line."""
    from lanterne.video.recording import KeyRing, verify

    with opened_site(config) as site:
        ring = KeyRing.load(site.cfg.recording.key_file)
        problems = verify(
            site.store,
            site.cfg.recording.dir,
            ring,
            camera,
            since=parse_time(since, "--since") if since else None,
            until=parse_time(until, "--until") if until else None,
        )
    for p in problems:
        _console().print(f"problem: {p}", highlight=False)
    if problems:
        raise typer.Exit(1)
    _console().print(
        "recordings verified: every segment matches its hash and each chain is whole", highlight=False
    )


@recordings_app.command("hold")
@user_errors
def hold_command(
    config: ConfigOpt,
    start: Annotated[str, typer.Option("--start", help="Start of the range, ISO 8601 with a time zone.")],
    end: Annotated[str, typer.Option("--end", help="End of the range, ISO 8601 with a time zone.")],
    reference: Annotated[
        str, typer.Option("--reference", help="Judicial reference (requisition, procedure).")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why the recordings must be kept.")],
    camera: Annotated[str | None, typer.Option("--camera", help="Camera id (default: every camera).")] = None,
    user: UserOpt = None,
) -> None:
    """Keep the recordings of a camera (or of every camera) over a time range past retention."""
    from lanterne.accountability.recordings import place_hold

    with opened_site(config) as site:
        if camera is not None and camera not in {c.id for c in site.cfg.cameras}:
            raise CliError(f"camera {camera!r} is not in the configuration; check its id")
        h = place_hold(
            site.store, site.audit, camera, parse_time(start, "--start"), parse_time(end, "--end"), reference, reason,
            user_id(user), datetime.now(UTC),
        )  # fmt: skip
    _console().print(
        f"recording hold {h.id} placed on {h.camera or 'every camera'} from {utc_text(h.start)} to "
        f"{utc_text(h.end)} UTC (reference {h.judicial_reference})",
        highlight=False,
    )


@recordings_app.command("release")
@user_errors
def release_command(
    hold_id: Annotated[int, typer.Argument(help="Id of the hold (see `lanterne recordings holds`).")],
    config: ConfigOpt,
    user: UserOpt = None,
) -> None:
    """Lift a recording hold: its segments go at the next purge if past retention."""
    from lanterne.accountability.recordings import lift_hold

    with opened_site(config) as site:
        h = lift_hold(site.store, site.audit, hold_id, user_id(user), datetime.now(UTC))
    _console().print(f"recording hold {h.id} lifted", highlight=False)


@recordings_app.command("holds")
@user_errors
def holds_command(config: ConfigOpt) -> None:
    """All recording holds, active and lifted."""
    from lanterne.accountability.recordings import recording_holds

    with opened_site(config) as site:
        rows = recording_holds(site.store)
    t = Table("id", "camera", "from (UTC)", "to (UTC)", "reference", "placed by", "lifted")
    for h in rows:
        t.add_row(
            str(h.id), h.camera or "all", utc_text(h.start), utc_text(h.end), h.judicial_reference, h.placed_by,
            utc_text(h.lifted_at) if h.lifted_at else "active",
        )  # fmt: skip
    _console().print(t)


@recordings_app.command("purge")
@user_errors
def purge_command(config: ConfigOpt, user: UserOpt = None) -> None:
    """Delete the segments past retention (and, for `events` cameras, those near no event) now,
    and record the proof."""
    from lanterne.accountability.recordings import purge_recordings
    from lanterne.video.recording import recording_mode

    with opened_site(config) as site:
        modes = {c.id: recording_mode(site.cfg, c.id) for c in site.cfg.cameras}
        report = purge_recordings(
            site.store, site.cfg.recording, modes, site.audit, datetime.now(UTC), user_id(user)
        )
    for line in report.lines():
        _console().print(line, highlight=False)
    if report.errors:
        raise typer.Exit(1)
