"""Operators' decisions (HO-01): every allowed and refused step of the state machine with its
message, the database refusing a dismissal without reason even by hand, one winner when two
operators decide at once, the audit trail, and the CLI's exit codes."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from lanterne.accountability.alerts import (
    AlertState,
    DecisionError,
    acknowledge,
    confirm,
    dismiss,
    history,
    list_alerts,
    state,
)
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from lanterne.store.tables import AlertStateRecord

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def add_alert(store: Store, id_: str, camera: str = "cam1", mode: str = "alerts", at: datetime = NOW) -> None:
    ev = Event(id_, EventType.ABANDONED_OBJECT, camera, "hall", 0.0, 5.0, 0.7, (0.1, 0.1, 0.3, 0.4))
    store.upsert_event(ev, at, mode)


@pytest.fixture
def site(db_url: str) -> tuple[Store, AuditLog]:
    store = Store.open(db_url)
    yield store, AuditLog(store.engine)
    store.close()


def _do(store: Store, audit: AuditLog, step: str, id_: str) -> object:
    if step == "ack":
        return acknowledge(store.engine, audit, id_, "op1", NOW)
    if step == "confirm":
        return confirm(store.engine, audit, id_, "op1", NOW, "monitoring")
    return dismiss(store.engine, audit, id_, "op1", NOW, "street_furniture")


# (steps taken before, step tried, resulting state or the refusal's words)
TABLE = [
    ((), "ack", AlertState.ACKNOWLEDGED),
    ((), "confirm", "is new: acknowledge it first"),
    ((), "dismiss", "is new: acknowledge it first"),
    (("ack",), "ack", "already acknowledged"),
    (("ack",), "confirm", AlertState.CONFIRMED),
    (("ack",), "dismiss", AlertState.DISMISSED),
    (("ack", "confirm"), "ack", "already confirmed"),
    (("ack", "confirm"), "confirm", "already confirmed"),
    (("ack", "confirm"), "dismiss", "already confirmed"),
    (("ack", "dismiss"), "ack", "already dismissed"),
    (("ack", "dismiss"), "confirm", "already dismissed"),
    (("ack", "dismiss"), "dismiss", "already dismissed"),
]


@pytest.mark.parametrize(("before", "step", "expected"), TABLE)
def test_state_machine(
    site: tuple[Store, AuditLog], before: tuple[str, ...], step: str, expected: AlertState | str
) -> None:
    store, audit = site
    add_alert(store, "a1")
    for b in before:
        _do(store, audit, b, "a1")
    was = state(store.engine, "a1")
    n_audit = len(audit.entries(action=Action.ALERT_STATE))
    if isinstance(expected, AlertState):
        _do(store, audit, step, "a1")
        assert state(store.engine, "a1") is expected
        records = audit.entries(action=Action.ALERT_STATE)
        assert len(records) == n_audit + 1
        last = records[-1]
        assert (last.object_type, last.object_id, last.user_id) == ("alert", "a1", "op1")
        assert (last.details["from"], last.details["to"]) == (str(was), str(expected))
    else:
        with pytest.raises(DecisionError, match=expected) as err:
            _do(store, audit, step, "a1")
        assert "\n" not in str(err.value)
        assert state(store.engine, "a1") is was
        assert len(audit.entries(action=Action.ALERT_STATE)) == n_audit
    assert len(history(store.engine, "a1")) == len(before) + isinstance(expected, AlertState)


@pytest.mark.parametrize(
    ("reason", "text", "words"),
    [
        (None, None, "needs a reason, one of reflection_or_light, street_furniture"),
        ("", None, "needs a reason"),
        ("glare", None, "'glare' is not one of"),
        ("other", None, "'other' needs a short text"),
        ("other", "   ", "'other' needs a short text"),
    ],
)
def test_dismiss_needs_a_reason(
    site: tuple[Store, AuditLog], reason: str | None, text: str | None, words: str
) -> None:
    store, audit = site
    add_alert(store, "a1")
    acknowledge(store.engine, audit, "a1", "op1", NOW)
    with pytest.raises(DecisionError, match=words):
        dismiss(store.engine, audit, "a1", "op1", NOW, reason, text)
    assert state(store.engine, "a1") is AlertState.ACKNOWLEDGED


def test_dismiss_other_with_text_and_reasons_recorded(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    add_alert(store, "a1")
    acknowledge(store.engine, audit, "a1", "op1", NOW)
    dismiss(store.engine, audit, "a1", "op2", NOW + timedelta(seconds=30), "other", "pigeons on the lens")
    steps = history(store.engine, "a1")
    assert [(s.state, s.user_id) for s in steps] == [
        (AlertState.ACKNOWLEDGED, "op1"),
        (AlertState.DISMISSED, "op2"),
    ]
    assert (steps[1].reason, steps[1].reason_text) == ("other", "pigeons on the lens")
    # The operator's words stay with the alert (deleted by retention), not in the year-long audit log.
    last = audit.entries(action=Action.ALERT_STATE)[-1]
    assert last.details["reason"] == "other" and "pigeons" not in json.dumps(last.details)


def test_confirm_needs_a_known_follow_up(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    add_alert(store, "a1")
    acknowledge(store.engine, audit, "a1", "op1", NOW)
    with pytest.raises(DecisionError, match="follow-up 'arrest' is not one of none, monitoring"):
        confirm(store.engine, audit, "a1", "op1", NOW, "arrest")
    confirm(store.engine, audit, "a1", "op1", NOW, "field_request")
    assert history(store.engine, "a1")[-1].follow_up == "field_request"


def test_unknown_and_evaluation_events_are_refused(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    add_alert(store, "replayed", mode="evaluation")
    with pytest.raises(DecisionError, match="does not exist"):
        acknowledge(store.engine, audit, "nope", "op1", NOW)
    with pytest.raises(DecisionError, match="comes from an evaluation"):
        acknowledge(store.engine, audit, "replayed", "op1", NOW)
    with pytest.raises(DecisionError, match="does not exist"):
        state(store.engine, "nope")
    assert list_alerts(store.engine) == []


def test_list_alerts_by_state_and_camera(site: tuple[Store, AuditLog]) -> None:
    store, audit = site
    for i, cam in enumerate(["cam1", "cam1", "cam2"]):
        add_alert(store, f"a{i}", camera=cam, at=NOW + timedelta(minutes=i))
    acknowledge(store.engine, audit, "a0", "op1", NOW)
    assert [a.id for a in list_alerts(store.engine)] == ["a2", "a1", "a0"]
    assert [a.id for a in list_alerts(store.engine, state="new")] == ["a2", "a1"]
    assert [a.id for a in list_alerts(store.engine, state=AlertState.ACKNOWLEDGED)] == ["a0"]
    assert [a.id for a in list_alerts(store.engine, state="new", camera="cam1")] == ["a1"]


@pytest.mark.parametrize(
    ("values", "ok"),
    [
        ({"state": "dismissed"}, False),
        ({"state": "dismissed", "reason": "glare"}, False),
        ({"state": "dismissed", "reason": "other"}, False),
        ({"state": "dismissed", "reason": "other", "reason_text": ""}, False),
        ({"state": "confirmed"}, False),
        ({"state": "confirmed", "follow_up": "arrest"}, False),
        ({"state": "closed"}, False),
        ({"state": "dismissed", "reason": "other", "reason_text": "x"}, True),
        ({"state": "confirmed", "follow_up": "none"}, True),
    ],
)
def test_database_refuses_a_decision_without_reason(
    site: tuple[Store, AuditLog], values: dict[str, str], ok: bool
) -> None:
    """HO-01's DB constraint: even SQL written by hand cannot record a dismissal without reason."""
    store, _ = site
    add_alert(store, "a1")
    stmt = insert(AlertStateRecord).values(event_id="a1", user_id="op1", ts=NOW, **values)
    if ok:
        with store.engine.begin() as conn:
            conn.execute(stmt)
        return
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(stmt)


@pytest.mark.parametrize("second", ["confirm", "dismiss"])
def test_two_operators_deciding_at_once_one_wins(site: tuple[Store, AuditLog], second: str) -> None:
    store, audit = site
    rounds = 4
    for r in range(rounds):
        add_alert(store, f"a{r}")
        acknowledge(store.engine, audit, f"a{r}", "op0", NOW)
    for r in range(rounds):
        barrier = threading.Barrier(2)
        results: list[str] = []

        def decide(
            op: str,
            step: str,
            id_: str = f"a{r}",
            barrier: threading.Barrier = barrier,
            results: list[str] = results,
        ) -> None:
            barrier.wait()
            try:
                if step == "confirm":
                    confirm(store.engine, audit, id_, op, NOW, "monitoring")
                else:
                    dismiss(store.engine, audit, id_, op, NOW, "test")
                results.append("won")
            except DecisionError as exc:
                assert "already" in str(exc) and "final" in str(exc)
                results.append("refused")

        threads = [
            threading.Thread(target=decide, args=("op1", "confirm")),
            threading.Thread(target=decide, args=("op2", second)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == ["refused", "won"]
        steps = history(store.engine, f"a{r}")
        assert [s.state for s in steps][:1] == [AlertState.ACKNOWLEDGED] and len(steps) == 2
    decisions = [e for e in audit.entries(action=Action.ALERT_STATE) if e.details["to"] != "acknowledged"]
    assert len(decisions) == rounds


def test_a_decision_the_audit_log_refuses_is_taken_back(
    site: tuple[Store, AuditLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, audit = site
    add_alert(store, "a1")

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(audit, "append", broken)
    with pytest.raises(RuntimeError):
        acknowledge(store.engine, audit, "a1", "op1", NOW)
    assert state(store.engine, "a1") is AlertState.NEW
    with store.engine.connect() as conn:
        assert conn.execute(select(AlertStateRecord.id)).first() is None


# --- CLI ------------------------------------------------------------------------------------

cli = CliRunner()


def write_config(tmp: Path, db_url: str) -> Path:
    data = {
        "store": {"url": db_url, "evidence_dir": "evidence"},
        "audit": {"key_path": "audit.key"},
        "cameras": [{"id": "cam1", "source": "x.mp4", "location": {"lat": 45.0, "lon": 4.0}}],
    }
    path = tmp / "site.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _one_line_error(output: str, words: str) -> None:
    assert words in output, output
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if line.strip()]) == 1, output


def test_cli_decisions(db_url: str, tmp_path: Path) -> None:
    cfg = str(write_config(tmp_path, db_url))
    store = Store.open(db_url)
    add_alert(store, "a1", at=datetime.now(UTC) - timedelta(hours=1))
    add_alert(store, "a2", at=datetime.now(UTC) - timedelta(hours=2))
    store.close()

    r = cli.invoke(app, ["alerts", "confirm", "a1", "--follow-up", "none", "--config", cfg, "--user", "op1"])
    assert r.exit_code == 2
    _one_line_error(r.output, "acknowledge it first")
    r = cli.invoke(app, ["alerts", "ack", "a1", "--config", cfg, "--user", "op1"])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["alerts", "dismiss", "a1", "--config", cfg, "--user", "op1"])
    assert r.exit_code == 2
    _one_line_error(r.output, "needs a reason, one of reflection_or_light")
    r = cli.invoke(app, ["alerts", "dismiss", "a1", "--reason", "other", "--config", cfg])
    assert r.exit_code == 2
    _one_line_error(r.output, "--text")
    r = cli.invoke(app, ["alerts", "confirm", "a1", "--config", cfg])
    assert r.exit_code == 2
    _one_line_error(r.output, "needs a follow-up")
    r = cli.invoke(
        app, ["alerts", "dismiss", "a1", "--reason", "owner_nearby", "--config", cfg, "--user", "op2"]
    )
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["alerts", "ack", "a1", "--config", cfg])
    assert r.exit_code == 2
    _one_line_error(r.output, "already dismissed by op2")
    r = cli.invoke(app, ["alerts", "ack", "zzz", "--config", cfg])
    assert r.exit_code == 2
    _one_line_error(r.output, "does not exist")

    r = cli.invoke(app, ["alerts", "history", "a1", "--config", cfg])
    assert r.exit_code == 0 and "owner_nearby" in r.output and "op2" in r.output
    r = cli.invoke(app, ["alerts", "list", "--state", "new", "--config", cfg])
    assert r.exit_code == 0 and "a2" in r.output and "a1" not in r.output
    r = cli.invoke(app, ["alerts", "list", "--state", "closed", "--config", cfg])
    assert r.exit_code == 2
    _one_line_error(r.output, "is not a state")
    r = cli.invoke(app, ["alerts", "precision", "--config", cfg], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if "abandoned_object" in line)
    assert "0.000" in row and "0.00–0.79" in row and "owner_nearby 1" in row
    r = cli.invoke(app, ["alerts", "precision", "--since-start", "--config", cfg])
    assert r.exit_code == 0 and "since start" in r.output
