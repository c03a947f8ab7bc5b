"""`lanterne envelope check|override|status` on the real PETS 2009 clip (EV-05): the detector
measures the people there, person_down is found outside its envelope, and an override lets it
alert; every step is on the audit log."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app

CLIP = Path(__file__).resolve().parents[3] / "shared" / "data" / "video" / "vtest.avi"


def site(tmp_path: Path) -> Path:
    zone = {
        "id": "all",
        "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]],
        "events": {"zone_intrusion": {}, "person_down": {}},
    }
    data = {
        "mode": "alerts",
        "store": {"url": f"sqlite:///{tmp_path / 'lanterne.db'}", "evidence_dir": str(tmp_path / "evidence")},
        "cameras": [
            {
                "id": "pets",
                "source": str(CLIP),
                "location": {"lat": 48.85, "lon": 2.35},
                "fps": 5,
                "zones": [zone],
            }
        ],
    }
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_check_override_status(tmp_path: Path) -> None:
    cfg = site(tmp_path)
    runner = CliRunner()
    checked = runner.invoke(
        app, ["envelope", "check", "-c", str(cfg), "pets", "--seconds", "4", "--user", "u-tech"]
    )
    assert checked.exit_code == 1, checked.output
    assert "OUTSIDE" in checked.output and "lanterne envelope override" in checked.output
    log = AuditLog.open(f"sqlite:///{tmp_path / 'lanterne.db'}")
    try:
        [check] = log.entries(action=Action.ENVELOPE_CHECK)
        figures = check.details["types"]
        # PETS people are about 80 px high (ground truth median 80): inside zone_intrusion's 55,
        # outside the 130 px the person_down scenes were measured on.
        height = figures["person_down"]["measured"]["person_height_px"]
        assert 60 < height < 110 and figures["person_down"]["status"] == "outside"
        assert figures["zone_intrusion"]["status"] == "inside"
        assert figures["zone_intrusion"]["measured"]["fps"] == 5.0
        assert 110 < figures["zone_intrusion"]["measured"]["luma"] < 130
    finally:
        log.close()
    unknown = runner.invoke(
        app, ["envelope", "override", "-c", str(cfg), "nope", "person_down", "--reason", "x" * 20]
    )
    assert unknown.exit_code == 2 and "not in the configuration" in unknown.output
    done = runner.invoke(
        app,
        [
            "envelope",
            "override",
            "-c",
            str(cfg),
            "pets",
            "person_down",
            "--reason",
            "falls staged here, 19 of 20 seen",
            "--user",
            "u-dpo",
        ],
    )
    assert done.exit_code == 0, done.output
    status = runner.invoke(app, ["envelope", "status", "-c", str(cfg)], env={"COLUMNS": "300"})
    assert status.exit_code == 0 and "outside, OVERRIDDEN by u-dpo" in status.output
    assert "falls staged here" in status.output
