"""`lanterne suspensions …`: detectors that switched themselves off on a camera (alert flood,
precision below the floor) or were suspended by a supervisor, and lifting them after review.

The command line has no login: `--user` is recorded as given, in the suspension and in the audit
log; who may lift a suspension from the command line is therefore a matter of procedure.

Exit codes: 0 done; 2 a user's mistake or a refused step (unknown camera or event type, already
suspended, already lifted, no note), printed on one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from lanterne.cli.common import CliError, ConfigOpt, UserOpt, opened_site, user_errors, user_id, utc_text
from lanterne.cli.common import out_console as _console
from lanterne.cluster.control import announce_once

if TYPE_CHECKING:
    from pathlib import Path

    from lanterne.accountability.suspension import Suspensions
    from lanterne.config import Config
    from lanterne.core.types import EventType

suspensions_app = typer.Typer(
    help="Detectors suspended on a camera (alert flood, precision below the floor, supervisor).",
    no_args_is_help=True,
)


@contextmanager
def _suspensions(config: Path) -> Iterator[tuple[Config, Suspensions]]:
    from lanterne.accountability.suspension import Suspensions

    with opened_site(config) as site:
        yield site.cfg, Suspensions(site.store.engine, site.audit, site.cfg.suspension)


def _event_type(name: str) -> EventType:
    from lanterne.core.types import EventType

    try:
        return EventType(name.strip())
    except ValueError:
        raise CliError(
            f"event type {name!r} is unknown; use one of {', '.join(str(t) for t in EventType)}"
        ) from None


NoteOpt = Annotated[str | None, typer.Option("--note", help="What was reviewed and decided (required).")]


@suspensions_app.command("list")
@user_errors
def suspensions_list(
    config: ConfigOpt,
    active: Annotated[bool, typer.Option("--active", help="Only suspensions not yet lifted.")] = False,
) -> None:
    """Suspensions, oldest first, with their cause and who lifted them."""
    with _suspensions(config) as (_cfg, sus):
        rows = sus.list(active_only=active)
    t = Table("id", "camera", "detector", "cause", "since (UTC)", "by", "lifted (UTC)", "by", "note")
    for s in rows:
        t.add_row(
            str(s.id),
            s.camera,
            str(s.type),
            s.cause,
            utc_text(s.started_at),
            s.started_by,
            utc_text(s.lifted_at) if s.lifted_at else "active",
            s.lifted_by or "",
            s.lift_note or str(s.details.get("note", "")),
        )
    _console().print(t)


@suspensions_app.command("suspend")
@user_errors
def suspensions_suspend(
    camera: Annotated[str, typer.Argument(help="Camera id.")],
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="Detector (event type), e.g. fire.")],
    config: ConfigOpt,
    note: NoteOpt = None,
    user: UserOpt = None,
) -> None:
    """Suspend a detector on a camera by hand, until a supervisor lifts it."""
    with _suspensions(config) as (cfg, sus):
        if camera not in {c.id for c in cfg.cameras}:
            raise CliError(f"camera {camera!r} is not in the configuration; use one of its cameras[].id")
        s = sus.suspend(camera, _event_type(event_type), user_id(user), note or "")
        announce_once(cfg.cluster.nats_url, "suspensions")
    _console().print(f"suspension {s.id}: {s.type} suspended on camera {s.camera}", highlight=False)


@suspensions_app.command("lift")
@user_errors
def suspensions_lift(
    suspension_id: Annotated[int, typer.Argument(help="Id shown by `lanterne suspensions list`.")],
    config: ConfigOpt,
    note: NoteOpt = None,
    user: UserOpt = None,
) -> None:
    """Lift a suspension after review; the note records the review."""
    with _suspensions(config) as (cfg, sus):
        s = sus.lift(suspension_id, user_id(user), note or "")
        announce_once(cfg.cluster.nats_url, "suspensions")
    _console().print(f"suspension {s.id} lifted: {s.type} runs again on camera {s.camera}", highlight=False)
