"""The complaint record (GV-07): complaints about the system received from the public or an
authority, and how each was answered.

An oversight body (an ethics committee, the CNIL, the commission départementale de
vidéoprotection) asks what people complained about and whether they got an answer; a city that
keeps complaints in mailboxes cannot say. So each complaint is recorded with the day it was
received, its channel, a category from a closed list (`CATEGORIES`, so that counts compare across
sites and months) and a summary; then it is answered with the day and a summary of the answer.
The oversight page lists them, and the public page publishes their counts per category and state.

The record holds no complainant: no name, address, e-mail or phone column, and a summary or an
answer that looks like it carries an e-mail address or a phone number is refused (`personal_data`)
with a line saying to keep contact details in the city's mail register. A heuristic cannot catch a
name; the command's help, the docs and the console all say the summary must hold none.

Every step is an audit record (`complaint`) carrying the category, channel, dates and the sha256
of the texts, written before the step stands: a step the log refuses is taken back.

>>> personal_data("Camera 12 films the windows of a flat")
>>> personal_data("write to jeanne.martin@example.org")
'an e-mail address'
>>> personal_data("called from 06 12 34 56 78")
'a phone number'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.store.db import describe_failure, transaction
from lanterne.store.tables import COMPLAINT_CATEGORIES, COMPLAINT_CHANNELS, COMPLAINT_STATES, ComplaintRecord

CATEGORIES: tuple[str, ...] = COMPLAINT_CATEGORIES
CHANNELS: tuple[str, ...] = COMPLAINT_CHANNELS
STATES: tuple[str, ...] = COMPLAINT_STATES
OBJECT = "complaint"
TEXT_LIMIT = 1000

CATEGORY_TITLES: dict[str, str] = {
    "camera_placement": "a camera's place or field of view",
    "false_alert": "an alert or an intervention that was not warranted",
    "discrimination": "unequal treatment of a group or a neighbourhood",
    "privacy": "privacy: masks, blurring, data kept",
    "rights_request": "a request for one's images or another right not answered",
    "information": "missing or wrong public information, signs",
    "misuse": "a use beyond the authorised purposes",
    "other": "anything else about the system",
}
"""The categories in words, for the command's help, the console and the public page."""
NO_PERSONAL_DATA = (
    "Write no personal data: no name, address, e-mail or phone number of the complainant or anyone "
    "else (keep them in the city's mail register); say what the complaint is about."
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE = re.compile(r"(?<![\w+])(?:(?:\+|00)\d{1,3}[\s.-]?(?:\(0\)[\s.-]?)?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
"""A French number (06 12 34 56 78, 0612345678) or one with a country code (+33 6 12 34 56 78,
0033 6 12 34 56 78). Dates, times and camera numbers do not start that way."""


class ComplaintError(LanterneError):
    """A complaint step that cannot be done as asked."""


class ComplaintNotFound(ComplaintError):  # noqa: N818 (reads as the answer it becomes: 404)
    """No complaint has this number."""


class ComplaintConflict(ComplaintError):  # noqa: N818 (reads as the answer it becomes: 409)
    """The step does not fit the complaint's state (answering an answered one)."""


@dataclass(frozen=True, slots=True)
class Complaint:
    id: int
    received_on: date
    channel: str
    category: str
    summary: str
    state: str
    recorded_at: datetime
    recorded_by: str
    answered_on: date | None
    answer: str | None
    answered_at: datetime | None
    answered_by: str | None


@dataclass(frozen=True, slots=True)
class ComplaintCount:
    """How many complaints of one category are in one state: counts only, for the public page."""

    category: str
    state: str
    count: int


def personal_data(text: str) -> str | None:
    """What in `text` looks like a way to reach a person (`an e-mail address`, `a phone number`),
    or None. A heuristic that catches the usual slip of pasting a letter's header; it cannot
    recognise a name."""
    if _EMAIL.search(text):
        return "an e-mail address"
    if _PHONE.search(text):
        return "a phone number"
    return None


def _text(value: str | None, what: str, option: str) -> str:
    text = " ".join((value or "").split())
    if not text:
        raise ComplaintError(f"{what} is empty; say what it is about with {option}")
    if len(text) > TEXT_LIMIT:
        raise ComplaintError(f"{what} is {len(text)} characters long; shorten it to {TEXT_LIMIT}")
    found = personal_data(text)
    if found is not None:
        raise ComplaintError(
            f"{what} holds what looks like {found}; remove it from {option} "
            "and keep contact details in the city's mail register"
        )
    return text


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _row(r: Any) -> Complaint:
    return Complaint(
        id=int(r.id),
        received_on=r.received_on,
        channel=r.channel,
        category=r.category,
        summary=r.summary,
        state=r.state,
        recorded_at=r.recorded_at,
        recorded_by=r.recorded_by,
        answered_on=r.answered_on,
        answer=r.answer,
        answered_at=r.answered_at,
        answered_by=r.answered_by,
    )


_T = ComplaintRecord.__table__


class Complaints:
    """The complaint record. Recording and answering are audited before they stand."""

    def __init__(self, engine: Engine, audit: AuditLog, *, clock: Callable[[], datetime] = _now) -> None:
        self.engine = engine
        self.audit = audit
        self._clock = clock

    def today(self) -> date:
        return self._clock().astimezone(UTC).date()

    # --- reading ------------------------------------------------------------------------------

    def get(self, complaint_id: int) -> Complaint:
        try:
            with self.engine.connect() as conn:
                r = conn.execute(select(_T).where(_T.c.id == complaint_id)).first()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        if r is None:
            raise ComplaintNotFound(
                f"complaint {complaint_id} does not exist; see `lanterne complaints list`"
            )
        return _row(r)

    def list(
        self, *, state: str | None = None, category: str | None = None, limit: int = 500
    ) -> list[Complaint]:
        """Newest received first."""
        if state is not None and state not in STATES:
            raise ComplaintError(f"unknown state {state!r}; choose one of {', '.join(STATES)}")
        if category is not None and category not in CATEGORIES:
            raise ComplaintError(f"unknown category {category!r}; choose one of {', '.join(CATEGORIES)}")
        stmt = select(_T).order_by(_T.c.received_on.desc(), _T.c.id.desc()).limit(limit)
        if state is not None:
            stmt = stmt.where(_T.c.state == state)
        if category is not None:
            stmt = stmt.where(_T.c.category == category)
        try:
            with self.engine.connect() as conn:
                return [_row(r) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None

    # --- recording and answering --------------------------------------------------------------

    def add(self, *, received_on: date, channel: str, category: str, summary: str, by: str) -> Complaint:
        """Record a complaint received on `received_on` (not after today)."""
        if channel not in CHANNELS:
            raise ComplaintError(f"--channel {channel!r}: choose one of {', '.join(CHANNELS)}")
        if category not in CATEGORIES:
            raise ComplaintError(f"--category {category!r}: choose one of {', '.join(CATEGORIES)}")
        summary = _text(summary, "the summary", "--summary")
        if not by.strip():
            raise ComplaintError("a complaint names who recorded it; pass --user")
        today = self.today()
        if received_on > today:
            raise ComplaintError(
                f"--received {received_on} is after today ({today}); give the day it arrived"
            )
        values = {
            "received_on": received_on,
            "channel": channel,
            "category": category,
            "summary": summary,
            "state": "open",
            "recorded_at": self._clock().astimezone(UTC),
            "recorded_by": by,
        }
        try:
            with transaction(self.engine) as conn:
                new_id = int(conn.execute(insert(_T).values(**values).returning(_T.c.id)).scalar_one())
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        try:
            self.audit.append(
                by,
                Action.COMPLAINT,
                object_type=OBJECT,
                object_id=str(new_id),
                details={
                    "step": "recorded",
                    "received_on": received_on.isoformat(),
                    "channel": channel,
                    "category": category,
                    "summary_sha256": _sha(summary),
                },
            )
        except BaseException:
            with transaction(self.engine) as conn:
                conn.execute(_T.delete().where(_T.c.id == new_id))
            raise
        return self.get(new_id)

    def answer(self, complaint_id: int, *, answered_on: date, answer: str, by: str) -> Complaint:
        """Record the answer sent on `answered_on` (between the day received and today)."""
        answer = _text(answer, "the answer", "--answer")
        if not by.strip():
            raise ComplaintError("an answer names who recorded it; pass --user")
        current = self.get(complaint_id)
        if current.state != "open":
            raise ComplaintConflict(
                f"complaint {complaint_id} was answered on {current.answered_on} by {current.answered_by}; "
                "record a new complaint if it came back"
            )
        today = self.today()
        if answered_on > today:
            raise ComplaintError(
                f"--answered {answered_on} is after today ({today}); give the day it was sent"
            )
        if answered_on < current.received_on:
            raise ComplaintError(
                f"--answered {answered_on} is before the complaint was received ({current.received_on})"
            )
        self.audit.append(
            by,
            Action.COMPLAINT,
            object_type=OBJECT,
            object_id=str(complaint_id),
            details={
                "step": "answered",
                "received_on": current.received_on.isoformat(),
                "answered_on": answered_on.isoformat(),
                "category": current.category,
                "answer_sha256": _sha(answer),
            },
        )
        with transaction(self.engine) as conn:
            done = conn.execute(
                update(_T)
                .where(_T.c.id == complaint_id, _T.c.state == "open")
                .values(
                    state="answered",
                    answered_on=answered_on,
                    answer=answer,
                    answered_at=self._clock().astimezone(UTC),
                    answered_by=by,
                )
            ).rowcount
        if not done:  # answered by someone else between the read and the write
            raise ComplaintConflict(
                f"complaint {complaint_id} was answered meanwhile; see `lanterne complaints list`"
            )
        return self.get(complaint_id)


def counts(engine: Engine) -> list[ComplaintCount]:
    """Complaints recorded so far per category and state, in the order of `CATEGORIES` and
    `STATES`: no summary, date or channel, which the record keeps for the overseers."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(_T.c.category, _T.c.state, func.count()).group_by(_T.c.category, _T.c.state)
            )
            found = {(r[0], r[1]): int(r[2]) for r in rows}
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    return [ComplaintCount(c, s, found[(c, s)]) for c in CATEGORIES for s in STATES if (c, s) in found]
