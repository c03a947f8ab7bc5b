"""Proving the audit log intact, in the database or in an extract handed to an auditor.

The walk recomputes every record's hash and checks that it names its predecessor's hash, in seq
order, and stops at the first break with a sentence a person can act on ("record 42: content
altered (hash mismatch)"). The chain alone cannot tell a consistent rewrite of the tail from the
original, since SHA-256 has no secret; the signed checkpoints can, so each is checked against the
record it signs. What neither can see is the removal of records written after the last
checkpoint together with that checkpoint: the witnesses can (`lanterne.audit.witness`), since they
keep every signed head outside the database, so a head past the database's end names the records
deleted from the tail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import signing
from lanterne.audit.log import (
    GENESIS_HASH,
    Action,
    AuditError,
    AuditLog,
    canonical_json,
    iso,
    row_hash,
)
from lanterne.audit.witness import SignedHead, Witness, WitnessLine, check_witnesses, read_witness_file, when
from lanterne.store.db import describe_failure
from lanterne.store.tables import AuditCheckpointRecord, AuditRecord

EXTRACT_FORMAT = "lanterne-audit-extract/1"

_R = AuditRecord.__table__
_C = AuditCheckpointRecord.__table__
_RECORD_FIELDS = (
    "seq",
    "ts",
    "user_id",
    "action",
    "object_type",
    "object_id",
    "time_from",
    "time_to",
    "purpose",
    "recipient",
    "details",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None
    problem: str | None
    last_checkpoint_seq: int | None = None
    last_checkpoint_ts: datetime | None = None
    unsigned: int = 0
    """Records after the last checkpoint: chained but not yet signed, so a removal of those from
    the end of the log would not show."""
    witnessed: SignedHead | None = None
    """The newest head the witnesses hold, when they were checked."""
    witnesses_checked: bool = False

    def summary(self) -> str:
        if not self.ok:
            return f"broken: {self.problem}"
        if self.last_checkpoint_seq is None:
            cp = "no checkpoint yet"
        else:
            at = iso(self.last_checkpoint_ts) if self.last_checkpoint_ts else "?"
            cp = f"last checkpoint at record {self.last_checkpoint_seq} ({at})"
        tail = f", {self.unsigned} newer records not yet signed" if self.unsigned else ""
        seen = ""
        if self.witnesses_checked:
            seen = (
                f"; witnessed head {self.witnessed.seq} at {when(self.witnessed.ts)}"
                if self.witnessed is not None
                else "; no witnessed head yet"
            )
        return f"intact: {self.records} records, {cp}{tail}{seen}"


@dataclass(frozen=True, slots=True)
class _Rec:
    seq: int
    prev_hash: str
    hash: str
    computed: str


@dataclass(frozen=True, slots=True)
class _Cp:
    seq: int
    ts: datetime
    chain_hash: str
    key_id: str
    signature: str


def _recompute(row: Any) -> str:
    try:
        return row_hash(row)
    except Exception:
        # A forged row with a value of the wrong type is a broken record, not a crash of the verifier.
        return ""


def _signature_ok(cp: _Cp, keys: Mapping[str, Ed25519PublicKey]) -> bool:
    return signing.checkpoint_signature_ok(keys, cp.seq, cp.chain_hash, cp.ts, cp.key_id, cp.signature)


def _walk(records: Sequence[_Rec], anchor: tuple[int, str]) -> tuple[int, str] | None:
    """The first break in the chain as `(seq, sentence)`, or None."""
    by_hash = {r.hash: r.seq for r in records}
    prev_seq, prev_hash = anchor
    before: tuple[int, str] | None = None  # the record before `prev`, to recognise an insertion
    for r in records:
        expected = prev_seq + 1
        if r.prev_hash != prev_hash:
            if before is not None and r.prev_hash == before[1] and r.seq == expected:
                return prev_seq, f"record {prev_seq}: inserted (record {r.seq} points to record {before[0]})"
            if r.seq > expected:
                gone = f"record {expected}" if r.seq == expected + 1 else f"records {expected}-{r.seq - 1}"
                return expected, f"{gone} missing: record {r.seq} points to a different predecessor"
            if by_hash.get(r.prev_hash, prev_seq) != prev_seq:
                return r.seq, f"record {r.seq}: out of order (it follows record {by_hash[r.prev_hash]})"
            if prev_seq == anchor[0]:
                return r.seq, f"record {r.seq}: does not follow the anchor hash of record {prev_seq}"
            return prev_seq, f"record {prev_seq}: replaced (record {r.seq} points to a different predecessor)"
        if r.seq != expected:
            return expected, f"record {expected} missing (gap before record {r.seq})"
        if r.computed != r.hash:
            return r.seq, f"record {r.seq}: content altered (hash mismatch)"
        before = (prev_seq, prev_hash)
        prev_seq, prev_hash = r.seq, r.hash
    return None


def _check(
    records: Sequence[_Rec],
    checkpoints: Sequence[_Cp],
    keys: Mapping[str, Ed25519PublicKey],
    *,
    anchor: tuple[int, str] | None,
    require_signed_end: bool,
    witness_lines: Sequence[WitnessLine] | None = None,
) -> VerifyResult:
    """Walk the chain from `anchor` (None: find it among the checkpoints) and check every checkpoint."""
    # (where it shows, first bad seq, sentence): a walk break and a checkpoint that disagrees can
    # both stem from one edit; the walk names the record, so it wins when it shows first.
    problems: list[tuple[int, int, str]] = []
    if records and anchor is None:
        first = records[0]
        if first.seq == 1:
            anchor = (0, GENESIS_HASH)
        else:
            # After a purge the oldest remaining record must hang from a signed checkpoint.
            for cp in checkpoints:
                if cp.seq == first.seq - 1 and cp.chain_hash == first.prev_hash and _signature_ok(cp, keys):
                    anchor = (cp.seq, cp.chain_hash)
                    break
            else:
                problems.append(
                    (
                        first.seq - 1,
                        first.seq - 1,
                        f"record {first.seq - 1} missing: record {first.seq} is not anchored by a signed "
                        "checkpoint (records removed from the start of the log)",
                    )
                )
    if records and anchor is not None:
        broken = _walk(records, anchor)
        if broken is not None:
            problems.append((broken[0], *broken))

    stored = {r.seq: r.hash for r in records}
    last_seq = records[-1].seq if records else None
    good_signed: list[int] = []
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if cp.key_id not in keys:
            problems.append(
                (
                    cp.seq,
                    cp.seq,
                    f"checkpoint at record {cp.seq}: signed by unknown key {cp.key_id}; pass its public key",
                )
            )
            continue
        if not _signature_ok(cp, keys):
            problems.append(
                (cp.seq, cp.seq, f"checkpoint at record {cp.seq}: bad signature (forged or altered)")
            )
            continue
        if cp.seq in stored and stored[cp.seq] != cp.chain_hash:
            since = max([s for s in good_signed if s < cp.seq], default=records[0].seq - 1) + 1
            problems.append(
                (
                    cp.seq,
                    since,
                    f"records {since}-{cp.seq} rewritten: the checkpoint signed at record {cp.seq} disagrees "
                    "with the chain (chain hash mismatch)",
                )
            )
            continue
        if last_seq is not None and cp.seq > last_seq:
            problems.append(
                (
                    last_seq + 1,
                    last_seq + 1,
                    f"records {last_seq + 1}-{cp.seq} missing: a checkpoint was signed at record {cp.seq}, "
                    f"past the last record {last_seq}",
                )
            )
            continue
        good_signed.append(cp.seq)

    witnessed: SignedHead | None = None
    if witness_lines is not None:
        # With every record purged the chain continues from the newest checkpoint: that is the end.
        end = last_seq if last_seq is not None else max((cp.seq for cp in checkpoints), default=0)
        found, witnessed = check_witnesses(witness_lines, stored, end, keys)
        problems.extend(found)

    valid = [cp for cp in checkpoints if cp.key_id in keys and _signature_ok(cp, keys)]
    last_cp = max(valid, key=lambda c: (c.seq, c.ts), default=None)
    if require_signed_end and records and not problems and (last_cp is None or last_cp.seq != last_seq):
        problems.append(
            (
                records[-1].seq,
                records[-1].seq,
                f"record {records[-1].seq}: not covered by a signed checkpoint",
            )
        )
    if problems:
        _, seq, problem = min(problems, key=lambda p: p[0])
        return VerifyResult(False, len(records), seq, problem)
    unsigned = 0 if last_seq is None or last_cp is None else max(0, last_seq - last_cp.seq)
    if last_cp is None and records:
        unsigned = len(records)
    return VerifyResult(
        True,
        len(records),
        None,
        None,
        last_checkpoint_seq=last_cp.seq if last_cp else None,
        last_checkpoint_ts=last_cp.ts if last_cp else None,
        unsigned=unsigned,
        witnessed=witnessed,
        witnesses_checked=witness_lines is not None,
    )


def verify_log(
    engine: Engine,
    public_keys: Iterable[Ed25519PublicKey] | Mapping[str, Ed25519PublicKey],
    witnesses: Sequence[Path] | None = None,
    remote: Sequence[WitnessLine] | None = None,
) -> VerifyResult:
    """Check the whole audit log in the database against the trusted checkpoint keys and, when
    `witnesses` (witness files) or `remote` (heads read from a remote witness) are given, against
    every head they hold.

    Reads every record once, in seq order: about 50 000 records a second on the 2-core dev machine
    (SQLite and PostgreSQL alike), so a year of a busy site's log takes seconds.
    """
    keys = signing.keyring(public_keys)
    witness_lines = None
    if witnesses is not None or remote is not None:
        witness_lines = [line for path in witnesses or () for line in read_witness_file(path)]
        witness_lines += list(remote or ())
    try:
        with engine.connect() as conn:
            records = [
                _Rec(row.seq, row.prev_hash, row.hash, _recompute(row))
                for row in conn.execute(select(_R).order_by(_R.c.seq))
            ]
            checkpoints = [
                _Cp(row.seq, row.ts, row.chain_hash, row.key_id, row.signature)
                for row in conn.execute(select(_C).order_by(_C.c.seq, _C.c.id))
            ]
    except SQLAlchemyError as exc:
        raise describe_failure(engine, exc) from None
    return _check(
        records, checkpoints, keys, anchor=None, require_signed_end=False, witness_lines=witness_lines
    )


# --- extracts ---------------------------------------------------------------------------------


def _record_json(row: Any) -> dict[str, Any]:
    out = {name: getattr(row, name) for name in _RECORD_FIELDS}
    for name in ("ts", "time_from", "time_to"):
        out[name] = iso(out[name])
    return out


def _checkpoint_json(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "ts": iso(row.ts),
        "chain_hash": row.chain_hash,
        "key_id": row.key_id,
        "signature": row.signature,
    }


def export_extract(
    engine: Engine,
    from_ts: datetime,
    to_ts: datetime,
    out_path: Path,
    user_id: str,
    key: Path | Ed25519PrivateKey,
    *,
    purpose: str | None,
    recipient: str | None,
    clock: Callable[[], datetime] | None = None,
    witnesses: Sequence[Witness] = (),
) -> int:
    """Write the records of `[from_ts, to_ts)` with their chain proof to `out_path`; return how many.

    The extract holds the records (the contiguous run of seqs from the first record at or after
    `from_ts` to the last before `to_ts`), the predecessor hash of the first, the checkpoints that
    fall on the run, and the public key. A checkpoint is signed on the last record of the run if
    none is there yet, so that the whole run, anchor included, is covered by one signature and
    `verify_extract` needs nothing else. The export is itself recorded as `audit_export`, with
    its purpose and recipient (refused without them) and the SHA-256 of the file.
    """
    log = AuditLog(
        engine,
        key_path=None if isinstance(key, Ed25519PrivateKey) else key,
        witnesses=witnesses,
        **({"clock": clock} if clock else {}),
    )
    if isinstance(key, Ed25519PrivateKey):
        log._key = key
    fields = log._check(
        user_id, Action.AUDIT_EXPORT, "audit_log", None, from_ts, to_ts, purpose, recipient, None
    )
    from_ts, to_ts = fields["time_from"], fields["time_to"]
    if to_ts <= from_ts:
        raise AuditError("the export range is empty: --to must be after --from")
    public = log.signing_key().public_key()
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    with log._write_tx() as conn:
        first = conn.execute(select(_R.c.seq).where(_R.c.ts >= from_ts).order_by(_R.c.seq).limit(1)).scalar()
        last = conn.execute(
            select(_R.c.seq).where(_R.c.ts < to_ts).order_by(_R.c.seq.desc()).limit(1)
        ).scalar()
        rows: list[Any] = []
        if first is not None and last is not None and first <= last:
            rows = list(conn.execute(select(_R).where(_R.c.seq.between(first, last)).order_by(_R.c.seq)))
        checkpoints: list[Any] = []
        if rows:
            log._ensure_checkpoint(conn, rows[-1].seq)
            checkpoints = list(
                conn.execute(
                    select(_C)
                    .where(_C.c.seq.between(rows[0].seq - 1, rows[-1].seq))
                    .order_by(_C.c.seq, _C.c.id)
                )
            )
        body = {
            "format": EXTRACT_FORMAT,
            "from": iso(from_ts),
            "to": iso(to_ts),
            "anchor": (
                {"seq": rows[0].seq - 1, "prev_hash": rows[0].prev_hash}
                if rows
                else {"seq": None, "prev_hash": None}
            ),
            "records": [_record_json(r) for r in rows],
            "checkpoints": [_checkpoint_json(c) for c in checkpoints],
            "key_id": signing.key_id(public),
            "public_key": signing.public_key_pem(public),
        }
        data = (json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise AuditError(
                f"cannot write the extract to {out_path} ({exc.strerror}); choose another --out"
            ) from None
        fields["details"] = canonical_json(
            {
                "records": len(rows),
                "first_seq": rows[0].seq if rows else None,
                "last_seq": rows[-1].seq if rows else None,
                "extract_sha256": hashlib.sha256(data).hexdigest(),
            }
        )
        log._append(conn, **fields)
    # Renamed only once the export is on record: a file exists only if its export was logged.
    tmp.replace(out_path)
    return len(rows)


def _parse_ts(value: Any) -> datetime | None:
    if value is None:
        return None
    ts = datetime.fromisoformat(value)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def verify_extract(
    path: Path, public_keys: Iterable[Ed25519PublicKey] | Mapping[str, Ed25519PublicKey] | None = None
) -> VerifyResult:
    """Check an extract offline. Without `public_keys` the key embedded in the file is used, which
    proves the extract consistent but not *whose* it is: an auditor compares the reported key id
    with the one the site published, or passes that public key here."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditError(
            f"{path}: not a readable audit extract ({type(exc).__name__}); check the file"
        ) from None
    if not isinstance(body, dict) or body.get("format") != EXTRACT_FORMAT:
        raise AuditError(f"{path}: not a Lanterne audit extract (format {EXTRACT_FORMAT} expected)")
    try:
        embedded = signing.public_key_from_pem(body["public_key"])
        keys = signing.keyring([embedded]) if public_keys is None else signing.keyring(public_keys)
        records: list[_Rec] = []
        for raw in body["records"]:
            row = SimpleNamespace(**{name: raw.get(name) for name in _RECORD_FIELDS})
            try:
                row.ts, row.time_from, row.time_to = (
                    _parse_ts(raw.get(n)) for n in ("ts", "time_from", "time_to")
                )
                computed = _recompute(row)
            except (TypeError, ValueError):
                computed = ""
            records.append(_Rec(int(raw["seq"]), str(raw["prev_hash"]), str(raw["hash"]), computed))
        checkpoints = [
            _Cp(
                int(c["seq"]), _parse_ts(c["ts"]), str(c["chain_hash"]), str(c["key_id"]), str(c["signature"])
            )  # type: ignore[arg-type]
            for c in body["checkpoints"]
        ]
        anchor_raw = body["anchor"]
        anchor = (int(anchor_raw["seq"]), str(anchor_raw["prev_hash"])) if records else None
    except (KeyError, TypeError, ValueError, signing.AuditKeyError) as exc:
        return VerifyResult(False, 0, None, f"extract malformed ({type(exc).__name__}: {exc})")
    if records and anchor is not None and anchor[0] != records[0].seq - 1:
        return VerifyResult(
            False, len(records), records[0].seq, f"record {records[0].seq}: anchor seq does not precede it"
        )
    return _check(records, checkpoints, keys, anchor=anchor, require_signed_end=True)
