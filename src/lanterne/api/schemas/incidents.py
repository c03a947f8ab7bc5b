"""Incidents and breaches in the console (RK-05, SC-05): what the list and an incident's page get,
and what a supervisor or the DPO sends to add a note, record a notification or close one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lanterne.accountability.incidents import Entry, Incident
from lanterne.api.schemas.common import iso_utc

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else iso_utc(ts)


class IncidentsQuery(BaseModel):
    """Unknown parameters are refused (422), never ignored."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["open", "closed"] | None = Field(None, description="Only this state; all when left out.")
    kind: Literal["detector_silent", "false_alarm_spike", "recall_miss", "breach", "manual"] | None = Field(
        None, description="Only this kind."
    )


class IncidentOut(BaseModel):
    id: int
    kind: str
    """`detector_silent`, `false_alarm_spike`, `recall_miss`, `breach` or `manual`."""
    state: str
    title: str
    summary: str
    owner: str
    cameras: list[str]
    detectors: list[str]
    detected_at: str
    opened_at: str
    opened_by: str
    deadline: str | None
    """A breach's 72-hour notification deadline; null for the other kinds."""
    overdue: bool
    """A breach whose authority was not told by its deadline."""
    notified_at: str | None
    closed_at: str | None
    closed_by: str | None
    cause: str | None
    remedy: str | None

    @classmethod
    def of(cls, i: Incident, now: datetime) -> IncidentOut:
        return cls(
            id=i.id,
            kind=i.kind,
            state=i.state,
            title=i.title,
            summary=i.summary,
            owner=i.owner,
            cameras=list(i.cameras),
            detectors=list(i.detectors),
            detected_at=iso_utc(i.detected_at),
            opened_at=iso_utc(i.opened_at),
            opened_by=i.opened_by,
            deadline=_iso(i.deadline),
            overdue=i.overdue(now),
            notified_at=_iso(i.notified_at),
            closed_at=_iso(i.closed_at),
            closed_by=i.closed_by,
            cause=i.cause,
            remedy=i.remedy,
        )


class EntryOut(BaseModel):
    at: str
    author: str
    step: str
    """`opened`, `evidence`, `note`, `notified` or `closed`."""
    body: str

    @classmethod
    def of(cls, e: Entry) -> EntryOut:
        return cls(at=iso_utc(e.at), author=e.author, step=e.step, body=e.body)


class IncidentDetail(IncidentOut):
    entries: list[EntryOut]
    """The timeline, oldest first."""
    template: str
    """The notification to send (Markdown): a breach gets the CNIL form's headings."""


class NotedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Text = Field(description="What was checked or done; no personal data.")
    owner: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)] | None = (
        Field(None, description="Hand the incident to this user id.")
    )


class NotifiedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["authority", "provider"]
    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] = Field(
        description="The recipient's receipt number, or how it was sent."
    )


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cause: Text = Field(description="What caused it.")
    remedy: Text = Field(description="What was done so that it does not happen again.")
