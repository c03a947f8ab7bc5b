"""Deployment authorisations: what may be recorded, what they cover, and how the alerting gate
switches a camera's detectors on and off by itself (LB-01..LB-03), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.accountability.authorisation import (
    AlertingGate,
    Authorisation,
    AuthorisationError,
    Authorisations,
    gates_for,
    legal_end_instant,
)
from lanterne.accountability.masks import MaskValidationError, masks_digest, validate_masks
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import config_hash, parse_config
from lanterne.core.types import Counts, Event, EventType, Frame
from lanterne.runtime.demo import CROSSROADS, DEMO_CONFIG
from lanterne.video.analyser import CameraAnalyser
from lanterne.video.capture.source import FileSource
from lanterne.video.detectors import create_detector
from lanterne.video.detectors.base import Detector
from tests.support.console import TEST_DPIA, TEST_FRIA, cleared_to_alert, masks_checked

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
ZI, WW, CD = EventType.ZONE_INTRUSION, EventType.WRONG_WAY, EventType.CROWD_DENSITY


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def audit(db_url: str) -> Iterator[AuditLog]:
    log = AuditLog.open(db_url)
    yield log
    log.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def register(audit: AuditLog, clock: Clock) -> Authorisations:
    return Authorisations(audit.engine, audit, date(2027, 12, 31), clock=clock)


def add(register: Authorisations, reference: str = "AP-2026-001", **overrides: object) -> Authorisation:
    fields: dict[str, object] = {
        "legal_basis": "Loi 2023-380 art. 10",
        "authority": "Préfecture de police",
        "valid_from": T0 - timedelta(days=1),
        "valid_until": T0 + timedelta(days=30),
        "cameras": ["gare-nord", "gare-sud"],
        "event_types": ["zone_intrusion", "wrong_way"],
        "impact_assessments": ["https://ville.example/aipd-2026.pdf"],
        "user_id": "u-1042",
    }
    fields.update(overrides)
    return register.add(reference, **fields)  # type: ignore[arg-type]


def changes(audit: AuditLog, action: Action) -> list[dict[str, object]]:
    return [
        {"user": e.user_id, "object": (e.object_type, e.object_id), **e.details}
        for e in audit.entries(action=action)
    ]


# --- recording ------------------------------------------------------------------------------


def test_add_records_the_authorisation_and_audits_it(register: Authorisations, audit: AuditLog) -> None:
    a = add(register)
    assert register.list() == [a]
    stored = register.get("AP-2026-001")
    assert stored is not None
    assert stored.valid_from == T0 - timedelta(days=1) and stored.valid_from.tzinfo is not None
    assert stored.event_types == (ZI, WW) and stored.cameras == ("gare-nord", "gare-sud")
    assert stored.created_by == "u-1042" and stored.created_at == T0
    [entry] = audit.entries(action=Action.AUTHORISATION_CHANGE)
    assert (entry.user_id, entry.object_type, entry.object_id) == ("u-1042", "authorisation", "AP-2026-001")
    assert (entry.time_from, entry.time_to) == (a.valid_from, a.valid_until)
    assert entry.details["change"] == "add"
    assert entry.details["event_types"] == ["zone_intrusion", "wrong_way"]


NAIVE = datetime(2026, 7, 1, 8, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"valid_until": T0 - timedelta(days=1)}, "is not after valid_from"),
        ({"valid_until": T0 - timedelta(days=2)}, "is not after valid_from"),
        ({"valid_until": datetime(2028, 1, 15, tzinfo=UTC)}, "2028-01-15T00:00:00Z is after the site legal end date 2027-12-31"),
        ({"event_types": ["weapon"]}, "'weapon' cannot be authorised"),
        ({"event_types": ["zone_intrusion", "weapon"]}, "'weapon' cannot be authorised"),
        ({"event_types": ["loitering"]}, "'loitering' is not one of décret 2023-828"),
        ({"event_types": []}, "no event type"),
        ({"cameras": []}, "no camera"),
        ({"cameras": ["  "]}, "no camera"),
        ({"valid_from": NAIVE}, "has no time zone"),
        ({"legal_basis": " "}, "legal_basis is empty"),
        ({"authority": ""}, "authority is empty"),
    ],
)  # fmt: skip
def test_add_refuses(
    register: Authorisations, audit: AuditLog, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(AuthorisationError, match=message) as info:
        add(register, **overrides)
    assert "\n" not in str(info.value)
    assert register.list() == []
    assert audit.entries(action=Action.AUTHORISATION_CHANGE) == []


def test_a_reference_is_recorded_once_and_renewal_is_a_new_record(
    register: Authorisations, audit: AuditLog
) -> None:
    first = add(register)
    with pytest.raises(
        AuthorisationError, match="AP-2026-001 already exists; a renewal needs a new reference"
    ):
        add(register, valid_until=T0 + timedelta(days=60))
    assert register.list() == [first]
    renewal = add(register, "AP-2026-002", valid_from=first.valid_until, valid_until=T0 + timedelta(days=60))
    assert [a.reference for a in register.list()] == ["AP-2026-001", "AP-2026-002"]
    assert register.covering("gare-nord", ZI, T0 + timedelta(days=45)) == renewal
    assert len(audit.entries(action=Action.AUTHORISATION_CHANGE)) == 2


# --- coverage -------------------------------------------------------------------------------

A = Authorisation(
    reference="AP-1",
    legal_basis="Loi 2023-380 art. 10",
    authority="Préfecture",
    valid_from=T0,
    valid_until=T0 + timedelta(hours=10),
    cameras=("cam-a", "cam-b"),
    event_types=(ZI, CD),
)
REVOKED = Authorisation(
    **{**{f: getattr(A, f) for f in A.__dataclass_fields__}, "revoked_at": T0 + timedelta(hours=2)}
)


@pytest.mark.parametrize(
    ("auth", "camera", "etype", "at", "covered", "state"),
    [
        (A, "cam-a", ZI, T0 + timedelta(hours=1), True, "active"),
        (A, "cam-b", CD, T0 + timedelta(hours=1), True, "active"),
        (A, "cam-c", ZI, T0 + timedelta(hours=1), False, "active"),  # camera outside the perimeter
        (A, "cam-a", WW, T0 + timedelta(hours=1), False, "active"),  # type not authorised
        (A, "cam-a", ZI, T0 - timedelta(seconds=1), False, "upcoming"),
        (A, "cam-a", ZI, T0, True, "active"),  # the start is included
        (A, "cam-a", ZI, T0 + timedelta(hours=10) - timedelta(seconds=1), True, "active"),
        (A, "cam-a", ZI, T0 + timedelta(hours=10), False, "expired"),  # the end is excluded
        (A, "cam-a", ZI, T0 + timedelta(days=3), False, "expired"),
        (REVOKED, "cam-a", ZI, T0 + timedelta(hours=1), True, "active"),  # before the revocation
        (REVOKED, "cam-a", ZI, T0 + timedelta(hours=2), False, "revoked"),
        (REVOKED, "cam-a", ZI, T0 + timedelta(hours=3), False, "revoked"),
    ],
)  # fmt: skip
def test_coverage(
    auth: Authorisation, camera: str, etype: EventType, at: datetime, covered: bool, state: str
) -> None:
    assert auth.covers(camera, etype, at) is covered
    assert auth.state(at) == state


@pytest.mark.parametrize(
    ("camera", "etype", "at", "expected"),
    [
        ("gare-nord", ZI, T0, "AP-2026-001"),
        ("gare-sud", WW, T0, "AP-2026-001"),
        ("gare-est", ZI, T0, None),
        ("gare-nord", CD, T0, None),
        ("gare-nord", ZI, T0 - timedelta(days=2), None),
        ("gare-nord", ZI, T0 + timedelta(days=31), None),
    ],
)
def test_covering_reads_the_register(
    register: Authorisations, camera: str, etype: EventType, at: datetime, expected: str | None
) -> None:
    add(register)
    found = register.covering(camera, etype, at)
    assert (found.reference if found else None) == expected
    assert [a.reference for a in register.active(at)] == (["AP-2026-001"] if at.day == T0.day else [])


def test_revoke_ends_coverage_now_and_is_audited(
    register: Authorisations, audit: AuditLog, clock: Clock
) -> None:
    add(register)
    clock.advance(3600)
    revoked = register.revoke("AP-2026-001", "u-7", "event cancelled")
    assert revoked.revoked_at == clock.now and revoked.state(clock.now) == "revoked"
    assert register.covering("gare-nord", ZI, clock.now) is None
    assert register.covering("gare-nord", ZI, clock.now - timedelta(seconds=1)) is not None
    stored = register.get("AP-2026-001")
    assert stored is not None and (stored.revoked_by, stored.revoke_reason) == ("u-7", "event cancelled")
    assert stored.valid_until == T0 + timedelta(days=30), "revocation never edits the dates"
    last = changes(audit, Action.AUTHORISATION_CHANGE)[-1]
    assert (last["user"], last["change"], last["reason"]) == ("u-7", "revoke", "event cancelled")
    with pytest.raises(AuthorisationError, match="already revoked"):
        register.revoke("AP-2026-001", "u-7", "again")
    with pytest.raises(AuthorisationError, match="AP-404 does not exist"):
        register.revoke("AP-404", "u-7", "typo")
    with pytest.raises(AuthorisationError, match="reason is empty"):
        register.revoke("AP-2026-001", "u-7", " ")
    assert len(audit.entries(action=Action.AUTHORISATION_CHANGE)) == 2


# --- legal end date (LB-03) -----------------------------------------------------------------


def test_legal_end_date_caps_authorisations(audit: AuditLog, clock: Clock) -> None:
    end = legal_end_instant(date(2027, 12, 31))
    assert end == datetime(2027, 12, 31, 23, 0, tzinfo=UTC), "midnight in Paris, winter time"
    capped = Authorisations(audit.engine, audit, date(2027, 12, 31), clock=clock)
    add(capped, "AP-LAST", valid_until=end)  # up to the end of the legal end date: accepted
    with pytest.raises(AuthorisationError, match="after the site legal end date 2027-12-31"):
        add(capped, "AP-LATE", valid_until=end + timedelta(seconds=1))
    # Recorded while no end date was set; a site end date set later still ends it.
    add(
        Authorisations(audit.engine, audit, None, clock=clock), "AP-OLD", valid_until=end + timedelta(days=90)
    )
    lowered = Authorisations(audit.engine, audit, date(2027, 6, 30), clock=clock)
    assert {a.reference for a in lowered.active(end - timedelta(days=200))} == {"AP-LAST", "AP-OLD"}
    assert lowered.active(datetime(2027, 7, 1, tzinfo=UTC)) == []
    assert lowered.covering("gare-nord", ZI, datetime(2027, 7, 1, tzinfo=UTC)) is None


# --- the gate -------------------------------------------------------------------------------


class CountingRegister(Authorisations):
    reads = 0

    def list(self) -> list[Authorisation]:
        self.reads += 1
        return super().list()


def test_gate_reads_the_register_at_most_every_refresh_and_switches_at_the_end(
    audit: AuditLog, clock: Clock
) -> None:
    register = CountingRegister(audit.engine, audit, None, clock=clock)
    add(register, valid_from=T0 - timedelta(hours=1), valid_until=T0 + timedelta(seconds=60))
    gate = AlertingGate("gare-nord", register, audit, None, clock, refresh_seconds=5.0, event_types=[ZI, CD])
    assert all(gate.allowed(ZI, t / 5) for t in range(1000))
    assert not gate.allowed(CD, 0.0), "a type the authorisation does not list"
    assert not gate.allowed(WW, 0.0), "a type the camera does not watch"
    assert register.reads == 1
    clock.advance(4.9)
    gate.allowed(ZI, 0.0)
    assert register.reads == 1
    clock.advance(0.1)
    gate.allowed(ZI, 0.0)
    assert register.reads == 2
    clock.now = T0 + timedelta(seconds=60) - timedelta(microseconds=1)
    assert gate.allowed(ZI, 0.0)
    clock.now = T0 + timedelta(seconds=60)
    assert not gate.allowed(ZI, 0.0), "the end date ends alerting on the instant, not a refresh later"
    for _ in range(100):
        clock.advance(1)
        assert not gate.allowed(ZI, 0.0)
    on, off = changes(audit, Action.ALERTING_ON), changes(audit, Action.ALERTING_OFF)
    assert on == [
        {
            "user": "system",
            "object": ("camera", "gare-nord"),
            "event_types": ["zone_intrusion"],
            "authorisations": ["AP-2026-001"],
            "allowed": ["zone_intrusion"],
        }
    ]
    assert len(off) == 1
    assert (off[0]["user"], off[0]["object"]) == ("system", ("camera", "gare-nord"))
    assert (off[0]["event_types"], off[0]["authorisations"], off[0]["reason"]) == (
        ["zone_intrusion"],
        ["AP-2026-001"],
        "expired",
    )


def test_gate_sees_a_revocation_within_one_refresh(
    register: Authorisations, audit: AuditLog, clock: Clock
) -> None:
    add(register)
    gate = AlertingGate("gare-sud", register, audit, register.legal_end_date, clock, refresh_seconds=5.0)
    assert gate.allowed(WW, 0.0) and gate.allowed(ZI, 0.0)
    clock.advance(1)
    register.revoke("AP-2026-001", "u-7", "event cancelled")
    assert gate.allowed(WW, 0.0), "cached until the next refresh"
    clock.advance(4.0)
    assert not gate.allowed(WW, 0.0) and not gate.allowed(ZI, 0.0)
    [off] = changes(audit, Action.ALERTING_OFF)
    assert (off["event_types"], off["reason"]) == (["wrong_way", "zone_intrusion"], "revoked")


def test_gate_switches_on_when_an_authorisation_starts_and_off_at_the_legal_end(
    audit: AuditLog, clock: Clock
) -> None:
    legal_end = date(2026, 6, 30)
    register = Authorisations(audit.engine, audit, None, clock=clock)  # recorded before the date was set
    add(register, valid_from=T0 + timedelta(seconds=30), valid_until=T0 + timedelta(days=60))
    gate = AlertingGate("gare-nord", register, audit, legal_end, clock, refresh_seconds=3600)
    assert not gate.allowed(ZI, 0.0)
    clock.now = T0 + timedelta(seconds=30)
    assert gate.allowed(ZI, 0.0), "starts on the instant even with an hour between reads"
    clock.now = legal_end_instant(legal_end) - timedelta(seconds=1)
    assert gate.allowed(ZI, 0.0)
    clock.now = legal_end_instant(legal_end)
    assert not gate.allowed(ZI, 0.0)
    assert [c["event_types"] for c in changes(audit, Action.ALERTING_ON)] == [["wrong_way", "zone_intrusion"]]
    [off] = changes(audit, Action.ALERTING_OFF)
    assert off["reason"] == "legal_end_date"


def test_gate_without_authorisation_never_allows_and_records_the_refused_start(
    register: Authorisations, audit: AuditLog, clock: Clock
) -> None:
    """LB-01: nothing switches on, and the refused start is on the record once, with the types
    that stay off and why (issue 13 asked this test to say the opposite of what it said)."""
    gate = AlertingGate("gare-nord", register, audit, None, clock, event_types=[ZI, CD])
    assert not any(gate.allowed(t, 0.0) for t in EventType)
    assert audit.entries(action=Action.ALERTING_ON) == [] and audit.entries(action=Action.ALERTING_OFF) == []
    [refused] = audit.entries(action=Action.ALERTING_REFUSED)
    assert (refused.object_id, refused.details) == (
        "gare-nord",
        {"event_types": sorted([str(ZI), str(CD)]), "reason": "not_authorised"},
    )
    clock.now = T0 + timedelta(hours=1)
    assert not gate.allowed(ZI, 0.0)
    assert len(audit.entries(action=Action.ALERTING_REFUSED)) == 1, "once per start, not per frame"


def test_gates_for_every_camera_watch_what_the_zones_watch(audit: AuditLog, clock: Clock) -> None:
    cfg = parse_config(DEMO_CONFIG)
    masks_checked(cfg, audit)
    gates = gates_for(cfg, audit.engine, audit, clock=clock)
    assert set(gates) == {"pets-crossroads"}
    assert gates["pets-crossroads"].watched == {
        ZI, WW, CD, EventType.PERSON_DOWN, EventType.ABANDONED_OBJECT
    }  # fmt: skip
    stats = gates_for(parse_config({**DEMO_CONFIG, "mode": "statistics"}), audit.engine, audit, clock=clock)
    Authorisations(audit.engine, audit, clock=clock).add(
        "AP-X", legal_basis="Loi", authority="Préfet", valid_from=T0, valid_until=T0 + timedelta(days=1),
        cameras=["pets-crossroads"], event_types=["zone_intrusion"], user_id="u-1",
        impact_assessments=[TEST_DPIA, TEST_FRIA],
    )  # fmt: skip
    assert gates["pets-crossroads"].allowed(ZI, 0.0)
    assert not stats["pets-crossroads"].allowed(ZI, 0.0), "statistics mode never alerts"


def test_a_camera_whose_masks_nobody_checked_never_alerts(
    audit: AuditLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """LB-06: authorised or not, a camera alerts only once someone recorded that its current
    privacy masks cover the dwellings in view; a mask changed since needs a new check."""
    cfg = parse_config(DEMO_CONFIG)
    Authorisations(audit.engine, audit, clock=clock).add(
        "AP-M", legal_basis="Loi", authority="Préfet", valid_from=T0, valid_until=T0 + timedelta(days=1),
        cameras=["pets-crossroads"], event_types=["zone_intrusion"], user_id="u-1",
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="lanterne.accountability.authorisation"):
        [gate] = gates_for(cfg, audit.engine, audit, clock=clock).values()
    assert gate.watched == frozenset() and not gate.allowed(ZI, 0.0)
    [refused] = audit.entries(action=Action.ALERTING_REFUSED)
    assert refused.details["reason"] == "privacy_masks_not_validated"
    assert "privacy masks not validated (LB-06)" in caplog.text and "lanterne masks validate" in caplog.text
    with pytest.raises(MaskValidationError, match="say what was checked"):
        validate_masks(audit, cfg.cameras[0], "u-dpo", " ")
    digest = validate_masks(audit, cfg.cameras[0], "u-dpo", "view walked: no dwelling in view")
    cleared_to_alert(cfg, audit)  # its FRIA and DPIA linked, its rules approved (GV-01, GV-02, GV-05)
    [gate] = gates_for(cfg, audit.engine, audit, clock=clock).values()
    assert gate.allowed(ZI, 0.0)
    [record] = audit.entries(action=Action.MASKS_VALIDATED)
    assert (record.user_id, record.object_id, record.details["masks_sha256"]) == (
        "u-dpo",
        "pets-crossroads",
        digest,
    )
    # Someone adds a mask in the file: the check no longer vouches for it.
    moved = parse_config(
        {
            **DEMO_CONFIG,
            "cameras": [
                {
                    **DEMO_CONFIG["cameras"][0],
                    "privacy_masks": [
                        {"id": "flats", "polygon": [[0, 0], [0.2, 0], [0.2, 0.2]], "reason": "windows"}
                    ],
                }
            ],
        }
    )
    assert masks_digest(moved.cameras[0]) != digest
    [gate] = gates_for(moved, audit.engine, audit, clock=clock).values()
    assert gate.watched == frozenset()


# --- an authorisation that expires mid-run, through the real pipeline ------------------------

PETS = {
    "mode": "alerts",
    "cameras": [
        {
            "id": "pets",
            "source": "vtest.avi",
            "location": {"lat": 51.44, "lon": -0.94},
            "fps": 5,
            "zones": [
                {
                    "id": "crossroads",
                    "polygon": CROSSROADS,
                    "events": {"wrong_way": {"direction": [1, 0], "classes": ["person"], "min_seconds": 1.5}},
                }
            ],
        }
    ],
}
CLIP_SECONDS = 10.0
CUTOFF = 5.0
"""valid_until falls halfway through the excerpt, in stream seconds from T0."""


@pytest.fixture(scope="module")
def clip() -> tuple[list[Frame], Detector]:
    cfg = parse_config(PETS)
    frames = []
    for f in FileSource("pets", str(VIDEO / "vtest.avi"), fps=5).frames():
        if f.pts >= CLIP_SECONDS:
            break
        frames.append(f)
    return frames, create_detector(cfg.detector, cfg.models_dir)


def analyse(
    clip: tuple[list[Frame], Detector], gate: AlertingGate | None, clock: Clock | None
) -> tuple[list[tuple[float, Event]], list[Counts]]:
    frames, detector = clip
    cfg = parse_config(PETS)
    emitted: list[tuple[float, Event]] = []
    counts: list[Counts] = []
    now = [0.0]
    analyser = CameraAnalyser(
        cfg.cameras[0],
        cfg,
        detector,
        config_hash=config_hash(cfg),
        on_event=lambda e: emitted.append((now[0], e)),
        on_counts=counts.append,
        allowed=gate.allowed if gate is not None else None,
    )
    for frame in frames:
        now[0] = frame.pts
        if clock is not None:
            clock.now = T0 + timedelta(seconds=frame.pts)
        analyser.process(frame)
    analyser.finish()
    return emitted, counts


def openings(emitted: list[tuple[float, Event]]) -> list[float]:
    seen: set[str] = set()
    out = []
    for t, e in emitted:
        if e.ongoing and e.id not in seen:
            seen.add(e.id)
            out.append(t)
    return out


@pytest.fixture(scope="module")
def ungated(clip: tuple[list[Frame], Detector]) -> list[tuple[float, Event]]:
    emitted, _ = analyse(clip, None, None)
    return emitted


def test_an_authorisation_that_expires_mid_run_stops_alerts_within_one_cycle(
    clip: tuple[list[Frame], Detector], ungated: list[tuple[float, Event]], audit: AuditLog
) -> None:
    # Without a gate this excerpt raises wrong-way alerts on both sides of the cutoff, so the
    # assertions below can fail.
    assert any(t < CUTOFF for t in openings(ungated)) and any(t > CUTOFF for t in openings(ungated))
    clock = Clock(T0)
    register = Authorisations(audit.engine, audit, None, clock=clock)
    register.add(
        "AP-PETS", legal_basis="Loi 2023-380 art. 10", authority="Préfecture",
        valid_from=T0 - timedelta(days=1), valid_until=T0 + timedelta(seconds=CUTOFF),
        cameras=["pets"], event_types=["wrong_way", "crowd_density"], user_id="u-1",
    )  # fmt: skip
    masks_checked(parse_config(PETS), audit)
    [gate] = gates_for(parse_config(PETS), audit.engine, audit, clock=clock).values()
    emitted, counts = analyse(clip, gate, clock)
    frames = clip[0]
    first_after = min(f.pts for f in frames if f.pts >= CUTOFF)
    assert any(t < CUTOFF for t in openings(emitted)), "alerts while authorised"
    assert [t for t in openings(emitted) if t >= CUTOFF] == [], "no new alert after the end"
    late = [(t, e.id, e.ongoing) for t, e in emitted if t > first_after]
    assert late == [], "alerting stops within one analysis cycle (open events close on that frame)"
    assert all(not e.ongoing for t, e in emitted if t >= CUTOFF)
    on, off = changes(audit, Action.ALERTING_ON), changes(audit, Action.ALERTING_OFF)
    assert [(c["object"], c["event_types"], c["authorisations"]) for c in on] == [
        (("camera", "pets"), ["wrong_way"], ["AP-PETS"])
    ]
    assert [(c["object"], c["event_types"], c["authorisations"], c["reason"]) for c in off] == [
        (("camera", "pets"), ["wrong_way"], ["AP-PETS"], "expired")
    ]
    # Statistics go on: the zone was counted on every frame, before and after the end.
    assert sum(c.samples for c in counts if c.zone == "crossroads") == len(frames)


# --- the command line -----------------------------------------------------------------------

cli = CliRunner()


def one_line_error(result: object) -> str:
    out = result.output  # type: ignore[attr-defined]
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return lines[0]


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Path:
    p = tmp_path / "site.yml"
    p.write_text(
        yaml.safe_dump({**DEMO_CONFIG, "legal_end_date": "2027-12-31", "store": {"url": db_url}}),
        encoding="utf-8",
    )
    return p


def invoke(*args: str) -> object:
    return cli.invoke(app, ["authorisation", *args], env={"COLUMNS": "200"})


def add_args(site: Path, reference: str = "AP-75-2026-0412", **over: str) -> list[str]:
    opts = {
        "--config": str(site), "--reference": reference, "--legal-basis": "Loi 2023-380 art. 10",
        "--authority": "Préfecture de police", "--from": "2026-01-01T00:00+01:00",
        "--until": "2027-06-30T23:59+02:00", "--user": "u-1042", **over,
    }  # fmt: skip
    args = [x for k, v in opts.items() for x in (k, v)]
    return [*args, "--camera", "pets-crossroads", "--event", "zone_intrusion", "--event", "wrong_way",
            "--assessment", "https://ville.example/aipd.pdf"]  # fmt: skip


def test_cli_add_list_revoke(site: Path) -> None:
    r = invoke("add", *add_args(site))
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    assert "AP-75-2026-0412 recorded" in r.output  # type: ignore[attr-defined]
    r = invoke(
        "add", *add_args(site, "AP-LATER", **{"--from": "2027-07-01T00:00Z", "--until": "2027-08-01T00:00Z"})
    )
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    r = invoke("list", "--config", str(site))
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    rows = {line.split()[1]: line for line in r.output.splitlines() if "AP-" in line}  # type: ignore[attr-defined]
    assert "active" in rows["AP-75-2026-0412"] and "2025-12-31 23:00 UTC" in rows["AP-75-2026-0412"]
    assert "zone_intrusion, wrong_way" in rows["AP-75-2026-0412"]
    assert "upcoming" in rows["AP-LATER"]
    r = invoke(
        "revoke", "AP-75-2026-0412", "--config", str(site), "--reason", "event cancelled", "--user", "u-9"
    )
    assert r.exit_code == 0, r.output  # type: ignore[attr-defined]
    r = invoke("list", "--config", str(site))
    assert "revoked" in next(line for line in r.output.splitlines() if "AP-75-2026-0412" in line)  # type: ignore[attr-defined]
    engine_audit = AuditLog.open(yaml.safe_load(site.read_text())["store"]["url"])
    try:
        users = [
            (e.user_id, e.details["change"]) for e in engine_audit.entries(action=Action.AUTHORISATION_CHANGE)
        ]
    finally:
        engine_audit.close()
    assert users == [("u-1042", "add"), ("u-1042", "add"), ("u-9", "revoke")]


@pytest.mark.parametrize(
    ("over", "extra", "message"),
    [
        ({}, ["--camera", "gare-x"], "camera 'gare-x' is not in"),
        ({"--until": "2027-06-30"}, [], "--until '2027-06-30' has no time zone"),
        ({"--from": "June 1st"}, [], "--from 'June 1st' is not an ISO date"),
        ({"--until": "2028-03-01T00:00Z"}, [], "after the site legal end date 2027-12-31"),
        ({}, ["--event", "weapon"], "'weapon' cannot be authorised"),
    ],
)
def test_cli_add_refuses_on_one_line(
    site: Path, over: dict[str, str], extra: list[str], message: str
) -> None:
    r = invoke("add", *add_args(site, **over), *extra)
    assert r.exit_code == 2  # type: ignore[attr-defined]
    assert message in one_line_error(r)


def test_cli_errors_on_one_line(site: Path) -> None:
    assert invoke("add", *add_args(site)).exit_code == 0  # type: ignore[attr-defined]
    r = invoke("add", *add_args(site))
    assert r.exit_code == 2 and "already exists" in one_line_error(r)  # type: ignore[attr-defined]
    r = invoke("revoke", "AP-404", "--config", str(site), "--reason", "typo")
    assert r.exit_code == 2 and "AP-404 does not exist" in one_line_error(r)  # type: ignore[attr-defined]
    r = invoke("list", "--config", str(site.with_name("missing.yml")))
    assert r.exit_code == 2 and "configuration file not found" in one_line_error(r)  # type: ignore[attr-defined]


class FlakyAudit:
    """The real log, except that the first `failures` ALERTING_ON records fail (database down)."""

    def __init__(self, audit: AuditLog, failures: int) -> None:
        self.audit, self.failures = audit, failures

    def append(self, user_id: str, action: Action, **kw: object) -> object:
        if action is Action.ALERTING_ON and self.failures > 0:
            self.failures -= 1
            raise OSError("database unreachable")
        return self.audit.append(user_id, action, **kw)  # type: ignore[arg-type]


def test_alerting_never_switches_on_unrecorded(
    register: Authorisations, audit: AuditLog, clock: Clock
) -> None:
    add(register)
    gate = AlertingGate("gare-nord", register, FlakyAudit(audit, 1), None, clock, refresh_seconds=5.0)  # type: ignore[arg-type]
    assert not gate.allowed(ZI, 0.0), "the ALERTING_ON record failed: alerting stays off"
    clock.advance(0.2)
    assert gate.allowed(ZI, 0.0), "retried on the next frame once the log accepts it"
    assert len(audit.entries(action=Action.ALERTING_ON)) == 1


def test_a_renewal_without_gap_keeps_alerting_on_without_records(
    register: Authorisations, audit: AuditLog, clock: Clock
) -> None:
    end = T0 + timedelta(seconds=60)
    add(register, "AP-1", valid_until=end)
    add(register, "AP-2", valid_from=end, valid_until=end + timedelta(days=1))
    gate = AlertingGate("gare-nord", register, audit, None, clock, refresh_seconds=3600, event_types=[ZI])
    for s in range(0, 120, 5):
        clock.now = T0 + timedelta(seconds=s)
        assert gate.allowed(ZI, 0.0)
    assert len(audit.entries(action=Action.ALERTING_ON)) == 1
    assert audit.entries(action=Action.ALERTING_OFF) == []
    clock.now = end + timedelta(days=1)
    assert not gate.allowed(ZI, 0.0)
    [off] = changes(audit, Action.ALERTING_OFF)
    assert (off["authorisations"], off["reason"]) == (["AP-2"], "expired")


class RefusingAudit:
    def append(self, *args: object, **kw: object) -> object:
        raise OSError("audit log unreachable")


def test_an_unaudited_change_does_not_stand(register: Authorisations, audit: AuditLog, clock: Clock) -> None:
    add(register, "AP-KEPT")
    blind = Authorisations(audit.engine, RefusingAudit(), None, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        add(blind, "AP-UNLOGGED")
    with pytest.raises(OSError):
        blind.revoke("AP-KEPT", "u-7", "event cancelled")
    assert [(a.reference, a.revoked_at) for a in register.list()] == [("AP-KEPT", None)]
