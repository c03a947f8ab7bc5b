"""What every `lanterne` sub-command shares: turning a user's mistake into one line and exit 2,
consoles that read the terminal width when a command runs, and the user id recorded in the audit
log. A module of its own so that `cli.py` and the sub-apps it registers can all import it."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from lanterne.core.errors import LanterneError

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file.")]
UserOpt = Annotated[
    str | None, typer.Option("--user", help="User id recorded in the audit log (default: your login name).")
]


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
