"""`lanterne dpia`: the impact-assessment draft, Markdown and PDF, pre-filled from the
configuration, the authorisation register and the measured precision (GDPR art. 35, LED art. 27).

A one-command sub-app (a callback that runs without a sub-command), so that `main.py` registers
it with one line like every other group. Exit codes: 0 done; 2 a user's mistake (bad config,
unreachable database).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, out_console, user_errors, user_id

dpia_app = typer.Typer(help="Write the impact-assessment draft (Markdown and PDF).")


@dpia_app.callback(invoke_without_command=True)
@user_errors
def dpia_command(
    config: ConfigOpt,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("dpia"),
    user: UserOpt = None,
) -> None:
    """Write dpia-draft.md and dpia-draft.pdf, pre-filled from the configuration and measured figures."""
    from lanterne.accountability.dpia import write_dpia

    with opened_site(config) as site:
        md, pdf = write_dpia(site.cfg, site.store.engine, out_dir, user_id(user), datetime.now(UTC))
    out_console().print(f"impact-assessment draft: {md} and {pdf}", highlight=False)
