"""The live wall: what a page asks to start a view, and what it is given to play it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lanterne.api.deps import PurposeText

OneLine = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]*$"),
]
Reference = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"),
]


class LiveStatusOut(BaseModel):
    available: bool
    webrtc: bool = Field(
        False,
        description="Whether tiles can play over WebRTC here; without it they play the fallback (MJPEG).",
    )
    reason: str | None = Field(
        None, description="Why there is no live view, or no WebRTC, when there is none."
    )
    heartbeat_seconds: float = Field(description="How often a playing tile confirms it still plays.")
    quiet_seconds: int = Field(description="A view not confirmed for this long ends as expired.")


class ViewIn(BaseModel):
    """Start watching a camera. The purpose is asked once per wall session by the page and sent
    with every tile (LG-02)."""

    model_config = ConfigDict(extra="forbid")
    purpose: PurposeText


class RawViewIn(BaseModel):
    """Remove privacy protection on one camera's live picture, under your permission."""

    model_config = ConfigDict(extra="forbid")
    purpose: PurposeText
    reason: OneLine = Field(description="Why the faces and plates must be seen (recorded).")
    reference: Reference = Field(description="The requisition or case number (recorded).")
    minutes: int = Field(5, ge=1, le=30, description="How long, 5 by default; renew with a new reason.")


class GrantOut(BaseModel):
    """What the page needs to play one view, and nothing more: the gateway, a token valid for this
    view only, the mountpoint and its pin as rotated for this viewer; for an anonymised view, the
    fallback's address too, played when WebRTC cannot be set up. Without a gateway on this
    console the gateway fields are null and the page plays the fallback."""

    view: int
    camera: str
    kind: str
    janus_url: str | None
    """The gateway: the console's relay (`/api/live/gateway`, a path on this origin) or `live.public_url`."""
    token: str | None
    mountpoint: int | None
    pin: str | None
    fallback_url: str | None = Field(
        None, description="The view as MJPEG (anonymised views only), a path on this origin."
    )
    heartbeat_seconds: float
    raw_until: datetime | None = None


class ViewOut(BaseModel):
    """A view watching now: the supervisors' "who watches what"."""

    view: int
    user: str
    camera: str
    kind: str
    purpose: str
    started_at: datetime
    last_seen: datetime
    raw_until: datetime | None = None
    reason: str | None = None
    reference: str | None = None


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$"
        ),
    ]
    layout: int = Field(description="1, 4, 9 or 16 tiles.")
    cameras: list[Annotated[str, StringConstraints(max_length=64)] | None] = Field(
        max_length=16, description="The camera on each tile, in order; null for an empty tile."
    )


class GroupOut(BaseModel):
    id: int
    title: str
    layout: int
    cameras: list[str | None]
    updated_at: datetime
