"""The register-of-processing entry (GV-03): generated from the configuration and the store, it
follows a change of either, on SQLite and PostgreSQL, and the CLI writes it as Markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.accountability.authorisation import Authorisations
from lanterne.accountability.register import entry, render_markdown
from lanterne.audit import AuditLog
from lanterne.cli.main import app
from lanterne.config import config_hash, parse_config
from lanterne.runtime.demo import DEMO_CONFIG

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PUBLIC = {
    "controller": "Ville d'Exemple, police municipale",
    "dpo_contact": "dpo@ville-exemple.fr",
    "purposes": ["sécurité des grands rassemblements"],
}


def _data(db_url: str, tmp_path: Path, **over: Any) -> dict[str, Any]:
    return {
        **DEMO_CONFIG,
        "store": {"url": db_url, "evidence_dir": str(tmp_path / "evidence")},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "public": PUBLIC,
        **over,
    }


@pytest.fixture
def audit(db_url: str) -> Iterator[AuditLog]:
    log = AuditLog.open(db_url)
    yield log
    log.close()


def _authorise(audit: AuditLog, reference: str, events: list[str], **over: Any) -> None:
    fields: dict[str, Any] = {
        "legal_basis": "Loi 2023-380 art. 10",
        "authority": "Préfecture du Rhône",
        "valid_from": NOW - timedelta(days=1),
        "valid_until": NOW + timedelta(days=10),
        "cameras": ["pets-crossroads"],
        "event_types": events,
        "user_id": "u-1",
        "manifestation": "Fête des Lumières 2026",
        "responsible_service": "Police municipale",
        "recipients": ["police-municipale"],
        **over,
    }
    Authorisations(audit.engine, audit).add(reference, **fields)


def test_the_entry_says_what_the_configuration_and_the_register_say(
    db_url: str, tmp_path: Path, audit: AuditLog
) -> None:
    cfg = parse_config(_data(db_url, tmp_path), base_dir=tmp_path)
    empty = entry(cfg, audit.engine, audit, now=NOW)
    assert empty["purposes"]["authorised_event_types"] == [] and empty["legal_bases"] == []
    assert "an authorisation in force or upcoming (lanterne authorisation add)" in empty["missing"]

    _authorise(audit, "AP-69-001", ["crowd_density", "zone_intrusion"])
    _authorise(
        audit,
        "AP-69-OLD",
        ["wrong_way"],
        valid_from=NOW - timedelta(days=30),
        valid_until=NOW - timedelta(days=20),
    )
    e = entry(cfg, audit.engine, audit, now=NOW)
    assert (e["controller"], e["dpo"], e["config_sha256"]) == (
        PUBLIC["controller"],
        PUBLIC["dpo_contact"],
        config_hash(cfg),
    )
    # Purposes: the types authorised now or upcoming; an expired act authorises nothing more.
    assert e["purposes"]["authorised_event_types"] == ["crowd_density", "zone_intrusion"]
    [basis] = e["legal_bases"]
    assert (basis["reference"], basis["manifestation"], basis["responsible_service"]) == (
        "AP-69-001",
        "Fête des Lumières 2026",
        "Police municipale",
    )
    assert e["recipients"] == [{"recipient": "police-municipale", "authorised_by": ["AP-69-001"]}]
    assert e["retention"] == {"events_and_evidence_days": 30, "audit_log_days": 365, "recordings_days": 30}
    assert e["transfers"].startswith("none") and e["missing"] == []
    assert any("recordings encrypted" in m for m in e["security_measures"])
    md = render_markdown(e)
    assert "- **Controller**: Ville d'Exemple, police municipale" in md
    assert "AP-69-001 (active)" in md and "for Fête des Lumières 2026" in md and "AP-69-OLD" not in md

    # A change of the configuration shows at once: shorter retention, a new partner, statistics.
    hook = {"id": "sdis-69", "url": "https://sdis.example/hook", "secret_file": "hook.secret"}
    changed = parse_config(
        _data(
            db_url,
            tmp_path,
            retention={"evidence_days": 7},
            recording={"retention_days": 10},
            outbound={"webhooks": [hook]},
        ),
        base_dir=tmp_path,
    )
    e2 = entry(changed, audit.engine, audit, now=NOW)
    assert e2["retention"] == {"events_and_evidence_days": 7, "audit_log_days": 365, "recordings_days": 10}
    assert e2["recipients"][-1] == {
        "recipient": "sdis-69",
        "channel": "webhook",
        "what": "confirmed alerts: type, camera, zone, times, follow-up; no picture",
        "authorised": False,
    }
    assert "sdis-69 by webhook" in render_markdown(e2) and "NOT named by an authorisation" in render_markdown(
        e2
    )
    stats = parse_config(_data(db_url, tmp_path, mode="statistics", public={}), base_dir=tmp_path)
    e3 = entry(stats, audit.engine, audit, now=NOW)
    assert e3["purposes"]["authorised_event_types"] == [] and "recordings_days" not in e3["retention"]
    assert e3["missing"] == ["public.controller", "public.dpo_contact"]


def test_cli_writes_markdown_and_json(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'site.db'}"
    site = tmp_path / "site.yml"
    site.write_text(yaml.safe_dump(_data(db_url, tmp_path)), encoding="utf-8")
    cli = CliRunner()
    out = tmp_path / "register.json"
    r = cli.invoke(
        app, ["config", "register-of-processing", "--config", str(site), "--format", "json", "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    e = json.loads(out.read_text(encoding="utf-8"))
    assert e["controller"] == PUBLIC["controller"] and e["mode"] == "alerts"
    r = cli.invoke(app, ["config", "register-of-processing", "--config", str(site)])
    assert r.exit_code == 0 and r.stdout.startswith("# Register of processing: Demo: PETS 2009")
    r = cli.invoke(app, ["config", "register-of-processing", "--config", str(site), "--format", "pdf"])
    assert r.exit_code == 2 and "use markdown or json" in r.output
