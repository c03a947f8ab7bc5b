"""Supervisors' stops (HO-03)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lanterne.accountability.stops import Stop
from lanterne.core.types import EventType


class StopRequest(BaseModel):
    """Unknown fields are refused (422): a typo must not silently widen or narrow a stop."""

    model_config = ConfigDict(extra="forbid")

    scope: Literal["detector", "camera", "site"]
    camera: str | None = Field(None, max_length=64, description="Required for `detector` and `camera`.")
    type: EventType | None = Field(None, description="Required for `detector`.")
    reason: str = Field(..., min_length=1, max_length=1000, description="Why inference must stop.")


class StopOut(BaseModel):
    id: int
    scope: str
    camera: str | None
    type: str | None
    reason: str
    started_at: datetime
    started_by: str
    lifted_at: datetime | None
    lifted_by: str | None
    active: bool

    @classmethod
    def of(cls, s: Stop) -> StopOut:
        return cls(
            id=s.id,
            scope=s.scope,
            camera=s.camera,
            type=str(s.type) if s.type is not None else None,
            reason=s.reason,
            started_at=s.started_at,
            started_by=s.started_by,
            lifted_at=s.lifted_at,
            lifted_by=s.lifted_by,
            active=s.active,
        )
