"""The complaint record (GV-07) on both backends: recorded and answered with an audit record
each, counted per category and state; the database itself refuses a category off the list or an
answered complaint without its answer; a step the audit log refuses does not stand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError

from lanterne.accountability.complaints import (
    CATEGORIES,
    CATEGORY_TITLES,
    ComplaintConflict,
    ComplaintError,
    Complaints,
    counts,
    personal_data,
)
from lanterne.audit import Action, AuditLog
from lanterne.core.errors import LanterneError
from lanterne.store import Store, create_engine_for
from lanterne.store.tables import ComplaintRecord

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def audit(store: Store, tmp_path: Path) -> AuditLog:
    return AuditLog(store.engine, key_path=tmp_path / "audit.key")


def test_complaints_are_counted_per_category_and_state_and_every_step_recorded(
    store: Store, audit: AuditLog
) -> None:
    register = Complaints(store.engine, audit, clock=lambda: T0)
    a = register.add(
        received_on=date(2026, 11, 2),
        channel="email",
        category="privacy",
        summary="Blur  too\nweak",
        by="dpo",
    )
    b = register.add(
        received_on=date(2026, 11, 30), channel="authority", category="privacy", summary="CNIL asks", by="dpo"
    )
    register.add(
        received_on=date(2026, 12, 1),
        channel="phone",
        category="misuse",
        summary="Use at a protest?",
        by="dpo",
    )
    assert a.summary == "Blur too weak"  # whitespace folded: one line in tables and CSV
    done = register.answer(b.id, answered_on=date(2026, 12, 5), answer="Report sent to the CNIL", by="dpo")
    assert (done.state, done.answered_on, done.answered_by) == ("answered", date(2026, 12, 5), "dpo")
    assert [(c.category, c.state, c.count) for c in counts(store.engine)] == [
        ("privacy", "open", 1),
        ("privacy", "answered", 1),
        ("misuse", "open", 1),
    ]
    assert [c.id for c in register.list()] == [3, 2, 1]  # newest received first
    assert [c.id for c in register.list(state="open", category="privacy")] == [a.id]
    with pytest.raises(ComplaintConflict):
        register.answer(b.id, answered_on=date(2026, 12, 6), answer="again", by="dpo")
    with pytest.raises(ComplaintError, match="unknown category 'faces'"):
        register.list(category="faces")
    steps = [(e.object_id, e.details["step"]) for e in audit.entries(action=Action.COMPLAINT)]
    assert steps == [("1", "recorded"), ("2", "recorded"), ("3", "recorded"), ("2", "answered")]
    assert set(CATEGORY_TITLES) == set(CATEGORIES)


def test_the_database_refuses_what_the_record_does_not_allow(store: Store) -> None:
    t = ComplaintRecord.__table__
    row = {
        "received_on": date(2026, 12, 1), "channel": "email", "category": "faces", "summary": "s",
        "state": "open", "recorded_at": T0, "recorded_by": "dpo",
    }  # fmt: skip
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(t).values(**row))
    with store.engine.begin() as conn:
        conn.execute(insert(t).values(**(row | {"category": "privacy"})))
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(update(t).values(state="answered"))  # answered without an answer


def test_a_complaint_the_audit_log_refuses_is_not_recorded(store: Store, tmp_path: Path) -> None:
    unmigrated = create_engine_for(f"sqlite:///{tmp_path / 'elsewhere.db'}")  # no audit table there
    with pytest.raises(LanterneError):
        Complaints(store.engine, AuditLog(unmigrated)).add(
            received_on=date(2026, 12, 1), channel="email", category="privacy", summary="s", by="dpo"
        )
    unmigrated.dispose()
    assert Complaints(store.engine, AuditLog(store.engine)).list() == []


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Camera 12 films a flat since 2026-12-05 21:40", None),
        ("reference 2026-000123, 14 cameras", None),
        ("write to a.b@mairie.example.fr", "an e-mail address"),
        ("tel 0612345678", "a phone number"),
        ("+33 6 12 34 56 78", "a phone number"),
        ("01.42.76.40.40", "a phone number"),
    ],
)
def test_contact_details_are_recognised(text: str, found: str | None) -> None:
    assert personal_data(text) == found
