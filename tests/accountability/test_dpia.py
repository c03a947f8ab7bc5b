"""The impact-assessment draft (`lanterne dpia`): pre-filled with the cameras, retention,
authorisations, detectors with their limits and the measured precision; the parts only the
controller can write clearly marked; a valid PDF with French accents; audited."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from lanterne.accountability import dpia
from lanterne.accountability.alerts import acknowledge, confirm, dismiss
from lanterne.accountability.authorisation import Authorisations
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import Config, parse_config
from lanterne.core import pdf_fonts
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from lanterne.store.tables import AuditRecord

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]


def raw_config(db_url: str) -> dict[str, Any]:
    return {
        "mode": "alerts",
        "site": "Commune de Sécurité-sur-Mer",
        "store": {"url": db_url},
        "retention": {"evidence_days": 14},
        "audit": {"retention_days": 400},
        "public": {
            "controller": "Mairie de Sécurité-sur-Mer",
            "dpo_contact": "dpo@securite.example",
            "purposes": ["Prévention des chutes sur le quai"],
        },
        "cameras": [
            {
                "id": "quai-est",
                "name": "Quai est, escalier",
                "source": "a.mp4",
                "location": {"lat": 43.2965, "lon": 5.3698},
                "zones": [{"id": "escalier", "polygon": SQUARE, "events": {"person_down": {}}}],
            }
        ],
    }


Site = tuple[Config, Store, AuditLog]


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[Site]:
    cfg = parse_config(raw_config(db_url), base_dir=tmp_path)
    store = Store.open(db_url)
    audit = AuditLog(store.engine)
    Authorisations(store.engine, audit, clock=lambda: NOW).add(
        "AP-13-2026-0099",
        legal_basis="Loi 2023-380 art. 10",
        authority="Préfecture des Bouches-du-Rhône",
        valid_from=NOW - timedelta(days=20),
        valid_until=NOW + timedelta(days=40),
        cameras=["quai-est"],
        event_types=["person_down"],
        user_id="u-1",
    )
    for i in range(3):
        ev = Event(
            f"pd-{i}", EventType.PERSON_DOWN, "quai-est", "escalier", 0.0, 9.0, 0.7, (0.3, 0.5, 0.6, 0.9)
        )
        store.upsert_event(ev, NOW - timedelta(days=3, minutes=i), "alerts")
        acknowledge(store.engine, audit, f"pd-{i}", "op-1", NOW)
    confirm(store.engine, audit, "pd-0", "op-1", NOW, "emergency_services")
    confirm(store.engine, audit, "pd-1", "op-1", NOW, "field_request")
    dismiss(store.engine, audit, "pd-2", "op-1", NOW, "person_at_rest")
    yield cfg, store, audit
    store.close()


def test_draft_is_prefilled_from_config_register_and_figures(site: Site) -> None:
    cfg, store, _ = site
    md = dpia.dpia_draft(cfg, store.engine, NOW).markdown()
    for text in (
        "Commune de Sécurité-sur-Mer",
        "quai-est",
        "Quai est, escalier",
        "43.29650, 5.36980",
        "14 days",  # evidence retention
        "400 days",  # audit retention
        "AP-13-2026-0099",
        "Préfecture des Bouches-du-Rhône",
        "Person down (person_down)",
        "towards or away from the camera",  # a known limit from docs/events/person_down.md
        "Prévention des chutes sur le quai",
        "dpo@securite.example",
        "pixelated",
    ):
        assert text in md, text
    # The measured precision row: 3 alerts, 2 confirmed, 1 dismissed, 67 %, the reason counted.
    row = next(line for line in md.splitlines() if line.startswith("| quai-est | person_down |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:9] == ["3", "2", "1", "67 %", "21–94 %", "67 %", "person_at_rest: 1"]
    assert md.count(f"**{dpia.TO_COMPLETE}**") >= 8
    assert "No public notice has been published for this configuration yet" in md


def test_pdf_is_valid_and_audited(site: Site, tmp_path: Path) -> None:
    cfg, store, _ = site
    md_path, pdf_path = dpia.write_dpia(cfg, store.engine, tmp_path / "out", "dpo-1", NOW)
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(pdf) > 20_000
    assert len(re.findall(rb"/Type /Page\b", pdf)) >= 3
    assert b"DejaVu" in pdf  # the embedded Unicode font: accents are real glyphs, not "?"
    assert md_path.read_text(encoding="utf-8").startswith("# Data-protection impact assessment (draft)")
    with store.engine.connect() as conn:
        (record,) = conn.execute(select(AuditRecord).where(AuditRecord.object_type == "dpia")).all()
    assert record.action == str(Action.CONFIG_CHANGE) and record.user_id == "dpo-1"
    assert json.loads(record.details)["event"] == "dpia_draft"


def test_pdf_without_unicode_font_falls_back_to_latin1(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, store, _ = site
    monkeypatch.setattr(pdf_fonts, "font_files", lambda: None)
    pdf = dpia.render_pdf(dpia.dpia_draft(cfg, store.engine, NOW))
    assert pdf.startswith(b"%PDF-") and b"Helvetica" in pdf and b"DejaVu" not in pdf


def test_cli_writes_both_files(site: Site, tmp_path: Path) -> None:
    cfg, _, _ = site
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw_config(cfg.store.url), allow_unicode=True), encoding="utf-8")
    out = tmp_path / "aipd"
    result = CliRunner().invoke(app, ["dpia", "--config", str(path), "--out", str(out), "--user", "dpo-1"])
    assert result.exit_code == 0, result.output
    assert (out / "dpia-draft.md").is_file() and (out / "dpia-draft.pdf").stat().st_size > 20_000
