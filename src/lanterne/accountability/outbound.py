"""The outbox of confirmed alerts: what leaves the system for field and partner systems, and when.

Only a person's confirmation sends anything (EV-04): `alerts.confirm` calls `enqueue` inside the
transaction that records the decision, one row per configured destination, so the decision and
the promise to deliver it commit together, and an alert that is new, acknowledged or dismissed
has no row to send. Delivery happens later, outside the operator's request (the console's
delivery thread, `lanterne.runtime.outbound`), so a broker or partner that is down never slows a
confirmation.

The payload is fixed at the confirmation and holds what a field unit needs and nothing more
(legal-requirements: "a confirmed alert's type, camera, zone, time, follow-up only"): no picture,
no region of the image, no operator name or id. Each delivery, each give-up and each supervisor's
retry is an `outbound` audit record naming the alert and the destination (AC-06: a logged
channel).

>>> from datetime import UTC, datetime, timedelta
>>> from lanterne.config.schema import OutboundSettings
>>> s = OutboundSettings(backoff_seconds=5, max_backoff_seconds=60)
>>> [backoff(n, s).total_seconds() for n in (1, 2, 3, 5)]
[5.0, 10.0, 20.0, 60.0]
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from lanterne.audit import Action, AuditLog
from lanterne.config import Config
from lanterne.config.schema import OutboundSettings
from lanterne.core.errors import LanterneError
from lanterne.store.tables import EventRecord, OutboundRecord

MQTT = "mqtt"
WEBHOOK_PREFIX = "webhook:"
SYSTEM = "system"
"""The audit log's user for what the delivery thread does by itself."""


class OutboundError(LanterneError):
    """A retry the dead-letter list refuses: the message is not dead."""


class OutboundNotFound(OutboundError):  # noqa: N818 (reads as the answer it becomes: 404)
    """No such message, or its camera is outside the user's scope (told apart from nothing)."""


@dataclass(frozen=True, slots=True)
class Outbox:
    """Where a confirmation is to be sent: the site's name (a topic level and a payload field) and
    the destinations configured now."""

    site: str
    destinations: tuple[str, ...]


def outbox_for(cfg: Config) -> Outbox | None:
    """The configured destinations, or None when nothing is configured (nothing leaves)."""
    names = destinations(cfg.outbound)
    return Outbox(cfg.site, tuple(names)) if names else None


def destinations(settings: OutboundSettings) -> list[str]:
    """`mqtt` when a broker is configured, then `webhook:<id>` per webhook, in config order."""
    names = [MQTT] if settings.mqtt is not None else []
    return names + [WEBHOOK_PREFIX + w.id for w in settings.webhooks]


def recipient_of(destination: str) -> str:
    """The service a destination delivers to, as an authorisation names it (AC-06): a webhook's
    id, or `mqtt` for the broker.

    >>> recipient_of("webhook:police-municipale"), recipient_of("mqtt")
    ('police-municipale', 'mqtt')
    """
    return destination.removeprefix(WEBHOOK_PREFIX)


def check_destinations(cfg: Config, engine: Engine, audit: AuditLog, now: datetime | None = None) -> None:
    """Refuse, at configuration time (`lanterne serve` starts the delivery), a configured
    destination no authorisation in force names among its recipients (AC-06): recorded as
    `recipient_refused`, then `RecipientError` with one line. Nothing configured: nothing to check."""
    from lanterne.accountability.authorisation import Authorisations

    names = [recipient_of(d) for d in destinations(cfg.outbound)]
    if names:
        register = Authorisations(engine, audit, cfg.legal_end_date)
        register.check_recipients(names, channel="outbound", user_id=SYSTEM, at=now)


@dataclass(frozen=True, slots=True)
class Message:
    """One confirmed alert on its way to one destination."""

    id: int
    event_id: str
    destination: str
    payload: dict[str, Any]
    state: str
    """`pending`, `sent` or `dead` (`lanterne.store.tables.OUTBOUND_STATES`)."""
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None

    @property
    def camera(self) -> str:
        return str(self.payload["camera"])


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payload(ev: Any, site: str, follow_up: str, confirmed_at: datetime) -> dict[str, Any]:
    """What leaves, Frigate-style (`start_time`/`end_time` in Unix seconds beside ISO times): the
    situation, where and when, and what the operator decided; nothing that shows or names anyone.
    An alert still ongoing is sent with the end it had when confirmed."""
    return {
        "state": "confirmed",
        "id": ev.id,
        "type": ev.type,
        "site": site,
        "camera": ev.camera,
        "zone": ev.zone,
        "start": _iso(ev.start_ts),
        "end": _iso(ev.end_ts),
        "start_time": round(ev.start_ts.timestamp(), 3),
        "end_time": round(ev.end_ts.timestamp(), 3),
        "follow_up": follow_up,
        "confirmed_at": _iso(confirmed_at),
    }


def enqueue(conn: Connection, outbox: Outbox, event_id: str, follow_up: str, confirmed_at: datetime) -> None:
    """One pending row per destination, in the caller's transaction (the confirmation's)."""
    ev = conn.execute(
        select(
            EventRecord.id,
            EventRecord.type,
            EventRecord.camera,
            EventRecord.zone,
            EventRecord.start_ts,
            EventRecord.end_ts,
        ).where(EventRecord.id == event_id)
    ).one()
    body = payload(ev, outbox.site, follow_up, confirmed_at)
    conn.execute(
        insert(OutboundRecord),
        [
            {
                "event_id": event_id,
                "destination": d,
                "payload": body,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": confirmed_at,
                "created_at": confirmed_at,
            }
            for d in outbox.destinations
        ],
    )


def withdraw(conn: Connection, event_id: str) -> None:
    """Take back the rows of a confirmation the audit log refused (it no longer stands)."""
    conn.execute(
        delete(OutboundRecord).where(OutboundRecord.event_id == event_id, OutboundRecord.state == "pending")
    )


def _message(r: Any) -> Message:
    return Message(
        id=r.id,
        event_id=r.event_id,
        destination=r.destination,
        payload=dict(r.payload),
        state=r.state,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        created_at=r.created_at,
        sent_at=r.sent_at,
        last_error=r.last_error,
    )


def claim(engine: Engine, now: datetime, hold: timedelta, limit: int = 100) -> list[Message]:
    """Pending messages whose next attempt is due, oldest first, each held for `hold` by moving
    its next attempt forward: two deliverers (a second console, a restart while the first still
    runs) never send one message at once, and a deliverer that dies mid-send leaves the message
    to be tried again after `hold` (at least once, never lost)."""
    q = (
        select(*OutboundRecord.__table__.c)
        .where(OutboundRecord.state == "pending", OutboundRecord.next_attempt_at <= now)
        .order_by(OutboundRecord.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = [_message(r) for r in conn.execute(q)]
    claimed: list[Message] = []
    for m in rows:
        with engine.begin() as conn:
            won = conn.execute(
                update(OutboundRecord)
                .where(
                    OutboundRecord.id == m.id,
                    OutboundRecord.state == "pending",
                    OutboundRecord.next_attempt_at == m.next_attempt_at,
                )
                .values(next_attempt_at=now + hold)
            ).rowcount
        if won == 1:
            claimed.append(m)
    return claimed


def messages(
    engine: Engine, *, state: str | None = None, scope: Collection[str] = ("*",), limit: int = 500
) -> list[Message]:
    """Messages newest first, optionally in one state, of the cameras in `scope`."""
    q = select(*OutboundRecord.__table__.c).order_by(OutboundRecord.id.desc()).limit(limit)
    if state is not None:
        q = q.where(OutboundRecord.state == state)
    if "*" not in scope:
        q = q.join(EventRecord, EventRecord.id == OutboundRecord.event_id).where(
            EventRecord.camera.in_(sorted(scope))
        )
    with engine.connect() as conn:
        return [_message(r) for r in conn.execute(q)]


def backoff(attempts: int, settings: OutboundSettings) -> timedelta:
    """Wait after the `attempts`-th failure: doubling from `backoff_seconds`, capped."""
    seconds = settings.backoff_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.max_backoff_seconds))


def _record(audit: AuditLog, user_id: str, m: Message, outcome: str, **details: object) -> None:
    audit.append(
        user_id,
        Action.OUTBOUND,
        object_type="alert",
        object_id=m.event_id,
        recipient=m.destination,
        details={"outcome": outcome, "message": m.id, "camera": m.camera, **details},
    )


def mark_sent(engine: Engine, audit: AuditLog, m: Message, now: datetime) -> None:
    """The destination took the message: recorded in the outbox, then in the audit log."""
    with engine.begin() as conn:
        conn.execute(
            update(OutboundRecord)
            .where(OutboundRecord.id == m.id)
            .values(state="sent", attempts=m.attempts + 1, sent_at=now, last_error=None)
        )
    _record(audit, SYSTEM, m, "sent", attempts=m.attempts + 1)


def mark_failed(
    engine: Engine, audit: AuditLog, m: Message, now: datetime, error: str, settings: OutboundSettings
) -> str:
    """An attempt failed: wait longer, or after the last attempt move it to the dead-letter list
    (recorded). Returns the new state. `error` must name no secret (the caller's job)."""
    attempts = m.attempts + 1
    error = error[:500]
    dead = attempts >= settings.max_attempts
    with engine.begin() as conn:
        conn.execute(
            update(OutboundRecord)
            .where(OutboundRecord.id == m.id)
            .values(
                state="dead" if dead else "pending",
                attempts=attempts,
                last_error=error,
                next_attempt_at=now if dead else now + backoff(attempts, settings),
            )
        )
    if dead:
        _record(audit, SYSTEM, m, "dead", attempts=attempts, error=error)
    return "dead" if dead else "pending"


def retry(
    engine: Engine, audit: AuditLog, message_id: int, user_id: str, now: datetime, scope: Collection[str]
) -> Message:
    """A supervisor puts a dead message back for delivery, with a fresh count of attempts. The
    retry is recorded before the row moves, so no retried message leaves unrecorded."""
    with engine.connect() as conn:
        r = conn.execute(select(*OutboundRecord.__table__.c).where(OutboundRecord.id == message_id)).first()
    m = _message(r) if r is not None else None
    if m is None or ("*" not in scope and m.camera not in scope):
        raise OutboundNotFound(f"no outbound message {message_id} in your scope; see the dead-letter list")
    if m.state != "dead":
        raise OutboundError(
            f"outbound message {message_id} is {m.state}, not dead; only dead letters are retried"
        )
    _record(audit, user_id, m, "retry", attempts=m.attempts)
    with engine.begin() as conn:
        conn.execute(
            update(OutboundRecord)
            .where(OutboundRecord.id == m.id, OutboundRecord.state == "dead")
            .values(state="pending", attempts=0, next_attempt_at=now)
        )
    return _message_by_id(engine, m.id)


def _message_by_id(engine: Engine, message_id: int) -> Message:
    with engine.connect() as conn:
        return _message(
            conn.execute(select(*OutboundRecord.__table__.c).where(OutboundRecord.id == message_id)).one()
        )


def counts(engine: Engine) -> dict[tuple[str, str], int]:
    """Messages per (destination, state), for `/metrics`."""
    q = select(OutboundRecord.destination, OutboundRecord.state, func.count()).group_by(
        OutboundRecord.destination, OutboundRecord.state
    )
    with engine.connect() as conn:
        return {(d, s): int(n) for d, s, n in conn.execute(q)}
