"""`GET /api/vocabulary`: the event titles, follow-ups and dismissal reasons, for the console's
pages to fill their selects and titles from the one Python definition of each (the lists the
store's CHECK constraints and the decision rules use)."""

from __future__ import annotations

from fastapi import APIRouter

from lanterne.accountability.alerts import (
    DISMISS_REASON_LABELS,
    DISMISS_REASONS,
    FOLLOW_UP_LABELS,
    FOLLOW_UPS,
)
from lanterne.api.deps import LoggedIn
from lanterne.api.schemas.vocabulary import EventTypeTerm, Term, Vocabulary
from lanterne.rules import EVENT_TITLES

router = APIRouter(tags=["console"])


def vocabulary() -> Vocabulary:
    """The vocabulary in the server's order; a code without a label is shown as itself."""
    return Vocabulary(
        event_types=[EventTypeTerm(id=str(t), title=title) for t, title in EVENT_TITLES.items()],
        follow_ups=[Term(id=f, label=FOLLOW_UP_LABELS.get(f, f)) for f in FOLLOW_UPS],
        dismissal_reasons=[Term(id=r, label=DISMISS_REASON_LABELS.get(r, r)) for r in DISMISS_REASONS],
    )


@router.get("/api/vocabulary", response_model=Vocabulary, summary="Event titles, follow-ups, reasons")
def get_vocabulary(user: LoggedIn) -> Vocabulary:
    """For any logged-in user: the words are not secret, but the console is not public."""
    return vocabulary()
