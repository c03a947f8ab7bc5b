"""Access requests (GDPR art. 15, TR-03): a person asks for the images of themselves.

The request records what the person says (when, where, what they wore or did is theirs to tell,
in the description) and the one-month deadline. An agent then looks for it by camera and time
only, never by face: Lanterne has no way to search for a person. The answer is an export of the
range where everyone but the requester is hidden (`lanterne.runtime.requests`); a refusal needs
its reason. Every step is on the audit log under the request's number, never the requester's
name, which stays in this table only, needed to answer them.

>>> from datetime import UTC, datetime
>>> deadline_for(datetime(2026, 1, 31, 10, tzinfo=UTC)).date().isoformat()
'2026-02-28'
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.store.tables import AccessRequestRecord

MAX_WINDOW = timedelta(hours=6)
"""The longest time window one request may cover: a person says when they were there."""
_T = AccessRequestRecord.__table__


class RequestError(LanterneError):
    """A request that cannot be recorded, answered or refused as asked."""


@dataclass(frozen=True, slots=True)
class AccessRequest:
    id: int
    requester: str
    contact: str
    received_at: datetime
    deadline: datetime
    window_start: datetime
    window_end: datetime
    place: str
    description: str
    state: str
    closed_at: datetime | None
    refusal_reason: str | None
    export_id: str | None

    def overdue(self, now: datetime) -> bool:
        return self.state == "open" and now > self.deadline


def deadline_for(received: datetime) -> datetime:
    """One month after receipt (GDPR art. 12(3)), on the same day of the next month, or its last
    day when the next month is shorter."""
    year, month = (received.year + 1, 1) if received.month == 12 else (received.year, received.month + 1)
    day = min(received.day, calendar.monthrange(year, month)[1])
    return received.replace(year=year, month=month, day=day)


def _row(r: object) -> AccessRequest:
    return AccessRequest(**{name: getattr(r, name) for name in AccessRequest.__dataclass_fields__})


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise RequestError(f"an access request needs {what}")
    return value


def register(
    engine: Engine,
    audit: AuditLog,
    *,
    requester: str,
    contact: str,
    window_start: datetime,
    window_end: datetime,
    place: str,
    description: str,
    received_at: datetime,
    recorded_by: str,
) -> AccessRequest:
    """Record a request as received; its deadline is one month later."""
    if not window_end > window_start or window_end - window_start > MAX_WINDOW:
        raise RequestError(
            f"the time window runs forward and covers at most {MAX_WINDOW}; ask the person to narrow it"
        )
    values = {
        "requester": _text(requester, "the requester's name"),
        "contact": _text(contact, "how to answer the requester"),
        "received_at": received_at,
        "deadline": deadline_for(received_at),
        "window_start": window_start,
        "window_end": window_end,
        "place": _text(place, "the place"),
        "description": description.strip(),
        "state": "open",
        "recorded_by": recorded_by,
    }
    with engine.begin() as conn:
        new_id = conn.execute(insert(_T).values(**values).returning(_T.c.id)).scalar_one()
    audit.append(
        recorded_by,
        Action.ACCESS_REQUEST,
        object_type="access_request",
        object_id=str(new_id),
        time_from=window_start,
        time_to=window_end,
        details={"step": "received", "deadline": values["deadline"].isoformat()},
    )
    return get(engine, new_id)


def get(engine: Engine, request_id: int) -> AccessRequest:
    with engine.connect() as conn:
        row = conn.execute(select(_T).where(_T.c.id == request_id)).first()
    if row is None:
        raise RequestError(f"access request {request_id} does not exist; see `lanterne requests list`")
    return _row(row)


def requests(engine: Engine, *, open_only: bool = False) -> list[AccessRequest]:
    """Requests by deadline, the most urgent first."""
    q = select(_T).order_by(_T.c.deadline, _T.c.id)
    if open_only:
        q = q.where(_T.c.state == "open")
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(q)]


def overdue(engine: Engine, now: datetime) -> list[AccessRequest]:
    return [r for r in requests(engine, open_only=True) if r.overdue(now)]


def _close(engine: Engine, request_id: int, **values: object) -> None:
    with engine.begin() as conn:
        done = conn.execute(
            update(_T).where(_T.c.id == request_id, _T.c.state == "open").values(**values)
        ).rowcount
    if not done:
        state = get(engine, request_id).state
        raise RequestError(f"access request {request_id} is already {state}")


def refuse(engine: Engine, audit: AuditLog, request_id: int, *, reason: str, by: str, now: datetime) -> None:
    """Close a request without images, for the reason the requester will be told."""
    reason = _text(reason, "the reason it is refused (the requester is told it)")
    _close(engine, request_id, state="refused", refusal_reason=reason, closed_at=now, closed_by=by)
    audit.append(
        by,
        Action.ACCESS_REQUEST,
        object_type="access_request",
        object_id=str(request_id),
        purpose=reason,
        details={"step": "refused"},
    )


def answered(
    engine: Engine, audit: AuditLog, request_id: int, *, export_id: str, by: str, now: datetime
) -> None:
    """Close a request with the export that answers it."""
    _close(engine, request_id, state="answered", export_id=export_id, closed_at=now, closed_by=by)
    audit.append(
        by,
        Action.ACCESS_REQUEST,
        object_type="access_request",
        object_id=str(request_id),
        details={"step": "answered", "export": export_id},
    )


def check_range(request: AccessRequest, start: datetime, end: datetime) -> None:
    """An answer shows only what the request asked about, and only while it is open."""
    if request.state != "open":
        raise RequestError(f"access request {request.id} is already {request.state}")
    if start < request.window_start or end > request.window_end or not end > start:
        raise RequestError(
            f"access request {request.id} covers {request.window_start.astimezone(UTC):%Y-%m-%d %H:%M}"
            f"-{request.window_end.astimezone(UTC):%H:%M} UTC; the answer must stay inside it"
        )
