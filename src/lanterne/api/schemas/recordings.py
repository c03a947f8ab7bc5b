"""A camera's recording in the console: its timeline over a window, and the query of a stretch to
play (issue 11, item 4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lanterne.api.deps import MaybePurpose
from lanterne.video.playback import DEFAULT_FPS


def _utc(value: datetime) -> datetime:
    """A time without a zone is read as UTC, as everywhere in the API (the page sends `Z` times)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class TimelineQuery(BaseModel):
    """Unknown parameters are refused (422), never ignored, as in every console query."""

    model_config = ConfigDict(extra="forbid")

    start: UtcTime = Field(description="Start of the window (ISO 8601; UTC when no zone is given).")
    end: UtcTime = Field(description="End of the window; at most 24 h after start.")
    purpose: MaybePurpose = Field(None, description="Why you look through this recording (recorded).")


class VideoQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: UtcTime = Field(description="First instant to play (ISO 8601; UTC when no zone is given).")
    end: UtcTime = Field(description="Last instant; at most 10 minutes after start.")
    purpose: MaybePurpose = Field(None, description="Why you view this recording (recorded).")
    unmasked_reference: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None,
        description=(
            "View without anonymisation under your permission to remove privacy protection, citing "
            "this requisition or case reference (recorded before the first frame; masks stay)."
        ),
    )
    fps: Annotated[float, Field(ge=0.5, le=30.0)] = Field(
        DEFAULT_FPS,
        description=(
            "Frames rendered per second of recording. A page playing at 4x asks for a quarter of "
            "its rate: the server anonymises the frames shown, not those skipped."
        ),
    )


class SpanOut(BaseModel):
    kind: Literal["recorded", "lost", "gap"]
    """`recorded`: footage that can be played; `lost`: a segment a crash left unreadable; `gap`:
    nothing was recorded (camera offline, recorder stopped, or deleted by retention)."""
    start: datetime
    end: datetime


class RecordingAlertOut(BaseModel):
    """An alert of the camera that started inside the window: a marker on the timeline."""

    id: str
    type: str
    start: datetime
    end: datetime
    state: str


class TimelineOut(BaseModel):
    camera: str
    start: datetime
    end: datetime
    record: str
    """The camera's `record` setting: `continuous` or `events`."""
    spans: list[SpanOut]
    alerts: list[RecordingAlertOut]
    max_video_seconds: int
    """The longest stretch one video request may ask for: the page asks for the next as it plays."""


class ExportIn(BaseModel):
    """A stretch of a recording handed over: to whom, why, until when; unknown fields refused."""

    model_config = ConfigDict(extra="forbid")

    start: UtcTime = Field(description="First instant (ISO 8601; UTC when no zone is given).")
    end: UtcTime = Field(description="Last instant; at most 10 minutes after start from the console.")
    purpose: Annotated[str, Field(min_length=1, max_length=1000)] = Field(
        description="Why it is handed over (a requisition, a case): recorded and burned in."
    )
    recipient: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="Who receives the copy: recorded and burned into every frame."
    )
    expires: UtcTime | None = Field(None, description="When the copy must be destroyed (default: 30 days).")
    unmasked_reference: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None,
        description=(
            "Export without anonymisation under your permission to remove privacy protection, "
            "citing this requisition or case reference (recorded; masks stay)."
        ),
    )
