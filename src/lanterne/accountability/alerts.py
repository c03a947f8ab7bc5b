"""Operators' decisions on alerts: `new → acknowledged → confirmed | dismissed` (HO-01).

An alert is a machine's suggestion; only a person turns it into a fact. The operator first
acknowledges it (someone is looking), then lifts the doubt: *confirm* with the follow-up they chose,
or *dismiss* with the reason the detector was wrong. Skipping the acknowledgement is refused, so the
history always shows that a person looked before deciding; a decision is final, so the published
precision cannot be polished afterwards. The reasons are what makes precision useful: "reflection
or light" and "street furniture" point at different fixes (DG-06).

Nothing is ever dispatched. `follow_up` records what the operator decided to do (call a patrol,
emergency services); Lanterne never acts on it, sends nothing, calls no one (EV-04: no automated
action, loi 2023-380 art. 10). Events of mode `evaluation` (a recorded clip replayed by `lanterne
analyze`) are not alerts and cannot be decided.

Each step is one row in `alert_states` (a history, never updated) and one `ALERT_STATE` audit
record. Two operators deciding the same alert at once: the check of the current state and the
insert run in one transaction that holds a lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL `SELECT … FOR
UPDATE` on the event row), so exactly one wins and the other is told who did.

>>> from datetime import UTC, datetime
>>> from lanterne.audit import AuditLog
>>> from lanterne.store import Store
>>> from lanterne.core.types import Event, EventType
>>> store = Store.open("sqlite://")
>>> audit = AuditLog(store.engine)
>>> now = datetime.now(UTC)
>>> store.upsert_event(Event("e1", EventType.FIRE, "cam1", "all", 0, 2, 0.8, (0, 0, 1, 1)), now, "alerts")
>>> _ = acknowledge(store.engine, audit, "e1", "op1", now)
>>> _ = dismiss(store.engine, audit, "e1", "op1", now, reason="reflection_or_light")
>>> str(state(store.engine, "e1"))
'dismissed'
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.sql import Select

from lanterne.accountability.outbound import Outbox, enqueue, withdraw
from lanterne.accountability.precision import ALERT_MODE
from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.core.types import EventType
from lanterne.store.db import locked_write
from lanterne.store.tables import DISMISS_REASONS, FOLLOW_UPS, AlertStateRecord, EventRecord, EvidenceRecord


class AlertState(StrEnum):
    NEW = "new"
    """No human step yet (no row in `alert_states`)."""
    ACKNOWLEDGED = "acknowledged"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"


TRANSITIONS: dict[AlertState, frozenset[AlertState]] = {
    AlertState.NEW: frozenset({AlertState.ACKNOWLEDGED}),
    AlertState.ACKNOWLEDGED: frozenset({AlertState.CONFIRMED, AlertState.DISMISSED}),
    AlertState.CONFIRMED: frozenset(),
    AlertState.DISMISSED: frozenset(),
}
"""Every allowed step. Anything else is refused with a message saying what to do instead."""


class DecisionError(LanterneError):
    """A decision that the state machine or the rules of a decision refuse."""


@dataclass(frozen=True, slots=True)
class Step:
    """One human step on an alert, as recorded."""

    state: AlertState
    user_id: str
    ts: datetime
    reason: str | None = None
    reason_text: str | None = None
    follow_up: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as an operator's list shows it: the situation and where it stands, nothing else."""

    id: str
    type: EventType
    camera: str
    zone: str
    start: datetime
    end: datetime
    confidence: float
    state: AlertState
    region: tuple[float, float, float, float]
    """Where in the image (x0, y0, x1, y1, as fractions of its size)."""
    ongoing: bool
    stored_at: datetime
    """When the pipeline stored it: the live queue's order of arrival."""


FOLLOW_UP_LABELS: dict[str, str] = {
    "none": "none",
    "monitoring": "monitoring",
    "field_request": "field request",
    "emergency_services": "emergency services",
}
"""What the console calls each of `FOLLOW_UPS` (same keys, same order): served by
`GET /api/vocabulary` so that no page keeps its own copy of the list."""
DISMISS_REASON_LABELS: dict[str, str] = {
    "reflection_or_light": "reflection or light",
    "street_furniture": "street furniture",
    "person_at_rest": "person at rest",
    "owner_nearby": "owner nearby",
    "test": "test",
    "other": "other (say what)",
}
"""What the console calls each of `DISMISS_REASONS` (same keys, same order); `other` asks for the
text that a dismissal for that reason must carry (HO-01)."""


def _reasons() -> str:
    return ", ".join(DISMISS_REASONS)


def _follow_ups() -> str:
    return ", ".join(FOLLOW_UPS)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(UTC)


def _last_step(conn: Connection, event_id: str) -> Step | None:
    r = conn.execute(
        select(*AlertStateRecord.__table__.c)
        .where(AlertStateRecord.event_id == event_id)
        .order_by(AlertStateRecord.id.desc())
        .limit(1)
    ).first()
    return _step(r) if r is not None else None


def _step(r: Any) -> Step:
    return Step(
        state=AlertState(r.state),
        user_id=r.user_id,
        ts=r.ts,
        reason=r.reason,
        reason_text=r.reason_text,
        follow_up=r.follow_up,
    )


def _event(conn: Connection, event_id: str, lock: bool) -> Any:
    q = select(EventRecord.id, EventRecord.mode, EventRecord.camera, EventRecord.type).where(
        EventRecord.id == event_id
    )
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    r = conn.execute(q).first()
    if r is None:
        raise DecisionError(
            f"alert {event_id!r} does not exist (wrong id, or deleted by retention); "
            "see `lanterne alerts list`"
        )
    if r.mode != ALERT_MODE:
        raise DecisionError(
            f"event {event_id!r} comes from an evaluation (a replayed clip), not from live alerting; "
            "only alerts are acknowledged, confirmed or dismissed"
        )
    return r


def _refusal(event_id: str, current: Step | None, to: AlertState) -> str:
    if current is None:
        return (
            f"alert {event_id!r} is new: acknowledge it first (`lanterne alerts ack {event_id}`), "
            f"then {'confirm' if to is AlertState.CONFIRMED else 'dismiss'} it"
        )
    when = current.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if current.state is AlertState.ACKNOWLEDGED:
        return (
            f"alert {event_id!r} is already acknowledged (by {current.user_id} at {when}); "
            "confirm or dismiss it"
        )
    return (
        f"alert {event_id!r} was already {current.state} by {current.user_id} at {when}; "
        "a decision is final and cannot be changed"
    )


def _move(
    engine: Engine,
    audit: AuditLog,
    event_id: str,
    user_id: str,
    now: datetime,
    to: AlertState,
    *,
    reason: str | None = None,
    reason_text: str | None = None,
    follow_up: str | None = None,
    outbox: Outbox | None = None,
) -> Step:
    if not user_id or not user_id.strip():
        raise DecisionError("a decision needs the operator's user id; pass --user")
    now = _aware(now)
    # No table lock on PostgreSQL: `_event` locks the event row, so decisions on different
    # alerts do not wait for each other; SQLite has one write lock and takes it before the read.
    with locked_write(engine, None) as conn:
        ev = _event(conn, event_id, lock=True)
        current = _last_step(conn, event_id)
        frm = current.state if current is not None else AlertState.NEW
        if to not in TRANSITIONS[frm]:
            raise DecisionError(_refusal(event_id, current, to))
        row_id = conn.execute(
            insert(AlertStateRecord)
            .values(
                event_id=event_id,
                state=str(to),
                user_id=user_id,
                ts=now,
                reason=reason,
                reason_text=reason_text,
                follow_up=follow_up,
            )
            .returning(AlertStateRecord.id)
        ).scalar_one()
        # The event's own copy of its current state, in the same transaction as the step: what a
        # search filters on at scale (`events.state`, migration 0011).
        conn.execute(update(EventRecord).where(EventRecord.id == event_id).values(state=str(to)))
        if to is AlertState.CONFIRMED and outbox is not None and follow_up is not None:
            # The promise to send commits with the decision (outbox pattern): sent later by the
            # console's delivery thread, never inside the operator's request (docs/integration.md).
            enqueue(conn, outbox, event_id, follow_up, now)
    details: dict[str, object] = {"from": str(frm), "to": str(to), "camera": ev.camera, "type": ev.type}
    if reason is not None:
        details["reason"] = reason
    if reason_text is not None:
        # The free text is the operator's words about a scene: it stays in the decision row, which
        # retention deletes with the alert, and only its length goes to the audit log, which is
        # kept for a year and must hold no personal data.
        details["reason_text_chars"] = len(reason_text)
    if follow_up is not None:
        details["follow_up"] = follow_up
    try:
        audit.append(user_id, Action.ALERT_STATE, object_type="alert", object_id=event_id, details=details)
    except BaseException:
        # A decision stands only once it is in the audit log (the same rule as authorisations):
        # the log refused it, so the step is taken back and the error raised.
        with engine.begin() as conn:
            conn.execute(delete(AlertStateRecord).where(AlertStateRecord.id == row_id))
            withdraw(conn, event_id)
            # Whatever step is now the latest (another operator's, taken meanwhile, included).
            latest = (
                select(AlertStateRecord.state)
                .where(AlertStateRecord.event_id == event_id)
                .order_by(AlertStateRecord.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            conn.execute(update(EventRecord).where(EventRecord.id == event_id).values(state=latest))
        raise
    return Step(to, user_id, now, reason, reason_text, follow_up)


def acknowledge(engine: Engine, audit: AuditLog, event_id: str, user_id: str, now: datetime) -> Step:
    """Record that an operator has seen the alert and is looking into it."""
    return _move(engine, audit, event_id, user_id, now, AlertState.ACKNOWLEDGED)


def confirm(
    engine: Engine,
    audit: AuditLog,
    event_id: str,
    user_id: str,
    now: datetime,
    follow_up: str,
    outbox: Outbox | None = None,
) -> Step:
    """The operator confirms the situation is real and records what they decided to do.

    `follow_up` is recorded, never acted on: Lanterne dispatches nothing (EV-04). With an
    `outbox` (`outbound.outbox_for(cfg)`), the confirmed alert is queued for the configured
    destinations in the same transaction: informing field and partner systems of what a person
    confirmed, which they act on or not.
    """
    if follow_up not in FOLLOW_UPS:
        raise DecisionError(
            f"follow-up {follow_up!r} is not one of {_follow_ups()}; pass --follow-up with one of them"
        )
    return _move(
        engine, audit, event_id, user_id, now, AlertState.CONFIRMED, follow_up=follow_up, outbox=outbox
    )


def dismiss(
    engine: Engine,
    audit: AuditLog,
    event_id: str,
    user_id: str,
    now: datetime,
    reason: str | None,
    reason_text: str | None = None,
) -> Step:
    """The operator lifts the doubt: the detector was wrong, and `reason` says how."""
    if not reason:
        raise DecisionError(f"a dismissal needs a reason, one of {_reasons()}; pass --reason")
    if reason not in DISMISS_REASONS:
        raise DecisionError(f"reason {reason!r} is not one of {_reasons()}; pass --reason with one of them")
    text = reason_text.strip() if reason_text else None
    if reason == "other" and not text:
        raise DecisionError("reason 'other' needs a short text saying what it was; pass --text")
    if text is not None and len(text) > 500:
        raise DecisionError(f"the reason text is {len(text)} characters long; shorten it to 500")
    return _move(engine, audit, event_id, user_id, now, AlertState.DISMISSED, reason=reason, reason_text=text)


def state(engine: Engine, event_id: str) -> AlertState:
    """Where the alert stands now (`new` until someone acknowledges it)."""
    with engine.connect() as conn:
        _event(conn, event_id, lock=False)
        last = _last_step(conn, event_id)
    return last.state if last is not None else AlertState.NEW


def history(engine: Engine, event_id: str) -> list[Step]:
    """Every human step on the alert, oldest first (empty while it is new)."""
    with engine.connect() as conn:
        _event(conn, event_id, lock=False)
        rows = conn.execute(
            select(*AlertStateRecord.__table__.c)
            .where(AlertStateRecord.event_id == event_id)
            .order_by(AlertStateRecord.id)
        )
        return [_step(r) for r in rows]


def _alerts(scope: Collection[str] = ("*",)) -> tuple[Select[Any], Any]:
    """Alerts of the cameras in `scope` (`"*"`: every camera) with their current state, and the
    state column to filter on: the one definition of "an alert in scope", for every list below.
    The state is the event's own copy of its latest step (`events.state`), which the decision's
    transaction writes: no join over the whole history."""
    q = (
        select(
            EventRecord.id,
            EventRecord.type,
            EventRecord.camera,
            EventRecord.zone,
            EventRecord.start_ts,
            EventRecord.end_ts,
            EventRecord.confidence,
            EventRecord.x0,
            EventRecord.y0,
            EventRecord.x1,
            EventRecord.y1,
            EventRecord.ongoing,
            EventRecord.created_at,
            EventRecord.state,
        )
        .select_from(EventRecord)
        .where(EventRecord.mode == ALERT_MODE)
    )
    if "*" not in scope:
        q = q.where(EventRecord.camera.in_(sorted(scope)))
    return q, EventRecord.state


def _alert(r: Any) -> Alert:
    return Alert(
        id=r.id,
        type=EventType(r.type),
        camera=r.camera,
        zone=r.zone,
        start=r.start_ts,
        end=r.end_ts,
        confidence=float(r.confidence),
        state=AlertState(r.state) if r.state else AlertState.NEW,
        region=(float(r.x0), float(r.y0), float(r.x1), float(r.y1)),
        ongoing=bool(r.ongoing),
        stored_at=r.created_at,
    )


def list_alerts(
    engine: Engine,
    *,
    state: AlertState | str | None = None,
    camera: str | None = None,
    limit: int = 200,
    scope: Collection[str] = ("*",),
    before: datetime | None = None,
) -> list[Alert]:
    """Alerts, newest first, optionally only those in one state, from one camera, of the cameras
    in `scope`, or that started before `before` (naive: UTC)."""
    q, current = _alerts(scope)
    if camera is not None:
        q = q.where(EventRecord.camera == camera)
    if state is not None:
        st = AlertState(state)
        q = q.where(current.is_(None)) if st is AlertState.NEW else q.where(current == str(st))
    if before is not None:
        q = q.where(EventRecord.start_ts < (before if before.tzinfo else before.replace(tzinfo=UTC)))
    q = q.order_by(EventRecord.start_ts.desc(), EventRecord.id).limit(limit)
    with engine.connect() as conn:
        return [_alert(r) for r in conn.execute(q)]


def find_alert(engine: Engine, alert_id: str) -> Alert | None:
    """The alert with this id, whatever its camera (the caller checks the scope), or None when
    there is none (or the event is an evaluation, not an alert)."""
    with engine.connect() as conn:
        r = conn.execute(_alerts()[0].where(EventRecord.id == alert_id)).first()
    return _alert(r) if r is not None else None


def last_step_id(engine: Engine) -> int:
    """The id of the latest decision step (0 before any): where a live view starts following."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(AlertStateRecord.id))).scalar() or 0)


@dataclass(frozen=True, slots=True)
class AlertChanges:
    """What a live view has not shown yet (`alert_changes`)."""

    stored: list[Alert]
    """Alerts stored since the view's last look, oldest first."""
    decided: list[Alert]
    """Alerts, not among `stored`, that someone took a step on since then."""
    last_step: int
    """The latest step id seen: the next look starts after it."""


def alert_changes(
    engine: Engine, scope: Collection[str], since: datetime, skip: Collection[str], after_step: int
) -> AlertChanges:
    """Alerts of `scope` stored at or after `since` (but not those in `skip`: already shown), then
    those whose state changed in a step after `after_step`, so every open console shows who has
    taken an alert.

    `>=` on the storage time with the ids already shown at that instant: two alerts stored in the
    same microsecond are both shown, and none twice. At most 100 new alerts and 500 steps a look.
    """
    q = _alerts(scope)[0]
    with engine.connect() as conn:
        stored = [
            _alert(r)
            for r in conn.execute(
                q.where(EventRecord.created_at >= since).order_by(EventRecord.created_at).limit(100)
            )
            if r.id not in skip
        ]
        steps = conn.execute(
            select(AlertStateRecord.event_id, AlertStateRecord.id)
            .where(AlertStateRecord.id > after_step)
            .order_by(AlertStateRecord.id)
            .limit(500)
        ).all()
        ids = sorted({r.event_id for r in steps} - {a.id for a in stored})
        decided = [_alert(r) for r in conn.execute(q.where(EventRecord.id.in_(ids)))] if ids else []
    return AlertChanges(stored, decided, max((r.id for r in steps), default=after_step))


def evidence_file(engine: Engine, alert_id: str, kind: str) -> str | None:
    """The stored path (relative to the evidence directory) of the alert's latest `kind` of
    evidence (`snapshot`, `clip`), or None."""
    with engine.connect() as conn:
        return conn.execute(
            select(EvidenceRecord.path)
            .where(EvidenceRecord.event_id == alert_id, EvidenceRecord.kind == kind)
            .order_by(EvidenceRecord.id.desc())
            .limit(1)
        ).scalar()
