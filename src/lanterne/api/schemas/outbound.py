"""What the dead-letter list shows of an outbound message: where it goes and how its delivery
went, and the alert it carries by id, type, camera and zone (its payload, nothing more)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from lanterne.accountability.outbound import Message
from lanterne.api.schemas.common import iso_utc


class OutboundOut(BaseModel):
    id: int
    alert_id: str
    destination: str
    """`mqtt` or `webhook:<id>`."""
    type: str
    camera: str
    zone: str
    follow_up: str
    state: str
    """`pending`, `sent` or `dead`."""
    attempts: int
    last_error: str | None
    created_at: str
    next_attempt_at: str
    sent_at: str | None

    @classmethod
    def of(cls, m: Message) -> OutboundOut:
        sent: datetime | None = m.sent_at
        return cls(
            id=m.id,
            alert_id=m.event_id,
            destination=m.destination,
            type=str(m.payload["type"]),
            camera=m.camera,
            zone=str(m.payload["zone"]),
            follow_up=str(m.payload["follow_up"]),
            state=m.state,
            attempts=m.attempts,
            last_error=m.last_error,
            created_at=iso_utc(m.created_at),
            next_attempt_at=iso_utc(m.next_attempt_at),
            sent_at=iso_utc(sent) if sent is not None else None,
        )
