"""The witnessed audit head (issue 13, item 1): checkpoints by time as well as by count, every
signed checkpoint copied to an append-only witness file, `verify` checking the database against
it, and each day's last signed head on the public page.

The attack is the issue's: a database administrator drops the triggers, deletes the newest
records *and* the checkpoint that signed them. The database alone then looks intact (the first
test shows it); the witness file names the records that went.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from lanterne.audit import Action, AuditLog, signing
from lanterne.audit.verify import verify_log
from lanterne.audit.witness import HeadTimer, SignedHead, WitnessFile, read_witness_file
from tests.audit.test_audit import bypass_triggers, rehash, row, sql

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """Reads `now`; each reading advances it by `step` (0: time stands still until a test moves it)."""

    def __init__(self, start: datetime, step: float = 1.0) -> None:
        self.now = start
        self.step = timedelta(seconds=step)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "audit.key"


@pytest.fixture
def witness_path(tmp_path: Path) -> Path:
    (tmp_path / "witness").mkdir()
    return tmp_path / "witness" / "audit-witness.jsonl"


@pytest.fixture
def log(db_url: str, key_path: Path, witness_path: Path) -> Iterator[AuditLog]:
    key_path.parent.mkdir()
    opened = AuditLog.open(
        db_url, key_path=key_path, checkpoint_every=5, witnesses=[WitnessFile(witness_path)], clock=Clock(T0)
    )
    yield opened
    opened.close()


def public(key_path: Path) -> list:
    return [signing.load_private_key(key_path).public_key()]


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append("op-1", Action.VIEW_SNAPSHOT, object_type="event", object_id=f"ev-{i}")


def heads(path: Path) -> list[SignedHead]:
    return [line.head for line in read_witness_file(path) if line.head is not None]


def checkpoint_seqs(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT seq FROM audit_checkpoints ORDER BY seq")).scalars())


def truncate_tail_and_its_checkpoint(engine: Engine, from_seq: int) -> None:
    """The issue's attack: triggers off, the newest records gone, and the checkpoint on them too."""
    bypass_triggers(engine)
    sql(engine, "DELETE FROM audit_checkpoints WHERE seq >= :s", s=from_seq)
    sql(engine, "DELETE FROM audit_records WHERE seq >= :s", s=from_seq)


# --- the attack ---------------------------------------------------------------------------


def test_deleting_the_tail_and_its_checkpoint_is_named(
    log: AuditLog, key_path: Path, witness_path: Path
) -> None:
    fill(log, 12)  # checkpoints at 5 and 10
    assert log.sign_head() == 12
    assert [h.seq for h in heads(witness_path)] == [5, 10, 12]
    intact = verify_log(log.engine, public(key_path), [witness_path])
    assert intact.ok, intact.problem
    assert intact.witnessed is not None and intact.witnessed.seq == 12
    assert "; witnessed head 12 at 2026-03-01 09:00:" in intact.summary()

    truncate_tail_and_its_checkpoint(log.engine, 9)

    # What the database alone says: a shorter log, consistent and validly signed up to record 5.
    alone = verify_log(log.engine, public(key_path))
    assert alone.ok and alone.records == 8 and alone.last_checkpoint_seq == 5

    result = verify_log(log.engine, public(key_path), [witness_path])
    head = heads(witness_path)[-1]
    assert not result.ok and result.first_bad_seq == 9
    assert result.problem == (
        f"records 9-12 missing: witness signed head 12 at {head.ts.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    )


def test_a_rewritten_history_disagrees_with_the_witness(
    log: AuditLog, key_path: Path, witness_path: Path
) -> None:
    fill(log, 12)
    bypass_triggers(log.engine)
    # Record 8 changed, every later hash recomputed, and the checkpoint at 10 that would tell deleted.
    prev = row(log.engine, 7)["hash"]
    for seq in range(8, 13):
        r = row(log.engine, seq) | {"prev_hash": prev}
        if seq == 8:
            r["user_id"] = "someone-else"
        r["hash"] = rehash(r)
        sql(log.engine, "UPDATE audit_records SET user_id = :u, prev_hash = :p, hash = :h WHERE seq = :s",
            u=r["user_id"], p=r["prev_hash"], h=r["hash"], s=seq)  # fmt: skip
        prev = r["hash"]
    sql(log.engine, "DELETE FROM audit_checkpoints WHERE seq = 10")
    assert verify_log(log.engine, public(key_path)).ok  # the database alone cannot tell

    result = verify_log(log.engine, public(key_path), [witness_path])
    assert not result.ok and result.first_bad_seq == 6, result.problem
    assert result.problem is not None
    assert result.problem.startswith("records 6-10 rewritten: witness signed head 10 at 2026-03-01 ")
    assert result.problem.endswith("disagrees with the database (chain hash mismatch)")


def _resign(line: dict, key: Ed25519PrivateKey) -> None:
    line["kid"] = signing.key_id(key.public_key())
    ts = datetime.fromisoformat(line["ts"])
    line["sig"] = key.sign(signing.checkpoint_message(line["seq"], line["chain_hash"], ts, line["kid"])).hex()


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda ln: ln.update(seq=11), "line 2: bad signature on head 11 (forged or altered)"),
        (lambda ln: ln.update(chain_hash="0" * 64), "line 2: bad signature on head 10 (forged or altered)"),
        (lambda ln: _resign(ln, Ed25519PrivateKey.generate()), "line 2: head 10 signed by unknown key"),
        (lambda ln: ln.pop("sig"), "line 2: not a signed head (KeyError) (altered or corrupted)"),
    ],
    ids=["seq", "chain hash", "other key", "garbled"],
)
def test_a_tampered_witness_line_is_named(
    log: AuditLog, key_path: Path, witness_path: Path, edit: object, says: str
) -> None:
    fill(log, 10)
    lines = [json.loads(x) for x in witness_path.read_text().splitlines()]
    edit(lines[1])  # type: ignore[operator]
    witness_path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = verify_log(log.engine, public(key_path), [witness_path])
    assert not result.ok and (result.problem or "").startswith(f"witness {witness_path} {says}"), (
        result.problem
    )


def test_witness_lines_are_json_with_what_the_signature_covers(
    log: AuditLog, key_path: Path, witness_path: Path
) -> None:
    fill(log, 5)
    (raw,) = witness_path.read_text().splitlines()
    body = json.loads(raw)
    assert sorted(body) == ["chain_hash", "kid", "seq", "sig", "ts"]
    assert body["seq"] == 5 and body["chain_hash"] == log.entries()[-1].hash
    ts = datetime.fromisoformat(body["ts"])
    assert signing.checkpoint_signature_ok(
        signing.keyring(public(key_path)), 5, body["chain_hash"], ts, body["kid"], body["sig"]
    )


def test_a_witness_that_cannot_be_written_catches_up(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "offsite" / "w.jsonl"
    log = AuditLog.open(
        db_url, key_path=tmp_path / "k", checkpoint_every=2, witnesses=[WitnessFile(missing)], clock=Clock(T0)
    )
    with caplog.at_level(logging.ERROR, logger="lanterne.audit.log"):
        fill(log, 2)  # signed, committed, but the witness volume is not there
    assert checkpoint_seqs(log.engine) == [2] and not missing.exists()
    assert (
        "audit witness" in caplog.text
        and "cannot append" in caplog.text
        and "1 signed heads waiting" in caplog.text
    )
    missing.parent.mkdir()
    fill(log, 2)
    assert [h.seq for h in heads(missing)] == [2, 4]
    log.close()


# --- checkpoints by time ------------------------------------------------------------------


def test_checkpoints_by_time_bound_the_unsigned_tail(db_url: str, tmp_path: Path, witness_path: Path) -> None:
    clock = Clock(T0, step=0)
    log = AuditLog.open(
        db_url,
        key_path=tmp_path / "k",
        checkpoint_every=1000,
        checkpoint_seconds=60,
        witnesses=[WitnessFile(witness_path)],
        clock=clock,
    )
    signed_after = []
    for second in (0, 30, 59, 61, 100, 130, 165, 170):
        clock.now = T0 + timedelta(seconds=second)
        fill(log, 1)
        signed_after.append(checkpoint_seqs(log.engine))
    # Record 1 (t=0) is 61 s old when record 4 comes: signed there. Record 5 (t=100) is the oldest
    # unsigned after that; it is 65 s old at record 7.
    assert signed_after[-1] == [4, 7]
    assert signed_after[3] == [4] and signed_after[2] == []
    assert [h.seq for h in heads(witness_path)] == [4, 7]
    # A quiet spell: the timer's call signs the head once, then finds nothing to do.
    assert log.sign_head() == 8
    assert log.sign_head() is None
    assert [h.seq for h in heads(witness_path)] == [4, 7, 8]
    log.close()


def test_without_a_key_nothing_is_signed(db_url: str) -> None:
    clock = Clock(T0, step=120)
    log = AuditLog.open(db_url, checkpoint_seconds=60, clock=clock)
    fill(log, 3)
    assert log.sign_head() is None and checkpoint_seqs(log.engine) == []
    log.close()


def test_the_head_timer_signs_a_quiet_tail(db_url: str, tmp_path: Path, witness_path: Path) -> None:
    log = AuditLog.open(
        db_url, key_path=tmp_path / "k", checkpoint_every=1000, witnesses=[WitnessFile(witness_path)]
    )
    fill(log, 3)
    timer = HeadTimer(log, interval=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while not witness_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        timer.stop()
    assert [h.seq for h in heads(witness_path)] == [3]
    assert checkpoint_seqs(log.engine) == [3]
    log.close()


# --- the command --------------------------------------------------------------------------


runner = CliRunner()


def test_cli_verify_names_the_truncation(db_url: str, tmp_path: Path) -> None:
    from lanterne.cli.main import app
    from lanterne.config import load_config
    from lanterne.runtime.demo import DEMO_CONFIG

    (tmp_path / "witness").mkdir()
    data = {
        **DEMO_CONFIG,
        "store": {"url": db_url},
        "audit": {"key_path": "audit.key", "checkpoint_every": 4, "witness_file": "witness/heads.jsonl"},
    }
    cfg_path = tmp_path / "site.yml"
    cfg_path.write_text(yaml.safe_dump(data))
    cfg = load_config(cfg_path)
    assert cfg.audit.witness_path == tmp_path / "witness" / "heads.jsonl"
    assert cfg.audit.checkpoint_seconds == 60
    log = AuditLog.from_config(cfg)
    fill(log, 8)

    res = runner.invoke(app, ["audit", "verify", "--config", str(cfg_path)])
    assert res.exit_code == 0, res.output
    assert "intact: 8 records" in res.output and "witnessed head 8 at" in res.output

    # An off-site copy taken now, then the attack, then the local witness file removed as well.
    copy = tmp_path / "offsite.jsonl"
    copy.write_bytes(cfg.audit.witness_path.read_bytes())
    truncate_tail_and_its_checkpoint(log.engine, 6)
    res = runner.invoke(app, ["audit", "verify", "--config", str(cfg_path)])
    assert res.exit_code == 1 and "records 6-8 missing: witness signed head 8 at" in res.output, res.output
    cfg.audit.witness_path.unlink()
    res = runner.invoke(app, ["audit", "verify", "--config", str(cfg_path)])
    assert res.exit_code == 0 and "no witness file at" in res.output
    res = runner.invoke(app, ["audit", "verify", "--config", str(cfg_path), "--witness", str(copy)])
    # Record 6 is now the breach incident the first failed verify opened (SC-05).
    assert res.exit_code == 1 and "records 7-8 missing: witness signed head 8 at" in res.output, res.output
    res = runner.invoke(
        app, ["audit", "verify", "--config", str(cfg_path), "--witness", str(tmp_path / "nope")]
    )
    assert res.exit_code == 2 and "not found" in res.output
    log.close()


def test_the_site_log_signs_by_time_and_witnesses_by_default(db_url: str, tmp_path: Path) -> None:
    from lanterne.config import parse_config

    cfg = parse_config(
        {
            "store": {"url": db_url},
            "cameras": [{"id": "c1", "source": "a.mp4", "location": {"lat": 48.85, "lon": 2.35}}],
        },
        base_dir=tmp_path,
    )
    clock = Clock(T0, step=0)
    log = AuditLog.from_config(cfg, clock=clock)
    assert cfg.audit.witness_path == tmp_path / "audit-witness.jsonl"  # beside the key
    fill(log, 1)
    clock.now += timedelta(seconds=61)
    fill(log, 1)  # record 1 is 61 s old: signed with this one
    assert [h.seq for h in heads(tmp_path / "audit-witness.jsonl")] == [2]
    log.close()


# --- the public page ----------------------------------------------------------------------


def test_the_public_page_publishes_each_days_last_signed_head(db_url: str, tmp_path: Path) -> None:
    from lanterne.accountability.transparency import public_data, render_html, render_json
    from lanterne.config import parse_config
    from lanterne.store import Store

    store = Store.open(db_url)
    clock = Clock(T0, step=0)
    log = AuditLog(store.engine, key_path=tmp_path / "k", clock=clock)
    fill(log, 3)
    log.checkpoint()  # 3, day 0
    fill(log, 1)
    clock.now = T0 + timedelta(days=1)
    fill(log, 2)
    log.checkpoint()  # 6, day 1
    clock.now = T0 + timedelta(days=1, hours=5)
    log.checkpoint(5)  # an export's checkpoint on an older record: the day's head stays 6
    clock.now = T0 + timedelta(days=2)
    fill(log, 1)  # 7, day 2: nothing signed
    clock.now = T0 + timedelta(days=3)
    fill(log, 2)
    log.checkpoint()  # 9, day 3
    cfg = parse_config(
        {"cameras": [{"id": "c1", "source": "a.mp4", "location": {"lat": 48.85, "lon": 2.35}}]}
    )

    data = public_data(cfg, store.engine, T0 + timedelta(days=3, hours=1))
    assert [(h.day, h.seq) for h in data.signed_heads] == [
        ("2026-03-04", 9),
        ("2026-03-02", 6),
        ("2026-03-01", 3),
    ]
    keys = signing.keyring(public(tmp_path / "k"))
    for h in data.signed_heads:
        ts = datetime.fromisoformat(h.signed_at)
        assert signing.checkpoint_signature_ok(keys, h.seq, h.chain_hash, ts, h.key_id, h.signature)
    # As of day 1 the page knows nothing signed later.
    earlier = public_data(cfg, store.engine, T0 + timedelta(days=1, hours=1))
    assert [(h.day, h.seq) for h in earlier.signed_heads] == [("2026-03-02", 6), ("2026-03-01", 3)]

    body = json.loads(render_json(data))
    assert (
        body["signed_heads"][0]["seq"] == 9
        and body["signed_heads"][0]["signature"] == data.signed_heads[0].signature
    )
    html = render_html(data)
    assert 'class="signed-head" data-day="2026-03-04" data-seq="9"' in html
    assert data.signed_heads[0].chain_hash in html
    store.close()
