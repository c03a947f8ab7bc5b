"""The alert queue and the alert detail (issue 3, items 3 and 4)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lanterne.accountability.alerts import AlertState
from lanterne.api.deps import MaybePurpose
from lanterne.api.schemas.requests import UtcTime


class AlertQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: AlertState | None = None
    camera: str | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    before: UtcTime | None = Field(
        None, description="only alerts that started before (ISO time; out of range is refused)"
    )


class ClipQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: MaybePurpose = Field(None, description="Why you view this recording (recorded).")


class PrecisionOut(BaseModel):
    """The detector's measured precision on this camera over `days` (PM-01): how often operators
    found its alerts right. `value` is null until someone decided one."""

    confirmed: int
    decided: int
    value: float | None
    days: int


class AlertOut(BaseModel):
    """An alert as the queue shows it: a machine suggestion (`label`) until a person decides."""

    id: str
    type: str
    camera: str
    zone: str
    start: str
    """ISO 8601, UTC (`Z`)."""
    end: str
    stored_at: str
    ongoing: bool
    confidence: float
    region: list[float]
    """x0, y0, x1, y1 as fractions of the image."""
    state: str
    label: str
    precision: PrecisionOut
    snapshot_url: str
    clip_url: str
    page_url: str


class StepOut(BaseModel):
    state: str
    user_id: str
    ts: str
    reason: str | None
    reason_text: str | None
    follow_up: str | None


class HistoryOut(BaseModel):
    id: str
    raised: str
    steps: list[StepOut]


class FollowUp(BaseModel):
    follow_up: str | None = None


class Dismissal(BaseModel):
    reason: str | None = None
    text: str | None = None
