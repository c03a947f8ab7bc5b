"""`lanterne envelope check|override|status`: each detector's operating envelope (EV-05).

`check` reads a few seconds of each camera as the runner would, measures the persons' height in
the zones of every watched type, the light and the analysis rate, compares them with the
conditions each detector was measured under, and records the result on the audit log. A type
outside its envelope does not alert on that camera at the next start unless `override` records
why it may. Exit codes: 0 done (every checked type inside, or overridden); 1 a check found a
type outside with no override; 2 a user's mistake (unknown camera or type, no reason).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lanterne.cli.common import CliError, ConfigOpt, UserOpt, opened_site, user_errors, user_id, utc_text
from lanterne.cli.common import out_console as _console

if TYPE_CHECKING:
    from lanterne.accountability.envelope import TypeStatus
    from lanterne.config import Config
    from lanterne.config.schema import Camera

envelope_app = typer.Typer(
    help="Operating envelopes (EV-05): check a camera against the conditions each detector was measured "
    "under; a type outside does not alert without a recorded override.",
    no_args_is_help=True,
)


def _cameras(cfg: Config, camera: str | None) -> list[Camera]:
    cameras = list(cfg.cameras)
    if camera is None:
        return cameras
    picked = [c for c in cameras if c.id == camera]
    if not picked:
        raise CliError(f"camera {camera!r} is not in the configuration; check its id")
    return picked


def _figures(status: TypeStatus) -> str:
    m = status.measured
    if m is None:
        return "-"
    person = "-" if m.person_height_px is None else f"{m.person_height_px:.0f} px ({m.persons})"
    return f"person {person}, luma {m.luma:.0f}, {m.fps:g} fps, {m.frame_height} px high"


def _label(status: TypeStatus) -> str:
    s = status.status
    if status.overridden:
        return f"{s}, OVERRIDDEN by {status.override_by}"
    return {"outside": "OUTSIDE: no alerting", "undetermined": "UNDETERMINED: no alerting"}.get(s, s)


@envelope_app.command("check")
@user_errors
def check_cmd(
    config: ConfigOpt,
    camera: Annotated[
        str | None, typer.Argument(help="The camera to check (default: every camera with zones).")
    ] = None,
    seconds: Annotated[float, typer.Option(min=1, max=600, help="Seconds of stream to sample.")] = 10.0,
    user: UserOpt = None,
) -> None:
    """Sample the camera's frames, compare them with each watched type's envelope, record the result."""
    from lanterne.accountability.cameras import camera_health
    from lanterne.accountability.envelope import record_check, refused_types, watched
    from lanterne.video.detectors import create_detector
    from lanterne.video.envelope import sample_camera

    by = user_id(user)
    with opened_site(config) as site:
        cameras = [c for c in _cameras(site.cfg, camera) if watched(c)]
        if not cameras:
            raise CliError("no camera to check: none of those named watches an event type")
        detector = create_detector(site.cfg.detector, site.cfg.models_dir)
        table = Table("camera", "type", "envelope", "measured", "why")
        outside = False
        for cam in cameras:
            sample = sample_camera(cam, detector, seconds)
            fps, rate_from = sample.fps, "source"
            health = camera_health(site.store.engine, cam.id)
            if health is not None and not health.stale(datetime.now(UTC)) and health.analysis_fps < fps:
                # A running camera that sheds load analyses fewer frames than its source gives.
                fps, rate_from = round(health.analysis_fps, 1), "camera_health"
            statuses = record_check(
                site.audit,
                cam,
                sample.persons,
                sample.luma,
                fps,
                sample.frame_height,
                by,
                sample={
                    "frames": sample.frames,
                    "seconds": sample.seconds,
                    "detector_runs": sample.detector_runs,
                    "frame_width": sample.frame_width,
                    "rate_from": rate_from,
                },
            )
            outside = outside or bool(refused_types(statuses))
            for t, s in statuses.items():
                table.add_row(cam.id, str(t), _label(s), _figures(s), "; ".join(s.reasons))
    _console().print(table)
    if outside:
        _console().print(
            "a type outside its envelope does not alert on that camera from its next start; bring the camera "
            "within it and check again, or record why it may: lanterne envelope override CAMERA TYPE "
            "--reason '...' --user ID",
            highlight=False,
        )
        raise typer.Exit(1)


@envelope_app.command("override")
@user_errors
def override_cmd(
    config: ConfigOpt,
    camera: Annotated[str, typer.Argument(help="The camera outside the envelope.")],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="The event type it may alert anyway.")],
    reason: Annotated[str, typer.Option(help="Why, e.g. what was verified on this camera's own alerts.")],
    user: UserOpt = None,
) -> None:
    """Record why a camera may alert a type outside its envelope (for its latest check)."""
    from lanterne.accountability.authorisation import parse_event_type
    from lanterne.accountability.envelope import record_override

    with opened_site(config) as site:
        cam = _cameras(site.cfg, camera)[0]
        entry = record_override(site.audit, cam, parse_event_type(event_type), reason, user_id(user))
    _console().print(
        f"camera {camera}: {event_type} may alert outside its envelope (override #{entry.seq}, for check "
        f"#{entry.details['check_seq']}); it applies from the camera's next start",
        highlight=False,
    )


@envelope_app.command("status")
@user_errors
def status_cmd(config: ConfigOpt) -> None:
    """Each camera's envelope status per watched type, with the latest check and any override."""
    from lanterne.accountability.envelope import status_of

    with opened_site(config) as site:
        statuses = status_of(site.audit, site.cfg.cameras)
    table = Table("camera", "type", "envelope", "checked", "measured", "why / override")
    for cam_id, row in statuses.items():
        for t, s in row.items():
            why = "; ".join(s.reasons)
            if s.overridden:
                why = f"{why} | override: {s.override_reason}"
            checked = utc_text(s.checked_at) if s.checked_at is not None else "never"
            table.add_row(cam_id, str(t), _label(s), checked, _figures(s), why)
    _console().print(table)
