"""`lanterne fria add|link|list`: fundamental-rights impact assessments (AI Act art. 27, GV-02).

In alerts mode an authorisation switches alerting on only once it names its DPIA and a FRIA
recorded here (GV-01, GV-02). `add` records an assessment with its six elements, given as options
or in a YAML file (`--file`, keys `processes`, `period`, `affected`, `risks`, `oversight`,
`mitigation`; options override it), and can link it at once to authorisations; `link` links a
recorded one (and the DPIA link) to an authorisation recorded before it. Every change goes to
the audit log under `--user`. Exit codes: 0 done; 2 a user's mistake (an element left open, an
unknown authorisation, a reference used twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.fria import ELEMENTS, Elements, FriaError, FriaRegister
from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, user_errors, user_id
from lanterne.cli.common import out_console as _console
from lanterne.cluster.control import announce_once
from lanterne.config.loader import read_yaml
from lanterne.config.schema import Config

fria_app = typer.Typer(
    help="Fundamental-rights impact assessments (AI Act art. 27): no alerting under an "
    "authorisation that names none.",
    no_args_is_help=True,
)


@contextmanager
def _registers(config: Path) -> Iterator[tuple[Config, FriaRegister, Authorisations]]:
    with opened_site(config) as site:
        yield (
            site.cfg,
            FriaRegister(site.store.engine, site.audit),
            Authorisations(site.store.engine, site.audit, site.cfg.legal_end_date),
        )


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise FriaError(
            f"--date {value!r} is not a date; write the day of the assessment as 2026-05-01"
        ) from None


def _elements(file: Path | None, given: dict[str, str | None]) -> Elements:
    """The six elements: the options given, else the YAML file's keys."""
    data: dict[str, Any] = {}
    if file is not None:
        loaded = read_yaml(file, "FRIA", "--file", FriaError)
        if not isinstance(loaded, dict):
            raise FriaError(f"{file}: not a mapping; write one key per element: {', '.join(ELEMENTS)}")
        unknown = sorted(set(map(str, loaded)) - set(ELEMENTS))
        if unknown:
            raise FriaError(f"{file}: unknown key {unknown[0]!r}; the elements are: {', '.join(ELEMENTS)}")
        data = {k: str(v) for k, v in loaded.items() if v is not None}
    data.update({k: v for k, v in given.items() if v is not None})
    missing = [k for k in ELEMENTS if k not in data]
    if missing:
        raise FriaError(
            f"FRIA element {missing[0]!r} is missing; give --{missing[0]} or put it in the --file "
            "(AI Act art. 27(1) asks all six)"
        )
    return Elements(**{k: data[k] for k in ELEMENTS})


def _check_authorisations(register: Authorisations, references: list[str]) -> None:
    for ref in references:
        if register.get(ref) is None:
            raise FriaError(f"authorisation {ref} does not exist; see `lanterne authorisation list`")


def _link(
    cfg: Config,
    register: Authorisations,
    reference: str,
    authorisations: list[str],
    dpia: str | None,
    user: str,
) -> None:
    links = [reference, *([dpia] if dpia else [])]
    for ref in authorisations:
        a = register.link_assessments(ref, links, user)
        _console().print(
            f"authorisation {a.reference} now names: {', '.join(a.impact_assessments)}", highlight=False
        )
    # Workers re-read their authorisations at once rather than at their next fallback read.
    announce_once(cfg.cluster.nats_url, "authorisations")


@fria_app.command("add")
@user_errors
def add(
    config: ConfigOpt,
    reference: Annotated[str, typer.Option("--reference", help="The assessment's own reference.")],
    assessed_on: Annotated[str, typer.Option("--date", help="Day it was carried out, e.g. 2026-05-01.")],
    file: Annotated[
        Path | None, typer.Option("--file", help="YAML file with the six elements (options override it).")
    ] = None,
    processes: Annotated[
        str | None, typer.Option(help="(a) The processes the system is used in, and their purpose.")
    ] = None,
    period: Annotated[str | None, typer.Option(help="(b) Period of time and frequency of use.")] = None,
    affected: Annotated[
        str | None, typer.Option(help="(c) Categories of people and groups affected.")
    ] = None,
    risks: Annotated[str | None, typer.Option(help="(d) Specific risks of harm to them.")] = None,
    oversight: Annotated[str | None, typer.Option(help="(e) Human oversight measures.")] = None,
    mitigation: Annotated[
        str | None, typer.Option(help="(f) Measures if the risks materialise, complaints included.")
    ] = None,
    authorisation: Annotated[
        list[str] | None, typer.Option("--authorisation", help="Authorisation to link it to (repeatable).")
    ] = None,
    dpia: Annotated[
        str | None, typer.Option("--dpia", help="Link to the DPIA, added to those authorisations too.")
    ] = None,
    user: UserOpt = None,
) -> None:
    """Record a FRIA with its six elements, and link it to authorisations if named."""
    day = _day(assessed_on)
    elements = _elements(
        file,
        {
            "processes": processes,
            "period": period,
            "affected": affected,
            "risks": risks,
            "oversight": oversight,
            "mitigation": mitigation,
        },
    )
    with _registers(config) as (cfg, frias, register):
        _check_authorisations(register, authorisation or [])
        fria = frias.add(reference, day, elements, user_id(user))
        _console().print(
            f"FRIA {fria.reference} of {fria.assessed_on} recorded (six elements, sha256 "
            f"{elements.sha256()[:12]}…)",
            highlight=False,
        )
        if authorisation:
            _link(cfg, register, fria.reference, authorisation, dpia, user_id(user))


@fria_app.command("link")
@user_errors
def link(
    reference: Annotated[str, typer.Argument(help="Reference of a recorded FRIA.")],
    config: ConfigOpt,
    authorisation: Annotated[
        list[str], typer.Option("--authorisation", help="Authorisation to link it to (repeatable).")
    ],
    dpia: Annotated[str | None, typer.Option("--dpia", help="Link to the DPIA, added too.")] = None,
    user: UserOpt = None,
) -> None:
    """Link a recorded FRIA (and the DPIA) to authorisations recorded before it."""
    with _registers(config) as (cfg, frias, register):
        if frias.get(reference) is None:
            raise FriaError(f"FRIA {reference} is not recorded; record it first with `lanterne fria add`")
        _check_authorisations(register, authorisation)
        _link(cfg, register, reference, authorisation, dpia, user_id(user))


@fria_app.command("list")
@user_errors
def list_(config: ConfigOpt) -> None:
    """Every recorded FRIA and the authorisations that name it."""
    with _registers(config) as (_cfg, frias, register):
        recorded = frias.list()
        auths = register.list()
    if not recorded:
        _console().print("no FRIA recorded: no authorisation may switch alerting on (GV-02)")
        return
    table = Table("reference", "date", "recorded by", "authorisations naming it", title="FRIA register")
    for f in recorded:
        naming = [a.reference for a in auths if f.reference in a.impact_assessments]
        table.add_row(f.reference, f.assessed_on.isoformat(), f.recorded_by, ", ".join(naming) or "none")
    _console().print(table)
