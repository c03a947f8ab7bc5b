"""Witnesses: copies of every signed checkpoint kept where a database administrator cannot reach.

A checkpoint stored in the same database as the records it signs proves nothing about the tail:
whoever can delete the newest records (triggers dropped first) can delete their checkpoint too,
and the log left behind is consistent and validly signed up to its new, shorter end. A witness
holds the signed head (seq, chain hash, time, key id, signature) somewhere else, so `verify` can
say "records 812-815 missing: witness signed head 815 at …", as a Certificate Transparency
monitor catches a log that forgets a tree head it published.

Witnesses are a list of writers with one method. The one built is an append-only file on
another path (another volume in production); the remote one is the JetStream stream of the
distributed mode (`lanterne.cluster.witness`), a writer of the same shape.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lanterne.audit import signing
from lanterne.core.errors import LanterneError

log = logging.getLogger(__name__)


class WitnessError(LanterneError):
    """A witness cannot be written or read."""


@dataclass(frozen=True, slots=True)
class SignedHead:
    """One signed checkpoint as a witness keeps it: what `signing.checkpoint_message` covers."""

    seq: int
    chain_hash: str
    ts: datetime
    kid: str
    sig: str

    def to_line(self) -> str:
        """One JSON line; `ts` with microseconds since the signature covers that exact text."""
        body = {
            "seq": self.seq,
            "chain_hash": self.chain_hash,
            "ts": self.ts.astimezone(UTC).isoformat(timespec="microseconds"),
            "kid": self.kid,
            "sig": self.sig,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"

    def signature_ok(self, keys: Mapping[str, Ed25519PublicKey]) -> bool:
        return signing.checkpoint_signature_ok(keys, self.seq, self.chain_hash, self.ts, self.kid, self.sig)


class Witness(Protocol):
    """Somewhere signed heads are kept out of the database's reach."""

    name: str
    """How `verify` and the logs name it (a path, a host)."""

    def write(self, heads: Sequence[SignedHead]) -> None:
        """Keep `heads` durably before returning; raise `WitnessError` when that is not possible."""
        ...


class WitnessFile:
    """An append-only file of signed heads, one JSON line each.

    Opened with `O_APPEND` for every batch, written in one `write` and fsynced: several processes
    of one site can append to the same file without interleaving lines, and a head is on disk
    before the caller goes on. `O_APPEND` stops this process from overwriting what is there, not
    an administrator from truncating the file: on Linux `chattr +a` (by root) makes the file
    append-only for everyone, and another volume or host keeps it out of the database
    administrator's reach (docs/audit.md).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def write(self, heads: Sequence[SignedHead]) -> None:
        if not heads:
            return
        data = "".join(h.to_line() for h in heads).encode("ascii")
        created = not self.path.exists()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(28, "short write")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                # The new name must survive a crash too, not only the bytes behind it.
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except OSError as exc:
            raise WitnessError(
                f"audit witness {self.path}: cannot append ({exc.strerror or exc}); "
                "check that its directory exists and is writable, or fix audit.witness_file"
            ) from None


@dataclass(frozen=True, slots=True)
class WitnessLine:
    """A line read back from a witness file: its head, or why it is not one."""

    source: str
    line: int
    head: SignedHead | None
    problem: str | None = None


def read_witness_file(path: Path) -> list[WitnessLine]:
    """Every non-empty line of a witness file, parsed; a line that does not parse is kept with its
    problem, since a witness line altered by hand is itself a finding."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise WitnessError(f"audit witness {path} not found; pass an existing witness file") from None
    except OSError as exc:
        raise WitnessError(
            f"audit witness {path}: cannot read it ({exc.strerror}); check its permissions"
        ) from None
    return [
        parse_witness_line(str(path), number, raw)
        for number, raw in enumerate(text.splitlines(), start=1)
        if raw.strip()
    ]


def parse_witness_line(source: str, number: int, raw: str) -> WitnessLine:
    """One witness line (a file's line, a stream's message) as a head, or with why it is not one."""
    try:
        body = json.loads(raw)
        ts = datetime.fromisoformat(body["ts"])
        head = SignedHead(
            seq=int(body["seq"]),
            chain_hash=str(body["chain_hash"]),
            ts=ts if ts.tzinfo else ts.replace(tzinfo=UTC),
            kid=str(body["kid"]),
            sig=str(body["sig"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        return WitnessLine(source, number, None, f"not a signed head ({type(exc).__name__})")
    return WitnessLine(source, number, head)


def when(ts: datetime) -> str:
    """A head's time as people read it in a finding: `2026-03-01 10:42:07 UTC`."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_witnesses(
    lines: Sequence[WitnessLine],
    stored: Mapping[int, str],
    last_seq: int,
    keys: Mapping[str, Ed25519PublicKey],
) -> tuple[list[tuple[int, int, str]], SignedHead | None]:
    """Check the database's chain (`stored`: seq → hash, `last_seq` its newest seq) against the
    witnessed heads. Returns the problems as `(where it shows, first bad seq, sentence)`, the
    shape `verify` sorts, and the newest valid witnessed head.

    A head past the database's end is a truncation; a head whose chain hash differs from the
    stored record's is rewritten history; a head older than the oldest stored record was purged
    with it and proves nothing either way.
    """
    problems: list[tuple[int, int, str]] = []
    valid: list[SignedHead] = []
    for w in lines:
        where = f"witness {w.source} line {w.line}"
        if w.head is None:
            problems.append((0, 0, f"{where}: {w.problem} (altered or corrupted)"))
            continue
        h = w.head
        if h.kid not in keys:
            problems.append(
                (h.seq, h.seq, f"{where}: head {h.seq} signed by unknown key {h.kid}; pass its public key")
            )
            continue
        if not h.signature_ok(keys):
            problems.append((h.seq, h.seq, f"{where}: bad signature on head {h.seq} (forged or altered)"))
            continue
        valid.append(h)
    newest = max(valid, key=lambda h: (h.seq, h.ts), default=None)
    if newest is not None and newest.seq > last_seq:
        gone = (
            f"record {last_seq + 1}" if newest.seq == last_seq + 1 else f"records {last_seq + 1}-{newest.seq}"
        )
        problems.append(
            (
                last_seq + 1,
                last_seq + 1,
                f"{gone} missing: witness signed head {newest.seq} at {when(newest.ts)}",
            )
        )
    checked = sorted({h.seq: h for h in valid if h.seq in stored}.values(), key=lambda h: h.seq)
    agreed = min(stored, default=1) - 1
    for h in checked:
        if stored[h.seq] != h.chain_hash:
            since = agreed + 1
            span = f"record {h.seq}" if since == h.seq else f"records {since}-{h.seq}"
            problems.append(
                (
                    h.seq,
                    since,
                    f"{span} rewritten: witness signed head {h.seq} at {when(h.ts)} disagrees with the "
                    "database (chain hash mismatch)",
                )
            )
        else:
            agreed = h.seq
    return problems, newest


class HeadSigner(Protocol):
    """What `HeadTimer` needs of the audit log (`AuditLog` is one); a protocol, since the log
    imports this module for its witnesses."""

    checkpoint_seconds: float | None

    def sign_head(self) -> int | None: ...


class HeadTimer:
    """Signs the log's head every `interval` seconds when records were written since the last
    checkpoint, so the newest records of a quiet spell are witnessed without waiting for the
    next append. One daemon thread per process; `stop` ends it within a tick.

    A long-running process starts one beside its audit log (the console's lifespan does)::

        timer = HeadTimer(site.audit).start()
        ...
        timer.stop()
    """

    def __init__(self, audit: HeadSigner, interval: float | None = None) -> None:
        self.audit = audit
        self.interval = interval if interval is not None else (audit.checkpoint_seconds or 60.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HeadTimer:
        self._thread = threading.Thread(target=self._run, name="audit-head-timer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.audit.sign_head()
            except Exception as exc:  # a timer that dies silently would stop witnessing for good
                log.error("audit head not signed: %s; the next tick tries again", exc)
