"""Operating envelopes (EV-05): the registry against the docs, the verdicts, and the gate that keeps
a camera outside its envelope from alerting until an override is recorded, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lanterne.accountability.authorisation import Authorisations, gates_for
from lanterne.accountability.envelope import (
    NOT_CHECKED,
    OUTSIDE_ENVELOPE,
    EnvelopeError,
    record_check,
    record_override,
    status_of,
)
from lanterne.accountability.transparency import public_data, render_html
from lanterne.audit import Action, AuditLog
from lanterne.config import parse_config
from lanterne.core.types import EventType
from lanterne.rules import RULES
from lanterne.rules.envelope import ENVELOPES, Measured, PersonBox, assess, envelope_table
from lanterne.runtime.demo import DEMO_CONFIG
from tests.support.console import masks_checked

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"
ZI, PD, CD = EventType.ZONE_INTRUSION, EventType.PERSON_DOWN, EventType.CROWD_DENSITY
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def test_every_rule_declares_an_envelope_and_its_doc_carries_the_same_table() -> None:
    assert set(ENVELOPES) == set(RULES)
    for t, envelope in ENVELOPES.items():
        doc = (DOCS / f"{t}.md").read_text(encoding="utf-8")
        assert envelope_table(envelope) in doc, f"docs/events/{t}.md: envelope table differs from the code"
        bounds = [envelope.min_luma, envelope.min_fps, envelope.min_frame_height]
        assert all(b.value > 0 and b.source for b in bounds)
    assert EventType.WEAPON not in ENVELOPES
    assert "## Operating envelope" in (DOCS / "weapon.md").read_text(encoding="utf-8")


def test_a_doc_table_edited_by_hand_no_longer_matches() -> None:
    """The check above can fail: a bound changed in the page alone is not the generated table."""
    table = envelope_table(ENVELOPES[ZI])
    assert table.replace("| 55 px |", "| 40 px |") != table
    assert table.replace("| 55 px |", "| 40 px |") not in (DOCS / "zone_intrusion.md").read_text(
        encoding="utf-8"
    )


@pytest.mark.parametrize(
    ("t", "measured", "status", "why"),
    [
        (ZI, Measured(82.0, 101, 120.0, 5.0, 576), "inside", ""),
        (ZI, Measured(40.0, 30, 120.0, 5.0, 576), "outside", "person height 40 px < 55 px"),
        (ZI, Measured(82.0, 30, 60.0, 5.0, 576), "outside", "light (mean luma) 60 < 100"),
        (ZI, Measured(82.0, 30, 120.0, 4.9, 576), "inside", ""),  # timestamps jitter, not a slower camera
        (ZI, Measured(82.0, 30, 120.0, 2.5, 576), "outside", "analysis rate 2.5 fps < 5 fps"),
        (ZI, Measured(82.0, 30, 120.0, 5.0, 360), "outside", "frame height 360 px < 480 px"),
        (ZI, Measured(None, 0, 120.0, 5.0, 576), "undetermined", "no person seen"),
        (ZI, Measured(None, 0, 50.0, 5.0, 576), "outside", "light"),
        (PD, Measured(82.0, 101, 120.0, 5.0, 576), "outside", "82 px < 130 px"),
        (EventType.CROWD_MOVEMENT, Measured(82.0, 101, 120.0, 5.0, 576), "outside", "5.0 fps < 10 fps"),
        (EventType.FIRE, Measured(None, 0, 120.0, 5.0, 432), "inside", ""),  # reads no person
    ],
)
def test_assess(t: EventType, measured: Measured, status: str, why: str) -> None:
    verdict = assess(ENVELOPES[t], measured)
    assert verdict.status == status
    assert why in "; ".join(verdict.reasons)
    assert bool(verdict.reasons) == (status != "inside")


@pytest.fixture
def audit(db_url: str) -> Iterator[AuditLog]:
    log = AuditLog.open(db_url)
    yield log
    log.close()


# People of the PETS clip in the crossroads and on the lawn of the demo camera: 82 px high, as
# measured there (`lanterne envelope check` on vtest.avi).
PETS_PEOPLE = [PersonBox(0.3 + 0.01 * i, 0.4, 82.0) for i in range(12)] + [PersonBox(0.2, 0.8, 82.0)]


def test_a_camera_outside_an_envelope_does_not_alert_that_type_until_an_override(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = parse_config(DEMO_CONFIG)
    cam = cfg.cameras[0]
    Authorisations(audit.engine, audit, clock=lambda: T0).add(
        "AP-E", legal_basis="Loi", authority="Préfet", valid_from=T0, valid_until=T0 + timedelta(days=1),
        cameras=[cam.id], event_types=["zone_intrusion", "person_down", "crowd_density"], user_id="u-1",
    )  # fmt: skip
    masks_checked(cfg, audit)
    clock = lambda: T0 + timedelta(hours=1)  # noqa: E731
    # Never checked: alerting as before, with a warning naming the command.
    with caplog.at_level(logging.WARNING, logger="lanterne.accountability.envelope"):
        [gate] = gates_for(cfg, audit.engine, audit, clock=clock).values()
    assert gate.allowed(PD, 0.0) and gate.allowed(ZI, 0.0)
    assert "lanterne envelope check pets-crossroads" in caplog.text
    assert all(s.status == NOT_CHECKED for s in status_of(audit, [cam])[cam.id].values())

    with pytest.raises(EnvelopeError, match="never checked"):
        record_override(audit, cam, PD, "a long enough reason for it", "u-dpo")
    statuses = record_check(audit, cam, PETS_PEOPLE, 120.0, 5.0, 576, "u-tech")
    assert statuses[ZI].status == "inside" and statuses[CD].status == "inside"
    assert statuses[PD].status == "outside" and statuses[PD].measured is not None
    assert statuses[PD].measured.person_height_px == 82.0
    [check] = audit.entries(action=Action.ENVELOPE_CHECK)
    assert check.user_id == "u-tech" and check.details["types"]["person_down"]["status"] == "outside"

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="lanterne.accountability.envelope"):
        [gate] = gates_for(cfg, audit.engine, audit, clock=clock).values()
    assert gate.allowed(ZI, 0.0) and not gate.allowed(PD, 0.0)
    refused = [
        e for e in audit.entries(action=Action.ALERTING_REFUSED) if e.details["reason"] == OUTSIDE_ENVELOPE
    ]
    assert [r.details["event_types"] for r in refused] == [["abandoned_object", "person_down"]]
    [line] = [r.getMessage() for r in caplog.records]
    assert "outside the operating envelope of abandoned_object, person_down" in line
    assert "82 px < 130 px" in line and "lanterne envelope override" in line

    with pytest.raises(EnvelopeError, match="say why"):
        record_override(audit, cam, PD, "ok", "u-dpo")
    with pytest.raises(EnvelopeError, match="no override needed"):
        record_override(audit, cam, ZI, "a long enough reason for it", "u-dpo")
    record_override(audit, cam, PD, "20 falls staged on this camera on 2026-05-30, 19 alerted", "u-dpo")
    [gate] = gates_for(cfg, audit.engine, audit, clock=clock).values()
    assert gate.allowed(PD, 0.0) and EventType.ABANDONED_OBJECT not in gate.watched
    assert status_of(audit, [cam])[cam.id][PD].overridden

    # A new check still outside: the override vouched for other figures, so it no longer holds.
    record_check(
        audit, cam, [PersonBox(0.3, 0.4, 60.0), PersonBox(0.2, 0.8, 60.0)], 120.0, 5.0, 576, "u-tech"
    )
    [gate] = gates_for(cfg, audit.engine, audit, clock=clock).values()
    assert not gate.allowed(PD, 0.0) and gate.allowed(ZI, 0.0)

    # A lower rate configured after the check counts: the stored figures are re-read against it.
    slower = parse_config({**DEMO_CONFIG, "cameras": [{**DEMO_CONFIG["cameras"][0], "fps": 2}]})
    assert status_of(audit, slower.cameras)[cam.id][ZI].status == "outside"


def test_the_public_page_shows_each_cameras_envelope_and_an_override_as_such(audit: AuditLog) -> None:
    cfg = parse_config(DEMO_CONFIG)
    cam = cfg.cameras[0]
    record_check(audit, cam, PETS_PEOPLE, 120.0, 5.0, 576, "u-tech")
    record_override(audit, cam, PD, "a reason typed by an agent, never published", "u-dpo")
    data = public_data(cfg, audit.engine, datetime.now(UTC))
    envelope = {e.event_type: e for e in data.cameras[0].envelope}
    assert envelope["zone_intrusion"].status == "inside"
    assert envelope["person_down"].status == "outside" and envelope["person_down"].overridden
    assert envelope["abandoned_object"].status == "outside" and not envelope["abandoned_object"].overridden
    html = render_html(data)
    assert 'data-type="person_down" data-status="outside"' in html and "override recorded" in html
    assert "never published" not in html
    algorithms = {a.event_type: a for a in data.algorithms}
    assert "people at least 55 pixels high in the zone" in algorithms["zone_intrusion"].envelope
