"""The DPO's queue: what the automatic review of the audit log flagged (LG-06).

- `GET /api/review/findings?state=open` lists findings, newest first (every state without
  `state`): the rule, the account concerned (a user id), the window, the audit records that show
  it by sequence number, a one-line explanation, and how the DPO handled it. Each listing is
  recorded (`log_review`, object `review_queue`): a read of what the review drew from the log.
- `POST /api/review/findings/{id}` with `{"state": "acknowledged" | "closed", "note": "…"}`:
  the DPO is looking into it, or is done with it (a note is required to close). Recorded
  (`log_review`, the note as purpose) before the finding moves.

Only the role that audits (`auditor`, the DPO's: audit log and statistics, no footage) reaches
either; anyone else is refused and the refusal recorded. Operators and supervisors never see the
queue: the findings are about the people who watch. The page is `/console/review`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from lanterne.accountability.log_review import (
    REVIEWER_ROLES,
    Finding,
    FindingConflict,
    FindingNotFound,
    decide,
    findings,
)
from lanterne.api.deps import AuditDep, CurrentUser, EngineDep, MaybePurpose, Now, Writer, require_roles
from lanterne.api.schemas.common import ERRORS, iso_utc
from lanterne.audit import Action

router = APIRouter(tags=["review"], responses=ERRORS)

Reviewer = Annotated[CurrentUser, Depends(require_roles(*REVIEWER_ROLES))]
"""The DPO (role `auditor`); anyone else is refused (403, recorded)."""


class FindingOut(BaseModel):
    id: int
    rule: str
    """`bulk_export`, `daily_volume`, `wide_search`, `repeated_refusals`, `privacy_left_open`,
    `no_habilitation`, `outside_shift`, `replayed_by_many` or `log_access`."""
    title: str
    """The rule in words."""
    account: str | None
    """The user id concerned; null when several are (the same footage replayed by many)."""
    window_start: str
    window_end: str
    evidence: list[int]
    """Sequence numbers of the audit records that show it."""
    explanation: str
    state: str
    """`open`, `acknowledged` or `closed`."""
    note: str | None
    created_at: str
    updated_at: str
    """When a later review last added records to it."""
    decided_at: str | None
    decided_by: str | None

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        assert f.id is not None and f.created_at is not None and f.updated_at is not None
        return cls(
            id=f.id,
            rule=f.rule,
            title=f.title,
            account=f.account,
            window_start=iso_utc(f.window_start),
            window_end=iso_utc(f.window_end),
            evidence=list(f.evidence),
            explanation=f.explanation,
            state=f.state,
            note=f.note,
            created_at=iso_utc(f.created_at),
            updated_at=iso_utc(f.updated_at),
            decided_at=iso_utc(f.decided_at) if f.decided_at is not None else None,
            decided_by=f.decided_by,
        )


class FindingsQuery(BaseModel):
    """Unknown parameters are refused (422), never ignored."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["open", "acknowledged", "closed"] | None = Field(
        None, description="Only findings in this state; all when left out."
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["acknowledged", "closed"]
    note: MaybePurpose = Field(
        None, description="What was found and what was done; required to close. Recorded as it is typed."
    )


@router.get(
    "/api/review/findings", summary="Findings of the audit log's review, newest first (auditors; recorded)"
)
def list_findings(
    user: Reviewer, engine: EngineDep, audit: AuditDep, query: Annotated[FindingsQuery, Query()]
) -> list[FindingOut]:
    found = findings(engine, state=query.state)
    # Recorded before it is handed over, like every read of the log: the queue holds account ids
    # and record numbers drawn from it (`log_access` judges who reads it).
    audit.append(
        user.id,
        Action.LOG_REVIEW,
        object_type="review_queue",
        details={"step": "list", "state": query.state, "findings": len(found)},
    )
    return [FindingOut.of(f) for f in found]


@router.post(
    "/api/review/findings/{finding_id}",
    summary="Acknowledge or close a finding with a note (auditors; recorded)",
)
def decide_finding(
    finding_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="The finding's number.")],
    body: DecisionIn,
    user: Reviewer,
    _csrf: Writer,
    engine: EngineDep,
    audit: AuditDep,
    now: Now,
) -> FindingOut:
    try:
        f = decide(engine, audit, finding_id, state=body.state, note=body.note, by=user.id, now=now)
    except FindingNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except FindingConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return FindingOut.of(f)
