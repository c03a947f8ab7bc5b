"""Access requests in the console (GDPR art. 15, TR-03): a request as the agent records it, its
refusal, its answer (a camera, a range inside the request's window, and the region where the
agent found the requester), and the list supervisors work from."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from lanterne.accountability.requests import AccessRequest
from lanterne.api.deps import PurposeText


def _utc(value: datetime) -> datetime:
    """A time without a zone is UTC, as everywhere in the API; one that cannot be written in UTC
    (year 1 in a zone east of Greenwich) is a refusal, not a server error."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range; give an ISO 8601 time") from None


def _one_line(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("write it as plain text on one line (no control characters)")
    return value


def _lines(value: str) -> str:
    if any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in value):
        raise ValueError("write it as plain text (no control characters but line breaks)")
    return value


UtcTime = Annotated[datetime, AfterValidator(_utc)]


# Required one-line fields, as long as their columns allow.
_ONE_LINE = AfterValidator(_one_line)
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _ONE_LINE]
Contact = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), _ONE_LINE]
Place = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), _ONE_LINE]


class RequestIn(BaseModel):
    """What the person says: who they are and how to answer them (kept in the request only, never
    on the audit log), when and where they were, and what would let the agent find them on the
    footage. Nothing here is searched: the agent looks by camera and time. Unknown fields are
    refused."""

    model_config = ConfigDict(extra="forbid")

    requester: Name = Field(description="The requester's name, to answer them.")
    contact: Contact = Field(description="How to answer them (address, e-mail).")
    window_start: UtcTime = Field(description="When they were there: from (ISO 8601).")
    window_end: UtcTime = Field(description="Until; at most 6 hours after the start.")
    place: Place = Field(description="Where they were.")
    description: Annotated[str, StringConstraints(max_length=2000), AfterValidator(_lines)] = Field(
        "", description="What they say would let the agent find them (clothing, what they did)."
    )
    received_at: UtcTime | None = Field(
        None, description="When the request arrived (default: now); its deadline is one month later."
    )


class RefusalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: PurposeText = Field(description="Why the request is refused; the requester is told it.")


class RegionIn(BaseModel):
    """Where the agent found the requester, in fractions of the frame: the person whose box is
    centred in it is shown as recorded, everyone else is hidden whole."""

    model_config = ConfigDict(extra="forbid")

    x0: Annotated[float, Field(ge=0.0, le=1.0)]
    y0: Annotated[float, Field(ge=0.0, le=1.0)]
    x1: Annotated[float, Field(ge=0.0, le=1.0)]
    y1: Annotated[float, Field(ge=0.0, le=1.0)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not (self.x0 < self.x1 and self.y0 < self.y1):
            raise ValueError("the region runs from its top-left corner (x0, y0) to its bottom-right (x1, y1)")
        return self


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        description="The camera where the agent found the requester."
    )
    start: UtcTime = Field(description="First instant (inside the request's window).")
    end: UtcTime = Field(description="Last instant; inside the window, at most 10 minutes later.")
    keep: RegionIn = Field(description="The region the agent marked around the requester.")


class RequestOut(BaseModel):
    id: int
    requester: str
    contact: str
    received_at: datetime
    deadline: datetime
    window_start: datetime
    window_end: datetime
    place: str
    description: str
    state: str
    """`open`, `answered` or `refused`."""
    overdue: bool
    """Open past its deadline (one month after receipt, GDPR art. 12(3))."""
    closed_at: datetime | None
    refusal_reason: str | None
    export_id: str | None

    @classmethod
    def of(cls, r: AccessRequest, now: datetime) -> RequestOut:
        return cls(
            id=r.id,
            requester=r.requester,
            contact=r.contact,
            received_at=r.received_at,
            deadline=r.deadline,
            window_start=r.window_start,
            window_end=r.window_end,
            place=r.place,
            description=r.description,
            state=r.state,
            overdue=r.overdue(now),
            closed_at=r.closed_at,
            refusal_reason=r.refusal_reason,
            export_id=r.export_id,
        )


class RequestsOut(BaseModel):
    overdue: int
    """Open requests past their deadline: what the console's link shows."""
    items: list[RequestOut]
    """Open requests first, the most urgent first; then the latest closed ones."""
