"""The living risk register (RK-01), on SQLite and PostgreSQL: risks added and reviewed on the
record, an alerts-mode start refused while a review is overdue (with its `alerting_refused`
record and a one-line error naming the risk and the command), the DPIA draft's known risks
copied in, and the demo keeping itself startable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from lanterne.accountability.authorisation import Authorisations, gates_for
from lanterne.accountability.masks import validate_masks
from lanterne.accountability.risks import KNOWN_RISKS, OVERDUE, PREFILL_MEASURES, RiskError, RiskRegister
from lanterne.audit import Action, AuditLog
from lanterne.config import parse_config
from lanterne.core.types import EventType
from lanterne.runtime.demo import DEMO_CONFIG
from tests.support.console import TEST_DPIA, TEST_FRIA, cleared_to_alert

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
TODAY = T0.date()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def audit(db_url: str, tmp_path: Path) -> Iterator[AuditLog]:
    log = AuditLog.open(db_url, key_path=tmp_path / "audit.key")
    yield log
    log.close()


def _chilling(register: RiskRegister, next_review: date) -> int:
    return register.add(
        "Chilling effect on assembly on the station forecourt",
        category="fundamental_rights",
        owner="dpo",
        measures="no identification; public notice; counts only outside the festival",
        next_review=next_review,
        likelihood=2,
        severity=3,
        residual=2,
        by="u-dpo",
    ).id


def test_a_risk_is_added_and_reviewed_on_the_record(audit: AuditLog) -> None:
    clock = Clock(T0)
    register = RiskRegister(audit.engine, audit, clock=clock)
    rid = _chilling(register, TODAY + timedelta(days=30))
    risk = register.get(rid)
    assert (risk.likelihood, risk.severity, risk.residual, risk.owner, risk.reviewed_at) == (
        2,
        3,
        2,
        "dpo",
        None,
    )
    clock.now += timedelta(days=31)
    assert [r.id for r in register.overdue()] == [rid]
    reviewed = register.review(
        rid,
        next_review=TODAY + timedelta(days=120),
        note="festival over; nothing observed",
        severity=2,
        by="u-dpo",
    )
    assert (reviewed.likelihood, reviewed.severity, reviewed.next_review) == (
        2,
        2,
        TODAY + timedelta(days=120),
    )
    assert (reviewed.reviewed_by, reviewed.reviewed_at) == ("u-dpo", clock.now) and register.overdue() == []
    added, review = audit.entries(action=Action.RISK_REGISTER)
    assert (added.object_type, added.object_id, added.details["step"]) == ("risk", str(rid), "added")
    assert review.details["step"] == "reviewed" and review.details["was_due"] == "2026-07-01"
    assert review.purpose == "festival over; nothing observed" and review.details["severity"] == 2
    with pytest.raises(RiskError, match="is not after today"):
        register.review(rid, next_review=clock.now.date(), note="n", by="u-dpo")
    with pytest.raises(RiskError, match="--likelihood 5"):
        register.add("x", category="misuse", owner="o", measures="m", next_review=TODAY, likelihood=5, by="u")
    with pytest.raises(RiskError, match="--category 'privacy'"):
        register.add("x", category="privacy", owner="o", measures="m", next_review=TODAY, by="u")
    assert len(audit.entries(action=Action.RISK_REGISTER)) == 2  # refused steps leave no record


def test_the_known_risks_of_the_dpia_draft_are_copied_once_and_must_be_assessed(audit: AuditLog) -> None:
    template = (
        Path(__file__).resolve().parents[2] / "src/lanterne/accountability/dpia/templates/dpia.md.j2"
    ).read_text(encoding="utf-8")
    assert all(f"- {title}\n" in template for _, title in KNOWN_RISKS)  # the draft and the register agree
    register = RiskRegister(audit.engine, audit, clock=Clock(T0))
    added = register.prefill(owner="dpo", by="u-dpo")
    assert [r.title for r in added] == [t for _, t in KNOWN_RISKS] and register.prefill(
        owner="dpo", by="u"
    ) == []
    assert all(
        r.likelihood is None and r.measures == PREFILL_MEASURES and r.next_review == TODAY for r in added
    )
    with pytest.raises(RiskError, match="was never assessed: a review gives its --likelihood and --severity"):
        register.review(added[0].id, next_review=TODAY + timedelta(days=90), note="assessed", by="u-dpo")


def _ready(audit: AuditLog, clock: Clock) -> None:
    cfg = parse_config(DEMO_CONFIG)
    validate_masks(audit, cfg.cameras[0], "u-dpo", "view walked: no dwelling")
    Authorisations(audit.engine, audit, clock=clock).add(
        "AP-2026-7", legal_basis="Loi 2023-380 art. 10", authority="Préfecture de police",
        valid_from=T0 - timedelta(hours=1), valid_until=T0 + timedelta(days=400),
        cameras=["pets-crossroads"], event_types=["zone_intrusion"], impact_assessments=[TEST_DPIA, TEST_FRIA],
        user_id="u-1",
    )  # fmt: skip
    cleared_to_alert(cfg, audit)


def test_alerts_mode_refuses_to_start_while_a_review_is_overdue(audit: AuditLog) -> None:
    clock = Clock(T0)
    cfg = parse_config(DEMO_CONFIG)
    _ready(audit, clock)
    register = RiskRegister(audit.engine, audit, clock=clock)
    rid = _chilling(register, TODAY + timedelta(days=30))
    # On its date the review is still on time.
    clock.now = T0 + timedelta(days=30)
    assert gates_for(cfg, audit.engine, audit, clock=clock)["pets-crossroads"].allowed(
        EventType.ZONE_INTRUSION, 0.0
    )
    clock.now = T0 + timedelta(days=31)
    with pytest.raises(RiskError) as info:
        gates_for(cfg, audit.engine, audit, clock=clock)
    assert str(info.value) == (
        f"alerts mode refused (RK-01): risk {rid} 'Chilling effect on assembly on the station forecourt' was due "
        f"for review on 2026-07-01; once reviewed, record it: lanterne risks review {rid} --next-review YYYY-MM-DD "
        "--note '...' --config SITE.yml --user ID"
    )
    [refused] = [e for e in audit.entries(action=Action.ALERTING_REFUSED) if e.details["reason"] == OVERDUE]
    assert (refused.object_id, refused.details["risks"]) == ("pets-crossroads", [rid])
    assert "zone_intrusion" in refused.details["event_types"]
    register.review(rid, next_review=TODAY + timedelta(days=120), note="reviewed with the DPO", by="u-dpo")
    assert gates_for(cfg, audit.engine, audit, clock=clock)["pets-crossroads"].allowed(
        EventType.ZONE_INTRUSION, 0.0
    )
    # A statistics site alerts nowhere: an overdue register does not stop its counting.
    _chilling(register, TODAY)
    stats = parse_config({**DEMO_CONFIG, "mode": "statistics"})
    assert not gates_for(stats, audit.engine, audit, clock=clock)["pets-crossroads"].allowed(
        EventType.ZONE_INTRUSION, 0.0
    )


def test_the_demo_reviews_its_overdue_risks_as_a_demonstration(tmp_path: Path) -> None:
    from lanterne.runtime.demo import DEMO_RISK_REVIEW, prepare_demo
    from lanterne.runtime.site import open_site

    cfg, _site = prepare_demo(tmp_path / "demo-out", user_id="tester")
    with open_site(cfg) as opened:
        register = RiskRegister(opened.store.engine, opened.audit)
        rid = _chilling(register, register.today() - timedelta(days=1))
        with pytest.raises(RiskError, match=f"risk {rid}"):
            gates_for(cfg, opened.store.engine, opened.audit)
    cfg, _site = prepare_demo(tmp_path / "demo-out", user_id="tester")
    with open_site(cfg) as opened:
        [review] = [
            e for e in opened.audit.entries(action=Action.RISK_REGISTER) if e.details["step"] == "reviewed"
        ]
        assert review.purpose == DEMO_RISK_REVIEW
        assert gates_for(cfg, opened.store.engine, opened.audit)[cfg.cameras[0].id].allowed(
            EventType.WRONG_WAY, 0.0
        )
