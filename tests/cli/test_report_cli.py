"""`lanterne report …` as a DPO runs it: the operating figures of a quarter, the signed quarterly
report written, verified against the site's key, caught when altered, and its publication in the
audit log. Mistakes end in one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.store import Store
from tests.accountability.test_operations import scripted

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
ZONE = [[0, 0], [1, 0], [1, 1], [0, 1]]


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str, code: int = 2) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    return result.output


@pytest.fixture
def site(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'lanterne.db'}"
    path = tmp_path / "site.yml"
    cams = [
        {
            "id": c,
            "source": "a.mp4",
            "location": {"lat": 48.85, "lon": 2.35},
            "zones": [{"id": "z", "polygon": ZONE, "events": {"zone_intrusion": {}}}],
        }
        for c in ("c1", "c2", "c3")
    ]
    path.write_text(
        yaml.safe_dump(
            {
                "site": "Ville de Test",
                "store": {"url": url},
                "audit": {"key_path": str(tmp_path / "audit.key")},
                "public": {"controller": "Ville de Test", "dpo_contact": "dpo@ville.example"},
                "cameras": cams,
            }
        ),
        encoding="utf-8",
    )
    store = Store.open(url)
    scripted(store)
    store.close()
    return str(path)


def test_operations_of_a_quarter(site: str) -> None:
    out = ok("report", "operations", "--config", site, "--period", "2026Q4")
    assert "Operations 2026Q4 (2026-10-01 to 2027-01-01, UTC)" in out
    c1 = next(line for line in out.splitlines() if "│ c1 " in line and "zone_intrusion" in line)
    assert "reflection_or_light 1" in c1 and "75 % (30–95 %)" in c1 and "0.600" in c1 and "20 / 40" in c1
    body = json.loads(
        ok("report", "operations", "--config", site, "--period", "2026-11", "--camera", "c2", "--json")
    )
    assert [(r["camera"], r["alerts"], r["follow_ups"]["monitoring"]) for r in body["rows"]] == [("c2", 2, 2)]
    assert "2026-W49, 2026-11 or 2026Q4" in refused(
        "report", "operations", "--config", site, "--period", "Q4"
    )


def test_quarterly_written_verified_and_recorded(site: str, tmp_path: Path) -> None:
    out_dir = tmp_path / "report-2026Q4"
    args = ("report", "quarterly", "--config", site, "--quarter", "2026Q4", "-o", str(out_dir))
    out = ok(*args, "--now", "2027-01-03T09:00:00+00:00", "--user", "dpo-1")
    assert out.startswith(f"quarterly report 2026Q4 written in {out_dir}: 7 files, SHA256SUMS signed by key ")
    assert "intact" in ok("report", "verify", str(out_dir), "--config", site)
    report = json.loads((out_dir / "report.json").read_text())
    assert {t["event_type"]: t["alerts"] for t in report["by_type"]} == {"zone_intrusion": 11, "fire": 1}
    cfg_audit = AuditLog.open(yaml.safe_load(Path(site).read_text())["store"]["url"])
    try:
        entries = [e for e in cfg_audit.entries() if e.action == Action.PUBLIC_REPORT]
    finally:
        cfg_audit.close()
    assert [(e.object_id, e.user_id) for e in entries] == [("2026Q4", "dpo-1")]
    # A second report into the same directory is refused; altering a file is caught.
    assert "not an empty directory" in refused(*args, "--now", "2027-01-03T09:00:00+00:00")
    pdf = out_dir / "report.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"%")
    assert "report.pdf: altered" in refused("report", "verify", str(out_dir), code=1)
    assert "2026Q7" in refused(
        "report", "quarterly", "--config", site, "--quarter", "2026Q7", "-o", str(tmp_path / "x")
    )
