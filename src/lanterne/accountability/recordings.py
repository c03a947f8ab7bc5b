"""Recording retention and legal holds: the cameras' segments go after at most 30 days, sooner
where only events are kept or the storage cap is reached, and never while a court needs them.

Three rules, applied in this order at every purge (the retention scheduler runs it):

1. **Age** (RT-01): a segment that ended more than `recording.retention_days` ago is deleted.
2. **Events** (`record: events` cameras, Frigate's alert retention): a segment further than
   `event_margin_seconds` from every event of its camera is deleted once it is older than the
   margin, so an event raised a few seconds late still finds its footage.
3. **Storage cap**: while the segments take more than `storage_cap_gb`, the oldest go first; the
   deletion is recorded and logged as a warning, because a cap that bites means the site keeps
   less than its authorisation says and supervisors must know.

A legal hold (RT-02) covers one camera, or every camera, over a time range, with a judicial
reference; the database refuses to delete a segment an active hold overlaps (migration 0007), so
no rule above, bug or hand-written SQL can remove it. Every deletion is an audit record, one per
camera and rule naming the sequence ranges, count, bytes and time range (not one per segment: a
camera makes 8,640 segments a day), and each purge ends with a proof that re-counts the overdue
segments (RT-05).

>>> from datetime import UTC, datetime
>>> from lanterne.audit import AuditLog
>>> from lanterne.config.schema import RecordingSettings
>>> from lanterne.store import Store
>>> store = Store.open("sqlite://")
>>> report = purge_recordings(store, RecordingSettings(dir=Path("rec")), {}, AuditLog(store.engine), datetime.now(UTC))
>>> report.deleted, report.overdue_remaining
(0, 0)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.config.schema import RecordingSettings
from lanterne.core.errors import LanterneError
from lanterne.store import Store, StoreError
from lanterne.store.db import describe_failure, transaction
from lanterne.store.tables import EventRecord, RecordingHoldRecord, RecordingSegmentRecord

log = logging.getLogger(__name__)

_S = RecordingSegmentRecord.__table__
_H = RecordingHoldRecord.__table__
_E = EventRecord.__table__
_BATCH = 2000
"""Segments chosen per query: bounds memory on the first purge of a long-neglected store."""


class RecordingHoldError(LanterneError):
    """A recording hold that cannot be placed or lifted as asked."""


@dataclass(frozen=True, slots=True)
class RecordingHold:
    id: int
    camera: str | None
    """None: every camera."""
    start: datetime
    end: datetime
    judicial_reference: str
    reason: str
    placed_by: str
    placed_at: datetime
    lifted_at: datetime | None
    lifted_by: str | None

    @property
    def active(self) -> bool:
        return self.lifted_at is None


@dataclass(frozen=True, slots=True)
class RecordingPurgeReport:
    cutoff: datetime
    deleted: int = 0
    bytes_freed: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    held_kept: int = 0
    orphans_deleted: int = 0
    overdue_remaining: int = 0
    """Unheld segments still older than the cut-off after the purge, counted again: 0 when it worked."""
    total_bytes: int = 0
    errors: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        out = [
            f"cut-off: {self.cutoff.isoformat()}",
            f"segments deleted: {self.deleted} ({self.bytes_freed} bytes freed)",
            *(f"  {reason}: {n}" for reason, n in sorted(self.by_reason.items())),
            f"orphan files deleted: {self.orphans_deleted}",
            f"held segments kept: {self.held_kept}",
            f"overdue remaining: {self.overdue_remaining}",
            f"recordings now take: {self.total_bytes} bytes",
        ]
        out += [f"error: {e}" for e in self.errors]
        return out


# --- deleting -----------------------------------------------------------------------------------


def _held() -> Any:
    """True when an active hold overlaps the segment (the trigger of migration 0007 says the same)."""
    return exists().where(
        _H.c.lifted_at.is_(None),
        or_(_H.c.camera.is_(None), _H.c.camera == _S.c.camera),
        _H.c.start_ts <= _S.c.end_ts,
        _H.c.end_ts >= _S.c.start_ts,
    )


def _ranges(seqs: Iterable[int]) -> list[list[int]]:
    """[[first, last], …] of consecutive runs (the recorder's `verify` reads them back).

    >>> _ranges([3, 1, 2, 9])
    [[1, 3], [9, 9]]
    """
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def _inside(root: Path, relative: str) -> Path | None:
    rel = Path(relative)
    if not relative or rel.is_absolute() or ".." in rel.parts:
        return None
    return root / rel


@dataclass(slots=True)
class _Tally:
    deleted: int = 0
    bytes: int = 0
    held: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _delete(
    store: Store,
    root: Path,
    rows: list[Any],
    audit: AuditLog,
    reason: str,
    user_id: str,
    tally: _Tally,
    extra: dict[str, object],
) -> int:
    """Delete the rows (index first, then files) and record one audit line per camera."""
    done: dict[str, list[Any]] = {}
    for row in rows:
        try:
            with transaction(store.engine) as conn:
                n = conn.execute(delete(_S).where(_S.c.id == row.id, _S.c.state != "open")).rowcount
        except (IntegrityError, StoreError) as exc:
            if "legal hold" in str(exc):  # a hold placed since the rows were chosen
                tally.held += 1
            else:
                tally.errors.append(f"segment {row.id}: {str(exc).splitlines()[0]}")
            continue
        if not n:
            continue
        # Files after the commit: a crash in between leaves a file no row names, which the orphan
        # sweep removes; the reverse order could delete a file whose row a hold then keeps.
        path = _inside(root, row.path)
        if path is None:
            tally.errors.append(f"segment {row.id}: path {row.path!r} is outside the recordings directory")
        else:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                tally.errors.append(f"{row.path}: {exc.strerror}")
        done.setdefault(row.camera, []).append(row)
    freed = 0
    for camera, gone in sorted(done.items()):
        size = sum(r.size for r in gone)
        freed += size
        audit.append(
            user_id,
            Action.RETENTION_DELETE,
            object_type="recording",
            object_id=camera,
            time_from=min(r.start_ts for r in gone),
            time_to=max(r.end_ts for r in gone),
            details={
                "reason": reason,
                "segments": len(gone),
                "bytes": size,
                "seq_ranges": _ranges(r.seq for r in gone),
                **extra,
            },
        )
    count = sum(len(g) for g in done.values())
    tally.deleted += count
    tally.bytes += freed
    tally.by_reason[reason] = tally.by_reason.get(reason, 0) + count
    return freed


def _select(store: Store, *where: Any, order: Any = None, limit: int = _BATCH) -> list[Any]:
    q = select(_S).where(_S.c.state != "open", ~_held(), *where).order_by(*(order or (_S.c.end_ts, _S.c.id)))
    try:
        with store.engine.connect() as conn:
            return list(conn.execute(q.limit(limit)))
    except SQLAlchemyError as exc:
        raise describe_failure(store.engine, exc) from None


def _purge_age(
    store: Store, root: Path, cutoff: datetime, audit: AuditLog, user_id: str, tally: _Tally
) -> None:
    while rows := _select(store, _S.c.end_ts < cutoff):
        before = tally.deleted
        _delete(store, root, rows, audit, "retention", user_id, tally, {"cutoff": cutoff.isoformat()})
        if tally.deleted == before:  # all refused (held meanwhile) or failing: do not loop forever
            return


def _purge_events(
    store: Store,
    root: Path,
    cameras: list[str],
    margin: timedelta,
    now: datetime,
    audit: AuditLog,
    user_id: str,
    tally: _Tally,
) -> None:
    """Segments of `events` cameras near no event. An ongoing event is near everything after its
    start: its end is still moving."""
    if not cameras:
        return
    settled = now - margin
    for camera in cameras:
        rows = _select(store, _S.c.camera == camera, _S.c.end_ts < settled, limit=1_000_000)
        if not rows:
            continue
        with store.engine.connect() as conn:
            events = [
                (r.start_ts - margin, (now if r.ongoing else r.end_ts) + margin)
                for r in conn.execute(
                    select(_E.c.start_ts, _E.c.end_ts, _E.c.ongoing).where(
                        _E.c.camera == camera, _E.c.start_ts <= rows[-1].end_ts + margin
                    )
                )
            ]
        far = [r for r in rows if not any(a <= r.end_ts and b >= r.start_ts for a, b in events)]
        if far:
            _delete(
                store,
                root,
                far,
                audit,
                "events_only",
                user_id,
                tally,
                {"margin_seconds": margin.total_seconds()},
            )


def _total(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(_S.c.size), 0))).scalar_one())


def _purge_cap(store: Store, root: Path, cap: int, audit: AuditLog, user_id: str, tally: _Tally) -> None:
    excess = _total(store) - cap
    if excess <= 0:
        return
    chosen: list[Any] = []
    for row in _select(store, limit=1_000_000):
        if excess <= 0:
            break
        chosen.append(row)
        excess -= row.size
    freed = _delete(store, root, chosen, audit, "storage_cap", user_id, tally, {"cap_bytes": cap})
    # "Tells supervisors": the audit record above is what the console will show; the log line is
    # for whoever watches the service today.
    log.warning(
        "recordings storage cap %d bytes reached: deleted the %d oldest segments not under legal hold (%d bytes)",
        cap,
        len(chosen),
        freed,
    )
    if excess > 0:
        log.warning(
            "recordings still above the storage cap: what remains is under legal hold or being written"
        )


def _purge_orphans(store: Store, root: Path, cutoff: datetime, audit: AuditLog, user_id: str) -> int:
    """Segment files no row names and older than the cut-off: left by a crash between deleting
    a row and its file. The age test keeps the sweep away from a file being created now."""
    if not root.is_dir():
        return 0
    with store.engine.connect() as conn:
        known = set(conn.execute(select(_S.c.path)).scalars())
    limit = cutoff.timestamp()
    removed: list[str] = []
    for dirpath, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel in known or not name.endswith(".lseg"):
                continue
            with contextlib.suppress(OSError):
                if path.lstat().st_mtime < limit:
                    path.unlink()
                    removed.append(rel)
    if removed:
        audit.append(
            user_id,
            Action.RETENTION_DELETE,
            object_type="recording",
            object_id="orphans",
            details={"reason": "orphan", "files": len(removed), "first": removed[0][:200]},
        )
    return len(removed)


def purge_recordings(
    store: Store,
    settings: RecordingSettings,
    record_modes: Mapping[str, str],
    audit: AuditLog,
    now: datetime,
    user_id: str = "system",
) -> RecordingPurgeReport:
    """Apply age, events-only and storage-cap retention to the segments and record the proof.
    `record_modes` maps camera id to its `record` setting (`recording_mode` of the recorder)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    now = now.astimezone(UTC)
    root = Path(settings.dir)
    cutoff = now - timedelta(days=settings.retention_days)
    tally = _Tally()
    _purge_age(store, root, cutoff, audit, user_id, tally)
    events_cameras = sorted(c for c, mode in record_modes.items() if mode == "events")
    _purge_events(
        store,
        root,
        events_cameras,
        timedelta(seconds=settings.event_margin_seconds),
        now,
        audit,
        user_id,
        tally,
    )
    if settings.storage_cap_gb is not None:
        _purge_cap(store, root, int(settings.storage_cap_gb * 1e9), audit, user_id, tally)
    orphans = _purge_orphans(store, root, cutoff, audit, user_id)
    # The proof (RT-05), counted again after the deletions rather than taken from the tally.
    with store.engine.connect() as conn:
        overdue = conn.execute(
            select(func.count()).select_from(_S).where(_S.c.end_ts < cutoff, _S.c.state != "open", ~_held())
        ).scalar_one()
        held = conn.execute(
            select(func.count()).select_from(_S).where(_S.c.end_ts < cutoff, _held())
        ).scalar_one()
    total = _total(store)
    audit.append(
        user_id,
        Action.RETENTION_DELETE,
        object_type="recording",
        object_id="summary",
        time_to=cutoff,
        details={
            "retention_days": settings.retention_days,
            "cutoff": cutoff.isoformat(),
            "segments_deleted": tally.deleted,
            "by_reason": tally.by_reason,
            "bytes_freed": tally.bytes,
            "orphans_deleted": orphans,
            "held_kept": int(held),
            "overdue_remaining": int(overdue),
            "total_bytes": total,
            "errors": len(tally.errors),
        },
    )
    report = RecordingPurgeReport(
        cutoff=cutoff,
        deleted=tally.deleted,
        bytes_freed=tally.bytes,
        by_reason=dict(tally.by_reason),
        held_kept=int(held),
        orphans_deleted=orphans,
        overdue_remaining=int(overdue),
        total_bytes=total,
        errors=tuple(tally.errors),
    )
    log.info(
        "recordings purge: %d segments, %d bytes deleted; %d held past the cut-off; %d overdue remaining",
        report.deleted,
        report.bytes_freed,
        report.held_kept,
        report.overdue_remaining,
    )
    return report


def purge_events_only(
    store: Store,
    settings: RecordingSettings,
    record_modes: Mapping[str, str],
    audit: AuditLog,
    now: datetime,
    user_id: str = "system",
) -> int:
    """The events-only part of `purge_recordings`, for the runner to call every minute: footage
    of an `events` camera that no event needs goes once it is older than the margin, not at the
    next hourly purge. Each deletion is recorded per camera as always; no summary is written, since
    the hourly purge writes the proof. Returns the segments deleted."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    tally = _Tally()
    cameras = sorted(c for c, mode in record_modes.items() if mode == "events")
    margin = timedelta(seconds=settings.event_margin_seconds)
    _purge_events(store, Path(settings.dir), cameras, margin, now.astimezone(UTC), audit, user_id, tally)
    for error in tally.errors:
        log.error("recordings events-only purge: could not delete %s", error)
    return tally.deleted


def free_oldest(store: Store, root: Path, target_bytes: int, audit: AuditLog, user_id: str = "system") -> int:
    """The recorder's answer to a full disk (`Recorder(free=...)`): delete the oldest sealed
    segments no legal hold covers, of any camera, until `target_bytes` are freed; record it like
    every other deletion and warn. Returns the bytes freed."""
    chosen: list[Any] = []
    size = 0
    for row in _select(store, limit=10_000):
        if size >= target_bytes:
            break
        chosen.append(row)
        size += row.size
    tally = _Tally()
    freed = _delete(store, root, chosen, audit, "disk_full", user_id, tally, {"target_bytes": target_bytes})
    log.warning(
        "recordings disk full: deleted the %d oldest segments not under legal hold (%d bytes); recording goes on",
        tally.deleted,
        freed,
    )
    for error in tally.errors:
        log.error("recordings disk full: could not delete %s", error)
    return freed


# --- legal holds --------------------------------------------------------------------------------


def _hold(r: Any) -> RecordingHold:
    return RecordingHold(
        id=r.id,
        camera=r.camera,
        start=r.start_ts,
        end=r.end_ts,
        judicial_reference=r.judicial_reference,
        reason=r.reason,
        placed_by=r.placed_by,
        placed_at=r.placed_at,
        lifted_at=r.lifted_at,
        lifted_by=r.lifted_by,
    )


def place_hold(
    store: Store,
    audit: AuditLog,
    camera: str | None,
    start: datetime,
    end: datetime,
    judicial_reference: str,
    reason: str,
    user_id: str,
    now: datetime,
) -> RecordingHold:
    """Keep a camera's (None: every camera's) segments over [start, end] past retention for a
    judicial procedure (CSI L252-5, RT-02)."""
    reference = judicial_reference.strip()
    if not reference:
        raise RecordingHoldError(
            "a legal hold needs the judicial reference (requisition or procedure number); pass --reference"
        )
    if not reason.strip():
        raise RecordingHoldError("a legal hold needs a reason; pass --reason")
    if start.tzinfo is None or end.tzinfo is None:
        raise RecordingHoldError("hold times need a time zone, e.g. 2026-05-01T08:00:00+00:00")
    if end <= start:
        raise RecordingHoldError("a hold's end must come after its start; check --start and --end")
    with transaction(store.engine, describe_integrity_errors=True) as conn:
        hold_id = conn.execute(
            _H.insert()
            .values(
                camera=camera,
                start_ts=start,
                end_ts=end,
                judicial_reference=reference,
                reason=reason.strip(),
                placed_by=user_id,
                placed_at=now,
            )
            .returning(_H.c.id)
        ).scalar_one()
        r = conn.execute(select(_H).where(_H.c.id == hold_id)).one()
    try:
        audit.append(
            user_id,
            Action.LEGAL_HOLD,
            object_type="recording",
            object_id=camera or "all",
            time_from=start,
            time_to=end,
            purpose=reason.strip(),
            details={"operation": "add", "hold_id": int(hold_id), "judicial_reference": reference},
        )
    except Exception:
        # Nothing stands unrecorded: a hold the log refused is taken back.
        with transaction(store.engine) as conn:
            conn.execute(delete(_H).where(_H.c.id == hold_id))
        raise
    return _hold(r)


def lift_hold(store: Store, audit: AuditLog, hold_id: int, user_id: str, now: datetime) -> RecordingHold:
    """End a hold: its segments fall back under retention and go at the next purge if overdue."""
    with transaction(store.engine, describe_integrity_errors=True) as conn:
        r = conn.execute(select(_H).where(_H.c.id == hold_id)).first()
        if r is None:
            raise RecordingHoldError(
                f"recording hold {hold_id} does not exist; list them with `lanterne recordings holds`"
            )
        if r.lifted_at is not None:
            raise RecordingHoldError(
                f"recording hold {hold_id} was already lifted on {r.lifted_at.isoformat()}"
            )
        conn.execute(update(_H).where(_H.c.id == hold_id).values(lifted_at=now, lifted_by=user_id))
        r = conn.execute(select(_H).where(_H.c.id == hold_id)).one()
    audit.append(
        user_id,
        Action.LEGAL_HOLD,
        object_type="recording",
        object_id=r.camera or "all",
        time_from=r.start_ts,
        time_to=r.end_ts,
        details={"operation": "lift", "hold_id": int(hold_id), "judicial_reference": r.judicial_reference},
    )
    return _hold(r)


def recording_holds(store: Store, active_only: bool = False) -> list[RecordingHold]:
    """Recording holds, oldest first."""
    q = select(_H).order_by(_H.c.id)
    if active_only:
        q = q.where(_H.c.lifted_at.is_(None))
    try:
        with store.engine.connect() as conn:
            return [_hold(r) for r in conn.execute(q)]
    except SQLAlchemyError as exc:
        raise describe_failure(store.engine, exc) from None
