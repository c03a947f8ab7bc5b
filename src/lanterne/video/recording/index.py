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

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from lanterne.audit import Action, AuditLog
from lanterne.core.errors import RecordingError
from lanterne.store import Store
from lanterne.store.db import describe_failure, transaction
from lanterne.store.tables import RecordingSegmentRecord

log = logging.getLogger(__name__)

GENESIS_SHA256 = "0" * 64
"""The `prev_sha256` of a camera's first segment ever."""

_S = RecordingSegmentRecord.__table__


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


def seal_row(store: Store, segment_id: int, end: datetime, size: int, sha256: str, state: str) -> bool:
    """Seal a segment that is still open; False (nothing written) when it was sealed already.

    A sealed hash is the next segment's `prev_sha256`: overwriting it would break the chain that
    `lanterne recordings verify` checks. Two sealers of one segment means two writers of one camera
    (a late writer after a failover); the first seal stands and the second caller says so."""
    with transaction(store.engine) as conn:
        done = conn.execute(
            update(_S)
            .where(_S.c.id == segment_id, _S.c.state == "open")
            .values(end_ts=end, size=size, sha256=sha256, state=state)
        )
    return done.rowcount == 1


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
    "deleted_seqs",
    "inside",
    "open_row",
    "seal_row",
    "segment",
    "segments",
    "timeline",
]
