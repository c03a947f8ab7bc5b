"""The append-only, hash-chained audit log: who looked at or changed what, when and why.

Every record holds the SHA-256 of its predecessor and of its own content, so altering, removing,
inserting or reordering a record breaks the chain at that record (`lanterne.audit.verify`). Every
`checkpoint_every` records, and whenever the oldest unsigned record is `checkpoint_seconds` old, an
Ed25519 signature over the chain hash is stored as well: SHA-256 has no secret, so only the
signature stops someone with database access from rewriting the whole tail consistently. The
database itself refuses UPDATE and DELETE through triggers (migration 0002). Every checkpoint is
also handed to the witnesses (`lanterne.audit.witness`) once its transaction commits: a copy out
of the database's reach is what shows the newest records deleted together with their checkpoint.

Appends must be strictly linear even with several threads and processes writing: two appends that
both read record N as "the last" would fork the chain. Each append therefore takes the table's
write lock *before* reading the last record and releases it at commit (SQLite: `BEGIN IMMEDIATE`;
PostgreSQL: `LOCK TABLE … IN SHARE ROW EXCLUSIVE MODE`, which conflicts with itself but not with
readers). An append is a few milliseconds, so serialising them costs nothing an operator notices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import signing
from lanterne.audit.witness import SignedHead, Witness, WitnessError, WitnessFile
from lanterne.core.errors import ConfigError, LanterneError
from lanterne.store.db import check_connection, create_engine_for, describe_failure, locked_write, migrate
from lanterne.store.tables import AuditCheckpointRecord, AuditRecord, AuditSettingsRecord

if TYPE_CHECKING:
    from lanterne.config.schema import Config

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
"""The predecessor of the first record ever written."""

KEEP_DAYS_MIN, KEEP_DAYS_MAX = 183, 1096
"""Audit retention bounds: 6 months to 3 years (CNIL délib. 2021-122); the database CHECK agrees."""


class Action(StrEnum):
    """What was done. Values are stored, so renaming one is a migration, not a refactoring."""

    VIEW_LIVE = "view_live"
    """Reserved for the live wall; logs written before `ACCESS_DENIED` existed hold refusals under it."""
    VIEW_SNAPSHOT = "view_snapshot"
    VIEW_CLIP = "view_clip"
    VIEW_RECORDING = "view_recording"
    """A stretch of a camera's continuous recording played in the console (issue 11): the record
    names the camera, the time range and the segments rendered."""
    SEARCH = "search"
    EXPORT = "export"
    ALERT_STATE = "alert_state"
    CONFIG_CHANGE = "config_change"
    MODEL_CHANGE = "model_change"
    USER_CHANGE = "user_change"
    AUTHORISATION_CHANGE = "authorisation_change"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    STOP = "stop"
    SUSPEND = "suspend"
    RESUME = "resume"
    EVALUATION = "evaluation"
    ALERTING_ON = "alerting_on"
    ALERTING_OFF = "alerting_off"
    ALERTING_REFUSED = "alerting_refused"
    """A start at which a camera's watched types could not alert (LB-01): no authorisation covers
    them, or its privacy masks were not validated (LB-06); details name the types and why."""
    MASKS_VALIDATED = "masks_validated"
    """A person checked a camera's privacy masks (LB-06); details carry the masks' sha256."""
    ENVELOPE_CHECK = "envelope_check"
    """A sample of a camera's frames measured against each watched type's operating envelope
    (EV-05): details carry, per type, inside/outside/undetermined, why, and the figures."""
    ENVELOPE_OVERRIDE = "envelope_override"
    """A person let a camera alert one type outside its envelope (EV-05), with a reason, for the
    check it names."""
    RETENTION_DELETE = "retention_delete"
    LEGAL_HOLD = "legal_hold"
    AUDIT_EXPORT = "audit_export"
    AUDIT_PURGE = "audit_purge"
    DATASET_CHANGE = "dataset_change"
    """An observatory dataset ingested, replaced or deleted."""
    ACCESS_DENIED = "access_denied"
    """A console request refused for the user's role or scope when no better action names it
    (AC-03): the refusal is what an auditor needs to see, and nothing was viewed."""
    PRIVACY_PERMISSION = "privacy_permission"
    """A permission to remove privacy protection granted to a user, or revoked."""
    PRIVACY_REMOVED = "privacy_removed"
    """Recorded video rendered without anonymisation under a permission, with its reason and
    reference, before the first frame; `PRIVACY_RESTORED` closes it with what was rendered."""
    PRIVACY_RESTORED = "privacy_restored"
    ACCESS_REQUEST = "access_request"
    """A person's request for their own images (GDPR art. 15): received, answered or refused. The
    record names the request by its number, never the requester."""
    EVENT_CLOSED = "event_closed"
    """Events left ongoing by a camera's previous owner closed by the ingester when another worker
    took the camera over (issue 12): the record names the camera, the event ids, both fencing
    epochs and the reason, since the events table has no column for why an event ended."""
    OUTBOUND = "outbound"
    """A confirmed alert sent to a configured destination (MQTT, a webhook), given up after its
    last attempt (dead letter), or put back for delivery by a supervisor: the logged channel of
    AC-06. The record names the alert, the destination as recipient, and the attempts."""
    LOG_REVIEW = "log_review"
    """The automatic review of this log for the DPO (LG-06): a run over a time range (details: the
    records read, the findings raised or updated, per rule), or a finding acknowledged or closed by
    the DPO (object `review_finding`, the note as purpose)."""
    RECALL_AUDIT = "recall_audit"
    """A blinded recall audit (PM-03), object `recall_audit`: started (the seed and the windows
    drawn), refused, a mark added or removed, a window reviewed, closed with its score. The
    windows themselves are viewed as `view_recording`, the audit named in the purpose."""
    INCIDENT = "incident"
    """An incident or a personal-data breach (RK-05, SC-05), object `incident`: opened (by the
    sweep or a person), evidence added, a note, a notification sent, closed with cause and remedy."""
    CONFIG_SNAPSHOT = "config_snapshot"
    """A configuration stored under its hash the first time a process started with it (DC-03),
    or a stored one read back (`lanterne config snapshot`); details carry the hash."""
    RECIPIENT_REFUSED = "recipient_refused"
    """A destination or an export's recipient refused because no authorisation in force names it
    (AC-06); details name the channel, the refused and the authorised recipients."""
    PUBLIC_REPORT = "public_report"
    """A quarterly public report written and signed (PM-04), object `public_report`, its quarter
    as id: details carry each file's sha256 and the signing key's id."""
    RISK_REGISTER = "risk_register"
    """The risk register (RK-01), object `risk`: a risk added, or reviewed (levels, measures, the
    next review date)."""
    COMPLAINT = "complaint"
    """The complaint record (GV-07), object `complaint`: a complaint about the system recorded, or
    answered. Details carry the category, channel and dates and the sha256 of the summary and the
    answer, not their text: as for a FRIA, the hash shows a text edited afterwards in the database,
    and the log never repeats what a person wrote about a complaint."""


NEEDS_PURPOSE: frozenset[Action] = frozenset(
    {Action.VIEW_CLIP, Action.VIEW_RECORDING, Action.EXPORT, Action.AUDIT_EXPORT, Action.PRIVACY_REMOVED}
)
"""Viewing recorded footage (an alert's clip, a stretch of a recording) and handing data out need a
stated purpose (CSI L255-1, LG-02). A live view's records carry the purpose its wall session
stated (`accountability.live`); the action is also the older tests' generic "view"."""
NEEDS_RECIPIENT: frozenset[Action] = frozenset({Action.EXPORT, Action.AUDIT_EXPORT})
"""A disclosure is logged with who received it (LED art. 25)."""

PURPOSE_MAX_LENGTH = 1000
"""The longest purpose the log keeps: every way in (console, API, CLI) checks against this one."""
_MAX_LEN = {
    "user_id": 128,
    "object_type": 32,
    "object_id": 128,
    "purpose": PURPOSE_MAX_LENGTH,
    "recipient": 256,
}
"""Column widths: PostgreSQL would refuse a longer value with a driver error; SQLite would keep it.
Checking here gives one clear message on both."""


class AuditError(LanterneError):
    """The audit log cannot do what was asked (no signing key, a value too long, …)."""


class PurposeRequired(AuditError):  # noqa: N818 (the name is the agreed API)
    """Viewing recorded footage or exporting without a purpose (or an export without a recipient)."""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    ts: datetime
    user_id: str
    action: Action
    object_type: str | None
    object_id: str | None
    time_from: datetime | None
    time_to: datetime | None
    purpose: str | None
    recipient: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept as is: one byte string per value, so a hash over it is
    reproducible by any JSON library an auditor cares to use."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def iso(ts: datetime | None) -> str | None:
    """UTC ISO 8601 with microseconds: both backends store microseconds, so the text hashed at
    write time is the text recomputed at verification."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def record_hash(
    prev_hash: str,
    *,
    seq: int,
    ts: datetime,
    user_id: str,
    action: str,
    object_type: str | None,
    object_id: str | None,
    time_from: datetime | None,
    time_to: datetime | None,
    purpose: str | None,
    recipient: str | None,
    details: str,
) -> str:
    """sha256(prev_hash + canonical JSON of the record). `details` enters as the stored canonical
    text, so a flipped byte in it changes the hash even where it would still parse to equal JSON."""
    body = {
        "action": action,
        "details": details,
        "object_id": object_id,
        "object_type": object_type,
        "purpose": purpose,
        "recipient": recipient,
        "seq": seq,
        "time_from": iso(time_from),
        "time_to": iso(time_to),
        "ts": iso(ts),
        "user_id": user_id,
    }
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(body).encode("utf-8")).hexdigest()


def row_hash(row: Any) -> str:
    """Recompute the hash of a stored `audit_records` row (ORM object or Row)."""
    return record_hash(
        row.prev_hash,
        seq=row.seq,
        ts=row.ts,
        user_id=row.user_id,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        time_from=row.time_from,
        time_to=row.time_to,
        purpose=row.purpose,
        recipient=row.recipient,
        details=row.details,
    )


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC))")
    return value.astimezone(UTC)


def _entry(row: Any) -> AuditEntry:
    try:
        details = json.loads(row.details)
    except ValueError:
        details = {"_unparseable": True}
    action: Action | str
    try:
        action = Action(row.action)
    except ValueError:
        action = row.action  # a forged or future action: shown as stored, verification will judge
    return AuditEntry(
        seq=row.seq,
        ts=row.ts,
        user_id=row.user_id,
        action=action,  # type: ignore[arg-type]
        object_type=row.object_type,
        object_id=row.object_id,
        time_from=row.time_from,
        time_to=row.time_to,
        purpose=row.purpose,
        recipient=row.recipient,
        details=details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


_R = AuditRecord.__table__
_C = AuditCheckpointRecord.__table__
_S = AuditSettingsRecord.__table__


class AuditLog:
    """Append-only access and change log.

    >>> log = AuditLog.open("sqlite://")
    >>> log.append("alice", Action.SEARCH, object_type="camera", object_id="cam-1").seq
    1
    """

    def __init__(
        self,
        engine: Engine,
        *,
        key_path: Path | None = None,
        checkpoint_every: int = 100,
        checkpoint_seconds: float | None = None,
        witnesses: Sequence[Witness] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`checkpoint_seconds` None signs by count only (the site's log, from the configuration,
        signs at least once a minute); `witnesses` receive every checkpoint signed through here."""
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if checkpoint_seconds is not None and checkpoint_seconds <= 0:
            raise ValueError("checkpoint_seconds must be positive")
        self.engine = engine
        self.key_path = key_path
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.witnesses = tuple(witnesses)
        self.clock = clock
        self._key: Ed25519PrivateKey | None = None
        self._key_lock = threading.Lock()
        self._tx = threading.local()
        """`heads`: the checkpoints signed by this thread's open write transaction."""
        self._not_due_before: datetime | None = None
        """Before this time no checkpoint is due by time (`_due`); None: ask the database."""
        self._witness_lock = threading.Lock()
        self._unwitnessed: dict[int, list[SignedHead]] = {}
        """Heads a witness (by index) refused, written again before the next ones."""

    @classmethod
    def open(
        cls,
        url: str,
        *,
        key_path: Path | None = None,
        checkpoint_every: int = 100,
        checkpoint_seconds: float | None = None,
        witnesses: Sequence[Witness] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> AuditLog:
        """Open the database at `url`, bringing its schema up to date first."""
        engine = create_engine_for(url)
        check_connection(engine)
        migrate(engine)
        return cls(
            engine,
            key_path=key_path,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
            witnesses=witnesses,
            clock=clock,
        )

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> AuditLog:
        """The site's audit log as configured (`store.url`, `audit.*`), on `engine` when the caller
        has the database open already (its schema up to date), so both share one connection pool.
        A configured retention that differs from the database's is applied, and recorded, as a
        change by `system`: whoever opens the log first after the configuration changed."""
        if engine is None:
            engine = cls.open(cfg.store.url).engine
        log = cls(
            engine,
            key_path=cfg.audit.key_path,
            checkpoint_every=cfg.audit.checkpoint_every,
            checkpoint_seconds=cfg.audit.checkpoint_seconds,
            witnesses=[WitnessFile(cfg.audit.witness_path)],
            clock=clock,
        )
        if log.keep_days() != cfg.audit.retention_days:
            log.set_retention(cfg.audit.retention_days, "system")
        return log

    def close(self) -> None:
        for w in self.witnesses:
            close = getattr(w, "close", None)
            if close is not None:
                close()  # a remote witness's connection
        self.engine.dispose()

    # --- keys -----------------------------------------------------------------------------

    def signing_key(self) -> Ed25519PrivateKey:
        """The checkpoint key, created at `key_path` on first use."""
        with self._key_lock:
            if self._key is None:
                if self.key_path is None:
                    raise AuditError("no audit signing key configured; set audit.key_path")
                self._key = signing.load_or_create_key(self.key_path)
            return self._key

    # --- writing --------------------------------------------------------------------------

    @contextmanager
    def _write_tx(self) -> Iterator[Connection]:
        """A transaction that holds the audit write lock from its first statement to its commit:
        two writers must not both read the same last record and fork the chain.

        The checkpoints it signs go to the witnesses after the commit, outside the lock: a head
        witnessed before a commit that then failed would later read as records deleted, and an
        fsync under the lock would make every other writer wait for the disk."""
        heads: list[SignedHead] = []
        outer = getattr(self._tx, "heads", None)
        self._tx.heads = heads
        try:
            with locked_write(self.engine, "audit_records") as conn:
                yield conn
        finally:
            self._tx.heads = outer
        self._witness(heads)

    def _witness(self, heads: list[SignedHead]) -> None:
        """Hand `heads` (and any a witness refused before) to every witness. A witness that fails
        is logged, not raised: the records are committed, and refusing the caller's action after
        the fact would not unrecord it. `verify` shows how far the witnesses reach."""
        if not self.witnesses or (not heads and not any(self._unwitnessed.values())):
            return
        with self._witness_lock:
            for i, witness in enumerate(self.witnesses):
                batch = [*self._unwitnessed.pop(i, []), *heads]
                try:
                    witness.write(batch)
                except WitnessError as exc:
                    self._unwitnessed[i] = batch
                    log.error("%s (%d signed heads waiting)", exc, len(batch))

    def append(
        self,
        user_id: str,
        action: Action,
        *,
        object_type: str | None = None,
        object_id: str | None = None,
        time_from: datetime | None = None,
        time_to: datetime | None = None,
        purpose: str | None = None,
        recipient: str | None = None,
        details: dict[str, object] | None = None,
    ) -> AuditEntry:
        """Record one action and return it as stored.

        Raises `PurposeRequired` before anything is written when the action needs a purpose or a
        recipient, so a caller that records first and serves second refuses the request too.
        `details` holds ids, counts and hashes, never names, images or other personal data.
        """
        fields = self._check(
            user_id, action, object_type, object_id, time_from, time_to, purpose, recipient, details
        )
        with self._write_tx() as conn:
            return self._append(conn, **fields)

    def _check(
        self,
        user_id: str,
        action: Action,
        object_type: str | None,
        object_id: str | None,
        time_from: datetime | None,
        time_to: datetime | None,
        purpose: str | None,
        recipient: str | None,
        details: dict[str, object] | None,
    ) -> dict[str, Any]:
        action = Action(action)
        purpose = purpose.strip() if purpose else None
        recipient = recipient.strip() if recipient else None
        if action in NEEDS_PURPOSE and not purpose:
            what = "exporting" if action in NEEDS_RECIPIENT else "viewing recorded footage"
            raise PurposeRequired(
                f"{what} requires a purpose; state why (e.g. --purpose 'requisition 2026-114')"
            )
        if action in NEEDS_RECIPIENT and not recipient:
            raise PurposeRequired(
                "an export requires a recipient; name who receives it (e.g. --recipient 'OPJ Lyon')"
            )
        if not user_id or not user_id.strip():
            raise AuditError("an audit record needs a user id ('system' for automatic actions)")
        values = {
            "user_id": user_id,
            "object_type": object_type,
            "object_id": object_id,
            "purpose": purpose,
            "recipient": recipient,
        }
        for name, value in values.items():
            if value is not None and len(value) > _MAX_LEN[name]:
                raise AuditError(
                    f"audit {name} is {len(value)} characters long; shorten it to {_MAX_LEN[name]}"
                )
        try:
            details_text = canonical_json(details or {})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"audit details must be plain JSON (ids, counts, hashes): {exc}") from None
        return {
            **values,
            "action": str(action),
            "time_from": _aware(time_from, "time_from"),
            "time_to": _aware(time_to, "time_to"),
            "details": details_text,
        }

    def _tail(self, conn: Connection) -> tuple[int, str]:
        """`(seq, hash)` of the newest record; after a purge that removed every record, of the
        checkpoint that anchors the purged part; `(0, GENESIS_HASH)` on a new log."""
        row = conn.execute(select(_R.c.seq, _R.c.hash).order_by(_R.c.seq.desc()).limit(1)).first()
        if row is not None:
            return row.seq, row.hash
        cp = conn.execute(select(_C.c.seq, _C.c.chain_hash).order_by(_C.c.seq.desc()).limit(1)).first()
        if cp is not None:
            return cp.seq, cp.chain_hash
        return 0, GENESIS_HASH

    def _append(self, conn: Connection, **fields: Any) -> AuditEntry:
        last_seq, prev_hash = self._tail(conn)
        seq = last_seq + 1
        ts = _aware(self.clock(), "clock()")
        assert ts is not None
        h = record_hash(prev_hash, seq=seq, ts=ts, **fields)
        conn.execute(insert(_R).values(seq=seq, ts=ts, prev_hash=prev_hash, hash=h, **fields))
        # Without a key (tests, throwaway logs) the chain is still kept; only signatures are missing.
        if self._can_sign() and (seq % self.checkpoint_every == 0 or self._due(conn, ts)):
            self._write_checkpoint(conn, seq, h)
        row = conn.execute(select(_R).where(_R.c.seq == seq)).one()
        return _entry(row)

    def _can_sign(self) -> bool:
        return self.key_path is not None or self._key is not None

    def _due(self, conn: Connection, now: datetime) -> bool:
        """Whether the oldest record not yet covered by a checkpoint is `checkpoint_seconds` old:
        that bounds, in time, what a deletion of the tail could hide while records are written.
        Measured from the oldest unsigned record rather than the last checkpoint, so the first
        record after a quiet spell is not signed for nothing.

        The answer is remembered as a time before which nothing is due: records only get newer
        and other processes' checkpoints only move the oldest unsigned record later, so that time
        is never too late, and the database is asked about once per interval instead of on every
        append (one round trip, a third of an append on PostgreSQL)."""
        if self.checkpoint_seconds is None:
            return False
        if self._not_due_before is not None and now < self._not_due_before:
            return False
        last = select(_C.c.seq).order_by(_C.c.id.desc()).limit(1).scalar_subquery()
        oldest = conn.execute(
            select(_R.c.ts).where(_R.c.seq > func.coalesce(last, 0)).order_by(_R.c.seq).limit(1)
        ).scalar()
        if oldest is None:
            return False
        self._not_due_before = oldest + timedelta(seconds=self.checkpoint_seconds)
        return now >= self._not_due_before

    def _write_checkpoint(self, conn: Connection, seq: int, chain_hash: str) -> None:
        ts = _aware(self.clock(), "clock()")
        assert ts is not None
        kid, sig = signing.sign_checkpoint(self.signing_key(), seq, chain_hash, ts)
        conn.execute(insert(_C).values(ts=ts, seq=seq, chain_hash=chain_hash, key_id=kid, signature=sig))
        self._not_due_before = None
        heads = getattr(self._tx, "heads", None)
        if heads is not None:
            heads.append(SignedHead(seq, chain_hash, ts, kid, sig))

    def checkpoint(self, seq: int | None = None) -> int:
        """Sign the chain at `seq` (default: the newest record) unless a checkpoint is already
        there, and return that seq; 0 for an empty log. Exports and purges call this so that the
        records they rely on are covered by a signature."""
        with self._write_tx() as conn:
            return self._ensure_checkpoint(conn, seq)

    def sign_head(self) -> int | None:
        """Sign the newest record if no checkpoint covers it yet and return its seq; None when
        there is nothing to sign (empty log, head already signed, no key). Reads first and takes
        the write lock only to sign, so a timer calling it costs two lookups when idle."""
        if not self._can_sign():
            return None
        try:
            with self.engine.connect() as conn:
                head = conn.execute(select(func.max(_R.c.seq))).scalar()
                signed = conn.execute(select(_C.c.seq).order_by(_C.c.id.desc()).limit(1)).scalar()
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None
        if head is None or signed == head:
            return None
        return self.checkpoint()

    def _ensure_checkpoint(self, conn: Connection, seq: int | None) -> int:
        if seq is None:
            seq = conn.execute(select(func.max(_R.c.seq))).scalar()
            if seq is None:
                return 0
        if conn.execute(select(_C.c.id).where(_C.c.seq == seq).limit(1)).first() is not None:
            return seq
        h = conn.execute(select(_R.c.hash).where(_R.c.seq == seq)).scalar()
        if h is None:
            raise AuditError(f"audit record {seq} does not exist; cannot sign a checkpoint there")
        self._write_checkpoint(conn, seq, h)
        return seq

    # --- reading --------------------------------------------------------------------------

    def entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: Action | None = None,
        user_id: str | None = None,
    ) -> list[AuditEntry]:
        """Records in chain order, filtered by time (`since` inclusive, `until` exclusive), action or user."""
        stmt = select(_R).order_by(_R.c.seq)
        if since is not None:
            stmt = stmt.where(_R.c.ts >= _aware(since, "since"))
        if until is not None:
            stmt = stmt.where(_R.c.ts < _aware(until, "until"))
        if action is not None:
            stmt = stmt.where(_R.c.action == str(Action(action)))
        if user_id is not None:
            stmt = stmt.where(_R.c.user_id == user_id)
        try:
            with self.engine.connect() as conn:
                return [_entry(r) for r in conn.execute(stmt)]
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None

    def keep_days(self) -> int:
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(select(_S.c.keep_days).where(_S.c.id == 1)).scalar_one())
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None

    # --- retention ------------------------------------------------------------------------

    def set_retention(self, days: int, user_id: str) -> AuditEntry:
        """Change how long audit records are kept; the change is itself audited, in the same
        transaction, so a retention shortened to hide records leaves its trace."""
        if not KEEP_DAYS_MIN <= days <= KEEP_DAYS_MAX:
            raise ConfigError(
                f"audit retention of {days} days refused: it must be between {KEEP_DAYS_MIN} (6 months) "
                f"and {KEEP_DAYS_MAX} (3 years) days; fix audit.retention_days"
            )
        fields = self._check(
            user_id, Action.CONFIG_CHANGE, "audit_settings", "keep_days", None, None, None, None, None
        )
        with self._write_tx() as conn:
            old = conn.execute(select(_S.c.keep_days).where(_S.c.id == 1)).scalar_one()
            conn.execute(update(_S).where(_S.c.id == 1).values(keep_days=days))
            fields["details"] = canonical_json({"keep_days": days, "previous_keep_days": int(old)})
            return self._append(conn, **fields)

    def purge(self, now: datetime | None = None, user_id: str = "system") -> int:
        """Delete records older than the audit retention and return how many went.

        Only a contiguous oldest part of the chain is removed (a record with a skewed clock stops
        the purge there), and a signed checkpoint is ensured on its last record first: that
        checkpoint is what lets `verify` trust the oldest remaining record's predecessor hash. The
        database triggers apply the same floor with the database's clock and refuse anything
        younger. The purge itself is recorded as `audit_purge`.
        """
        now = _aware(now or self.clock(), "now")
        assert now is not None
        fields = self._check(user_id, Action.AUDIT_PURGE, "audit_log", None, None, None, None, None, None)
        with self._write_tx() as conn:
            keep = int(conn.execute(select(_S.c.keep_days).where(_S.c.id == 1)).scalar_one())
            cutoff = now - timedelta(days=keep)
            first_young = conn.execute(select(func.min(_R.c.seq)).where(_R.c.ts >= cutoff)).scalar()
            stmt = select(func.max(_R.c.seq)).where(_R.c.ts < cutoff)
            if first_young is not None:
                stmt = stmt.where(_R.c.seq < first_young)
            through = conn.execute(stmt).scalar()
            if through is None:
                return 0
            anchor = self._ensure_checkpoint(conn, through)
            deleted = conn.execute(delete(_R).where(_R.c.seq <= through)).rowcount
            # Older checkpoints are no longer needed as anchors once their records are gone; the
            # one at `through` stays (and its trigger keeps it until it too is past retention).
            conn.execute(delete(_C).where(_C.c.seq < anchor, _C.c.ts < cutoff))
            fields["details"] = canonical_json(
                {"records": deleted, "through_seq": through, "keep_days": keep}
            )
            self._append(conn, **fields)
            return deleted
