"""The audit log: chain, purposes, concurrency, tamper detection, retention, extracts, CLI.

Tampering needs someone who can bypass the triggers (a database administrator): the tests drop the
triggers on SQLite and disable them on PostgreSQL (the test user is a superuser), then edit rows
the way such an attacker would, and expect `verify_log` to name the first broken record.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from lanterne.audit import GENESIS_HASH, Action, AuditLog, PurposeRequired, signing
from lanterne.audit.log import record_hash
from lanterne.audit.verify import export_extract, verify_extract, verify_log
from lanterne.core.errors import ConfigError

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A test clock that advances one second per reading, so every record has its own time."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.key"


@pytest.fixture
def log(db_url: str, key_path: Path) -> Iterator[AuditLog]:
    opened = AuditLog.open(db_url, key_path=key_path, checkpoint_every=5)
    yield opened
    opened.close()


def public(key_path: Path) -> list:
    return [signing.load_private_key(key_path).public_key()]


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append("op-1", Action.VIEW_LIVE, object_type="camera", object_id=f"cam-{i % 3}", details={"n": i})


# --- appending ----------------------------------------------------------------------------


def test_append_chains_records(log: AuditLog, key_path: Path) -> None:
    first = log.append("alice", Action.SEARCH, object_type="camera", object_id="cam-1", details={"hits": 3})
    second = log.append(
        "bob",
        Action.VIEW_CLIP,
        object_type="camera",
        object_id="cam-2",
        time_from=T0,
        time_to=T0 + timedelta(minutes=5),
        purpose="incident 2026-041",
    )
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert first.details == {"hits": 3}
    assert first.ts.tzinfo is UTC and second.time_from == T0
    assert log.entries(action=Action.VIEW_CLIP) == [second]
    fill(log, 3)  # seq 5 gets a checkpoint
    assert verify_log(log.engine, public(key_path)).last_checkpoint_seq == 5


def test_signing_key_created_private_and_stable(log: AuditLog, key_path: Path) -> None:
    fill(log, 5)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    kid = signing.key_id(signing.load_private_key(key_path).public_key())
    with log.engine.connect() as conn:
        assert conn.execute(text("SELECT key_id FROM audit_checkpoints")).scalars().all() == [kid]
    assert len(kid) == 16


@pytest.mark.parametrize(
    ("action", "purpose", "recipient"),
    [
        (Action.VIEW_CLIP, None, None),
        (Action.VIEW_CLIP, "  ", None),
        (Action.EXPORT, None, "OPJ Lyon"),
        (Action.EXPORT, "requisition 12", None),
        (Action.AUDIT_EXPORT, "control", None),
    ],
)
def test_purpose_and_recipient_required(
    log: AuditLog, action: Action, purpose: str | None, recipient: str | None
) -> None:
    with pytest.raises(PurposeRequired):
        log.append("alice", action, purpose=purpose, recipient=recipient)
    assert log.entries() == []
    log.append("alice", action, purpose="requisition 12", recipient="OPJ Lyon")
    assert len(log.entries()) == 1


def test_concurrent_thread_appends_keep_one_chain(log: AuditLog, key_path: Path) -> None:
    import threading

    def writer() -> None:
        for _ in range(15):
            log.append("system", Action.VIEW_LIVE, details={"t": threading.get_ident() % 1000})

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, 61))
    assert all(a.hash == b.prev_hash for a, b in itertools.pairwise(entries))
    result = verify_log(log.engine, public(key_path))
    assert result.ok and result.records == 60 and result.last_checkpoint_seq == 60


def _process_writer(url: str, key: str, n: int) -> None:
    from lanterne.store import create_engine_for

    # Every process may create the signing key at its first checkpoint: they must agree on one.
    log = AuditLog(create_engine_for(url), key_path=Path(key), checkpoint_every=5)
    for i in range(n):
        log.append("system", Action.VIEW_LIVE, details={"pid": os.getpid() % 1000, "i": i})
    log.close()


def test_concurrent_process_appends_keep_one_chain(log: AuditLog, db_url: str, key_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(db_url, str(key_path), 12)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    result = verify_log(log.engine, public(key_path))
    assert result.ok and result.records == 36


# --- tampering ----------------------------------------------------------------------------


def bypass_triggers(engine: Engine) -> None:
    """What a database administrator can do: take the append-only guard away."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for name in (
                "audit_records_no_update",
                "audit_records_guarded_delete",
                "audit_checkpoints_no_update",
                "audit_checkpoints_guarded_delete",
            ):
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            conn.execute(text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
            conn.execute(text("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER"))


COLUMNS = "ts, user_id, action, object_type, object_id, time_from, time_to, purpose, recipient, details, prev_hash, hash"


def row(engine: Engine, seq: int) -> dict:
    with engine.connect() as conn:
        r = (
            conn.execute(text(f"SELECT seq, {COLUMNS} FROM audit_records WHERE seq = :s"), {"s": seq})
            .mappings()
            .one()
        )
    out = dict(r)
    for name in ("ts", "time_from", "time_to"):  # as the ORM type would hand them back
        if out[name] is not None and isinstance(out[name], str):
            out[name] = datetime.fromisoformat(out[name])
        if out[name] is not None and out[name].tzinfo is None:
            out[name] = out[name].replace(tzinfo=UTC)
    return out


def rehash(r: dict) -> str:
    fields = {k: r[k] for k in ("seq", "ts", "user_id", "action", "object_type", "object_id")}
    fields |= {k: r[k] for k in ("time_from", "time_to", "purpose", "recipient", "details")}
    return record_hash(r["prev_hash"], **fields)


def sql(engine: Engine, stmt: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(stmt), params)


def flip_byte(engine: Engine) -> None:
    assert row(engine, 8)["details"] == '{"n":7}'
    sql(engine, "UPDATE audit_records SET details = :d WHERE seq = 8", d='{"n":8}')


def delete_row(engine: Engine) -> None:
    sql(engine, "DELETE FROM audit_records WHERE seq = 8")


def insert_row(engine: Engine) -> None:
    # Make room at 8 by renumbering the later records, then slip in a forged record whose own
    # hash is right and which points to record 7.
    for seq in range(12, 7, -1):
        sql(engine, "UPDATE audit_records SET seq = :n WHERE seq = :s", n=seq + 1, s=seq)
    forged = row(engine, 7) | {"seq": 8, "user_id": "intruder", "prev_hash": row(engine, 7)["hash"]}
    forged["hash"] = rehash(forged)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO audit_records (seq, {COLUMNS}) VALUES (:seq, :ts, :user_id, :action, :object_type,"
                " :object_id, :time_from, :time_to, :purpose, :recipient, :details, :prev_hash, :hash)"
            ),
            forged
            | {"ts": forged["ts"] if engine.dialect.name != "sqlite" else forged["ts"].replace(tzinfo=None)},
        )


def swap_rows(engine: Engine) -> None:
    a, b = row(engine, 8), row(engine, 11)
    for seq, src in ((8, b), (11, a)):
        values = {k: v for k, v in src.items() if k != "seq"}
        if engine.dialect.name == "sqlite":
            values["ts"] = values["ts"].replace(tzinfo=None)
        sets = ", ".join(f"{k} = :{k}" for k in values)
        sql(engine, f"UPDATE audit_records SET {sets} WHERE seq = {seq}", **values)


def replace_row(engine: Engine) -> None:
    # A smarter edit: change record 8 and recompute its own hash; record 9 still names the old one.
    r = row(engine, 8) | {"user_id": "someone-else"}
    sql(engine, "UPDATE audit_records SET user_id = :u, hash = :h WHERE seq = 8", u=r["user_id"], h=rehash(r))


def rewrite_tail(engine: Engine) -> None:
    # The smartest edit: change record 8 and recompute every hash after it. The chain is
    # consistent again; only the checkpoint signed at record 10 can tell.
    prev = row(engine, 7)["hash"]
    for seq in range(8, 13):
        r = row(engine, seq) | {"prev_hash": prev}
        if seq == 8:
            r["user_id"] = "someone-else"
        r["hash"] = rehash(r)
        sql(engine, "UPDATE audit_records SET user_id = :u, prev_hash = :p, hash = :h WHERE seq = :s",
            u=r["user_id"], p=r["prev_hash"], h=r["hash"], s=seq)  # fmt: skip
        prev = r["hash"]


def forge_checkpoint(engine: Engine) -> None:
    sql(engine, "UPDATE audit_checkpoints SET signature = :s WHERE seq = 10", s="ab" * 64)


def truncate_tail(engine: Engine) -> None:
    sql(engine, "DELETE FROM audit_records WHERE seq >= 9")


def delete_head(engine: Engine) -> None:
    sql(engine, "DELETE FROM audit_records WHERE seq <= 3")


@dataclass(frozen=True)
class Tamper:
    name: str
    act: Callable[[Engine], None]
    first_bad: int
    says: str


TAMPERS = [
    Tamper("flip a byte", flip_byte, 8, "record 8: content altered (hash mismatch)"),
    Tamper("delete a row", delete_row, 8, "record 8 missing: record 9 points to a different predecessor"),
    Tamper("insert a row", insert_row, 8, "record 8: inserted (record 9 points to record 7)"),
    Tamper("swap two rows", swap_rows, 8, "record 8: out of order (it follows record 10)"),
    Tamper(
        "replace a row", replace_row, 8, "record 8: replaced (record 9 points to a different predecessor)"
    ),
    Tamper("rewrite the tail", rewrite_tail, 6, "records 6-10 rewritten"),
    Tamper("forge a checkpoint", forge_checkpoint, 10, "checkpoint at record 10: bad signature"),
    Tamper("truncate the tail", truncate_tail, 9, "records 9-10 missing"),
    Tamper("delete the oldest rows", delete_head, 3, "record 3 missing: record 4 is not anchored"),
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.name for t in TAMPERS])
def test_tampering_is_detected_and_located(log: AuditLog, key_path: Path, tamper: Tamper) -> None:
    fill(log, 12)  # checkpoints at 5 and 10
    assert verify_log(log.engine, public(key_path)).ok
    bypass_triggers(log.engine)
    tamper.act(log.engine)
    result = verify_log(log.engine, public(key_path))
    assert not result.ok
    assert result.first_bad_seq == tamper.first_bad, result.problem
    assert result.problem is not None and result.problem.startswith(tamper.says), result.problem


def test_checkpoint_from_another_key_is_not_trusted(log: AuditLog, key_path: Path) -> None:
    fill(log, 5)
    other = Ed25519PrivateKey.generate().public_key()
    result = verify_log(log.engine, [other])
    assert not result.ok and result.first_bad_seq == 5 and "unknown key" in (result.problem or "")


@pytest.mark.parametrize(
    "stmt",
    [
        "UPDATE audit_records SET user_id = 'x' WHERE seq = 1",
        "DELETE FROM audit_records WHERE seq = 1",
        "UPDATE audit_checkpoints SET signature = 'x'",
        "DELETE FROM audit_checkpoints",
    ],
)
def test_triggers_refuse_edits(log: AuditLog, stmt: str) -> None:
    fill(log, 5)
    with pytest.raises(DBAPIError, match="append-only"):
        sql(log.engine, stmt)
    assert len(log.entries()) == 5


# --- retention ----------------------------------------------------------------------------


def test_delete_passes_only_past_retention(db_url: str, key_path: Path) -> None:
    clock = Clock(datetime.now(UTC) - timedelta(days=400))
    log = AuditLog.open(db_url, key_path=key_path, checkpoint_every=100, clock=clock)
    fill(log, 2)  # 400 days old: past the default 365
    clock.now = datetime.now(UTC) - timedelta(days=10)
    fill(log, 2)
    with pytest.raises(DBAPIError, match="append-only"):
        sql(log.engine, "DELETE FROM audit_records WHERE seq = 3")
    sql(log.engine, "DELETE FROM audit_records WHERE seq = 1")
    assert [e.seq for e in log.entries()] == [2, 3, 4]
    log.close()


def test_purge_keeps_the_chain_verifiable(db_url: str, key_path: Path) -> None:
    now = datetime.now(UTC)
    clock = Clock(now - timedelta(days=300))
    log = AuditLog.open(db_url, key_path=key_path, checkpoint_every=100, clock=clock)
    fill(log, 3)  # 300 days old
    clock.now = now - timedelta(days=100)
    fill(log, 2)
    clock.now = now
    assert log.purge(now) == 0  # 300 days is within the default 365
    log.set_retention(183, "dpo-1")
    assert log.purge(now) == 3
    entries = log.entries()
    assert [e.action for e in entries] == [
        Action.VIEW_LIVE,
        Action.VIEW_LIVE,
        Action.CONFIG_CHANGE,
        Action.AUDIT_PURGE,
    ]
    assert entries[-1].details == {"records": 3, "through_seq": 3, "keep_days": 183}
    result = verify_log(log.engine, public(key_path))
    assert result.ok, result.problem
    assert result.records == 4
    log.close()


@pytest.mark.parametrize(
    ("days", "ok"), [(182, False), (183, True), (365, True), (1096, True), (1097, False), (0, False)]
)
def test_retention_bounds(log: AuditLog, days: int, ok: bool) -> None:
    if not ok:
        with pytest.raises(ConfigError, match="between 183"):
            log.set_retention(days, "dpo-1")
        assert log.keep_days() == 365 and log.entries() == []
        return
    entry = log.set_retention(days, "dpo-1")
    assert log.keep_days() == days
    assert entry.action is Action.CONFIG_CHANGE and entry.details == {
        "keep_days": days,
        "previous_keep_days": 365,
    }


def test_database_refuses_retention_outside_bounds_too(log: AuditLog) -> None:
    with pytest.raises(DBAPIError):
        sql(log.engine, "UPDATE audit_settings SET keep_days = 30")


# --- extracts -----------------------------------------------------------------------------


@pytest.fixture
def dated_log(db_url: str, key_path: Path) -> Iterator[AuditLog]:
    """Records one per day over 12 days from T0, with a checkpoint every 5."""
    clock = Clock(T0)
    opened = AuditLog.open(db_url, key_path=key_path, checkpoint_every=5, clock=clock)
    for i in range(12):
        clock.now = T0 + timedelta(days=i)
        fill(opened, 1)
    clock.now = T0 + timedelta(days=20)
    yield opened
    opened.close()


def test_export_verifies_offline(dated_log: AuditLog, key_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "extract.json"
    n = export_extract(
        dated_log.engine,
        T0 + timedelta(days=2),
        T0 + timedelta(days=8),
        out,
        "auditor-1",
        key_path,
        purpose="CNIL control 2026-17",
        recipient="CNIL",
    )
    assert n == 6
    body = json.loads(out.read_text())
    assert [r["seq"] for r in body["records"]] == [3, 4, 5, 6, 7, 8]
    assert body["anchor"]["seq"] == 2
    result = verify_extract(out)
    assert result.ok and result.records == 6, result.problem
    assert verify_extract(out, public(key_path)).ok
    export = dated_log.entries(action=Action.AUDIT_EXPORT)
    assert len(export) == 1 and export[0].purpose == "CNIL control 2026-17" and export[0].recipient == "CNIL"
    assert export[0].details["last_seq"] == 8 and export[0].details["records"] == 6
    assert verify_log(dated_log.engine, public(key_path)).ok  # the extra checkpoint at 8 is consistent


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda b: b["records"][2].update(user_id="other"), "record 5: content altered"),
        (lambda b: b["records"].pop(3), "record 6 missing"),
        (lambda b: b["checkpoints"][-1].update(chain_hash="0" * 64), "checkpoint at record 8: bad signature"),
        (lambda b: b["checkpoints"].clear(), "record 8: not covered by a signed checkpoint"),
        (lambda b: b.update(public_key=signing.public_key_pem(Ed25519PrivateKey.generate())), "unknown key"),
    ],
)
def test_tampered_extract_fails(
    dated_log: AuditLog, key_path: Path, tmp_path: Path, edit: Callable[[dict], None], says: str
) -> None:
    out = tmp_path / "extract.json"
    export_extract(
        dated_log.engine, T0 + timedelta(days=2), T0 + timedelta(days=8), out, "a", key_path,
        purpose="control", recipient="CNIL",
    )  # fmt: skip
    body = json.loads(out.read_text())
    edit(body)
    out.write_text(json.dumps(body))
    result = verify_extract(out)
    assert not result.ok and says in (result.problem or ""), result.problem


def test_extract_checked_against_the_published_key(
    dated_log: AuditLog, key_path: Path, tmp_path: Path
) -> None:
    # An attacker re-signs a forged extract with a key of their own and embeds it: consistent, but
    # not signed by the key the site published.
    out = tmp_path / "extract.json"
    export_extract(
        dated_log.engine, T0, T0 + timedelta(days=3), out, "a", Ed25519PrivateKey.generate(),
        purpose="control", recipient="CNIL",
    )  # fmt: skip
    assert verify_extract(out).ok
    assert not verify_extract(out, public(key_path)).ok


def test_export_refused_without_purpose(dated_log: AuditLog, key_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "extract.json"
    with pytest.raises(PurposeRequired):
        export_extract(
            dated_log.engine, T0, T0 + timedelta(days=3), out, "a", key_path, purpose=None, recipient="x"
        )
    assert not out.exists() and dated_log.entries(action=Action.AUDIT_EXPORT) == []


# --- command line -------------------------------------------------------------------------


runner = CliRunner()


def write_config(tmp: Path, db_url: str) -> Path:
    from lanterne.runtime.demo import DEMO_CONFIG

    data = {
        **DEMO_CONFIG,
        "store": {"url": db_url},
        "audit": {"key_path": "audit.key", "checkpoint_every": 5},
    }
    p = tmp / "site.yml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_cli(db_url: str, tmp_path: Path) -> None:
    from lanterne.cli.main import app

    cfg = write_config(tmp_path, db_url)
    log = AuditLog.open(db_url, key_path=tmp_path / "audit.key", checkpoint_every=5)
    fill(log, 7)

    res = runner.invoke(app, ["audit", "verify", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "intact: 7 records, last checkpoint at record 5" in res.output

    res = runner.invoke(app, ["audit", "public-key", "--config", str(cfg)])
    assert res.exit_code == 0 and "BEGIN PUBLIC KEY" in res.output
    (tmp_path / "pub.pem").write_text(res.stdout)

    today = datetime.now(UTC).date()
    export = ["audit", "export", "--config", str(cfg), "--from", str(today - timedelta(days=1))]
    export += ["--to", str(today), "--out", str(tmp_path / "x.json"), "--user", "auditor-1"]
    res = runner.invoke(app, export)
    assert res.exit_code == 2 and "requires a purpose" in res.output
    res = runner.invoke(app, [*export, "--purpose", "control", "--recipient", "CNIL"])
    assert res.exit_code == 0, res.output
    assert "7 records written" in res.output
    assert log.entries(action=Action.AUDIT_EXPORT)[0].user_id == "auditor-1"

    res = runner.invoke(
        app,
        ["audit", "verify", "--file", str(tmp_path / "x.json"), "--public-key", str(tmp_path / "pub.pem")],
    )
    assert res.exit_code == 0 and "intact: 7 records" in res.output

    res = runner.invoke(app, ["audit", "purge", "--config", str(cfg)])
    assert res.exit_code == 0 and "0 audit records" in res.output

    bypass_triggers(log.engine)
    sql(log.engine, "UPDATE audit_records SET action = 'search' WHERE seq = 3")
    res = runner.invoke(app, ["audit", "verify", "--config", str(cfg)])
    assert res.exit_code == 1 and "record 3: content altered" in res.output

    body = json.loads((tmp_path / "x.json").read_text())
    body["records"][0]["object_id"] = "cam-9"
    (tmp_path / "x.json").write_text(json.dumps(body))
    res = runner.invoke(app, ["audit", "verify", "--file", str(tmp_path / "x.json")])
    assert res.exit_code == 1 and "record 1: content altered" in res.output
    log.close()


def test_purge_of_every_record_continues_the_chain(db_url: str, key_path: Path) -> None:
    now = datetime.now(UTC)
    clock = Clock(now - timedelta(days=400))
    log = AuditLog.open(db_url, key_path=key_path, checkpoint_every=100, clock=clock)
    fill(log, 4)
    clock.now = now
    assert log.purge(now) == 4
    entry = log.append("op-1", Action.SEARCH)
    assert [e.seq for e in log.entries()] == [5, 6]
    assert log.entries()[0].action is Action.AUDIT_PURGE and entry.seq == 6
    result = verify_log(log.engine, public(key_path))
    assert result.ok and result.records == 2, result.problem
    log.close()
