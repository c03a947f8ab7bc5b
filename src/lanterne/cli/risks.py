"""`lanterne risks add|review|list|prefill`: the living risk register (RK-01).

Each risk has an owner, a likelihood and a severity (the CNIL's levels 1 to 4), its measures, a
residual level and the date of its next review. In alerts mode `lanterne run` refuses to start
while a review date has passed, naming the risk and the `review` command. `prefill` copies the
impact-assessment draft's known risks, unassessed and due for review at once. Every step is in the
audit log. Exit codes: 0 done; 2 a user's mistake.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from lanterne.accountability.risks import Risk, RiskError, RiskRegister, level
from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, user_errors, user_id
from lanterne.cli.common import out_console as _console
from lanterne.store.tables import RISK_CATEGORIES

risks_app = typer.Typer(
    help="The risk register: add, review, list, prefill from the impact assessment (RK-01).",
    no_args_is_help=True,
)

Level = Annotated[
    int | None, typer.Option(min=1, max=4, help="1 negligible, 2 limited, 3 significant, 4 maximum.")
]


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RiskError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def _said(r: Risk) -> str:
    return (
        f"risk {r.id}: {r.title} (likelihood {level(r.likelihood)}, severity {level(r.severity)}); "
        f"owner {r.owner}; next review {r.next_review}"
    )


@risks_app.command("add")
@user_errors
def add(
    config: ConfigOpt,
    title: Annotated[str, typer.Option(help="The risk, in a sentence.")],
    category: Annotated[str, typer.Option(help=f"One of: {', '.join(RISK_CATEGORIES)}.")],
    owner: Annotated[str, typer.Option(help="Who answers for it (a user id or a service).")],
    measures: Annotated[str, typer.Option(help="The measures that reduce it.")],
    next_review: Annotated[str, typer.Option("--next-review", help="Date of the next review (YYYY-MM-DD).")],
    likelihood: Level = None,
    severity: Level = None,
    residual: Level = None,
    detector: Annotated[
        str | None, typer.Option(help="The event type it concerns; leave out for the whole deployment.")
    ] = None,
    user: UserOpt = None,
) -> None:
    """Record a risk."""
    with opened_site(config) as site:
        r = RiskRegister(site.store.engine, site.audit).add(
            title,
            category=category,
            owner=owner,
            measures=measures,
            next_review=_day(next_review, "--next-review"),
            likelihood=likelihood,
            severity=severity,
            residual=residual,
            detector=detector,
            by=user_id(user),
        )
    _console().print(_said(r), highlight=False)


@risks_app.command("review")
@user_errors
def review(
    config: ConfigOpt,
    risk_id: Annotated[int, typer.Argument(min=1, help="The risk's number.")],
    next_review: Annotated[str, typer.Option("--next-review", help="Date of the next review (YYYY-MM-DD).")],
    note: Annotated[str, typer.Option(help="What was reviewed and concluded.")],
    likelihood: Level = None,
    severity: Level = None,
    residual: Level = None,
    measures: Annotated[str | None, typer.Option(help="The measures as they stand now.")] = None,
    owner: Annotated[str | None, typer.Option(help="Hand the risk to another owner.")] = None,
    user: UserOpt = None,
) -> None:
    """Record a review: levels and measures as they stand, and the next date."""
    with opened_site(config) as site:
        r = RiskRegister(site.store.engine, site.audit).review(
            risk_id,
            next_review=_day(next_review, "--next-review"),
            note=note,
            likelihood=likelihood,
            severity=severity,
            residual=residual,
            measures=measures,
            owner=owner,
            by=user_id(user),
        )
    _console().print(_said(r), highlight=False)


@risks_app.command("list")
@user_errors
def list_(config: ConfigOpt) -> None:
    """The register, the soonest review first; overdue ones refuse an alerts-mode start."""
    with opened_site(config) as site:
        register = RiskRegister(site.store.engine, site.audit)
        risks = register.list()
        today = register.today()
    if not risks:
        _console().print(
            "the risk register is empty: `lanterne risks prefill` copies the impact assessment's known risks"
        )
        return
    table = Table(
        "id", "risk", "category", "detector", "owner", "likelihood", "severity", "residual", "next review",
        title="Risk register (RK-01)",
    )  # fmt: skip
    for r in risks:
        when = f"{r.next_review} OVERDUE" if r.overdue(today) else str(r.next_review)
        table.add_row(
            str(r.id), r.title, r.category, r.detector or "all", r.owner,
            level(r.likelihood), level(r.severity), level(r.residual), when,
        )  # fmt: skip
    _console().print(table)


@risks_app.command("prefill")
@user_errors
def prefill(
    config: ConfigOpt,
    owner: Annotated[str, typer.Option(help="Who assesses them.")],
    due: Annotated[str | None, typer.Option(help="Their first review date (default today).")] = None,
    user: UserOpt = None,
) -> None:
    """Copy the impact-assessment draft's known risks the register lacks, unassessed."""
    with opened_site(config) as site:
        added = RiskRegister(site.store.engine, site.audit).prefill(
            owner=owner, by=user_id(user), due_on=_day(due, "--due") if due else None
        )
    if not added:
        _console().print("the register already holds every known risk of the impact assessment")
    for r in added:
        _console().print(_said(r), highlight=False)
