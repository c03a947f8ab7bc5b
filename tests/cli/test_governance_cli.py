"""`lanterne fria add|link|list` and `lanterne governance approve|status|list` as a DPO runs them
before an alerts-mode start: `lanterne run` refuses, in one line, until the authorisation names
its DPIA and a recorded FRIA and the model and rules carry signed approvals."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.accountability.authorisation import gates_for
from lanterne.audit import Action
from lanterne.cli.main import app
from lanterne.config import load_config
from lanterne.core.assets import MODELS
from lanterne.core.types import EventType
from lanterne.runtime.demo import CROSSROADS
from lanterne.runtime.site import open_site

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
DPIA = "https://ville.example/aipd-2026.pdf"
NOTICE = "https://ville.example/transparence"
FRIA_FILE = {
    "processes": "operators of the CSU lift doubt on alerts at the station forecourt",
    "period": "festival evenings, 18:00-02:00, ten days",
    "affected": "passers-by, travellers, people at rest near the entrance, staff",
    "risks": "chilling effect on assembly; false alerts on people at rest",
    "oversight": "every alert is confirmed or dismissed by an operator",
}


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture
def site(tmp_path: Path) -> str:
    path = tmp_path / "site.yml"
    zone = {"id": "walk", "polygon": CROSSROADS, "events": {"wrong_way": {"direction": [1, 0]}}}
    path.write_text(
        yaml.safe_dump(
            {
                "mode": "alerts",
                "site": "Ville de Test",
                "store": {
                    "url": f"sqlite:///{tmp_path / 'lanterne.db'}",
                    "evidence_dir": str(tmp_path / "ev"),
                },
                "audit": {"key_path": str(tmp_path / "audit.key")},
                "cameras": [
                    {
                        "id": "crossroads",
                        "source": "rtsp://127.0.0.1:9/stream",
                        "location": {"lat": 51.44, "lon": -0.94},
                        "zones": [zone],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    c = str(path)
    now = datetime.now(UTC)
    ok("authorisation", "add", "--config", c, "--reference", "AP-1", "--legal-basis", "Loi 2023-380 art. 10",
       "--authority", "Préfet de test", "--from", (now - timedelta(hours=1)).isoformat(),
       "--until", (now + timedelta(days=30)).isoformat(), "--camera", "crossroads", "--event", "wrong_way",
       "--assessment", DPIA, "--user", "u-admin")  # fmt: skip
    ok("transparency", "publish", "--config", c, "--out", str(tmp_path / "public"), "--user", "u-admin")
    ok(
        "masks",
        "validate",
        "crossroads",
        "--config",
        c,
        "--note",
        "view walked: no dwelling",
        "--user",
        "u-dpo",
    )
    return c


def record_fria(site: str, tmp_path: Path, reference: str = "FRIA-2026-1", *extra: str) -> str:
    fria = tmp_path / "fria.yml"
    fria.write_text(yaml.safe_dump(FRIA_FILE), encoding="utf-8")
    return ok("fria", "add", "--config", site, "--reference", reference, "--date", "2026-05-01",
              "--file", str(fria), "--mitigation", "suspension on a false-alarm spike; complaints to the DPO",
              "--user", "u-dpo", *extra)  # fmt: skip


RULES = ("--what", "model", "--what", "event_types", "--what", "zones", "--what", "thresholds")


def test_run_refuses_until_the_model_and_rules_are_approved(site: str, tmp_path: Path) -> None:
    line = refused("run", "--config", site)
    assert "alerts mode refused (GV-05)" in line
    assert f"detector model yolox_nano sha256 {MODELS['yolox_nano'].sha256}" in line
    assert (
        "lanterne governance approve --what model --what event_types --what zones --what thresholds "
        "--dpia DPIA_REF --fria FRIA_REF --ref NOTICE_URL" in line
    )
    status = ok("governance", "status", "--config", site)
    assert status.count("NO: alerts mode refused") == 4
    assert "no governance record" in ok("governance", "list", "--config", site)

    approve = ["governance", "approve", "--config", site, *RULES, "--ref", NOTICE,
               "--summary", "festival rules reviewed by the ethics committee", "--user", "u-dpo"]  # fmt: skip
    assert "name the DPIA updated for this change with --dpia" in refused(*approve, "--fria", "FRIA-2026-1")
    assert "--fria 'FRIA-2026-1' is not a recorded FRIA; record it first" in refused(
        *approve, "--dpia", DPIA, "--fria", "FRIA-2026-1"
    )
    record_fria(site, tmp_path)
    out = ok(*approve, "--dpia", DPIA, "--fria", "FRIA-2026-1")
    assert out.count("approved by u-dpo") == 4 and out.count(f"DPIA {DPIA}; FRIA FRIA-2026-1") == 4
    assert "NO:" not in ok("governance", "status", "--config", site)
    listing = ok("governance", "list", "--config", site)
    assert listing.count("valid") == 4 and "BAD" not in listing
    assert listing.count(DPIA) == 4 and listing.count("FRIA-2026-1") == 4

    source = tmp_path / "paris.yml"
    source.write_text("id: paris_reports\n", encoding="utf-8")
    ok("governance", "approve", "--config", site, "--what", "observatory_source", "--file", str(source),
       "--dpia", DPIA, "--fria", "FRIA-2026-1", "--ref", NOTICE, "--summary", "Paris open data, dans ma rue",
       "--user", "u-dpo")  # fmt: skip
    assert hashlib.sha256(source.read_bytes()).hexdigest()[:12] in ok("governance", "list", "--config", site)
    assert "give a single --what" in refused(
        "governance", "approve", "--config", site, "--what", "model", "--what", "zones", "--sha256", "ab" * 32,
        "--ref", NOTICE, "--summary", "s",
    )  # fmt: skip
    assert "is not a link to the public notice" in refused(
        "governance", "approve", "--config", site, "--what", "zones", "--ref", "notice", "--summary", "s",
        "--dpia", DPIA, "--fria", "FRIA-2026-1",
    )  # fmt: skip


def test_a_fria_recorded_and_linked_from_the_command_line_opens_alerting(site: str, tmp_path: Path) -> None:
    cfg = load_config(Path(site))

    def allowed() -> bool:
        with open_site(cfg) as opened:
            return gates_for(cfg, opened.store.engine, opened.audit)["crossroads"].allowed(
                EventType.WRONG_WAY, 0.0
            )

    assert "no FRIA recorded" in ok("fria", "list", "--config", site)
    fria = tmp_path / "fria.yml"
    fria.write_text(yaml.safe_dump(FRIA_FILE), encoding="utf-8")
    add = [
        "fria",
        "add",
        "--config",
        site,
        "--reference",
        "FRIA-2026-1",
        "--date",
        "2026-05-01",
        "--file",
        str(fria),
    ]
    assert "FRIA element 'mitigation' is missing; give --mitigation" in refused(*add)
    assert "not a date" in refused(*add, "--mitigation", "complaints to the DPO", "--date", "May 1st")
    assert "authorisation AP-404 does not exist" in refused(
        *add, "--mitigation", "complaints to the DPO", "--authorisation", "AP-404"
    )
    out = ok(
        *add, "--mitigation", "suspension on a false-alarm spike; complaints to the DPO", "--user", "u-dpo"
    )
    assert "FRIA FRIA-2026-1 of 2026-05-01 recorded" in out
    assert "already recorded" in refused(*add, "--mitigation", "again")
    ok("governance", "approve", "--config", site, *RULES, "--dpia", DPIA, "--fria", "FRIA-2026-1",
       "--ref", NOTICE, "--summary", "reviewed", "--user", "u-dpo")  # fmt: skip
    assert not allowed(), "recorded and approved, not yet linked to the authorisation"

    assert "FRIA FRIA-404 is not recorded" in refused("fria", "link", "FRIA-404", "--config", site,
                                                       "--authorisation", "AP-1")  # fmt: skip
    out = ok("fria", "link", "FRIA-2026-1", "--config", site, "--authorisation", "AP-1", "--user", "u-dpo")
    assert f"authorisation AP-1 now names: {DPIA}, FRIA-2026-1" in out
    assert allowed()
    listing = ok("fria", "list", "--config", site)
    assert "FRIA-2026-1" in listing and "AP-1" in listing and "u-dpo" in listing
    with open_site(cfg) as opened:
        recorded = [e for e in opened.audit.entries(action=Action.CONFIG_CHANGE) if e.object_type == "fria"]
        linked = [e.details for e in opened.audit.entries(action=Action.AUTHORISATION_CHANGE)]
    assert [(e.user_id, e.object_id) for e in recorded] == [("u-dpo", "FRIA-2026-1")]
    assert linked[-1]["change"] == "link_assessments" and linked[-1]["added"] == ["FRIA-2026-1"]


def test_the_commands_are_listed() -> None:
    out = ok("--help")
    assert "fria" in out and "governance" in out
