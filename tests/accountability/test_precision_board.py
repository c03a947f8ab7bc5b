"""The alert list's precomputed precision (issue 12 item 6): one grouped query gives every
detector's figures, equal to `precision` per detector (live alerts and what retention left in the
aggregates), and the board shared by requests serves its table until it is due, recounts one
detector at once after a decision, and never lets two readers recount together."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from lanterne.accountability.precision import PrecisionBoard, Verdicts, precision, verdicts
from lanterne.accountability.retention import purge
from lanterne.audit import AuditLog
from lanterne.config.schema import RetentionSettings
from lanterne.core.types import EventType
from lanterne.store import Store
from tests.accountability.test_precision import AO, T0, add, decide, scripted
from tests.support.console import CAMERAS as CONSOLE_CAMERAS
from tests.support.console import NOW as CONSOLE_NOW
from tests.support.console import Console, add_event

FIRE = EventType.FIRE


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store.open(db_url)
    yield s
    s.close()


def seeded(store: Store, tmp_path: Path) -> AuditLog:
    """Two cameras, two types, decisions of every kind, one alert outside the window, and a month deleted by retention into the aggregates."""
    audit = AuditLog(store.engine)
    scripted(store, audit, start=T0, prefix="old")
    purge(store, tmp_path / "evidence", RetentionSettings(evidence_days=30), audit, T0 + timedelta(days=31))
    scripted(store, audit, start=T0 + timedelta(days=20), prefix="a")
    scripted(store, audit, start=T0 + timedelta(days=25), camera="cam2", prefix="b")
    add(store, "f1", T0 + timedelta(days=26), "cam2", FIRE)
    decide(store, audit, "f1", "confirm", T0 + timedelta(days=26))
    add(store, "f2", T0 + timedelta(days=26), "cam2", FIRE)
    decide(store, audit, "f2", "ack", T0 + timedelta(days=26))
    return audit


@pytest.mark.parametrize("days", [30, 60])
def test_one_query_gives_every_detectors_precision(store: Store, tmp_path: Path, days: int) -> None:
    seeded(store, tmp_path)
    now = T0 + timedelta(days=35)
    table = verdicts(store.engine, now, days)
    assert set(table) == {("cam1", str(AO)), ("cam2", str(AO)), ("cam2", str(FIRE))}
    for (camera, type_), v in table.items():
        p = precision(store.engine, camera=camera, type=EventType(type_), now=now, days=days)
        assert (v.confirmed, v.dismissed, v.precision) == (p.confirmed, p.dismissed, p.precision)
    # 60 days reach the month retention moved into the aggregates; 30 days do not.
    assert table[("cam1", str(AO))] == (Verdicts(12, 6) if days == 60 else Verdicts(6, 3))
    assert table[("cam2", str(FIRE))] == Verdicts(1, 0)  # acknowledged only: not a verdict
    assert verdicts(store.engine, now, days, camera="cam2", type=FIRE) == {
        ("cam2", str(FIRE)): Verdicts(1, 0)
    }


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_board_serves_its_table_until_due_and_a_decision_shows_at_once(store: Store) -> None:
    audit = AuditLog(store.engine)
    scripted(store, audit)
    now = T0 + timedelta(days=1)
    ticks = Ticks()
    board = PrecisionBoard(store.engine, days=30, ttl_s=10.0, clock=ticks)
    assert board.get("cam1", AO, now) == Verdicts(6, 3)
    assert board.get("cam9", AO, now) == Verdicts()  # no decision: unknown, not 0 %

    add(store, "late", T0 + timedelta(hours=3))
    decide(store, audit, "late", "confirm", T0 + timedelta(hours=3))
    ticks.t = 9.0
    assert board.get("cam1", AO, now) == Verdicts(6, 3)  # not due yet: shared, not recounted
    ticks.t = 10.5
    assert board.get("cam1", AO, now) == Verdicts(7, 3)  # due: recounted

    add(store, "later", T0 + timedelta(hours=4))
    decide(store, audit, "later", "street_furniture", T0 + timedelta(hours=4))
    assert board.refresh("cam1", AO, now) == Verdicts(7, 4)
    assert board.get("cam1", AO, now) == Verdicts(7, 4)  # the decider's console sees it at once


def test_one_reader_recounts_while_the_others_read_the_previous_table(store: Store) -> None:
    audit = AuditLog(store.engine)
    scripted(store, audit)
    now = T0 + timedelta(days=1)
    ticks = Ticks()
    board = PrecisionBoard(store.engine, days=30, ttl_s=10.0, clock=ticks)
    board.get("cam1", AO, now)
    counted = threading.Event()
    release = threading.Event()
    real = board._recount

    def slow(now_: object) -> dict[tuple[str, str], Verdicts]:
        counted.set()
        release.wait(10)
        return real(now_)  # type: ignore[arg-type]

    board._recount = slow  # type: ignore[method-assign]
    ticks.t = 11.0
    add(store, "late", T0 + timedelta(hours=3))
    decide(store, audit, "late", "confirm", T0 + timedelta(hours=3))
    first = threading.Thread(target=board.get, args=("cam1", AO, now))
    first.start()
    assert counted.wait(10)
    # While the first reader recounts, another is answered from the previous table, unblocked.
    assert board.get("cam1", AO, now) == Verdicts(6, 3)
    release.set()
    first.join(10)
    assert board.get("cam1", AO, now) == Verdicts(7, 3)


@pytest.mark.usefixtures("cheap_hashes")
def test_the_alert_list_shows_a_decision_on_its_detector_at_once(console: Console) -> None:
    for i in range(3):
        add_event(console.store, f"q{i}", CONSOLE_CAMERAS[0], at=CONSOLE_NOW - timedelta(minutes=i))
    h = console.as_user("oper")
    listed = console.client.get("/api/alerts").json()
    assert {a["id"]: a["precision"]["decided"] for a in listed} == {"q0": 0, "q1": 0, "q2": 0}
    assert console.client.post("/api/alerts/q0/ack", headers=h).status_code == 200
    r = console.client.post("/api/alerts/q0/confirm", json={"follow_up": "monitoring"}, headers=h)
    assert r.status_code == 200 and r.json()["precision"] == {
        "confirmed": 1,
        "decided": 1,
        "value": 1.0,
        "days": 30,
    }
    # The board was built before the decision and is not due yet: the decision patched it.
    again = {a["id"]: a["precision"] for a in console.client.get("/api/alerts").json()}
    assert again["q1"] == again["q2"] == r.json()["precision"]
