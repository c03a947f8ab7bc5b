"""`lanterne authorisation`: record, list and revoke deployment authorisations.

The commands write to the site's database (`store.url` of the configuration) and every change
goes to the audit log under the `--user` given (default: the login name), so the register can be
kept by the people who receive the prefectoral acts without touching the running system.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lanterne.accountability.authorisation import Authorisation, AuthorisationError, Authorisations
from lanterne.cli.common import ConfigOpt, UserOpt, opened_site, user_errors, user_id
from lanterne.cli.common import out_console as _console
from lanterne.cluster.control import announce_once
from lanterne.config.schema import Config

authorisation_app = typer.Typer(
    help="Deployment authorisations: without one, a camera only counts (loi 2023-380 art. 10).",
    no_args_is_help=True,
)


def _when(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise AuthorisationError(
            f"{option} {value!r} is not an ISO date and time; write e.g. 2026-06-01T08:00+02:00"
        ) from None
    if parsed.tzinfo is None:
        raise AuthorisationError(
            f"{option} {value!r} has no time zone; add one, e.g. {parsed.isoformat()}+02:00 or Z for UTC"
        )
    return parsed.astimezone(UTC)


@contextmanager
def _register(config: Path) -> Iterator[tuple[Config, Authorisations]]:
    with opened_site(config) as site:
        yield site.cfg, Authorisations(site.store.engine, site.audit, site.cfg.legal_end_date)


def _short(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@authorisation_app.command("add")
@user_errors
def add(
    config: ConfigOpt,
    reference: Annotated[str, typer.Option("--reference", help="Reference of the authorising act.")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="e.g. 'Loi 2023-380 art. 10'.")],
    authority: Annotated[
        str, typer.Option("--authority", help="Who issued it, e.g. 'Préfecture de police'.")
    ],
    valid_from: Annotated[str, typer.Option("--from", help="Start, ISO with time zone.")],
    valid_until: Annotated[str, typer.Option("--until", help="End (exclusive), ISO with time zone.")],
    camera: Annotated[list[str], typer.Option("--camera", help="Camera id in the perimeter (repeatable).")],
    event: Annotated[list[str], typer.Option("--event", help="Authorised event type (repeatable).")],
    assessment: Annotated[
        list[str] | None, typer.Option("--assessment", help="Link to an impact assessment (repeatable).")
    ] = None,
    manifestation: Annotated[
        str | None,
        typer.Option("--event-name", "--manifestation", help="The event (manifestation) the act is for."),
    ] = None,
    responsible_service: Annotated[
        str | None, typer.Option("--responsible-service", help="The service the act makes responsible.")
    ] = None,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient",
            help="Service that may receive alerts and exports (repeatable): a webhook id, `mqtt`, "
            "or an export's recipient as written (AC-06).",
        ),
    ] = None,
    user: UserOpt = None,
) -> None:
    """Record a new authorisation (a renewal is a new one, with its own reference)."""
    start, end = _when(valid_from, "--from"), _when(valid_until, "--until")
    with _register(config) as (cfg, register):
        known = {c.id for c in cfg.cameras}
        for cam in camera:
            if cam not in known:
                raise AuthorisationError(
                    f"camera {cam!r} is not in {config}; use one of: {', '.join(sorted(known))}"
                )
        a = register.add(
            reference,
            legal_basis=legal_basis,
            authority=authority,
            valid_from=start,
            valid_until=end,
            cameras=camera,
            event_types=event,
            impact_assessments=assessment or (),
            user_id=user_id(user),
            manifestation=manifestation,
            responsible_service=responsible_service,
            recipients=recipient,
        )
        announce_once(cfg.cluster.nats_url, "authorisations")
    _console().print(
        f"authorisation {a.reference} recorded: {', '.join(str(t) for t in a.event_types)} on "
        f"{', '.join(a.cameras)} from {_short(a.valid_from)} until {_short(a.valid_until)}",
        highlight=False,
    )


def _table(auths: list[Authorisation], now: datetime, legal_end: str | None) -> Table:
    title = "Deployment authorisations" + (f" (site legal end date {legal_end})" if legal_end else "")
    t = Table(title=title)
    for col in ("reference", "event", "service", "from", "until", "cameras", "events", "recipients", "state"):
        t.add_column(col)
    for a in auths:
        state = a.state(now)
        t.add_row(
            a.reference,
            a.manifestation or "",
            a.responsible_service or "",
            _short(a.valid_from),
            _short(a.valid_until),
            ", ".join(a.cameras),
            ", ".join(str(e) for e in a.event_types),
            ", ".join(a.recipients) if a.recipients is not None else "(not recorded)",
            state,
        )
    return t


@authorisation_app.command("list")
@user_errors
def list_(config: ConfigOpt) -> None:
    """Show every authorisation and whether it is active, upcoming, expired or revoked."""
    with _register(config) as (cfg, register):
        auths = register.list()
        now = datetime.now(UTC)
        legal_end = str(cfg.legal_end_date) if cfg.legal_end_date else None
        if not auths:
            _console().print("no authorisation recorded: every camera runs statistics-only")
            return
        _console().print(_table(auths, now, legal_end))
        if not register.within_legal_end(now):
            _console().print(f"the site legal end date {legal_end} has passed: no authorisation is in force")


@authorisation_app.command("revoke")
@user_errors
def revoke(
    reference: Annotated[str, typer.Argument(help="Reference of the authorisation to end now.")],
    config: ConfigOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why it ends early (recorded).")],
    user: UserOpt = None,
) -> None:
    """End an authorisation now; alerting under it stops within the cameras' refresh interval."""
    with _register(config) as (cfg, register):
        a = register.revoke(reference, user_id(user), reason)
        announce_once(cfg.cluster.nats_url, "authorisations")
    when = a.revoked_at or datetime.now(UTC)
    _console().print(f"authorisation {a.reference} revoked at {_short(when)}", highlight=False)
