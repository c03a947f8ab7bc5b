"""The words of the console: what each event type, follow-up and dismissal reason is called.

The browser builds its selects and titles from these instead of keeping copies of the server's
lists, so a new event type or reason needs no change in the page scripts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EventTypeTerm(BaseModel):
    """One event type: `id` is what the API and the store use, `title` what a person reads."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str


class Term(BaseModel):
    """One code a decision records (a follow-up, a dismissal reason) and its human label."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str


class Vocabulary(BaseModel):
    """`GET /api/vocabulary`: each list in the server's order, which is the order to offer them."""

    model_config = ConfigDict(frozen=True)

    event_types: list[EventTypeTerm]
    follow_ups: list[Term]
    dismissal_reasons: list[Term]
