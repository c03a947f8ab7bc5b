"""The segment index in the store: one row per segment, hash-chained per camera, and the deletions
the recorder itself must make when the disk is full.

Rows are written when a segment opens (state `open`), so that a crash leaves a row naming the
file to recover, and completed when it is sealed. The index only ever holds times, sizes, hashes
and key ids: never a picture.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import RecordingError
from lanterne.store import Store, StoreError
from lanterne.store.db import describe_failure, transaction
from lanterne.store.tables import RecordingHoldRecord, RecordingSegmentRecord

log = logging.getLogger(__name__)

GENESIS_SHA256 = "0" * 64
"""The `prev_sha256` of a camera's first segment ever."""

_S = RecordingSegmentRecord.__table__
_H = RecordingHoldRecord.__table__


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: int
    camera: str
    seq: int
    start: datetime
    end: datetime
    path: str
    """Relative to the recordings directory."""
    size: int
    sha256: str | None
    prev_sha256: str
    key_id: str
    state: str

    def label(self) -> str:
        """How errors and reports name a segment: camera, start and id, never its content."""
        return f"segment {self.id} of camera {self.camera} at {self.start.isoformat(timespec='seconds')}"


def _row(r: Any) -> SegmentRow:
    return SegmentRow(
        id=r.id,
        camera=r.camera,
        seq=r.seq,
        start=r.start_ts,
        end=r.end_ts,
        path=r.path,
        size=r.size,
        sha256=r.sha256,
        prev_sha256=r.prev_sha256,
        key_id=r.key_id,
        state=r.state,
    )


@contextlib.contextmanager
def _read(store: Store) -> Iterator[Any]:
    try:
        with store.engine.connect() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise describe_failure(store.engine, exc) from None


def inside(root: Path, relative: str) -> Path:
    """The absolute path of a segment, refusing any row whose path would land outside the root: a
    row is data, and a forged `../../etc/passwd` must not turn a purge into a deletion tool."""
    rel = Path(relative)
    if not relative or rel.is_absolute() or ".." in rel.parts:
        raise RecordingError(f"segment path {relative!r} is not inside the recordings directory")
    return root / rel


# --- reading ----------------------------------------------------------------------------------


def segments(
    store: Store, camera: str, start: datetime, end: datetime, *, include_open: bool = False
) -> list[SegmentRow]:
    """The camera's segments overlapping [start, end], in recording order. `lost` segments are
    included (they are where the timeline says footage was lost); open ones only on request."""
    q = select(_S).where(_S.c.camera == camera, _S.c.start_ts <= end, _S.c.end_ts >= start).order_by(_S.c.seq)
    if not include_open:
        q = q.where(_S.c.state != "open")
    with _read(store) as conn:
        return [_row(r) for r in conn.execute(q)]


def all_segments(
    store: Store, camera: str | None = None, states: Iterable[str] | None = None
) -> list[SegmentRow]:
    """Every segment (of one camera), by camera then sequence."""
    q = select(_S).order_by(_S.c.camera, _S.c.seq)
    if camera is not None:
        q = q.where(_S.c.camera == camera)
    if states is not None:
        q = q.where(_S.c.state.in_(tuple(states)))
    with _read(store) as conn:
        return [_row(r) for r in conn.execute(q)]


def segment(store: Store, segment_id: int) -> SegmentRow | None:
    with _read(store) as conn:
        r = conn.execute(select(_S).where(_S.c.id == segment_id)).first()
    return _row(r) if r is not None else None


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of a camera's timeline: `recorded` (a readable segment), `lost` (a segment a
    crash left unreadable) or `gap` (nothing was recorded: the camera dropped, the recorder was
    stopped, or retention removed it)."""

    kind: str
    start: datetime
    end: datetime
    segment_id: int | None = None


GAP_TOLERANCE_S = 1.0
"""Two segments further apart than this leave a gap on the timeline. A reconnect takes seconds;
a sealed segment and the next one of the same stream meet within a frame interval."""


def timeline(store: Store, camera: str, start: datetime, end: datetime) -> list[Span]:
    """The camera's [start, end] as recorded, lost and gap spans in order: a camera that dropped
    shows as a gap, never as a silent hole between two segments."""
    spans: list[Span] = []
    cursor = start
    for row in segments(store, camera, start, end):
        if (row.start - cursor).total_seconds() > GAP_TOLERANCE_S:
            spans.append(Span("gap", cursor, row.start))
        kind = "lost" if row.state == "lost" else "recorded"
        spans.append(Span(kind, max(row.start, start), min(row.end, end), row.id))
        cursor = max(cursor, row.end)
    if (end - cursor).total_seconds() > GAP_TOLERANCE_S:
        spans.append(Span("gap", cursor, end))
    return spans


# --- writing ----------------------------------------------------------------------------------


def open_row(store: Store, camera: str, start: datetime, key_id: str, path_for: Any) -> SegmentRow:
    """Insert the next segment of `camera` in state `open`, chained to its previous one.
    `path_for(seq, start)` names its file. The previous segment must be sealed or recovered."""
    with transaction(store.engine) as conn:
        prev = conn.execute(
            select(_S).where(_S.c.camera == camera).order_by(_S.c.seq.desc()).limit(1)
        ).first()
        if prev is not None and prev.sha256 is None:
            raise RecordingError(
                f"camera {camera}: segment {prev.id} is still open; run the recorder's recover() before recording"
            )
        seq = 1 if prev is None else prev.seq + 1
        path = path_for(seq, start)
        new_id = conn.execute(
            _S.insert()
            .values(
                camera=camera,
                seq=seq,
                start_ts=start,
                end_ts=start,
                path=path,
                size=0,
                sha256=None,
                prev_sha256=GENESIS_SHA256 if prev is None else prev.sha256,
                key_id=key_id,
                state="open",
            )
            .returning(_S.c.id)
        ).scalar_one()
        r = conn.execute(select(_S).where(_S.c.id == new_id)).one()
    return _row(r)


def seal_row(store: Store, segment_id: int, end: datetime, size: int, sha256: str, state: str) -> None:
    with transaction(store.engine) as conn:
        conn.execute(
            update(_S).where(_S.c.id == segment_id).values(end_ts=end, size=size, sha256=sha256, state=state)
        )


# --- deletion when the disk is full ------------------------------------------------------------


def held_clause() -> Any:
    """SQL true when an active hold overlaps the segment row (the migration's trigger says the same)."""
    return exists().where(
        _H.c.lifted_at.is_(None),
        or_(_H.c.camera.is_(None), _H.c.camera == _S.c.camera),
        _H.c.start_ts <= _S.c.end_ts,
        _H.c.end_ts >= _S.c.start_ts,
    )


def seq_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """[[first, last], …] of consecutive runs: how a deletion record names many segments briefly.

    >>> seq_ranges([1, 2, 3, 7, 9, 10])
    [[1, 3], [7, 7], [9, 10]]
    """
    out: list[list[int]] = []
    for s in sorted(seqs):
        if out and s == out[-1][1] + 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def delete_rows(
    store: Store,
    root: Path,
    rows: list[SegmentRow],
    audit: AuditLog,
    reason: str,
    user_id: str,
    extra: dict[str, object],
) -> tuple[int, int, int]:
    """Delete segments (row first, then file) and write one audit record per camera naming the
    sequence ranges, count, bytes and time range. The database refuses a held segment (a hold
    placed since the rows were chosen): it is kept and counted. Returns (deleted, bytes, held)."""
    done: dict[str, list[SegmentRow]] = {}
    held = 0
    for row in rows:
        try:
            with transaction(store.engine) as conn:
                n = conn.execute(delete(_S).where(_S.c.id == row.id, _S.c.state != "open")).rowcount
        except (IntegrityError, StoreError) as exc:
            # The trigger's refusal: SQLite raises it as an integrity error, PostgreSQL as an error.
            if "legal hold" in str(exc):
                held += 1
                continue
            raise
        if not n:
            continue
        # A crash between the row's deletion and the file's leaves a file no row names; the
        # retention's orphan sweep removes it.
        with contextlib.suppress(FileNotFoundError, RecordingError):
            inside(root, row.path).unlink()
        done.setdefault(row.camera, []).append(row)
    total_bytes = 0
    for camera, gone in sorted(done.items()):
        size = sum(r.size for r in gone)
        total_bytes += size
        audit.append(
            user_id,
            Action.RETENTION_DELETE,
            object_type="recording",
            object_id=camera,
            time_from=min(r.start for r in gone),
            time_to=max(r.end for r in gone),
            details={
                "reason": reason,
                "segments": len(gone),
                "bytes": size,
                "seq_ranges": seq_ranges(r.seq for r in gone),
                **extra,
            },
        )
    return sum(len(g) for g in done.values()), total_bytes, held


def oldest_unheld(store: Store, limit: int) -> list[SegmentRow]:
    """The oldest sealed segments of any camera that no active hold covers."""
    q = select(_S).where(_S.c.state != "open", ~held_clause()).order_by(_S.c.end_ts, _S.c.id).limit(limit)
    with _read(store) as conn:
        return [_row(r) for r in conn.execute(q)]


def total_bytes(store: Store) -> int:
    with _read(store) as conn:
        return int(conn.execute(select(func.coalesce(func.sum(_S.c.size), 0))).scalar_one())


def deleted_seqs(audit: AuditLog) -> dict[str, set[int]]:
    """Sequence numbers whose deletion the audit log records, per camera: what lets `verify` tell
    a segment retention removed from one that disappeared."""
    out: dict[str, set[int]] = {}
    for e in audit.entries(action=Action.RETENTION_DELETE):
        if e.object_type != "recording" or not e.object_id:
            continue
        for first, last in e.details.get("seq_ranges", []):
            out.setdefault(e.object_id, set()).update(range(int(first), int(last) + 1))
    return out


__all__ = [
    "GENESIS_SHA256",
    "SegmentRow",
    "Span",
    "all_segments",
    "delete_rows",
    "deleted_seqs",
    "held_clause",
    "inside",
    "oldest_unheld",
    "open_row",
    "seal_row",
    "segment",
    "segments",
    "seq_ranges",
    "timeline",
    "total_bytes",
]
