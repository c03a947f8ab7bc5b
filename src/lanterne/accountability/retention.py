"""Retention: evidence and alerts are destroyed after at most 30 days, unless a court needs them.

French law caps recordings at one month (CSI L252-5) and the configuration refuses more. The purge
deletes every event that ended before the cut-off, its snapshot and clip files and its rows, and
keeps only an anonymous daily count per camera and event type (RT-03). A legal hold, tied to a
judicial reference, keeps one event and its files past the cut-off until it is lifted (RT-02); the
database itself refuses to delete a held event, so no bug or hand-written SQL can bypass a hold.
Every deletion is written to the audit log, and each purge ends with a proof record that re-counts
what is overdue (RT-05), so an inspector can see from the log alone that nothing was kept too long.

>>> from datetime import UTC, datetime
>>> from lanterne.audit import AuditLog
>>> from lanterne.config.schema import RetentionSettings
>>> from lanterne.store import Store
>>> store = Store.open("sqlite://")
>>> audit = AuditLog(store.engine)
>>> report = purge(store, Path("evidence"), RetentionSettings(), audit, datetime.now(UTC))
>>> report.events_deleted, report.overdue_remaining
(0, 0)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.config.schema import RetentionSettings
from lanterne.core.errors import LanterneError
from lanterne.store import Store, StoreError
from lanterne.store.db import describe_failure, locked_write, transaction
from lanterne.store.repository import EventRow, EvidenceRow
from lanterne.store.tables import AlertStateRecord, EventAggregateRecord, EventRecord, LegalHoldRecord

log = logging.getLogger(__name__)

_BATCH = 500
"""Events fetched per query: bounds memory on the first purge of a large, long-neglected store."""


class RetentionError(LanterneError):
    """A legal hold that cannot be placed or lifted as asked."""


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one purge did. `missing` lists evidence files that were already gone from disk (not an
    error: the goal is that they are gone); `errors` lists what could not be deleted and why."""

    cutoff: datetime
    events_deleted: int = 0
    files_deleted: int = 0
    bytes_freed: int = 0
    held_kept: int = 0
    orphans_deleted: int = 0
    overdue_remaining: int = 0
    """Unheld events still older than the cut-off after the purge, counted again: 0 when it worked."""
    missing: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        out = [
            f"cut-off: {self.cutoff.isoformat()}",
            f"events deleted: {self.events_deleted}",
            f"files deleted: {self.files_deleted} ({self.bytes_freed} bytes freed)",
            f"orphan files deleted: {self.orphans_deleted}",
            f"held events kept: {self.held_kept}",
            f"overdue remaining: {self.overdue_remaining}",
        ]
        out += [f"already missing: {p}" for p in self.missing]
        out += [f"error: {e}" for e in self.errors]
        return out


@dataclass(slots=True)
class _Tally:
    events: int = 0
    files: int = 0
    bytes: int = 0
    orphans: int = 0
    held: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LegalHold:
    id: int
    event_id: str
    judicial_reference: str
    reason: str
    created_by: str
    created_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None

    @property
    def active(self) -> bool:
        return self.lifted_at is None


# --- paths ----------------------------------------------------------------------------------


def _inside(root: Path, relative: str) -> Path:
    """The absolute path of an evidence file, refusing any that would land outside the root.

    A row is data, and data can be wrong or forged: `../../etc/passwd` or an absolute path in the
    evidence table must never turn the purge into a tool that deletes arbitrary files.
    """
    rel = Path(relative)
    if not relative or rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"evidence path {relative!r} is not inside the evidence directory")
    path = root / rel
    # resolve() follows symlinks: a link inside the root that points outside is refused too.
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"evidence path {relative!r} leads outside the evidence directory")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remove(root: Path, ev: EvidenceRow, tally: _Tally) -> dict[str, object]:
    """Delete one evidence file; its name and checksum go to the audit record (never its content)."""
    fact: dict[str, object] = {"file": ev.path, "kind": ev.kind, "sha256": ev.sha256, "bytes": ev.bytes}
    try:
        path = _inside(root, ev.path)
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        tally.missing.append(ev.path)
        fact["result"] = "already missing"
        return fact
    except (OSError, ValueError) as exc:
        tally.errors.append(f"{ev.path}: {exc}")
        fact["result"] = f"not deleted: {type(exc).__name__}"
        return fact
    tally.files += 1
    tally.bytes += size
    fact["result"] = "deleted"
    return fact


# --- purge ----------------------------------------------------------------------------------


def _held_refusal(exc: Exception) -> bool:
    return "legal hold" in str(exc)


@dataclass(frozen=True, slots=True)
class _Decision:
    state: str
    reason: str | None


def _decision(store: Store, event_id: str) -> _Decision | None:
    """The operator's final decision on an alert, read before the event (and with it, by cascade,
    its decision history) is deleted."""
    q = (
        select(AlertStateRecord.state, AlertStateRecord.reason)
        .where(AlertStateRecord.event_id == event_id, AlertStateRecord.state.in_(("confirmed", "dismissed")))
        .order_by(AlertStateRecord.id.desc())
        .limit(1)
    )
    with store.engine.connect() as conn:
        r = conn.execute(q).first()
    return _Decision(r.state, r.reason) if r is not None else None


def _aggregate_decision(store: Store, row: EventRow, decision: _Decision) -> None:
    """Add a deleted alert's decision to its day's anonymous aggregate, so precision since the
    start (PM-02) survives retention. Only the verdict and the reason code are kept: the reason
    text and the operator's id go with the alert.

    Runs right after `delete_expired_event` has counted the event in the same row, in a second
    transaction: a crash in between loses one decision from the counts (never the deletion), and
    a decision taken in the instant between the read and the delete is not counted. Both are
    rare at 30 days of age; making it one transaction needs `delete_expired_event` to do it.
    """
    agg = EventAggregateRecord
    key = (
        agg.day == row.start.astimezone(UTC).date(),
        agg.camera == row.camera,
        agg.type == str(row.type),
        agg.mode == row.mode,
    )
    # The reasons are a JSON object read, changed and written back: two purges at once would lose
    # one's update without the lock. PostgreSQL locks only the aggregate row (FOR UPDATE below).
    with locked_write(store.engine, None, describe_integrity_errors=True) as conn:
        q = select(agg.id, agg.confirmed, agg.dismissed, agg.dismiss_reasons).where(*key)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        r = conn.execute(q).first()
        if r is None:  # delete_expired_event writes the row; absent only if removed by hand
            return
        if decision.state == "confirmed":
            values: dict[str, Any] = {"confirmed": (r.confirmed or 0) + 1}
        else:
            reasons = dict(r.dismiss_reasons or {})
            code = decision.reason or "other"
            reasons[code] = int(reasons.get(code, 0)) + 1
            values = {"dismissed": (r.dismissed or 0) + 1, "dismiss_reasons": reasons}
        conn.execute(update(agg).where(agg.id == r.id).values(**values))


def _purge_events(
    store: Store, root: Path, cutoff: datetime, audit: AuditLog, user_id: str, tally: _Tally
) -> None:
    after = ""
    while True:
        ids = store.overdue_event_ids(cutoff, after=after, limit=_BATCH)
        if not ids:
            return
        after = ids[-1]
        for event_id in ids:
            decision = _decision(store, event_id)
            try:
                deleted = store.delete_expired_event(event_id)
            except (IntegrityError, StoreError) as exc:
                # A hold placed between the query and the delete: the trigger refused, as it should.
                if _held_refusal(exc):
                    tally.held.add(event_id)
                else:
                    tally.errors.append(f"event {event_id}: {str(exc).splitlines()[0]}")
                continue
            if deleted is None:  # deleted meanwhile by another purge
                continue
            row, files = deleted
            if decision is not None:
                try:
                    _aggregate_decision(store, row, decision)
                except StoreError as exc:
                    # The event is gone already: its deletion must still be recorded below.
                    tally.errors.append(f"event {row.id}: decision not counted in the aggregates: {exc}")
            # Files after the commit: a crash in between leaves files no row references, which the
            # orphan sweep removes; the reverse order could delete a held event's files.
            facts = [_remove(root, ev, tally) for ev in files]
            tally.events += 1
            audit.append(
                user_id,
                Action.RETENTION_DELETE,
                object_type="event",
                object_id=row.id,
                time_from=row.start,
                time_to=row.end,
                details={
                    "type": str(row.type),
                    "camera": row.camera,
                    "mode": row.mode,
                    "files": facts,
                    "cutoff": cutoff.isoformat(),
                },
            )


def _purge_orphans(
    store: Store, root: Path, cutoff: datetime, audit: AuditLog, user_id: str, tally: _Tally
) -> None:
    """Delete files under the evidence root that no row references and that are older than the
    cut-off: left by a crash between writing a file and recording it, or a `.part` never finished.
    The age test keeps the sweep away from a file being written right now."""
    if not root.is_dir():
        return
    referenced = store.evidence_paths()
    limit = cutoff.timestamp()
    for dirpath, _dirs, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel in referenced:
                continue
            try:
                st = path.lstat()
                if st.st_mtime >= limit:
                    continue
                digest = _sha256(path) if path.is_file() and not path.is_symlink() else ""
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                tally.errors.append(f"{rel}: {exc}")
                continue
            tally.orphans += 1
            tally.files += 1
            tally.bytes += st.st_size
            audit.append(
                user_id,
                Action.RETENTION_DELETE,
                object_type="file",
                object_id=rel[:128],
                details={"file": rel, "sha256": digest, "bytes": st.st_size, "reason": "orphan"},
            )
    _remove_empty_day_dirs(root, cutoff.date())


def _remove_empty_day_dirs(root: Path, before: date) -> None:
    # Only day folders (`<camera>/<YYYY-MM-DD>`) dated before the cut-off: the evidence writer may
    # be about to write into today's, and removing it between its mkdir and its write would fail.
    for day_dir in root.glob("*/*"):
        try:
            day = date.fromisoformat(day_dir.name)
        except ValueError:
            continue
        if day < before and day_dir.is_dir() and not day_dir.is_symlink():
            with contextlib.suppress(OSError):  # not empty: a held event's files live there
                day_dir.rmdir()


def purge(
    store: Store,
    evidence_root: Path,
    settings: RetentionSettings,
    audit: AuditLog,
    now: datetime,
    user_id: str = "system",
) -> PurgeReport:
    """Delete every unheld event that ended more than `settings.evidence_days` before `now`, its
    files and rows, then orphan files past the same age; record each deletion and a proof."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    now = now.astimezone(UTC)
    cutoff = now - timedelta(days=settings.evidence_days)
    tally = _Tally()
    _purge_events(store, evidence_root, cutoff, audit, user_id, tally)
    _purge_orphans(store, evidence_root, cutoff, audit, user_id, tally)
    remaining, held = store.overdue_counts(cutoff)
    # The proof (RT-05): counted again after the deletions, not taken from the tally, so a
    # deletion that silently did nothing shows here. The held list is hashed, not named, so the
    # record proves which events were kept without repeating their ids in every purge.
    audit.append(
        user_id,
        Action.RETENTION_DELETE,
        object_type="retention",
        object_id="summary",
        time_to=cutoff,
        details={
            "retention_days": settings.evidence_days,
            "cutoff": cutoff.isoformat(),
            "events_deleted": tally.events,
            "files_deleted": tally.files,
            "bytes_freed": tally.bytes,
            "orphans_deleted": tally.orphans,
            "files_already_missing": len(tally.missing),
            "errors": len(tally.errors),
            "held_kept": len(held),
            "held_sha256": hashlib.sha256("\n".join(held).encode()).hexdigest(),
            "overdue_remaining": remaining,
        },
    )
    report = PurgeReport(
        cutoff=cutoff,
        events_deleted=tally.events,
        files_deleted=tally.files,
        bytes_freed=tally.bytes,
        held_kept=len(held),
        orphans_deleted=tally.orphans,
        overdue_remaining=remaining,
        missing=tuple(tally.missing),
        errors=tuple(tally.errors),
    )
    log.info(
        "retention purge: %d events, %d files, %d bytes deleted; %d held; %d overdue remaining",
        report.events_deleted,
        report.files_deleted,
        report.bytes_freed,
        report.held_kept,
        report.overdue_remaining,
    )
    return report


# --- legal holds ----------------------------------------------------------------------------


def _hold(r: Any) -> LegalHold:
    return LegalHold(
        id=r.id,
        event_id=r.event_id,
        judicial_reference=r.judicial_reference,
        reason=r.reason,
        created_by=r.created_by,
        created_at=r.created_at,
        lifted_at=r.lifted_at,
        lifted_by=r.lifted_by,
    )


def hold(
    store: Store,
    audit: AuditLog,
    event_id: str,
    judicial_reference: str,
    reason: str,
    user_id: str,
    now: datetime,
) -> LegalHold:
    """Keep an event and its evidence past retention for a judicial procedure (CSI L252-5)."""
    reference = judicial_reference.strip()
    if not reference:
        raise RetentionError(
            "a legal hold needs the judicial reference (requisition or procedure number); pass --reference"
        )
    if not reason.strip():
        raise RetentionError("a legal hold needs a reason; pass --reason")
    with transaction(store.engine, describe_integrity_errors=True) as conn:
        # FOR UPDATE waits for a purge deleting this event to commit, so a hold is never placed on
        # an event the purge is removing (SQLite serialises writers and needs no lock).
        q = select(EventRecord.id).where(EventRecord.id == event_id)
        if store.engine.dialect.name == "postgresql":
            q = q.with_for_update()
        if conn.execute(q).first() is None:
            raise RetentionError(
                f"event {event_id!r} does not exist (already deleted?); check the id with the console"
            )
        hold_id = conn.execute(
            LegalHoldRecord.__table__.insert()
            .values(
                event_id=event_id,
                judicial_reference=reference,
                reason=reason.strip(),
                created_by=user_id,
                created_at=now,
            )
            .returning(LegalHoldRecord.id)
        ).scalar_one()
        r = conn.execute(select(*LegalHoldRecord.__table__.c).where(LegalHoldRecord.id == hold_id)).one()
    audit.append(
        user_id,
        Action.LEGAL_HOLD,
        object_type="event",
        object_id=event_id,
        purpose=reason.strip(),
        details={"operation": "add", "hold_id": int(hold_id), "judicial_reference": reference},
    )
    return _hold(r)


def lift(store: Store, audit: AuditLog, hold_id: int, user_id: str, now: datetime) -> LegalHold:
    """End a hold: the event falls back under retention and goes at the next purge if overdue."""
    with transaction(store.engine, describe_integrity_errors=True) as conn:
        t = LegalHoldRecord.__table__
        r = conn.execute(select(*t.c).where(t.c.id == hold_id)).first()
        if r is None:
            raise RetentionError(f"legal hold {hold_id} does not exist; list them with `lanterne hold list`")
        if r.lifted_at is not None:
            raise RetentionError(f"legal hold {hold_id} was already lifted on {r.lifted_at.isoformat()}")
        conn.execute(
            update(t)
            .where(t.c.id == hold_id, t.c.lifted_at.is_(None))
            .values(lifted_at=now, lifted_by=user_id)
        )
        r = conn.execute(select(*t.c).where(t.c.id == hold_id)).one()
    audit.append(
        user_id,
        Action.LEGAL_HOLD,
        object_type="event",
        object_id=r.event_id,
        details={"operation": "lift", "hold_id": int(hold_id), "judicial_reference": r.judicial_reference},
    )
    return _hold(r)


def holds(store: Store, active_only: bool = False) -> list[LegalHold]:
    """Legal holds, oldest first."""
    t = LegalHoldRecord.__table__
    q = select(*t.c).order_by(t.c.id)
    if active_only:
        q = q.where(t.c.lifted_at.is_(None))
    try:
        with store.engine.connect() as conn:
            return [_hold(r) for r in conn.execute(q)]
    except SQLAlchemyError as exc:
        raise describe_failure(store.engine, exc) from None


# --- schedule -------------------------------------------------------------------------------


class RetentionScheduler:
    """Runs `purge` in a background thread: once at start, then every `purge_interval_minutes`.

    A failed purge is logged and retried at the next tick, never fatal: losing the camera
    pipeline because the disk was briefly unreachable would be worse than a purge an hour late.

    `clock` gives the `now` of each purge (tests move it); `interval_s` overrides the configured
    interval (tests tick in milliseconds).
    """

    def __init__(
        self,
        store: Store,
        evidence_root: Path,
        settings: RetentionSettings,
        audit: AuditLog,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval_s: float | None = None,
        user_id: str = "system",
        recordings: Callable[[datetime], object] | None = None,
    ) -> None:
        self.store = store
        self.recordings = recordings
        """Purges the recorded segments at each tick (`accountability.recordings.purge_recordings`
        with the site's settings, bound by the runner)."""
        self.evidence_root = evidence_root
        self.settings = settings
        self.audit = audit
        self.clock = clock
        self.interval_s = settings.purge_interval_minutes * 60.0 if interval_s is None else interval_s
        self.user_id = user_id
        self.runs = 0
        self.failures = 0
        self.last_report: PurgeReport | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="lanterne-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the purge in progress, if any (a purge is not interrupted halfway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> PurgeReport | None:
        try:
            report = purge(
                self.store, self.evidence_root, self.settings, self.audit, self.clock(), self.user_id
            )
        except Exception:
            self.failures += 1
            log.exception("retention purge failed; retrying in %.0f s", self.interval_s)
            return None
        finally:
            self.runs += 1
        self.last_report = report
        for err in report.errors:
            log.warning("retention purge: %s", err)
        if self.recordings is not None:
            try:
                self.recordings(self.clock())
            except Exception:
                self.failures += 1
                log.exception("recordings purge failed; retrying in %.0f s", self.interval_s)
        try:
            # Audit records have their own, longer retention (6 months to 3 years); the same
            # schedule applies it. The database refuses to delete anything younger.
            self.audit.purge(self.clock(), self.user_id)
        except Exception:
            self.failures += 1
            log.exception("audit log purge failed; retrying in %.0f s", self.interval_s)
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            if self._stop.wait(self.interval_s):
                return
