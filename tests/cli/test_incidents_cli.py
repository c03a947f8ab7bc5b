"""`lanterne incidents …` and `lanterne risks …` as a DPO runs them: a breach recorded by hand with
its 72-hour clock, noted, notified and closed; `lanterne audit verify` opening the breach itself
when it finds the log altered (once); the risk register added to, listed with what is overdue,
reviewed and prefilled from the impact assessment. Mistakes end in one line, exit 2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import load_config
from tests.audit.test_audit import bypass_triggers, sql

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


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
    path.write_text(
        yaml.safe_dump(
            {
                "site": "Ville de Test",
                "store": {"url": f"sqlite:///{tmp_path / 'lanterne.db'}"},
                "audit": {"key_path": str(tmp_path / "audit.key")},
                "public": {"controller": "Ville de Test", "dpo_contact": "dpo@ville.example"},
                "cameras": [{"id": "gare", "source": "gare.mp4", "location": {"lat": 48.88, "lon": 2.35}}],
            }
        ),
        encoding="utf-8",
    )
    return str(path)


def test_a_breach_recorded_by_hand_runs_its_clock_until_the_authority_is_told(site: str) -> None:
    detected = (datetime.now(UTC) - timedelta(hours=80)).isoformat(timespec="minutes")
    out = ok(
        "incidents", "open", "--config", site, "--kind", "breach", "--title", "export sent to the wrong address",
        "--summary", "An export of camera gare was mailed to a wrong recipient.", "--camera", "gare",
        "--detected", detected, "--user", "u-dpo",
    )  # fmt: skip
    assert out.startswith("incident 1 opened (breach), owner u-dpo; notify the authority by ")
    assert "OVERDUE (deadline" in ok("incidents", "list", "--config", site)
    ok(
        "incidents",
        "note",
        "1",
        "--config",
        site,
        "--text",
        "recipient asked to delete it",
        "--user",
        "u-dpo",
    )
    told = ok(
        "incidents", "notify", "1", "--config", site, "--to", "authority", "--reference", "CNIL 2026-991",
        "--user", "u-dpo",
    )  # fmt: skip
    assert "after the 72-hour deadline: give the reasons for the delay" in told
    shown = ok("incidents", "show", "1", "--config", site)
    assert "72-hour clock: OVERDUE" in shown and "recipient asked to delete it" in shown
    assert "notified the authority: CNIL 2026-991" in shown
    template = ok("incidents", "show", "1", "--config", site, "--template")
    assert template.startswith("# Notification de violation de données personnelles — incident 1\n")
    assert "## 9. Délégué à la protection des données (contact)\ndpo@ville.example" in template
    assert "## 10. Motifs du retard" in template
    ok(
        "incidents",
        "close",
        "1",
        "--config",
        site,
        "--cause",
        "typo",
        "--remedy",
        "recipients from a list",
        "--user",
        "u-dpo",
    )
    assert ok("incidents", "list", "--config", site) == "no open incident\n"
    assert "closed" in ok("incidents", "list", "--config", site, "--state", "all")
    cfg = load_config(Path(site))
    log = AuditLog.from_config(cfg)
    steps = [e.details["step"] for e in log.entries(action=Action.INCIDENT)]
    log.close()
    assert steps == ["opened", "note", "notified", "closed"]
    assert refused("incidents", "close", "1", "--config", site, "--cause", "x", "--remedy", "y").startswith(
        "error: incident 1 was closed by u-dpo"
    )
    assert "--camera 'quai' is not in the configuration" in refused(
        "incidents", "open", "--config", site, "--title", "t", "--summary", "s", "--camera", "quai"
    )
    assert "--to 'press'" in refused(
        "incidents", "notify", "1", "--config", site, "--to", "press", "--reference", "r"
    )
    assert "incident 9 does not exist" in refused("incidents", "show", "9", "--config", site)


def test_audit_verify_opens_a_breach_once_when_it_finds_the_log_altered(site: str) -> None:
    cfg = load_config(Path(site))
    log = AuditLog.from_config(cfg)
    for i in range(5):
        log.append("op-1", Action.VIEW_SNAPSHOT, object_type="event", object_id=f"ev-{i}")
    assert "intact" in ok("audit", "verify", "--config", site)
    assert ok("incidents", "list", "--config", site) == "no open incident\n"
    bypass_triggers(log.engine)
    sql(log.engine, "UPDATE audit_records SET action = 'search' WHERE seq = 3")
    log.close()
    first = runner.invoke(app, ["audit", "verify", "--config", site], env=WIDE)
    assert first.exit_code == 1 and "record 3: content altered" in first.output
    assert "breach incident 1 opened; notify the CNIL by " in first.output
    again = runner.invoke(app, ["audit", "verify", "--config", site], env=WIDE)
    assert again.exit_code == 1 and "breach incident 1 already open" in again.output
    listed = ok("incidents", "list", "--config", site)
    assert "breach" in listed and "audit log altered or truncated" in listed and "h left (deadline" in listed
    assert "record 3: content altered (hash mismatch)" in ok("incidents", "show", "1", "--config", site)


def test_the_risk_register_from_the_command_line(site: str) -> None:
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    later = (datetime.now(UTC).date() + timedelta(days=90)).isoformat()
    assert "the risk register is empty" in ok("risks", "list", "--config", site)
    out = ok(
        "risks", "add", "--config", site, "--title", "Misuse of recordings by habilitated agents.",
        "--category", "misuse", "--owner", "dpo", "--measures", "purpose on every view; log review",
        "--next-review", yesterday, "--likelihood", "2", "--severity", "4", "--user", "u-dpo",
    )  # fmt: skip
    assert out.startswith(
        "risk 1: Misuse of recordings by habilitated agents. (likelihood 2 limited, severity 4 maximum)"
    )
    assert f"{yesterday} OVERDUE" in ok("risks", "list", "--config", site)
    ok(
        "risks",
        "review",
        "1",
        "--config",
        site,
        "--next-review",
        later,
        "--note",
        "log review in place",
        "--user",
        "u-dpo",
    )
    assert "OVERDUE" not in ok("risks", "list", "--config", site)
    added = ok("risks", "prefill", "--config", site, "--owner", "dpo", "--user", "u-dpo")
    assert added.count("likelihood not assessed") == 4  # the fifth known risk was already there
    assert "--category 'privacy'" in refused(
        "risks", "add", "--config", site, "--title", "t", "--category", "privacy", "--owner", "o",
        "--measures", "m", "--next-review", later,
    )  # fmt: skip
    assert "--next-review 'soon' is not a date" in refused(
        "risks", "review", "1", "--config", site, "--next-review", "soon", "--note", "n"
    )
