"""Issue 4 end to end, as a new user would do it: configure an authorised deployment, publish the
notice, run it, decide on the alerts, see the precision published, prove the log intact, and
watch expired material disappear on schedule (controlled clock)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from lanterne.accountability.alerts import list_alerts
from lanterne.accountability.retention import purge
from lanterne.api.app import create_app
from lanterne.audit import AuditLog
from lanterne.cli.main import app
from lanterne.config import load_config
from lanterne.runtime.demo import CROSSROADS
from lanterne.runtime.runner import Runner
from lanterne.store import Store
from tests.support.video import VIDEO, excerpt

cli = CliRunner()


def ok(*args: str) -> str:
    result = cli.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("clip") / "vtest-10s.mp4", 10)


def test_authorised_deployment_end_to_end(tmp_path: Path, clip: Path) -> None:
    site = tmp_path / "site.yml"
    site.write_text(
        yaml.safe_dump(
            {
                "mode": "alerts",
                "site": "Ville de Test",
                "public": {
                    "controller": "Ville de Test",
                    "dpo_contact": "dpo@example.org",
                    "purposes": ["public safety"],
                },
                "retention": {"evidence_days": 30},
                "cameras": [
                    {
                        "id": "crossroads",
                        "name": "Campus crossroads",
                        "source": str(clip),
                        "location": {"lat": 51.44, "lon": -0.94},
                        "fps": 5,
                        "zones": [
                            {
                                "id": "walk",
                                "polygon": CROSSROADS,
                                "events": {"wrong_way": {"direction": [1, 0]}},
                            }
                        ],
                    }
                ],
            }
        )
    )
    now = datetime.now(UTC)
    c = str(site)
    ok("authorisation", "add", "--config", c, "--reference", "AP-2026-001", "--legal-basis", "Loi 2023-380 art. 10",
       "--authority", "Préfet de test", "--from", (now - timedelta(hours=1)).isoformat(),
       "--until", (now + timedelta(days=60)).isoformat(), "--camera", "crossroads", "--event", "wrong_way",
       "--user", "admin1")  # fmt: skip
    ok("transparency", "publish", "--config", c, "--out", str(tmp_path / "public"), "--user", "admin1")
    # LB-06: no alerting until someone who looked at the view records that it shows no dwelling.
    assert "NO: no alerting" in ok("masks", "status", "--config", c)
    refused = cli.invoke(app, ["masks", "validate", "crossroads", "--config", c, "--user", "admin1"])
    assert refused.exit_code == 2
    ok("masks", "validate", "crossroads", "--config", c, "--note", "view walked: a crossroads, no dwelling",
       "--user", "admin1")  # fmt: skip
    assert "NO: no alerting" not in ok("masks", "status", "--config", c)
    # GV-01, GV-02: the authorisation names its DPIA and a recorded fundamental-rights assessment;
    # GV-05: the model and the rules it runs are approved in signed records, with the updated
    # assessments and the notice's link.
    ok("fria", "add", "--config", c, "--reference", "FRIA-2026-001", "--date", now.date().isoformat(),
       "--processes", "CSU operators lift doubt on alerts at the crossroads", "--period", "two months, 24/7",
       "--affected", "passers-by, cyclists, staff", "--risks", "false alerts on people at rest",
       "--oversight", "every alert confirmed or dismissed by an operator",
       "--mitigation", "suspension on a false-alarm spike; complaints to the DPO",
       "--authorisation", "AP-2026-001", "--dpia", "https://ville.example/aipd-2026.pdf",
       "--user", "dpo1")  # fmt: skip
    assert "NO: alerts mode refused" in ok("governance", "status", "--config", c)
    ok("governance", "approve", "--config", c, "--what", "model", "--what", "event_types", "--what", "zones",
       "--what", "thresholds", "--dpia", "https://ville.example/aipd-2026.pdf", "--fria", "FRIA-2026-001",
       "--ref", "https://ville.example/transparence", "--summary", "deployment reviewed", "--user", "dpo1")  # fmt: skip

    cfg = load_config(site)
    runner = Runner(cfg)
    runner.start()
    try:
        deadline = time.monotonic() + 180
        while runner.workers["crossroads"].state.status != "finished" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        runner.stop()
    store = Store.open(cfg.store.url)
    alerts = list_alerts(store.engine)
    assert len(alerts) >= 2, "people walk right to left in the first 10 s"

    first, second = alerts[0].id, alerts[1].id
    for alert_id in (first, second):
        ok("alerts", "ack", alert_id, "--config", c, "--user", "op7")
    ok("alerts", "confirm", first, "--config", c, "--follow-up", "monitoring", "--user", "op7")
    ok("alerts", "dismiss", second, "--config", c, "--reason", "person_at_rest", "--user", "op7")
    refused = cli.invoke(app, ["alerts", "dismiss", alerts[-1].id, "--config", c, "--user", "op7"])
    assert refused.exit_code == 2, "a dismissal needs a reason"

    with TestClient(create_app(cfg)) as http:
        public = http.get("/public/transparency.json").json()
    month = next(m for m in public["monthly"] if m["event_type"] == "wrong_way")
    assert month["confirmed"] == 1 and month["dismissed"] == 1 and month["alerts"] == len(alerts)
    assert month["confirmed_share"] == 0.5 and month["reasons"] == {"person_at_rest": 1}
    assert "AP-2026-001" in json.dumps(public["cameras"])

    out = ok("audit", "verify", "--config", c)
    assert "intact" in out

    evidence = [p for p in cfg.store.evidence_dir.rglob("*") if p.is_file()]
    assert evidence, "anonymised snapshots and clips were written"
    audit = AuditLog.from_config(cfg)
    report = purge(store, cfg.store.evidence_dir, cfg.retention, audit, now + timedelta(days=31))
    assert report.events_deleted == len(alerts) and report.overdue_remaining == 0
    assert not [p for p in cfg.store.evidence_dir.rglob("*") if p.is_file()], "files gone from disk"
    assert store.events() == [], "and from the index"
    assert "intact" in ok("audit", "verify", "--config", c), "deletions are recorded, the chain still holds"
