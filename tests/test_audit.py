"""The audit log: chain, purposes, concurrency, tamper detection, retention, extracts, CLI."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lanterne.audit import GENESIS_HASH, Action, AuditLog, PurposeRequired


@pytest.fixture
def log(db_url: str, tmp_path: Path) -> AuditLog:
    opened = AuditLog.open(db_url, key_path=tmp_path / "audit.key", checkpoint_every=5)
    yield opened
    opened.close()


def test_append_chains_records(log: AuditLog) -> None:
    first = log.append("alice", Action.SEARCH, object_type="camera", object_id="cam-1", details={"hits": 3})
    second = log.append("bob", Action.VIEW_LIVE, object_type="camera", object_id="cam-2")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert first.details == {"hits": 3}
    assert first.ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("action", "purpose", "recipient"),
    [
        (Action.VIEW_RECORDING, None, None),
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


def test_concurrent_appends_keep_one_chain(log: AuditLog) -> None:
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
    assert datetime.now(UTC) >= entries[-1].ts
