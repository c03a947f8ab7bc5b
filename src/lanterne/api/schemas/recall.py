"""Blinded recall audits in the console (PM-03): what a supervisor sends to start one, to mark
what they saw and to finish a window, and what they get back.

While an audit is open, nothing here carries an event of the system: `matched_event` is null,
`unmarked` and `results` are null. They are filled once the audit is closed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from lanterne.accountability.recall import (
    DEFAULT_SECONDS,
    DEFAULT_TOLERANCE,
    DEFAULT_WINDOWS,
    MAX_SECONDS,
    MAX_TOLERANCE,
    MAX_WINDOWS,
    MIN_SECONDS,
    Mark,
    RecallAudit,
    RecallFigure,
    Results,
    UnmarkedAlert,
    Window,
)
from lanterne.api.deps import MaybePurpose
from lanterne.api.schemas.recordings import UtcTime
from lanterne.video.playback import DEFAULT_FPS

CameraId = Annotated[str, Field(min_length=1, max_length=64)]


class AuditIn(BaseModel):
    """A new audit, reviewed by whoever starts it. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    cameras: Annotated[list[CameraId], Field(min_length=1, max_length=100)] = Field(
        description="The cameras to draw windows from; each must record continuously and be in your scope."
    )
    start: UtcTime = Field(
        description="Start of the range to draw from (ISO 8601; UTC when no zone is given)."
    )
    end: UtcTime = Field(description="End of the range; clipped to now and to what retention still keeps.")
    windows: Annotated[int, Field(ge=1, le=MAX_WINDOWS)] = Field(
        DEFAULT_WINDOWS, description="How many windows to draw."
    )
    seconds: Annotated[int, Field(ge=MIN_SECONDS, le=MAX_SECONDS)] = Field(
        DEFAULT_SECONDS, description="Length of each window, in seconds."
    )
    tolerance: Annotated[float, Field(ge=0, le=MAX_TOLERANCE)] = Field(
        DEFAULT_TOLERANCE,
        description="How far (s) before an alert's start or after its end a mark still matches it.",
    )


class MarkIn(BaseModel):
    """A situation seen in the window: its type, when, and optionally where. No free text."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[str, Field(min_length=1, max_length=32)] = Field(
        description="One of the 8 event types (GET /api/vocabulary)."
    )
    at: Annotated[float, Field(ge=0, le=MAX_SECONDS)] = Field(
        description="Seconds from the window's start (approximate is fine: the tolerance absorbs it)."
    )
    zone: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="The camera's zone it happened in, when you can tell."
    )


class DoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nothing: bool = Field(
        False, description="True: nothing of the 8 types happened in the window (it must have no mark)."
    )


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: MaybePurpose = Field(
        None, description="Why it is closed before every window was reviewed (recorded)."
    )


class VideoQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fps: Annotated[float, Field(ge=0.5, le=30.0)] = Field(
        DEFAULT_FPS, description="Frames rendered per second of recording."
    )


class ReviewCameraOut(BaseModel):
    """A camera an audit may draw from: in your scope and recording continuously."""

    id: str
    name: str
    zones: list[str]


class MarkOut(BaseModel):
    id: int
    type: str
    at: float
    zone: str | None
    matched_event: str | None
    """The alert the mark was matched to, once the audit is closed; null before, or when missed."""

    @classmethod
    def of(cls, m: Mark, closed: bool) -> MarkOut:
        return cls(
            id=m.id, type=str(m.type), at=m.at, zone=m.zone, matched_event=m.matched_event if closed else None
        )


class UnmarkedOut(BaseModel):
    """An alert raised in a reviewed window that no mark matched: a candidate for a precision review."""

    window: int
    event_id: str
    type: str
    zone: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, u: UnmarkedAlert) -> UnmarkedOut:
        return cls(window=u.window, event_id=u.event_id, type=u.type, zone=u.zone, start=u.start, end=u.end)


class WindowOut(BaseModel):
    seq: int
    camera: str
    camera_name: str
    zones: list[str]
    start: datetime
    end: datetime
    seconds: float
    reviewed_at: datetime | None
    marks: list[MarkOut]
    unmarked: list[UnmarkedOut] | None
    """Once the audit is closed, for a reviewed window; null before."""
    unblinded: bool | None
    """Once closed: the reviewer had looked at one of the window's alerts elsewhere (not blind)."""

    @classmethod
    def of(cls, w: Window, closed: bool, name: str, zones: list[str]) -> WindowOut:
        return cls(
            seq=w.seq,
            camera=w.camera,
            camera_name=name,
            zones=zones,
            start=w.start,
            end=w.end,
            seconds=w.seconds,
            reviewed_at=w.reviewed_at,
            marks=[MarkOut.of(m, closed) for m in w.marks],
            unmarked=[UnmarkedOut.of(u) for u in w.unmarked] if closed and w.unmarked is not None else None,
            unblinded=w.unblinded if closed else None,
        )


class FigureOut(BaseModel):
    key: str
    """The event type (per detector), the camera id (per camera), or `all`."""
    windows: int
    marks: int
    """Situations marked where the camera was set to detect their type."""
    found: int
    """Of those, the ones an alert matched."""
    unwatched: int
    """Situations of a type the camera was not set to detect: not in the ratio."""
    recall: float | None
    interval: tuple[float, float] | None
    """95 % Wilson interval; null when nothing was marked."""

    @classmethod
    def of(cls, f: RecallFigure) -> FigureOut:
        return cls(
            key=f.key,
            windows=f.windows,
            marks=f.marks,
            found=f.found,
            unwatched=f.unwatched,
            recall=f.recall,
            interval=f.interval,
        )


class ResultsOut(BaseModel):
    windows: int
    reviewed: int
    overall: FigureOut
    by_type: list[FigureOut]
    by_camera: list[FigureOut]
    unblinded: int
    """Reviewed windows whose alerts the reviewer had looked at elsewhere: their marks were not blind."""

    @classmethod
    def of(cls, r: Results) -> ResultsOut:
        return cls(
            windows=r.windows,
            reviewed=r.reviewed,
            unblinded=r.unblinded,
            overall=FigureOut.of(r.overall),
            by_type=[FigureOut.of(f) for f in r.by_type],
            by_camera=[FigureOut.of(f) for f in r.by_camera],
        )


class AuditOut(BaseModel):
    id: int
    state: str
    """`open` (being reviewed, no alert shown) or `closed` (scored)."""
    reviewer: str
    you_review: bool
    created_by: str
    created_at: datetime
    range_start: datetime
    range_end: datetime
    cameras: list[str]
    window_seconds: int
    tolerance: float
    seed: str
    """What the draw used: the same seed over the same recording index draws the same windows."""
    reviewed: int
    closed_at: datetime | None
    closed_by: str | None
    note: str | None
    windows: list[WindowOut]
    results: ResultsOut | None
    """Once closed; null while open (any figure would unblind the review)."""


class AuditSummaryOut(BaseModel):
    id: int
    state: str
    reviewer: str
    you_review: bool
    cameras: list[str]
    created_at: datetime
    windows: int
    reviewed: int
    closed_at: datetime | None
    overall: FigureOut | None
    """Once closed; null while open."""

    @classmethod
    def of(cls, a: RecallAudit, user_id: str, overall: RecallFigure | None) -> AuditSummaryOut:
        return cls(
            id=a.id,
            state=a.state,
            reviewer=a.reviewer,
            you_review=a.reviewer == user_id,
            cameras=list(a.cameras),
            created_at=a.created_at,
            windows=len(a.windows),
            reviewed=a.reviewed,
            closed_at=a.closed_at,
            overall=FigureOut.of(overall) if overall is not None else None,
        )
