"""The quarterly public report (PM-04) and its indicators (PM-07) on SQLite and PostgreSQL: every
section from scripted decisions, small counts hidden, the files signed with the site's audit key,
the verification naming each kind of tampering, and the publication recorded."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.quarterly import (
    NOT_COMPUTABLE,
    SIGNATURE,
    SUMS,
    ReportError,
    build_quarterly,
    quarter_bounds,
    verify_report,
    write_report,
)
from lanterne.audit import Action, AuditLog
from lanterne.config import Config, parse_config
from lanterne.store import Store
from tests.accountability.test_operations import scripted

NOW = datetime(2027, 1, 2, 8, 0, tzinfo=UTC)
ZONE = [[0, 0], [1, 0], [1, 1], [0, 1]]


def site_config() -> Config:
    fire = {"experimental": True}
    return parse_config(
        {
            "site": "Ville-test",
            "mode": "alerts",
            "observatory": {"min_count": 5},
            "cameras": [
                {
                    "id": "c1",
                    "source": "a.mp4",
                    "location": {"lat": 48.85, "lon": 2.35},
                    "zones": [{"id": "z", "polygon": ZONE, "events": {"zone_intrusion": {}, "fire": fire}}],
                },
                *(
                    {
                        "id": c,
                        "source": "a.mp4",
                        "location": {"lat": 48.86, "lon": 2.36},
                        "zones": [{"id": "z", "polygon": ZONE, "events": {"zone_intrusion": {}}}],
                    }
                    for c in ("c2", "c3")
                ),
            ],
        }
    )


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


def report_of(store: Store) -> dict[str, Any]:
    scripted(store)
    reg = Authorisations(store.engine, AuditLog(store.engine), None)
    reg.add(
        "AP-2026-007",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture",
        valid_from=datetime(2026, 10, 15, tzinfo=UTC),
        valid_until=datetime(2026, 12, 15, tzinfo=UTC),
        cameras=["c1", "c2"],
        event_types=["zone_intrusion"],
        user_id="u-1",
    )
    reg.add(
        "AP-2026-001",  # over before the quarter: not a deployment of it
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture",
        valid_from=datetime(2026, 5, 1, tzinfo=UTC),
        valid_until=datetime(2026, 9, 1, tzinfo=UTC),
        cameras=["c3"],
        event_types=["zone_intrusion"],
        user_id="u-1",
    )
    return build_quarterly(site_config(), store.engine, "2026q4", NOW)


def test_report_has_every_section_with_small_counts_hidden(store: Store) -> None:
    r = report_of(store)
    assert (r["quarter"], r["since"], r["until"], r["complete"], r["k"]) == (
        "2026Q4",
        "2026-10-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
        True,
        5,
    )
    for section in ("indicators", "by_type", "by_camera", "recall", "deployments", "equity", "unresolved"):
        assert section in r
    by_type = {t["event_type"]: t for t in r["by_type"]}
    zi = by_type["zone_intrusion"]
    assert (zi["alerts"], zi["confirmed"], zi["dismissed"], zi["camera_hours"]) == (11, 7, 2, 20.0)
    assert zi["alerts_per_1000_camera_hours"] == 550.0
    assert zi["follow_ups"] == {
        "none": None,
        "monitoring": None,
        "field_request": None,
        "emergency_services": None,
    }
    # One reflection, one owner nearby: both below k = 5, both hidden.
    assert zi["dismissed_by_reason"] == {"owner_nearby": None, "reflection_or_light": None}
    cams = {(c["camera"], c["event_type"]): c for c in r["by_camera"]}
    # ZI alerts per camera 6, 5, 0: none hidden; confirmed 3, 4 and dismissed 1, 1: hidden, shares too.
    assert [cams[(c, "zone_intrusion")]["alerts"] for c in ("c1", "c2", "c3")] == [6, 5, 0]
    c1 = cams[("c1", "zone_intrusion")]
    assert (c1["dismissed"], c1["confirmed_share"], c1["confirmed"], c1["ack_median_s"]) == (
        None,
        None,
        None,
        20.0,
    )
    fire = cams[("c1", "fire")]
    assert fire["alerts"] is None and fire["ack_median_s"] is None  # a single fire alert
    assert "follow_ups" not in c1 and "dismissed_by_reason" not in c1
    assert "dismissed" in c1["suppressed"] and "alerts" not in c1["suppressed"]
    c3 = cams[("c3", "zone_intrusion")]  # no alert: no wait to show, which is not a hidden one
    assert (c3["alerts"], c3["ack_median_s"], c3["suppressed"]) == (0, None, [])
    assert [d["reference"] for d in r["deployments"]] == ["AP-2026-007"]
    assert r["deployments"][0]["state_at_end"] == "expired"
    ind = {i["key"]: i for i in r["indicators"]}
    assert (ind["authorisations"]["value"], ind["cameras"]["value"], ind["cameras_authorised"]["value"]) == (
        1,
        3,
        2,
    )
    assert (ind["alerts"]["value"], ind["false_alarm_share"]["value"]) == (
        12,
        0.3,
    )  # 3 dismissed of 10 decided
    assert (ind["useful_to_an_operation"]["value"], ind["useful_share"]["value"]) == (2, round(2 / 5, 4))
    for key in NOT_COMPUTABLE:
        assert ind[key]["value"] is None and ind[key]["why_not"]
    assert r["unresolved"] == {"incidents_open": 0, "suspensions_in_force": 0, "recall_audits_open": 0}


def test_quarter_must_be_a_quarter_and_started(store: Store) -> None:
    with pytest.raises(ReportError, match="YYYYQn"):
        quarter_bounds("2026-11")
    with pytest.raises(ReportError, match="not started"):
        build_quarterly(site_config(), store.engine, "2027Q2", NOW)
    partial = build_quarterly(site_config(), store.engine, "2027Q1", NOW)
    assert partial["complete"] is False


def test_written_report_is_signed_verified_and_recorded(store: Store, tmp_path: Path) -> None:
    report = report_of(store)
    key = Ed25519PrivateKey.generate()
    audit = AuditLog(store.engine)
    out = tmp_path / "2026Q4"
    hashes = write_report(report, out, key, audit, "dpo-1")
    names = {p.name for p in out.iterdir()}
    assert {
        "report.json",
        "report.pdf",
        "operations_by_type.csv",
        "operations_by_camera.csv",
        SUMS,
        SIGNATURE,
    } <= names
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert json.loads((out / "report.json").read_text())["quarter"] == "2026Q4"
    rows = list(csv.DictReader(io.StringIO((out / "operations_by_type.csv").read_text())))
    assert {r["event_type"]: r["alerts"] for r in rows} == {"fire": "1", "zone_intrusion": "11"}
    assert verify_report(out) == [] and verify_report(out, key.public_key()) == []
    if shutil.which("sha256sum"):  # the list is checkable without Lanterne
        subprocess.run(["sha256sum", "--quiet", "-c", SUMS], cwd=out, check=True)
    entry = [e for e in audit.entries() if e.action == Action.PUBLIC_REPORT][-1]
    assert (entry.object_id, entry.user_id) == ("2026Q4", "dpo-1")
    details = entry.details if isinstance(entry.details, dict) else json.loads(entry.details)
    assert details["files"] == hashes
    assert hashes["report.pdf"] == hashlib.sha256((out / "report.pdf").read_bytes()).hexdigest()
    with pytest.raises(ReportError, match="not an empty directory"):
        write_report(report, out, key, audit, "dpo-1")

    # Each tampering is named.
    other = Ed25519PrivateKey.generate().public_key()
    assert any("not by this site's key" in p for p in verify_report(out, other))
    csv_path = out / "operations_by_type.csv"
    original = csv_path.read_bytes()
    csv_path.write_bytes(original.replace(b"11", b"9"))
    assert verify_report(out) == ["operations_by_type.csv: altered (its sha256 differs from the signed list)"]
    csv_path.write_bytes(original)
    (out / "extra.csv").write_text("x\n")
    assert verify_report(out) == ["extra.csv: not part of the signed report"]
    (out / "extra.csv").unlink()
    sums = (out / SUMS).read_text()
    forged = hashlib.sha256(b"forged").hexdigest()
    lines = [f"{forged}  report.pdf" if line.endswith("report.pdf") else line for line in sums.splitlines()]
    (out / SUMS).write_text("\n".join(lines) + "\n")
    (out / "report.pdf").write_bytes(b"forged")
    assert any("signature does not match" in p for p in verify_report(out))
    (out / SUMS).unlink()
    assert verify_report(out) == [f"{SUMS} is missing from {out}; a report is only verifiable with it"]


def test_public_page_shows_the_quarter_per_type_and_the_indicators(store: Store) -> None:
    from lanterne.accountability.transparency import public_data, render_html, render_json

    scripted(store)
    data = public_data(site_config(), store.engine, datetime(2026, 12, 1, tzinfo=UTC))
    assert data.operations_since == "2026-10-01T00:00:00Z"
    ops = {o.event_type: o for o in data.operations}
    # Up to 1 December: a5's and a6's November alerts count, not the January one.
    assert (ops["zone_intrusion"].alerts, ops["zone_intrusion"].confirmed) == (11, 7)
    assert ops["zone_intrusion"].useful_to_an_operation is None  # 2 < k = 5
    published = json.loads(render_json(data))
    by_type = {o["event_type"]: o for o in published["operations"]}
    assert by_type["zone_intrusion"]["follow_ups"]["field_request"] is None
    assert by_type["fire"]["follow_ups"] == {
        "none": 0,
        "monitoring": 0,
        "field_request": 0,
        "emergency_services": 0,
    }
    keys = {i["key"]: i for i in published["evaluation"]}
    assert keys["alerts"]["value"] == 12 and keys["public_perception"]["why_not"]
    html = render_html(data)
    assert 'data-type="zone_intrusion"' in html and "Useful to an operation" in html
    assert 'data-indicator="security_impact"' in html and "not computed" in html
