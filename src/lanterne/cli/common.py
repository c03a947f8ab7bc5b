"""What every `lanterne` sub-command shares: turning a user's mistake into one line and exit 2,
consoles that read the terminal width when a command runs, the user id recorded in the audit
log, and the site a command works on. A module of its own so that `main.py` and the sub-apps it
registers can all import it."""

from __future__ import annotations

import functools
import getpass
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from lanterne.core.errors import LanterneError

if TYPE_CHECKING:
    from lanterne.runtime.site import Site

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file.")]
UserOpt = Annotated[
    str | None, typer.Option("--user", help="User id recorded in the audit log (default: your login name).")
]


class CliError(LanterneError):
    """A mistake in the command line itself (an unknown state, camera or event type, a bad
    `--now`): printed on one line like every other user error."""


def log_to_stderr(verbose: bool) -> None:
    """The long-running commands (`run`, `serve`, `worker`, `ingest`) say what they do, one line
    each, on standard error: INFO with `--verbose` (their default), warnings and errors only
    otherwise. Never an image or a person's data, by the rule every log line follows."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def out_console() -> Console:
    """Built per command, so the terminal width (COLUMNS) is read when the command runs, not when
    the module was first imported."""
    return Console(soft_wrap=True)


def user_errors(fn: F) -> F:
    """A `LanterneError` is the user's to fix: print its one line, exit 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LanterneError as exc:
            err_console().print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def user_id(user: str | None) -> str:
    return user or login_name()


def opened_site(config: Path) -> Site:
    """The site of a configuration file: its database and its audit log as configured. Use it as
    `with opened_site(config) as site:` so both are closed when the command is done."""
    # Imported here: the database and audit modules are only loaded by commands that need them,
    # so `lanterne --help` stays fast.
    from lanterne.config import load_config
    from lanterne.runtime.site import open_site

    return open_site(load_config(config))


def utc_text(ts: datetime, *, seconds: bool = True) -> str:
    """A stored time as the tables print it: UTC, to the second or to the minute."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def parse_time(value: str, option: str) -> datetime:
    """An option given as an ISO 8601 time with its zone, or a one-line error naming the option."""
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"{option} {value!r} is not an ISO 8601 time; use e.g. 2026-05-01T08:00:00+00:00"
        ) from None
    if ts.tzinfo is None:
        raise CliError(f"{option} {value!r} has no time zone; add one, e.g. {value}+00:00")
    return ts
