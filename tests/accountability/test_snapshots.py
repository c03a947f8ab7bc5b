"""Configuration snapshots (DC-03): the hash an event carries resolves to the configuration it
was computed over, stored at each start, printed by `lanterne config snapshot`, on SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from lanterne.accountability.snapshots import SnapshotError, get, record
from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config import config_hash, parse_config
from lanterne.config.schema import Config
from lanterne.runtime.demo import DEMO_CONFIG
from lanterne.store.tables import ConfigSnapshotRecord

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"


def _data(db_url: str, tmp_path: Path, **over: Any) -> dict[str, Any]:
    return {
        **DEMO_CONFIG,
        "mode": "statistics",
        "store": {"url": db_url, "evidence_dir": str(tmp_path / "evidence")},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        **over,
    }


@pytest.fixture
def audit(db_url: str) -> Iterator[AuditLog]:
    log = AuditLog.open(db_url)
    yield log
    log.close()


def _records(audit: AuditLog) -> list[Any]:
    return [e for e in audit.entries() if e.action is Action.CONFIG_SNAPSHOT]


def _rows(audit: AuditLog) -> int:
    with audit.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ConfigSnapshotRecord)).scalar_one())


def test_a_hash_resolves_to_exactly_what_was_hashed_stored_once(
    db_url: str, tmp_path: Path, audit: AuditLog
) -> None:
    cfg = parse_config(_data(db_url, tmp_path), base_dir=tmp_path)
    digest = record(audit.engine, audit, cfg)
    assert digest == config_hash(cfg)
    assert record(audit.engine, audit, cfg) == digest  # a restart with the same file
    assert _rows(audit) == 1
    [stored] = _records(audit)
    assert (stored.object_id, stored.details["change"], stored.user_id) == (digest, "stored", "system")

    snap = get(audit.engine, audit, digest[:12], user_id="u-dpo")
    # The stored text is the very text hashed: the hash on an alert proves the snapshot.
    assert hashlib.sha256(snap.config.encode()).hexdigest() == digest and snap.verifies
    assert parse_config(json.loads(snap.config)) == cfg
    assert [(r.details["change"], r.user_id) for r in _records(audit)] == [
        ("stored", "system"),
        ("read", "u-dpo"),
    ]

    # A changed threshold is another configuration, stored beside the first.
    zones = json.loads(json.dumps(DEMO_CONFIG["cameras"][0]["zones"]))
    zones[1]["events"]["crowd_density"]["max_people"] = 9
    cameras = [{**DEMO_CONFIG["cameras"][0], "zones": zones}]
    other = parse_config(_data(db_url, tmp_path, cameras=cameras), base_dir=tmp_path)
    assert record(audit.engine, audit, other) != digest
    assert _rows(audit) == 2
    assert (
        json.loads(get(audit.engine, audit, config_hash(other), user_id="u-dpo").config)["cameras"][0][
            "zones"
        ][1]["events"]["crowd_density"]["max_people"]
        == 9
    )


def test_credentials_in_urls_are_never_stored(db_url: str, tmp_path: Path, audit: AuditLog) -> None:
    camera = {**DEMO_CONFIG["cameras"][0], "source": "rtsp://operator:Tr0ub4dor@10.0.0.5:554/live"}
    cfg = parse_config(_data(db_url, tmp_path, cameras=[camera]), base_dir=tmp_path)
    digest = record(audit.engine, audit, cfg)
    snap = get(audit.engine, audit, digest, user_id="u-dpo")
    assert "Tr0ub4dor" not in snap.config and "rtsp://operator:***@10.0.0.5:554/live" in snap.config
    assert snap.redacted == ("cameras[0].source",) and not snap.verifies
    assert all("Tr0ub4dor" not in json.dumps(e.details) for e in audit.entries())


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ("abc", "not a configuration hash"),
        ("zzzzzzzzzzzz", "not a configuration hash"),
        ("0" * 12, "no configuration stored under"),
    ],
)
def test_a_hash_that_resolves_to_nothing_says_so(audit: AuditLog, asked: str, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        get(audit.engine, audit, asked, user_id="u-dpo")


def test_a_start_stores_it_and_the_cli_prints_it(tmp_path: Path) -> None:
    """`lanterne run` (and a worker, the same `Runner.start`) stores the snapshot before any
    camera runs; the CLI prints the configuration and records who read it."""
    from lanterne.runtime.runner import Runner

    db_url = f"sqlite:///{tmp_path / 'site.db'}"
    camera = {**DEMO_CONFIG["cameras"][0], "source": str(VIDEO / "vtest.avi")}
    data = _data(db_url, tmp_path, cameras=[camera])
    site = tmp_path / "site.yml"
    site.write_text(yaml.safe_dump(data), encoding="utf-8")
    from lanterne.config import load_config

    cfg: Config = load_config(site)
    runner = Runner(cfg)
    runner.start(cameras=[])
    runner.stop()
    digest = config_hash(cfg)
    audit = AuditLog.open(db_url)
    try:
        assert [r.object_id for r in _records(audit)] == [digest]
    finally:
        audit.close()

    r = CliRunner().invoke(app, ["config", "snapshot", digest[:12], "--config", str(site), "--user", "u-dpo"])
    assert r.exit_code == 0, r.output
    printed = json.loads(r.stdout)
    assert printed["cameras"][0]["zones"][1]["events"]["crowd_density"]["max_people"] == 5
    assert parse_config(printed) == cfg

    r = CliRunner().invoke(app, ["config", "snapshot", "0" * 12, "--config", str(site)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "no configuration stored under" in r.output
    audit = AuditLog.open(db_url)
    try:
        assert [(e.details["change"], e.user_id) for e in _records(audit)] == [
            ("stored", "system"),
            ("read", "u-dpo"),
        ]
    finally:
        audit.close()
