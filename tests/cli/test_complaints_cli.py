"""`lanterne complaints …` as the DPO runs it (GV-07): a complaint recorded, listed, answered and
listed again, each step in the audit log with the texts' hashes, not the texts; the public page
counting them by category and state; and every mistake, a summary carrying contact details
included, ending in one line and exit 2 with nothing recorded."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lanterne.accountability.transparency import public_data, render_html
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import load_config
from lanterne.store import Store

runner = CliRunner()
WIDE = {"COLUMNS": "250"}
SUMMARY = "Camera gare is said to film the terrace of a private garden"


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


def _steps(site: str) -> list[tuple[str, str, dict[str, object]]]:
    log = AuditLog.from_config(load_config(Path(site)))
    try:
        return [(e.user_id, e.object_id or "", e.details) for e in log.entries(action=Action.COMPLAINT)]
    finally:
        log.close()


def test_a_complaint_is_recorded_listed_and_answered_on_the_record(site: str) -> None:
    received = (datetime.now(UTC).date() - timedelta(days=9)).isoformat()
    out = ok(
        "complaints", "add", "--config", site, "--category", "camera_placement", "--channel", "letter",
        "--summary", SUMMARY, "--received", received, "--user", "u-dpo",
    )  # fmt: skip
    assert out == f"complaint 1 recorded (camera_placement, received {received} by letter)\n"
    ok(
        "complaints", "add", "--config", site, "--category", "false_alert", "--channel", "authority",
        "--summary", "The commission forwards a complaint about an intervention after an alert",
    )  # fmt: skip
    listed = ok("complaints", "list", "--config", site, "--state", "open")
    assert SUMMARY in listed and "false_alert" in listed
    answered = ok(
        "complaints", "answer", "1", "--config", site, "--answer", "Privacy mask widened over the garden",
        "--user", "u-dpo",
    )  # fmt: skip
    assert answered == f"complaint 1 answered on {datetime.now(UTC).date()} (9 days after it arrived)\n"
    assert "Privacy mask widened" in ok("complaints", "list", "--config", site, "--state", "answered")
    assert SUMMARY not in ok("complaints", "list", "--config", site, "--category", "false_alert")
    steps = _steps(site)
    assert [(who, oid, d["step"]) for who, oid, d in steps] == [
        ("u-dpo", "1", "recorded"),
        (steps[1][0], "2", "recorded"),
        ("u-dpo", "1", "answered"),
    ]
    assert steps[0][2]["summary_sha256"] == hashlib.sha256(SUMMARY.encode()).hexdigest()
    assert all(SUMMARY not in str(d) and "garden" not in str(d) for _, _, d in steps)  # hashes, not texts
    assert refused("complaints", "answer", "1", "--config", site, "--answer", "again").startswith(
        "error: complaint 1 was answered on "
    )
    cfg = load_config(Path(site))
    store = Store.open(cfg.store.url)
    try:
        data = public_data(cfg, store.engine, datetime.now(UTC))
    finally:
        store.close()
    assert [(c.category, c.state, c.count) for c in data.complaints] == [
        ("camera_placement", "answered", 1),
        ("false_alert", "open", 1),
    ]
    html = render_html(data)
    assert 'data-category="camera_placement" data-state="answered"' in html
    assert SUMMARY not in html and "commission forwards" not in html  # counts only on the public page


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"--summary": "Call back Mme X on 06 12 34 56 78"}, "looks like a phone number"),
        ({"--summary": "Answer to jeanne.x@example.org please"}, "looks like an e-mail address"),
        ({"--summary": "  "}, "the summary is empty"),
        ({"--summary": "x" * 1001}, "shorten it to 1000"),
        ({"--category": "faces"}, "--category 'faces': choose one of camera_placement"),
        ({"--channel": "fax"}, "--channel 'fax': choose one of letter"),
        ({"--received": "05/12/2026"}, "--received '05/12/2026' is not a date"),
        ({"--received": "2999-01-01"}, "is after today"),
    ],
)
def test_mistakes_end_in_one_line_and_record_nothing(
    site: str, options: dict[str, str], message: str
) -> None:
    given = {"--category": "privacy", "--channel": "email", "--summary": "Blur too weak"} | options
    line = refused("complaints", "add", "--config", site, *(x for kv in given.items() for x in kv))
    assert line.startswith("error: ") and message in line, line
    assert ok("complaints", "list", "--config", site) == "no complaint\n"
    assert _steps(site) == []


def test_an_answer_must_fit_the_complaint(site: str) -> None:
    ok(
        "complaints", "add", "--config", site, "--category", "information", "--channel", "web_form",
        "--summary", "No sign tells that the square is filmed", "--received", str(date.today() - timedelta(days=2)),
    )  # fmt: skip
    before = (date.today() - timedelta(days=3)).isoformat()
    assert "is before the complaint was received" in refused(
        "complaints", "answer", "1", "--config", site, "--answer", "Signs ordered", "--answered", before
    )
    assert "looks like an e-mail address" in refused(
        "complaints", "answer", "1", "--config", site, "--answer", "Answered to a@b.fr"
    )
    assert "complaint 7 does not exist" in refused(
        "complaints", "answer", "7", "--config", site, "--answer", "Signs ordered"
    )
    assert "--state 'closed'" in refused("complaints", "list", "--config", site, "--state", "closed")
    assert [d["step"] for _, _, d in _steps(site)] == ["recorded"]
    assert "open" in ok("complaints", "list", "--config", site)
