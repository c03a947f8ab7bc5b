"""Fundamental-rights impact assessments (FRIA, AI Act art. 27; GV-02) and the check that an
authorisation names both its impact assessments before it may switch alerting on (GV-01).

A public body must assess, before the first use of such a system, how it bears on fundamental
rights, in six elements (art. 27(1)(a)-(f)): the processes it is used in, the period and
frequency of use, the people affected, the specific risks of harm, the human oversight, and what
is done if the risks materialise. The register keeps each assessment under its reference with the
six elements as text, who recorded it and when, and the audit log keeps the sha256 of that text,
so an element edited afterwards in the database shows.

An authorisation links its assessments in `impact_assessments` (`lanterne authorisation add
--assessment`, or later `lanterne fria link`). A link that is the reference of a recorded FRIA is
its FRIA; any other link is taken for its DPIA: Lanterne cannot read a PDF to tell a DPIA from
another document, and the links are published on the transparency page for anyone to open.

>>> missing_assessments([Link("AP-1", ("https://ville.example/aipd.pdf", "FRIA-1"))], {"FRIA-1"})
{'AP-1': ()}
>>> missing_assessments([Link("AP-2", ("FRIA-1",)), Link("AP-3", ())], {"FRIA-1"})
{'AP-2': ('no_dpia',), 'AP-3': ('no_dpia', 'no_fria')}
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lanterne.core.errors import LanterneError
from lanterne.store.db import describe_failure
from lanterne.store.tables import FriaRecord

if TYPE_CHECKING:
    from lanterne.audit import AuditLog

log = logging.getLogger(__name__)

NO_DPIA = "no_dpia"
NO_FRIA = "no_fria"
"""The reasons an `alerting_refused` record gives when the authorisation covering a camera names
no DPIA, or no recorded FRIA (LB-01 with GV-01, GV-02)."""

ELEMENT_LIMIT = 5000
"""Characters per element: a paragraph or a page, not a whole report, which the reference points to."""

PLACEHOLDERS = frozenset({"", "-", "n/a", "na", "none", "todo", "tbd", "to be completed by the controller"})
"""Answers that leave an element open (the last is the DPIA draft's mark for what the controller
must write): refused, since the schema's point is that all six are answered."""


class FriaError(LanterneError):
    """A fundamental-rights impact assessment that cannot be recorded as asked."""


@dataclass(frozen=True, slots=True)
class Elements:
    """The six elements of AI Act art. 27(1), in its order, as the deployer wrote them."""

    processes: str
    """(a) The deployer's processes in which the system is used, in line with its purpose."""
    period: str
    """(b) The period of time within which, and the frequency with which, it is used."""
    affected: str
    """(c) The categories of people and groups likely to be affected in this context."""
    risks: str
    """(d) The specific risks of harm likely to affect those categories."""
    oversight: str
    """(e) The human oversight measures, according to the instructions for use."""
    mitigation: str
    """(f) The measures if those risks materialise, internal governance and complaints included."""

    def sha256(self) -> str:
        """The sha256 of the six texts, what the audit record vouches for."""
        body = json.dumps({f.name: getattr(self, f.name) for f in fields(self)}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


ELEMENTS: tuple[str, ...] = tuple(f.name for f in fields(Elements))


@dataclass(frozen=True, slots=True)
class Fria:
    """One recorded assessment."""

    reference: str
    assessed_on: date
    elements: Elements
    recorded_by: str
    recorded_at: datetime


class Linked(Protocol):
    """What the check needs of an authorisation (`authorisation.Authorisation` has it)."""

    @property
    def reference(self) -> str: ...

    @property
    def impact_assessments(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Link:
    """An authorisation's reference and links, when no `Authorisation` is at hand."""

    reference: str
    impact_assessments: tuple[str, ...]


def missing_assessments(auths: Iterable[Linked], frias: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """For each authorisation, what it lacks before it may switch alerting on: `no_dpia` (no link
    other than a recorded FRIA's reference), `no_fria` (no recorded FRIA's reference); () when
    it names both."""
    recorded = set(frias)
    out: dict[str, tuple[str, ...]] = {}
    for a in auths:
        links = set(a.impact_assessments)
        missing = []
        if not links - recorded:
            missing.append(NO_DPIA)
        if not links & recorded:
            missing.append(NO_FRIA)
        out[a.reference] = tuple(missing)
    return out


def _text(value: str, name: str, limit: int) -> str:
    value = value.strip()
    if value.lower() in PLACEHOLDERS:
        raise FriaError(f"FRIA element {name!r} is not answered; write it (AI Act art. 27(1))")
    if len(value) > limit:
        raise FriaError(
            f"FRIA {name} is longer than {limit} characters; shorten it or point to the full text"
        )
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _from_row(r: object) -> Fria:
    return Fria(
        reference=r.reference,  # type: ignore[attr-defined]
        assessed_on=r.assessed_on,  # type: ignore[attr-defined]
        elements=Elements(**{name: getattr(r, name) for name in ELEMENTS}),
        recorded_by=r.recorded_by,  # type: ignore[attr-defined]
        recorded_at=r.recorded_at,  # type: ignore[attr-defined]
    )


class FriaRegister:
    """The register of fundamental-rights impact assessments. Recording one is audited; none is
    ever edited or deleted here (a revised assessment is a new one, with a new reference)."""

    def __init__(self, engine: Engine, audit: AuditLog, *, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self.audit = audit
        self._clock = clock

    def add(self, reference: str, assessed_on: date, elements: Elements, user_id: str) -> Fria:
        """Record an assessment; every one of the six elements must be answered."""
        from lanterne.audit import Action

        reference = reference.strip()
        if not reference:
            raise FriaError("the FRIA has no reference; give the one its document carries with --reference")
        if len(reference) > 128:
            raise FriaError("the FRIA reference is longer than 128 characters; shorten it")
        if not user_id.strip():
            raise FriaError("a FRIA names who recorded it; pass --user")
        checked = Elements(**{name: _text(getattr(elements, name), name, ELEMENT_LIMIT) for name in ELEMENTS})
        fria = Fria(reference, assessed_on, checked, user_id, self._clock())
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(FriaRecord).values(
                        reference=reference,
                        assessed_on=assessed_on,
                        recorded_by=user_id,
                        recorded_at=fria.recorded_at,
                        **{name: getattr(checked, name) for name in ELEMENTS},
                    )
                )
        except IntegrityError:
            raise FriaError(
                f"FRIA {reference} is already recorded; a revised assessment needs a new reference"
            ) from None
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        try:
            # Recorded only once it is on the log: a FRIA nobody can trace would open alerting.
            self.audit.append(
                user_id,
                Action.CONFIG_CHANGE,
                object_type="fria",
                object_id=reference,
                details={
                    "event": "fria_recorded",
                    "assessed_on": assessed_on.isoformat(),
                    "elements_sha256": checked.sha256(),
                },
            )
        except BaseException:
            with self.engine.begin() as conn:
                conn.execute(delete(FriaRecord).where(FriaRecord.reference == reference))
            raise
        return fria

    def get(self, reference: str) -> Fria | None:
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(FriaRecord).where(FriaRecord.reference == reference)).first()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        return None if row is None else _from_row(row)

    def list(self) -> list[Fria]:
        """Every recorded assessment, oldest first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(FriaRecord).order_by(FriaRecord.assessed_on, FriaRecord.reference)
                ).all()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        return [_from_row(r) for r in rows]

    def references(self) -> set[str]:
        try:
            with self.engine.connect() as conn:
                return set(conn.execute(select(FriaRecord.reference)).scalars())
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None


def assessment_check(engine: Engine) -> Callable[[Sequence[Linked]], Mapping[str, tuple[str, ...]]]:
    """What an `AlertingGate` asks each time it reads the register: which authorisations lack
    their DPIA or FRIA. The FRIA references are read with it, so an assessment recorded while
    the cameras run counts from the next refresh."""

    def check(auths: Sequence[Linked]) -> Mapping[str, tuple[str, ...]]:
        try:
            with engine.connect() as conn:
                frias = set(conn.execute(select(FriaRecord.reference)).scalars())
        except SQLAlchemyError as exc:
            raise describe_failure(engine, exc) from None
        return missing_assessments(auths, frias)

    return check
