"""Access requests: recorded with their one-month deadline, answered or refused with a reason,
every step on the audit log under the request's number and never the requester's name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lanterne.accountability.requests import (
    RequestError,
    answered,
    check_range,
    deadline_for,
    get,
    overdue,
    refuse,
    register,
    requests,
)
from lanterne.audit import Action, AuditLog
from lanterne.store import Store

RECEIVED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 28, 17, 0, tzinfo=UTC), datetime(2026, 11, 28, 17, 30, tzinfo=UTC))


@pytest.fixture
def site(db_url: str) -> tuple[Store, AuditLog]:
    store = Store.open(db_url)
    yield store, AuditLog(store.engine)
    store.close()


def add(store: Store, audit: AuditLog, **kw: object) -> object:
    args = {
        "requester": "Jeanne Martin",
        "contact": "jeanne.martin@example.org",
        "window_start": WINDOW[0],
        "window_end": WINDOW[1],
        "place": "arrêt de bus quai nord",
        "description": "manteau rouge, attend le bus",
        "received_at": RECEIVED,
        "recorded_by": "agent-1",
    } | kw
    return register(store.engine, audit, **args)  # type: ignore[arg-type]


def test_a_request_is_due_one_month_after_receipt_and_shows_overdue_after(
    site: tuple[Store, AuditLog],
) -> None:
    store, audit = site
    r = add(store, audit)
    assert r.deadline == datetime(2026, 12, 30, 9, 0, tzinfo=UTC) and r.state == "open"  # type: ignore[attr-defined]
    assert overdue(store.engine, datetime(2026, 12, 30, 8, 0, tzinfo=UTC)) == []
    assert [o.id for o in overdue(store.engine, datetime(2026, 12, 31, tzinfo=UTC))] == [r.id]  # type: ignore[attr-defined]
    assert deadline_for(datetime(2026, 12, 15, tzinfo=UTC)) == datetime(2027, 1, 15, tzinfo=UTC)


def test_every_step_is_recorded_under_the_number_never_the_name(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    r1, r2 = add(store, audit), add(store, audit, requester="Paul Durand", contact="12 rue X")
    answered(store.engine, audit, r1.id, export_id="abc123", by="agent-1", now=RECEIVED)  # type: ignore[attr-defined]
    refuse(store.engine, audit, r2.id, reason="no camera covers that place", by="agent-2", now=RECEIVED)  # type: ignore[attr-defined]
    steps = [(e.object_id, e.details["step"]) for e in audit.entries(action=Action.ACCESS_REQUEST)]
    assert steps == [
        (str(r1.id), "received"),
        (str(r2.id), "received"),
        (str(r1.id), "answered"),
        (str(r2.id), "refused"),
    ]  # type: ignore[attr-defined]
    text = json.dumps(
        [e.__dict__ if hasattr(e, "__dict__") else str(e) for e in audit.entries()], default=str
    )
    for personal in ("Jeanne", "Martin", "Durand", "12 rue X", "example.org", "manteau"):
        assert personal not in text
    assert get(store.engine, r2.id).refusal_reason == "no camera covers that place"  # type: ignore[attr-defined]
    assert [r.state for r in requests(store.engine)] == ["answered", "refused"]


def test_refusal_needs_a_reason_and_a_closed_request_stays_closed(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    r = add(store, audit)
    with pytest.raises(RequestError, match="needs the reason"):
        refuse(store.engine, audit, r.id, reason=" ", by="a", now=RECEIVED)  # type: ignore[attr-defined]
    refuse(store.engine, audit, r.id, reason="outside retention", by="a", now=RECEIVED)  # type: ignore[attr-defined]
    with pytest.raises(RequestError, match="already refused"):
        answered(store.engine, audit, r.id, export_id="x", by="a", now=RECEIVED)  # type: ignore[attr-defined]
    with pytest.raises(RequestError, match="already refused"):
        check_range(get(store.engine, r.id), WINDOW[0], WINDOW[1])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"window_end": WINDOW[0] + timedelta(hours=7)}, "at most 6:00:00"),
        ({"window_end": WINDOW[0]}, "runs forward"),
        ({"contact": ""}, "how to answer"),
        ({"place": " "}, "the place"),
    ],
)
def test_a_request_must_say_enough(site: tuple[Store, AuditLog], kw: dict, message: str) -> None:
    store, audit = site
    with pytest.raises(RequestError, match=message):
        add(store, audit, **kw)
    assert requests(store.engine) == []


def test_an_answer_stays_inside_the_window(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    r = get(store.engine, add(store, audit).id)  # type: ignore[attr-defined]
    check_range(r, WINDOW[0] + timedelta(minutes=5), WINDOW[0] + timedelta(minutes=6))
    with pytest.raises(RequestError, match="must stay inside it"):
        check_range(r, WINDOW[0] - timedelta(minutes=1), WINDOW[0] + timedelta(minutes=6))
