"""Change control: alerting needs an authorisation that names its DPIA and a recorded FRIA
(GV-01, GV-02), and what an alerts-mode site runs (detector model, thresholds, zones, event types)
needs a signed governance record at its current hash, naming the updated DPIA and a recorded FRIA
(GV-05), on SQLite and PostgreSQL; a configuration change also unpublishes the notice (TR-01)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lanterne.accountability.authorisation import AuthorisationError, Authorisations, gates_for
from lanterne.accountability.fria import Elements, FriaError, FriaRegister, Link, missing_assessments
from lanterne.accountability.governance import (
    GATED,
    Approval,
    Change,
    Governance,
    GovernanceError,
    change_sha256,
    model_in_use,
    record_message,
)
from lanterne.accountability.masks import validate_masks
from lanterne.accountability.transparency import export, notice_published, require_notice
from lanterne.audit import Action, AuditLog, signing
from lanterne.config import Config, config_hash, parse_config
from lanterne.core.assets import MODELS
from lanterne.core.errors import ConfigError
from lanterne.core.types import EventType
from lanterne.runtime.demo import DEMO_CONFIG
from tests.support.console import TEST_DPIA, TEST_FRIA, cleared_to_alert

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
ZI = EventType.ZONE_INTRUSION
NOTICE = "https://ville.example/transparence"
ASSESSED = {"dpia": TEST_DPIA, "fria": TEST_FRIA}
"""The updated assessments every approval names (`fria_recorded` records the FRIA)."""
ELEMENTS = Elements(
    processes="supervision of the station forecourt by the CSU operators, to lift doubt on alerts",
    period="during the summer festival, 18:00-02:00, ten evenings",
    affected="passers-by, travellers, people sleeping rough near the entrance, staff",
    risks="chilling effect on assembly; false alerts on people at rest; function creep",
    oversight="an operator confirms or dismisses every alert; a supervisor can stop detection",
    mitigation="suspension on a false-alarm spike; complaints to the DPO; monthly review",
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def audit(db_url: str, tmp_path: Path) -> Iterator[AuditLog]:
    log = AuditLog.open(db_url, key_path=tmp_path / "audit.key")
    yield log
    log.close()


def authorise(audit: AuditLog, clock: Clock, links: list[str], reference: str = "AP-2026-7") -> None:
    Authorisations(audit.engine, audit, clock=clock).add(
        reference, legal_basis="Loi 2023-380 art. 10", authority="Préfecture de police",
        valid_from=T0 - timedelta(hours=1), valid_until=T0 + timedelta(days=10),
        cameras=["pets-crossroads"], event_types=["zone_intrusion"], impact_assessments=links, user_id="u-1",
    )  # fmt: skip


def refusals(audit: AuditLog) -> list[dict[str, Any]]:
    return [e.details for e in audit.entries(action=Action.ALERTING_REFUSED)]


# --- the FRIA register (GV-02) ----------------------------------------------------------------


def test_a_fria_holds_its_six_elements_and_is_audited(audit: AuditLog, clock: Clock) -> None:
    register = FriaRegister(audit.engine, audit, clock=clock)
    fria = register.add(" FRIA-2026-03 ", date(2026, 5, 12), ELEMENTS, "u-dpo")
    assert fria.reference == "FRIA-2026-03" and fria.recorded_at == T0
    assert register.get("FRIA-2026-03") == fria and register.list() == [fria]
    assert register.references() == {"FRIA-2026-03"}
    [entry] = audit.entries(action=Action.CONFIG_CHANGE)
    assert (entry.user_id, entry.object_type, entry.object_id) == ("u-dpo", "fria", "FRIA-2026-03")
    assert entry.details == {
        "event": "fria_recorded",
        "assessed_on": "2026-05-12",
        "elements_sha256": ELEMENTS.sha256(),
    }
    with pytest.raises(FriaError, match="already recorded; a revised assessment needs a new reference"):
        register.add("FRIA-2026-03", date(2026, 5, 13), ELEMENTS, "u-dpo")
    assert len(audit.entries(action=Action.CONFIG_CHANGE)) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"risks": "  "}, "FRIA element 'risks' is not answered"),
        ({"oversight": "N/A"}, "FRIA element 'oversight' is not answered"),
        ({"mitigation": "TO BE COMPLETED BY THE CONTROLLER"}, "FRIA element 'mitigation' is not answered"),
        ({"affected": "x" * 5001}, "affected is longer than 5000 characters"),
    ],
)
def test_a_fria_with_an_element_left_open_is_refused(
    audit: AuditLog, change: dict[str, str], message: str
) -> None:
    register = FriaRegister(audit.engine, audit)
    with pytest.raises(FriaError, match=message) as info:
        register.add("FRIA-1", date(2026, 5, 12), replace(ELEMENTS, **change), "u-dpo")
    assert "\n" not in str(info.value)
    assert register.list() == [] and audit.entries(action=Action.CONFIG_CHANGE) == []


@pytest.mark.parametrize(
    ("links", "missing"),
    [
        ((), ("no_dpia", "no_fria")),
        (("https://ville.example/aipd.pdf",), ("no_fria",)),
        (("FRIA-1",), ("no_dpia",)),
        (("https://ville.example/aipd.pdf", "FRIA-UNRECORDED"), ("no_fria",)),
        (("https://ville.example/aipd.pdf", "FRIA-1"), ()),
    ],
)
def test_an_authorisation_lacks_what_it_does_not_name(
    links: tuple[str, ...], missing: tuple[str, ...]
) -> None:
    assert missing_assessments([Link("AP-1", links)], {"FRIA-1"}) == {"AP-1": missing}


def test_links_are_added_never_removed_and_audited(audit: AuditLog, clock: Clock) -> None:
    register = Authorisations(audit.engine, audit, clock=clock)
    authorise(audit, clock, ["https://ville.example/aipd.pdf"])
    linked = register.link_assessments("AP-2026-7", ["FRIA-1", "https://ville.example/aipd.pdf"], "u-dpo")
    assert linked.impact_assessments == ("https://ville.example/aipd.pdf", "FRIA-1")
    assert register.get("AP-2026-7") == linked
    assert register.link_assessments("AP-2026-7", ["FRIA-1"], "u-dpo") == linked, "nothing added twice"
    changes = [e.details for e in audit.entries(action=Action.AUTHORISATION_CHANGE)]
    assert [(c["change"], c.get("added")) for c in changes] == [
        ("add", None),
        ("link_assessments", ["FRIA-1"]),
    ]
    with pytest.raises(AuthorisationError, match="AP-404 does not exist"):
        register.link_assessments("AP-404", ["FRIA-1"], "u-dpo")
    with pytest.raises(AuthorisationError, match="no link given"):
        register.link_assessments("AP-2026-7", [" "], "u-dpo")


# --- the gate: no alerting without a DPIA and a FRIA (GV-01, GV-02) ---------------------------------


@pytest.mark.parametrize(
    ("links", "reason"),
    [
        ([], "no_dpia,no_fria"),
        ([TEST_DPIA], "no_fria"),
        ([TEST_FRIA], "no_dpia"),
        ([TEST_DPIA, "FRIA-UNRECORDED"], "no_fria"),
        ([TEST_DPIA, TEST_FRIA], None),
    ],
)
def test_alerting_needs_an_authorisation_naming_a_dpia_and_a_recorded_fria(
    audit: AuditLog, clock: Clock, caplog: pytest.LogCaptureFixture, links: list[str], reason: str | None
) -> None:
    cfg = parse_config(DEMO_CONFIG)
    validate_masks(audit, cfg.cameras[0], "u-dpo", "view walked: no dwelling")
    cleared_to_alert(cfg, audit)  # TEST_FRIA recorded, the rules approved; no authorisation yet
    authorise(audit, clock, links)
    with caplog.at_level(logging.ERROR, logger="lanterne.accountability.authorisation"):
        [gate] = gates_for(cfg, audit.engine, audit, clock=clock).values()
        assert gate.allowed(ZI, 0.0) is (reason is None)
    by_reason = {r["reason"]: r for r in refusals(audit)}
    assert set(by_reason) == ({"not_authorised"} if reason is None else {reason, "not_authorised"})
    assert "zone_intrusion" not in by_reason["not_authorised"]["event_types"]
    if reason is not None:
        assert by_reason[reason] == {
            "event_types": ["zone_intrusion"],
            "reason": reason,
            "authorisations": ["AP-2026-7"],
        }
        [line] = [r.getMessage() for r in caplog.records]
        assert "authorisation AP-2026-7 names no" in line and "lanterne fria link" in line
        assert audit.entries(action=Action.ALERTING_ON) == []
    else:
        [on] = audit.entries(action=Action.ALERTING_ON)
        assert on.details["authorisations"] == ["AP-2026-7"]


def test_a_fria_linked_while_the_camera_runs_switches_alerting_on_at_the_next_refresh(
    audit: AuditLog, clock: Clock
) -> None:
    cfg = parse_config(DEMO_CONFIG)
    validate_masks(audit, cfg.cameras[0], "u-dpo", "view walked: no dwelling")
    cleared_to_alert(cfg, audit)
    authorise(audit, clock, [TEST_DPIA])
    [gate] = gates_for(cfg, audit.engine, audit, clock=clock, refresh_seconds=5.0).values()
    assert not gate.allowed(ZI, 0.0)
    FriaRegister(audit.engine, audit).add("FRIA-2026-04", date(2026, 5, 30), ELEMENTS, "u-dpo")
    Authorisations(audit.engine, audit).link_assessments("AP-2026-7", ["FRIA-2026-04"], "u-dpo")
    clock.now += timedelta(seconds=4.9)
    assert not gate.allowed(ZI, 0.0), "cached until the next refresh"
    clock.now += timedelta(seconds=0.1)
    assert gate.allowed(ZI, 0.0)
    [on] = audit.entries(action=Action.ALERTING_ON)
    assert on.details["event_types"] == ["zone_intrusion"]


def test_statistics_mode_needs_no_assessment_and_no_record(audit: AuditLog, clock: Clock) -> None:
    authorise(audit, clock, [])
    stats = gates_for(parse_config({**DEMO_CONFIG, "mode": "statistics"}), audit.engine, audit, clock=clock)
    assert not stats["pets-crossroads"].allowed(ZI, 0.0), "statistics mode never alerts"
    assert Governance(audit.engine, audit).list() == [], "and needs no governance record"


# --- governance records (GV-05) --------------------------------------------------------------------


def fria_recorded(audit: AuditLog) -> None:
    """`TEST_FRIA` in the register, which an approval must name (once, however often asked)."""
    frias = FriaRegister(audit.engine, audit)
    if frias.get(TEST_FRIA) is None:
        frias.add(TEST_FRIA, date(2026, 5, 30), ELEMENTS, "u-dpo")


@pytest.fixture
def governance(audit: AuditLog, clock: Clock) -> Governance:
    fria_recorded(audit)
    return Governance(audit.engine, audit, clock=clock)


def approvals(audit: AuditLog) -> list[dict[str, Any]]:
    return [e.details for e in audit.entries(action=Action.CONFIG_CHANGE) if e.object_type == "governance"]


def ready(audit: AuditLog, clock: Clock, cfg: Config) -> None:
    """Masks validated and an authorisation naming both assessments: only approvals are missing."""
    validate_masks(audit, cfg.cameras[0], "u-dpo", "view walked: no dwelling")
    fria_recorded(audit)
    authorise(audit, clock, [TEST_DPIA, TEST_FRIA])


def test_alerts_mode_refuses_to_start_without_signed_records_then_starts_with_them(
    audit: AuditLog, clock: Clock
) -> None:
    cfg = parse_config(DEMO_CONFIG)
    ready(audit, clock, cfg)
    with pytest.raises(GovernanceError) as info:
        gates_for(cfg, audit.engine, audit, clock=clock)
    line = str(info.value)
    assert "\n" not in line
    assert f"detector model yolox_nano sha256 {MODELS['yolox_nano'].sha256}" in line
    assert (
        "lanterne governance approve --what model --what event_types --what zones --what thresholds "
        "--dpia DPIA_REF --fria FRIA_REF --ref NOTICE_URL" in line
    )
    [refused] = refusals(audit)
    assert refused["reason"] == "no_governance_record"
    assert refused["changes"] == {str(c): change_sha256(cfg, c) for c in GATED}
    before = config_hash(cfg)
    records = Governance(audit.engine, audit, clock=clock).approve_config(
        cfg, ["model", "event_types", "zones", "thresholds"], notice_url=NOTICE, summary="festival rules",
        user_id="u-dpo", **ASSESSED,
    )  # fmt: skip
    assert [r.change for r in records] == list(GATED)
    assert config_hash(cfg) == before, "the notice's configuration hash is not touched by a record"
    [gate] = gates_for(cfg, audit.engine, audit, clock=clock).values()
    assert gate.allowed(ZI, 0.0)
    assert len(refusals(audit)) == 2  # the first start; the second refuses only the types not authorised


def test_an_approval_is_signed_by_the_audit_key_and_on_the_log(
    audit: AuditLog, governance: Governance
) -> None:
    cfg = parse_config(DEMO_CONFIG)
    [record] = governance.approve_config(
        cfg, ["model"], notice_url=NOTICE, summary="YOLOX-Nano 416 after the bench review", user_id="u-dpo",
        **ASSESSED,
    )  # fmt: skip
    assert (record.change, record.sha256, record.approved_by, record.approved_at, record.notice_url) == (
        Change.MODEL,
        MODELS["yolox_nano"].sha256,
        "u-dpo",
        T0,
        NOTICE,
    )
    assert (record.dpia, record.fria, record.summary) == (
        TEST_DPIA,
        TEST_FRIA,
        "YOLOX-Nano 416 after the bench review",
    )
    assert governance.list() == [record] and record.verified(governance.keys())
    public = audit.signing_key().public_key()
    public.verify(bytes.fromhex(record.signature), record.message())  # raises if it does not hold
    assert b'"dpia":"https://ville.example/aipd-test.pdf"' in record.message()
    assert b'"fria":"FRIA-TEST"' in record.message(), "the signature covers the assessments"
    [entry] = [e for e in audit.entries(action=Action.CONFIG_CHANGE) if e.object_type == "governance"]
    assert (entry.user_id, entry.object_type, entry.object_id) == (
        "u-dpo",
        "governance",
        f"model:{record.sha256[:16]}",
    )
    assert entry.details["signature"] == record.signature and entry.details["notice_url"] == NOTICE
    assert entry.details["record"] == record.id and entry.details["event"] == "governance_approval"
    assert (entry.details["dpia"], entry.details["fria"]) == (TEST_DPIA, TEST_FRIA)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"change": "weights"}, "--what 'weights' is not a kind of change"),
        ({"sha256": "abc"}, "'abc' is not a sha256"),
        ({"notice_url": "the notice"}, "is not a link to the public notice"),
        ({"notice_url": "ftp://ville.example/notice"}, "is not a link to the public notice"),
        ({"summary": "  "}, "say what changed and why"),
        ({"summary": "x" * 960}, "longer than the 941 characters left beside the DPIA and FRIA"),
        ({"user_id": " "}, "names who approved it"),
        ({"dpia": None}, "name the DPIA updated for this change with --dpia"),
        ({"dpia": "  "}, "name the DPIA updated for this change with --dpia"),
        ({"dpia": "https://a.example/aipd.pdf\nFRIA: FRIA-X"}, "--dpia holds a line break"),
        ({"dpia": TEST_FRIA}, "--dpia 'FRIA-TEST' is the reference of a FRIA"),
        ({"fria": None}, "name the FRIA updated for this change with --fria"),
        ({"fria": "FRIA-NEVER-RECORDED"}, "--fria 'FRIA-NEVER-RECORDED' is not a recorded FRIA"),
        ({"fria": "x" * 501}, "--fria is longer than 500 characters"),
    ],
)
def test_an_approval_missing_what_it_must_say_is_refused(
    audit: AuditLog, governance: Governance, kwargs: dict[str, Any], message: str
) -> None:
    fields: dict[str, Any] = {
        "change": "observatory_source",
        "sha256": "ab" * 32,
        "notice_url": NOTICE,
        "summary": "Paris open data",
        "user_id": "u-dpo",
        **ASSESSED,
    }
    fields.update(kwargs)
    change, sha256 = fields.pop("change"), fields.pop("sha256")
    with pytest.raises(GovernanceError, match=message) as info:
        governance.approve(change, sha256, **fields)
    assert "\n" not in str(info.value)
    assert governance.list() == [] and approvals(audit) == []
    with pytest.raises(GovernanceError, match="approved by the sha256 of its mapping file"):
        governance.approve_config(
            parse_config(DEMO_CONFIG),
            ["zones", "observatory_source"],
            notice_url=NOTICE,
            summary="s",
            user_id="u",
            **ASSESSED,
        )
    with pytest.raises(GovernanceError, match="is not a recorded FRIA"):
        governance.approve_config(
            parse_config(DEMO_CONFIG), GATED, notice_url=NOTICE, summary="s", user_id="u", dpia=TEST_DPIA,
            fria="FRIA-404",
        )  # fmt: skip
    assert governance.list() == [], "nothing recorded when one of the changes cannot be"


def _legacy(audit: AuditLog, cfg: Config, change: Change) -> None:
    """A record as signed before records named their DPIA and FRIA: validly signed, no assessment."""
    key = audit.signing_key()
    kid = signing.key_id(key.public_key())
    sha = change_sha256(cfg, change)
    signature = key.sign(record_message(change, sha, "old rules", NOTICE, "u-dpo", T0, kid)).hex()
    with audit.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO governance_records (change, sha256, summary, notice_url, approved_by, "
                "approved_at, key_id, signature) VALUES (:c, :s, 'old rules', :n, 'u-dpo', :at, :k, :sig)"
            ),
            {"c": str(change), "s": sha, "n": NOTICE, "at": T0, "k": kid, "sig": signature},
        )


def test_a_record_naming_no_dpia_and_fria_verifies_but_does_not_count(
    audit: AuditLog, clock: Clock, governance: Governance
) -> None:
    cfg = parse_config(DEMO_CONFIG)
    ready(audit, clock, cfg)
    governance.approve_config(
        cfg, ["model", "event_types", "thresholds"], notice_url=NOTICE, summary="rules", user_id="u-dpo",
        **ASSESSED,
    )  # fmt: skip
    _legacy(audit, cfg, Change.ZONES)
    old = governance.list()[-1]
    assert (old.change, old.dpia, old.fria, old.summary) == (Change.ZONES, None, None, "old rules")
    assert old.verified(governance.keys()) and not old.assessed
    [pending] = governance.pending(cfg)
    assert (pending.change, pending.bad_signatures, pending.unassessed) == (Change.ZONES, 0, 1)
    with pytest.raises(GovernanceError) as info:
        gates_for(cfg, audit.engine, audit, clock=clock)
    assert "zones sha256" in str(info.value) and "(1 record naming no DPIA and FRIA ignored)" in str(
        info.value
    )
    assert "--what zones --dpia DPIA_REF --fria FRIA_REF --ref NOTICE_URL" in str(info.value)
    governance.approve_config(cfg, ["zones"], notice_url=NOTICE, summary="again", user_id="u-dpo", **ASSESSED)
    assert governance.pending(cfg) == []
    assert isinstance(governance.approval(Change.ZONES, change_sha256(cfg, Change.ZONES)), Approval)


def _with(data: dict[str, Any], **zone_events: Any) -> Config:
    camera = data["cameras"][0]
    crossroads = {**camera["zones"][1], "events": {**camera["zones"][1]["events"], **zone_events}}
    return parse_config({**data, "cameras": [{**camera, "zones": [camera["zones"][0], crossroads]}]})


MOVED = {
    **DEMO_CONFIG,
    "cameras": [
        {
            **DEMO_CONFIG["cameras"][0],
            "zones": [
                {**DEMO_CONFIG["cameras"][0]["zones"][0], "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]},
                DEMO_CONFIG["cameras"][0]["zones"][1],
            ],
        }
    ],
}


CHANGES = [
        (parse_config({**DEMO_CONFIG, "site": "Another name"}), []),
        (parse_config({**DEMO_CONFIG, "detector": {"input_size": 320}}), ["model"]),
        (parse_config({**DEMO_CONFIG, "detector": {"input_shape": "frame"}}), ["model"]),
        (parse_config({**DEMO_CONFIG, "detector": {"default_threshold": 0.2}}), ["thresholds"]),
        (_with(DEMO_CONFIG, crowd_density={"max_people": 4, "min_seconds": 2}), ["thresholds"]),
        (parse_config(MOVED), ["zones"]),
        (_with(DEMO_CONFIG, fire={"experimental": True}), ["event_types", "zones", "thresholds"]),
        (
            parse_config({**DEMO_CONFIG, "cameras": [*DEMO_CONFIG["cameras"], {**DEMO_CONFIG["cameras"][0], "id": "new"}]}),
            ["zones", "thresholds"],
        ),
]  # fmt: skip
"""A change of each kind, and the records it needs (none for a new site name)."""


@pytest.mark.parametrize(
    ("detector", "name"),
    [
        ({}, "yolox_nano"),
        ({"input_size": 320}, "yolox_nano_dynamic"),
        ({"input_shape": "frame"}, "yolox_nano_dynamic"),
        ({"input_size": 320, "input_shape": "frame"}, "yolox_nano_dynamic"),
    ],
)
def test_the_model_approved_is_the_file_loaded(detector: dict[str, Any], name: str) -> None:
    """GV-05 approves a file by its sha256: the frame-shaped input loads the open-dims copy at
    416 as well, so it needs that file's record, not the published file's."""
    assert model_in_use(parse_config({**DEMO_CONFIG, "detector": detector})) == (name, MODELS[name].sha256)


@pytest.mark.parametrize(("changed", "pending"), CHANGES)
def test_each_change_takes_effect_only_after_its_own_record(
    audit: AuditLog, clock: Clock, governance: Governance, changed: Config, pending: list[str]
) -> None:
    cfg = parse_config(DEMO_CONFIG)
    governance.approve_config(
        cfg, GATED, notice_url=NOTICE, summary="festival rules", user_id="u-dpo", **ASSESSED
    )
    assert governance.pending(cfg) == []
    assert [str(p.change) for p in governance.pending(changed)] == pending
    if pending:
        ready(audit, clock, changed)
        with pytest.raises(GovernanceError, match=f"--what {pending[0]}"):
            gates_for(changed, audit.engine, audit, clock=clock)


@pytest.mark.parametrize(("changed", "pending"), CHANGES)
def test_each_change_takes_effect_only_once_its_notice_is_published(
    audit: AuditLog, clock: Clock, governance: Governance, tmp_path: Path, changed: Config, pending: list[str]
) -> None:
    """TR-01 for every kind of change: each one changes the configuration's hash, so the notice
    published before it no longer counts, and neither its record nor a published notice alone
    lets the alerts-mode start through: `lanterne run` asks both (`require_notice`, `gates_for`)."""
    cfg = parse_config({**DEMO_CONFIG, "audit": {"key_path": str(audit.key_path)}})
    changed = changed.model_copy(update={"audit": cfg.audit})
    ready(audit, clock, cfg)
    governance.approve_config(
        cfg, GATED, notice_url=NOTICE, summary="festival rules", user_id="u", **ASSESSED
    )
    export(cfg, audit.engine, tmp_path / "public", "u-dpo", T0)
    require_notice(cfg, audit.engine)
    assert gates_for(cfg, audit.engine, audit, clock=clock)["pets-crossroads"].allowed(ZI, 0.0)

    assert not notice_published(changed, audit.engine)
    if pending:
        governance.approve_config(changed, pending, notice_url=NOTICE, summary="new", user_id="u", **ASSESSED)
    with pytest.raises(ConfigError, match="publish the public notice first"):
        require_notice(changed, audit.engine)  # approved, not yet published: refused
    export(changed, audit.engine, tmp_path / "public", "u-dpo", T0)
    require_notice(changed, audit.engine)
    assert gates_for(changed, audit.engine, audit, clock=clock)["pets-crossroads"].allowed(ZI, 0.0)


def test_a_model_without_a_record_is_refused_naming_its_hash_and_the_command(
    audit: AuditLog, clock: Clock
) -> None:
    cfg = parse_config({**DEMO_CONFIG, "detector": {"input_size": 320}})
    ready(audit, clock, cfg)
    governance = Governance(audit.engine, audit, clock=clock)
    governance.approve_config(
        cfg, ["thresholds", "zones", "event_types"], notice_url=NOTICE, summary="s", user_id="u", **ASSESSED
    )
    sha = MODELS["yolox_nano_dynamic"].sha256
    with pytest.raises(GovernanceError) as info:
        gates_for(cfg, audit.engine, audit, clock=clock)
    assert str(info.value).startswith(
        f"alerts mode refused (GV-05): no signed governance record for detector model yolox_nano_dynamic sha256 {sha}; "
    )
    assert "lanterne governance approve --what model --dpia DPIA_REF --fria FRIA_REF --ref NOTICE_URL" in str(
        info.value
    )
    # Approving the file by its own hash (as before a deployment) is the same record.
    governance.approve(
        "model", sha, notice_url=NOTICE, summary="320 px copy, checked", user_id="u", **ASSESSED
    )
    assert gates_for(cfg, audit.engine, audit, clock=clock)["pets-crossroads"].allowed(ZI, 0.0)


def _forged(audit: AuditLog, tmp_path: Path) -> None:
    """A record written with another key, as by someone who reached the database but not the key."""
    other = AuditLog(audit.engine, key_path=tmp_path / "other.key")
    Governance(audit.engine, other).approve_config(
        parse_config(DEMO_CONFIG), ["zones"], notice_url=NOTICE, summary="forged", user_id="u-dpo", **ASSESSED
    )


TAMPERING = {
    "summary edited": "UPDATE governance_records SET summary = 'something else' WHERE change = 'zones'",
    "approver edited": "UPDATE governance_records SET approved_by = 'u-mayor' WHERE change = 'zones'",
    "signature replaced": "UPDATE governance_records SET signature = '"
    + "ab" * 64
    + "' WHERE change = 'zones'",
    "key id replaced": "UPDATE governance_records SET key_id = '0000000000000000' WHERE change = 'zones'",
    "DPIA edited": "UPDATE governance_records SET summary = replace(summary, 'aipd-test', 'aipd-2019') "
    "WHERE change = 'zones'",
    "FRIA named removed": "UPDATE governance_records SET summary = 'festival rules' WHERE change = 'zones'",
}


@pytest.mark.parametrize("how", [*TAMPERING, "forged with another key"])
def test_a_tampered_or_forged_record_does_not_count(
    audit: AuditLog, clock: Clock, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = parse_config(DEMO_CONFIG)
    ready(audit, clock, cfg)
    governance = Governance(audit.engine, audit, clock=clock)
    if how in TAMPERING:
        governance.approve_config(
            cfg, GATED, notice_url=NOTICE, summary="festival rules", user_id="u-dpo", **ASSESSED
        )
        with audit.engine.begin() as conn:
            conn.execute(text(TAMPERING[how]))
    else:
        governance.approve_config(
            cfg,
            ["model", "event_types", "thresholds"],
            notice_url=NOTICE,
            summary="rules",
            user_id="u-dpo",
            **ASSESSED,
        )
        _forged(audit, tmp_path)
    [pending] = governance.pending(cfg)
    assert (pending.change, pending.bad_signatures) == (Change.ZONES, 1)
    assert "bad signature, ignored" in caplog.text
    with pytest.raises(
        GovernanceError, match=r"zones sha256 \w{12}… \(1 record with a bad signature ignored\)"
    ):
        gates_for(cfg, audit.engine, audit, clock=clock)


# --- the demo -----------------------------------------------------------------------------------------


def test_the_demo_records_its_own_demonstration_assessments_and_approvals(tmp_path: Path) -> None:
    from lanterne.accountability.fria import FriaRegister as Frias
    from lanterne.runtime.demo import DEMO_DPIA, DEMO_FRIA, EXAMPLES, OBSERVATORY_DATASETS, prepare_demo
    from lanterne.runtime.observatory_sources import source_sha256
    from lanterne.runtime.site import open_site

    cfg, _site = prepare_demo(tmp_path / "demo-out", user_id="tester")
    cfg, _site = prepare_demo(tmp_path / "demo-out", user_id="tester")  # again: nothing twice
    with open_site(cfg) as opened:
        governance = Governance(opened.store.engine, opened.audit)
        records = governance.list()
        assert governance.pending(cfg) == []
        # The observatory's sources too, when the published data is there to load (../shared).
        sources = (
            [source_sha256(EXAMPLES / m) for _f, m in OBSERVATORY_DATASETS] if cfg.observatory.layers else []
        )
        assert sorted((str(r.change), r.sha256) for r in records) == sorted(
            [(str(c), change_sha256(cfg, c)) for c in GATED] + [("observatory_source", s) for s in sources]
        )
        assert all(r.summary.startswith("DEMONSTRATION, NOT A GOVERNANCE DECISION") for r in records)
        assert all((r.dpia, r.fria) == (DEMO_DPIA, DEMO_FRIA) for r in records)
        assert all(
            r.notice_url.startswith("file://") and r.notice_url.endswith("/public/index.html")
            for r in records
        )
        assert [f.reference for f in Frias(opened.store.engine, opened.audit).list()] == [DEMO_FRIA]
        [auth] = Authorisations(opened.store.engine, opened.audit).list()
        assert auth.impact_assessments == (DEMO_DPIA, DEMO_FRIA)
        gates = gates_for(cfg, opened.store.engine, opened.audit)
        assert gates[cfg.cameras[0].id].allowed(EventType.WRONG_WAY, 0.0)
