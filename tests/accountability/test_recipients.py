"""Authorised recipients (AC-06) and the authorisation's event name and responsible service
(LB-01): a destination or an export's recipient no authorisation in force names is refused with
one line and recorded; the fields are recorded, audited, listed and published."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.accountability.authorisation import Authorisations, RecipientError
from lanterne.accountability.outbound import check_destinations
from lanterne.accountability.transparency import public_data, render_html
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import parse_config
from lanterne.runtime.demo import DEMO_CONFIG
from lanterne.runtime.exports import export_recording
from lanterne.runtime.site import open_site
from tests.support.recording import camera_clip, record

T0 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def audit(db_url: str) -> Iterator[AuditLog]:
    log = AuditLog.open(db_url)
    yield log
    log.close()


def _add(register: Authorisations, reference: str, recipients: list[str] | None, **over: Any) -> None:
    fields: dict[str, Any] = {
        "legal_basis": "Loi 2023-380 art. 10",
        "authority": "Préfecture du Rhône",
        "valid_from": T0 - timedelta(days=1),
        "valid_until": T0 + timedelta(days=10),
        "cameras": ["quai"],
        "event_types": ["zone_intrusion"],
        "user_id": "u-1",
        "recipients": recipients,
        **over,
    }
    register.add(reference, **fields)


def _refusals(audit: AuditLog) -> list[Any]:
    return [e for e in audit.entries() if e.action is Action.RECIPIENT_REFUSED]


def test_only_recipients_an_authorisation_in_force_names_pass(audit: AuditLog) -> None:
    register = Authorisations(audit.engine, audit, clock=lambda: T0)
    # An act recorded before recipients were kept restricts nothing: there is no list to check.
    _add(register, "AP-OLD-FORM", None)
    assert register.authorised_recipients() is None
    register.check_recipients(["anyone"], channel="outbound", user_id="system")
    assert _refusals(audit) == []

    _add(register, "AP-1", ["police-municipale", "SDIS 69"])
    _add(
        register,
        "AP-EXPIRED",
        ["police-nationale"],
        valid_from=T0 - timedelta(days=9),
        valid_until=T0 - timedelta(days=2),
    )
    assert register.authorised_recipients() == {"police-municipale", "SDIS 69"}
    register.check_recipients(["police-municipale", "SDIS 69"], channel="outbound", user_id="system")
    with pytest.raises(RecipientError) as err:
        register.check_recipients(["SDIS 69", "police-nationale"], channel="export", user_id="u-7")
    assert "\n" not in str(err.value)
    assert "'police-nationale' is not named by an authorisation in force" in str(err.value)
    assert "--recipient NAME" in str(err.value)
    [refused] = _refusals(audit)
    assert (refused.user_id, refused.object_type) == ("u-7", "export")
    assert refused.details == {
        "channel": "export",
        "refused": ["police-nationale"],
        "authorised": ["SDIS 69", "police-municipale"],
    }
    # Recorded, audited and read back with the act.
    a = register.get("AP-1")
    assert a is not None and a.recipients == ("police-municipale", "SDIS 69")
    change = next(e for e in audit.entries() if e.object_id == "AP-1")
    assert change.details["recipients"] == ["police-municipale", "SDIS 69"]


def test_a_destination_not_named_is_refused_at_configuration_time(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'site.db'}"
    hooks = [
        {"id": "police-municipale", "url": "https://pm.example/hook", "secret_file": "pm.secret"},
        {"id": "sdis-69", "url": "https://sdis.example/hook", "secret_file": "sdis.secret"},
    ]
    data = {
        **DEMO_CONFIG,
        "store": {"url": db_url},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "outbound": {"webhooks": hooks},
    }
    site = tmp_path / "site.yml"
    site.write_text(yaml.safe_dump(data), encoding="utf-8")
    cfg = parse_config(data, base_dir=tmp_path)
    now = datetime.now(UTC)
    with open_site(cfg) as opened:
        register = Authorisations(opened.store.engine, opened.audit)
        _add(
            register,
            "AP-1",
            ["police-municipale"],
            cameras=["pets-crossroads"],
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=1),
        )
        with pytest.raises(RecipientError, match="outbound recipient 'sdis-69' is not named"):
            check_destinations(cfg, opened.store.engine, opened.audit)
    # `lanterne serve` refuses to start on it, one line, before serving anything.
    r = CliRunner().invoke(app, ["serve", "--config", str(site), "--port", "1"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "sdis-69" in r.output
    with open_site(cfg) as opened:
        refusals = _refusals(opened.audit)
        assert [(e.object_type, e.details["refused"]) for e in refusals] == [("outbound", ["sdis-69"])] * 2
        Authorisations(opened.store.engine, opened.audit).add(
            "AP-2",
            legal_basis="Loi 2023-380 art. 10",
            authority="Préfecture du Rhône",
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=1),
            cameras=["pets-crossroads"],
            event_types=["crowd_density"],
            user_id="u-1",
            recipients=["sdis-69"],
        )
        check_destinations(cfg, opened.store.engine, opened.audit)  # both named now


def test_an_export_to_a_recipient_not_named_is_refused_and_recorded(tmp_path: Path) -> None:
    data = {
        "mode": "alerts",
        "site": "Ville d'Exemple",
        "cameras": [{"id": "quai", "source": "quai.mp4", "location": {"lat": 48.88, "lon": 2.35}}],
    }
    cfg = parse_config(data, base_dir=tmp_path)
    (tmp_path / "cam").mkdir()
    clip = camera_clip(tmp_path / "cam", seconds=6.0)
    with open_site(cfg) as site:
        record(cfg, site.store, site.audit, "quai", T0, clip)
        _add(Authorisations(site.store.engine, site.audit), "AP-1", ["SDIS 69"])
        out = tmp_path / "x.mp4"
        args: dict[str, Any] = {
            "requester": "sup-1",
            "purpose": "PV 2026/123",
            "now": T0 + timedelta(hours=1),
        }
        start, end = T0 + timedelta(seconds=1), T0 + timedelta(seconds=3)
        with pytest.raises(RecipientError, match="export recipient 'OPJ Martin' is not named"):
            export_recording(site, "quai", start, end, out, recipient="OPJ Martin", **args)
        assert not out.exists()
        [refused] = _refusals(site.audit)
        assert (refused.user_id, refused.details["refused"]) == ("sup-1", ["OPJ Martin"])
        manifest = export_recording(site, "quai", start, end, out, recipient="SDIS 69", **args)
        assert out.exists() and manifest.recipient == "SDIS 69"
        exports = [e for e in site.audit.entries() if e.action is Action.EXPORT]
        assert [e.recipient for e in exports] == ["SDIS 69"]


def test_manifestation_and_service_are_recorded_listed_and_published(db_url: str, tmp_path: Path) -> None:
    data = {
        **DEMO_CONFIG,
        "legal_end_date": "2027-12-31",
        "store": {"url": db_url},
        "audit": {"key_path": str(tmp_path / "audit.key")},
    }
    site = tmp_path / "site.yml"
    site.write_text(yaml.safe_dump(data), encoding="utf-8")
    args = ["authorisation", "add", "--config", str(site), "--reference", "AP-69-2026-12",
            "--legal-basis", "Loi 2023-380 art. 10", "--authority", "Préfecture du Rhône",
            "--from", "2026-12-01T00:00+01:00", "--until", "2026-12-12T00:00+01:00",
            "--camera", "pets-crossroads", "--event", "crowd_density",
            "--event-name", "Fête des Lumières 2026", "--responsible-service", "Police municipale de Lyon",
            "--recipient", "police-municipale", "--recipient", "SDIS 69", "--user", "u-1"]  # fmt: skip
    cli = CliRunner()
    r = cli.invoke(app, args)
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["authorisation", "list", "--config", str(site)], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    row = next(line for line in r.output.splitlines() if "AP-69-2026-12" in line)
    assert "Fête des Lumières 2026" in row and "Police municipale de Lyon" in row
    assert "police-municipale, SDIS 69" in row
    blank = [" " if prev == "--event-name" else ("AP-X" if prev == "--reference" else a)
             for prev, a in zip(["", *args], args, strict=False)]  # fmt: skip
    r = cli.invoke(app, blank)
    assert r.exit_code == 2 and "manifestation is empty" in r.output

    cfg = parse_config(data, base_dir=tmp_path)
    audit = AuditLog.open(db_url)
    try:
        [change] = [e for e in audit.entries() if e.action is Action.AUTHORISATION_CHANGE]
        assert (change.details["manifestation"], change.details["responsible_service"]) == (
            "Fête des Lumières 2026",
            "Police municipale de Lyon",
        )
        page = render_html(public_data(cfg, audit.engine, datetime(2026, 12, 6, tzinfo=UTC)))
    finally:
        audit.close()
    entry = page[page.index('data-reference="AP-69-2026-12"') :]
    entry = entry[: entry.index("</tr>")]
    assert "Fête des Lumières 2026" in entry and "Responsible service: Police municipale de Lyon" in entry
    assert "Recipients: police-municipale, SDIS 69" in entry
    assert json.loads(json.dumps(change.details))["recipients"] == ["police-municipale", "SDIS 69"]
