"""The living risk register (RK-01): each risk of the deployment, or of one detector, to safety,
to fundamental rights or by misuse, with its likelihood, severity, measures, residual level, owner
and the date of its next review.

A register written once for the impact assessment and never opened again protects nobody: the
point of RK-01 is that the risks are looked at again, on dates someone committed to. So in alerts
mode `authorisation.gates_for` asks `RiskRegister.overdue` before any camera opens: a risk whose
review date has passed refuses the start, with an `alerting_refused` record (`risk_review_overdue`)
and one line naming the risk and the command that records its review. An empty register refuses
nothing: Lanterne cannot know a deployment's risks, and the DPIA draft lists the known ones for the
controller to assess (`prefill` copies them here, due for review at once).

Likelihood, severity and the residual level use the CNIL's four levels (1 negligible, 2 limited,
3 significant, 4 maximum). A risk is never deleted or edited in place: a review records its new
levels, measures and next date, and the audit log (`risk_register`) keeps every earlier version.

>>> from datetime import date
>>> level(3), level(None)
('3 significant', 'not assessed')
>>> due(date(2026, 12, 1), today=date(2026, 12, 2)), due(date(2026, 12, 2), today=date(2026, 12, 2))
(True, False)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.core.types import EventType
from lanterne.store.db import describe_failure, transaction
from lanterne.store.tables import RISK_CATEGORIES, RiskRecord

log = logging.getLogger(__name__)

OVERDUE = "risk_review_overdue"
"""The reason of the `alerting_refused` records of a start refused for an overdue review."""
OBJECT = "risk"
LEVELS: dict[int, str] = {1: "negligible", 2: "limited", 3: "significant", 4: "maximum"}

KNOWN_RISKS: tuple[tuple[str, str], ...] = (
    (
        "fundamental_rights",
        "Chilling effect on the freedoms of movement, assembly and expression in the watched places.",
    ),
    (
        "fundamental_rights",
        "False alarms that send agents towards innocent people (people at rest, homeless people, owners near their bags).",
    ),
    ("fundamental_rights", "Unequal exposure of neighbourhoods where cameras are denser."),
    ("misuse", "Function creep: new event types, new purposes, identification added later."),
    ("misuse", "Misuse of recordings by habilitated agents."),
)
"""The known risks the impact-assessment draft lists for the controller to assess (section 11 of
`dpia/templates/dpia.md.j2`; a test keeps the two the same)."""
PREFILL_MEASURES = "TO BE ASSESSED: copied from the impact-assessment draft's known risks"


class RiskError(LanterneError):
    """A risk that cannot be recorded or reviewed as asked, or a start refused for an overdue review."""


@dataclass(frozen=True, slots=True)
class Risk:
    id: int
    title: str
    category: str
    detector: str | None
    """The event type it concerns; None: the whole deployment."""
    owner: str
    likelihood: int | None
    severity: int | None
    residual: int | None
    measures: str
    next_review: date
    created_at: datetime
    created_by: str
    reviewed_at: datetime | None
    reviewed_by: str | None

    def overdue(self, today: date) -> bool:
        return due(self.next_review, today=today)


def due(next_review: date, *, today: date) -> bool:
    """A review is overdue the day after its date: the date itself is still on time."""
    return next_review < today


def level(value: int | None) -> str:
    return "not assessed" if value is None else f"{value} {LEVELS[value]}"


def _row(r: Any) -> Risk:
    return Risk(
        id=int(r.id),
        title=r.title,
        category=r.category,
        detector=r.detector,
        owner=r.owner,
        likelihood=r.likelihood,
        severity=r.severity,
        residual=r.residual,
        measures=r.measures,
        next_review=r.next_review,
        created_at=r.created_at,
        created_by=r.created_by,
        reviewed_at=r.reviewed_at,
        reviewed_by=r.reviewed_by,
    )


def _level(value: int | None, name: str) -> int | None:
    if value is not None and value not in LEVELS:
        raise RiskError(f"--{name} {value}: use the CNIL's levels 1 (negligible) to 4 (maximum)")
    return value


def _text(value: str | None, what: str, limit: int, option: str) -> str:
    text = (value or "").strip()
    if not text:
        raise RiskError(f"{what} is empty; write it with {option}")
    if len(text) > limit:
        raise RiskError(f"{what} is {len(text)} characters long; shorten it to {limit}")
    return text


def _now() -> datetime:
    return datetime.now(UTC)


_T = RiskRecord.__table__


class RiskRegister:
    """The register. Adding and reviewing are audited first; a step the log refuses never stands."""

    def __init__(self, engine: Engine, audit: AuditLog, *, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self.audit = audit
        self._clock = clock

    def today(self) -> date:
        return self._clock().astimezone(UTC).date()

    def list(self) -> list[Risk]:
        """Every risk, the soonest review first."""
        try:
            with self.engine.connect() as conn:
                return [_row(r) for r in conn.execute(select(_T).order_by(_T.c.next_review, _T.c.id))]
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None

    def get(self, risk_id: int) -> Risk:
        try:
            with self.engine.connect() as conn:
                r = conn.execute(select(_T).where(_T.c.id == risk_id)).first()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        if r is None:
            raise RiskError(f"risk {risk_id} does not exist; see `lanterne risks list`")
        return _row(r)

    def overdue(self, today: date | None = None) -> list[Risk]:
        """Risks whose review date has passed, the longest overdue first."""
        today = today or self.today()
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(_T).where(_T.c.next_review < today).order_by(_T.c.next_review, _T.c.id)
                ).all()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        return [_row(r) for r in rows]

    def add(
        self,
        title: str,
        *,
        category: str,
        owner: str,
        measures: str,
        next_review: date,
        by: str,
        likelihood: int | None = None,
        severity: int | None = None,
        residual: int | None = None,
        detector: str | None = None,
    ) -> Risk:
        """Record a risk. Its levels may wait for its first review (a risk known before it is
        assessed is still worth a date)."""
        title = _text(title, "the risk", 300, "--title")
        if category not in RISK_CATEGORIES:
            raise RiskError(f"--category {category!r}: choose one of {', '.join(RISK_CATEGORIES)}")
        if detector is not None and detector not in {str(t) for t in EventType}:
            raise RiskError(
                f"--detector {detector!r} is not one of the 8 event types; leave it out for the whole deployment"
            )
        owner = _text(owner, "the owner", 128, "--owner")
        measures = _text(measures, "the measures", 2000, "--measures")
        if not by.strip():
            raise RiskError("a risk names who recorded it; pass --user")
        values = {
            "title": title,
            "category": category,
            "detector": detector,
            "owner": owner,
            "likelihood": _level(likelihood, "likelihood"),
            "severity": _level(severity, "severity"),
            "residual": _level(residual, "residual"),
            "measures": measures,
            "next_review": next_review,
            "created_at": self._clock().astimezone(UTC),
            "created_by": by,
        }
        with transaction(self.engine) as conn:
            risk_id = int(conn.execute(insert(_T).values(**values).returning(_T.c.id)).scalar_one())
        try:
            self.audit.append(
                by,
                Action.RISK_REGISTER,
                object_type=OBJECT,
                object_id=str(risk_id),
                details={
                    "step": "added",
                    **{k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()},
                },
            )
        except BaseException:
            with transaction(self.engine) as conn:
                conn.execute(_T.delete().where(_T.c.id == risk_id))
            raise
        return self.get(risk_id)

    def review(
        self,
        risk_id: int,
        *,
        next_review: date,
        note: str,
        by: str,
        likelihood: int | None = None,
        severity: int | None = None,
        residual: int | None = None,
        measures: str | None = None,
        owner: str | None = None,
    ) -> Risk:
        """Record a review: what was looked at (`note`), the levels and measures as they stand now
        (unchanged where not given), and the next date, which must be after today."""
        note = _text(note, "the review note", 1000, "--note")
        current = self.get(risk_id)
        today = self.today()
        if next_review <= today:
            raise RiskError(
                f"--next-review {next_review} is not after today ({today}); commit to a later date"
            )
        changes: dict[str, Any] = {
            "likelihood": _level(likelihood, "likelihood") if likelihood is not None else current.likelihood,
            "severity": _level(severity, "severity") if severity is not None else current.severity,
            "residual": _level(residual, "residual") if residual is not None else current.residual,
            "measures": _text(measures, "the measures", 2000, "--measures")
            if measures is not None
            else current.measures,
            "owner": _text(owner, "the owner", 128, "--owner") if owner is not None else current.owner,
        }
        if changes["likelihood"] is None or changes["severity"] is None:
            raise RiskError(
                f"risk {risk_id} was never assessed: a review gives its --likelihood and --severity (1 to 4)"
            )
        if not by.strip():
            raise RiskError("a review names who made it; pass --user")
        changes.update(next_review=next_review, reviewed_at=self._clock().astimezone(UTC), reviewed_by=by)
        self.audit.append(
            by,
            Action.RISK_REGISTER,
            object_type=OBJECT,
            object_id=str(risk_id),
            purpose=note,
            details={
                "step": "reviewed",
                "was_due": current.next_review.isoformat(),
                **{k: (v.isoformat() if isinstance(v, date) else v) for k, v in changes.items()},
            },
        )
        with transaction(self.engine) as conn:
            conn.execute(update(_T).where(_T.c.id == risk_id).values(**changes))
        return self.get(risk_id)

    def prefill(self, *, owner: str, by: str, due_on: date | None = None) -> list[Risk]:
        """Copy the DPIA draft's known risks that the register lacks (by title), unassessed and due
        for review on `due_on` (today by default): the start is refused the day after until each
        is assessed."""
        have = {r.title for r in self.list()}
        return [
            self.add(
                title,
                category=category,
                owner=owner,
                measures=PREFILL_MEASURES,
                next_review=due_on or self.today(),
                by=by,
            )
            for category, title in KNOWN_RISKS
            if title not in have
        ]


def refusal(overdue: Iterable[Risk]) -> str:
    """The one line that refuses an alerts-mode start for overdue reviews."""
    risks = list(overdue)
    first = risks[0]
    more = (
        f" (and {len(risks) - 1} more: {', '.join(str(r.id) for r in risks[1:])})" if len(risks) > 1 else ""
    )
    title = first.title if len(first.title) <= 60 else first.title[:59] + "…"
    return (
        f"alerts mode refused (RK-01): risk {first.id} '{title}' was due for review on {first.next_review}{more}; "
        f"once reviewed, record it: lanterne risks review {first.id} --next-review YYYY-MM-DD "
        "--note '...' --config SITE.yml --user ID"
    )
