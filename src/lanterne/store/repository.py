"""Reading and writing events, evidence records and zone counts.

Many camera workers share one `Store` in one process. Every write is a single INSERT … ON CONFLICT
statement in its own short transaction: on SQLite a lone write statement takes the write lock at
once and waits out the busy timeout, whereas a read-then-write transaction can fail immediately
with "database is locked" when another writer got in between. The same upserts keep the writes
idempotent, so a worker that retries after a crash cannot duplicate an event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from lanterne.core.types import Box, Counts, Event, EventType
from lanterne.store.db import create_engine_for, describe_failure, transaction
from lanterne.store.tables import (
    EVENT_MODES,
    EVIDENCE_KINDS,
    Base,
    EventRecord,
    EvidenceRecord,
    ZoneCountRecord,
)


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event as stored: wall-clock times for people, stream offsets for replay and evaluation."""

    id: str
    type: EventType
    camera: str
    zone: str
    start: datetime
    end: datetime
    start_offset: float
    end_offset: float
    confidence: float
    region: Box
    object_class: str | None
    ongoing: bool
    model_hash: str
    config_hash: str
    mode: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    id: int
    event_id: str
    kind: str
    path: str
    """POSIX path relative to the evidence directory."""
    sha256: str
    bytes: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CountsRow:
    camera: str
    zone: str
    bucket_start: datetime
    bucket_seconds: float
    max_people: int
    mean_people: float
    entries: Mapping[str, int]
    samples: int


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(UTC)), got a naive datetime")
    return value.astimezone(UTC)


class Store:
    """The application's only door to the database.

    >>> store = Store.open("sqlite://")
    >>> store.events()
    []
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._statements: dict[str, Any] = {}

    @classmethod
    def open(cls, url: str, migrate_schema: bool = True) -> Store:
        """Open the database at `url`, bringing its schema up to date first unless told not to."""
        from lanterne.store.db import check_connection, migrate

        engine = create_engine_for(url)
        check_connection(engine)
        if migrate_schema:
            migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise describe_failure(self.engine, exc) from None

    # --- writes ---------------------------------------------------------------------------

    def _upsert(
        self, model: type[Base], values: Mapping[str, Any], keys: tuple[str, ...], update: tuple[str, ...]
    ) -> None:
        # One statement, one transaction: see the module docstring for why this matters on SQLite.
        # The statement is built once per table and the values bound at execution: building an
        # ON CONFLICT statement costs several milliseconds of Python, far more than the write.
        stmt = self._statements.get(model.__tablename__)
        if stmt is None:
            # Both dialects' `insert` share the ON CONFLICT API; the generic one has none.
            insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
            base = insert(model.__table__)
            stmt = base.on_conflict_do_update(
                index_elements=list(keys), set_={k: base.excluded[k] for k in update}
            )
            self._statements[model.__tablename__] = stmt
        with transaction(self.engine) as conn:
            conn.execute(stmt, dict(values))

    def upsert_event(self, event: Event, origin: datetime, mode: str) -> None:
        """Insert the event, or update the moving parts (end, ongoing, confidence, region) of the
        one already stored under the same id. `origin` is the wall-clock time of stream offset 0."""
        if mode not in EVENT_MODES:
            raise ValueError(f"mode must be one of {EVENT_MODES}, got {mode!r}")
        origin = _aware(origin, "origin")
        x0, y0, x1, y1 = (float(v) for v in event.region)
        values: dict[str, Any] = {
            "id": event.id,
            "type": str(event.type),
            "camera": event.camera,
            "zone": event.zone,
            "start_ts": origin + timedelta(seconds=event.start),
            "end_ts": origin + timedelta(seconds=event.end),
            "start_offset": float(event.start),
            "end_offset": float(event.end),
            "confidence": float(event.confidence),
            "x0": x0,
            "y0": y0,
            "x1": x1,
            "y1": y1,
            "object_class": event.object_class,
            "ongoing": bool(event.ongoing),
            "model_hash": event.model_hash,
            "config_hash": event.config_hash,
            "mode": mode,
            "created_at": datetime.now(UTC),
        }
        moving = ("end_ts", "end_offset", "ongoing", "confidence", "x0", "y0", "x1", "y1")
        self._upsert(EventRecord, values, ("id",), moving)

    def add_evidence(self, event_id: str, kind: str, path: str, sha256: str, size: int) -> None:
        """Record an evidence file. Writing the same path again (a clip re-encoded after a restart)
        updates its checksum and size instead of adding a second row."""
        if kind not in EVIDENCE_KINDS:
            raise ValueError(f"kind must be one of {EVIDENCE_KINDS}, got {kind!r}")
        values = {
            "event_id": event_id,
            "kind": kind,
            "path": path,
            "sha256": sha256,
            "bytes": int(size),
            "created_at": datetime.now(UTC),
        }
        self._upsert(EvidenceRecord, values, ("event_id", "path"), ("kind", "sha256", "bytes"))

    def add_counts(self, counts: Counts, origin: datetime) -> None:
        """Store one statistics bucket. Writing the same camera, zone and bucket again replaces
        it: the pipeline may flush a bucket early (on shutdown) and complete it after a restart."""
        origin = _aware(origin, "origin")
        values: dict[str, Any] = {
            "camera": counts.camera,
            "zone": counts.zone,
            "bucket_start": origin + timedelta(seconds=counts.bucket_start),
            "bucket_seconds": float(counts.bucket_seconds),
            "max_people": int(counts.max_people),
            "mean_people": float(counts.mean_people),
            "entries": {str(k): int(v) for k, v in counts.entries.items()},
            "samples": int(counts.samples),
        }
        replaced = ("bucket_seconds", "max_people", "mean_people", "entries", "samples")
        self._upsert(ZoneCountRecord, values, ("camera", "zone", "bucket_start"), replaced)

    # --- reads ----------------------------------------------------------------------------

    def events(
        self,
        camera: str | None = None,
        type: EventType | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        mode: str | None = None,
    ) -> list[EventRow]:
        """Events whose start lies in `[since, until)`, newest first."""
        q: Select[Any] = select(*EventRecord.__table__.c)
        if camera is not None:
            q = q.where(EventRecord.camera == camera)
        if type is not None:
            q = q.where(EventRecord.type == str(type))
        if since is not None:
            q = q.where(EventRecord.start_ts >= _aware(since, "since"))
        if until is not None:
            q = q.where(EventRecord.start_ts < _aware(until, "until"))
        if mode is not None:
            q = q.where(EventRecord.mode == mode)
        q = q.order_by(EventRecord.start_ts.desc(), EventRecord.id).limit(max(0, int(limit)))
        with self._read() as conn:
            return [_event_row(r) for r in conn.execute(q)]

    def event(self, event_id: str) -> EventRow | None:
        with self._read() as conn:
            r = conn.execute(select(*EventRecord.__table__.c).where(EventRecord.id == event_id)).first()
        return _event_row(r) if r is not None else None

    def evidence_for(self, event_id: str) -> list[EvidenceRow]:
        q = (
            select(*EvidenceRecord.__table__.c)
            .where(EvidenceRecord.event_id == event_id)
            .order_by(EvidenceRecord.id)
        )
        with self._read() as conn:
            return [
                EvidenceRow(r.id, r.event_id, r.kind, r.path, r.sha256, r.bytes, r.created_at)
                for r in conn.execute(q)
            ]

    def counts(
        self,
        camera: str | None = None,
        zone: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[CountsRow]:
        """Statistics buckets whose start lies in `[since, until)`, oldest first (for charts)."""
        q: Select[Any] = select(*ZoneCountRecord.__table__.c)
        if camera is not None:
            q = q.where(ZoneCountRecord.camera == camera)
        if zone is not None:
            q = q.where(ZoneCountRecord.zone == zone)
        if since is not None:
            q = q.where(ZoneCountRecord.bucket_start >= _aware(since, "since"))
        if until is not None:
            q = q.where(ZoneCountRecord.bucket_start < _aware(until, "until"))
        q = q.order_by(ZoneCountRecord.bucket_start, ZoneCountRecord.camera, ZoneCountRecord.zone)
        q = q.limit(max(0, int(limit)))
        with self._read() as conn:
            return [
                CountsRow(
                    r.camera,
                    r.zone,
                    r.bucket_start,
                    r.bucket_seconds,
                    r.max_people,
                    r.mean_people,
                    dict(r.entries),
                    r.samples,
                )
                for r in conn.execute(q)
            ]

    # --- retention (lanterne.accountability.retention) -----------------------------------------------------

    def _unheld_overdue(self, cutoff: datetime) -> Select[Any]:
        from lanterne.store.tables import LegalHoldRecord

        held = select(LegalHoldRecord.id).where(
            LegalHoldRecord.event_id == EventRecord.id, LegalHoldRecord.lifted_at.is_(None)
        )
        return select(EventRecord.id).where(EventRecord.end_ts < _aware(cutoff, "cutoff"), ~held.exists())

    def overdue_event_ids(self, cutoff: datetime, after: str = "", limit: int = 500) -> list[str]:
        """Ids of events that ended before `cutoff` and have no active legal hold, in id order
        from `after` (keyset paging: a purge that fails on one event still moves past it)."""
        q = self._unheld_overdue(cutoff).where(EventRecord.id > after).order_by(EventRecord.id).limit(limit)
        with self._read() as conn:
            return [r.id for r in conn.execute(q)]

    def overdue_counts(self, cutoff: datetime) -> tuple[int, list[str]]:
        """How many events past `cutoff` lack an active hold (RT-05 expects 0 after a purge), and
        the ids of those kept past it by a hold."""
        from sqlalchemy import func

        from lanterne.store.tables import LegalHoldRecord

        unheld = select(func.count()).select_from(self._unheld_overdue(cutoff).subquery())
        held = (
            select(EventRecord.id)
            .where(EventRecord.end_ts < _aware(cutoff, "cutoff"))
            .where(
                select(LegalHoldRecord.id)
                .where(LegalHoldRecord.event_id == EventRecord.id, LegalHoldRecord.lifted_at.is_(None))
                .exists()
            )
            .order_by(EventRecord.id)
        )
        with self._read() as conn:
            return int(conn.execute(unheld).scalar_one()), [r.id for r in conn.execute(held)]

    def delete_expired_event(self, event_id: str) -> tuple[EventRow, list[EvidenceRow]] | None:
        """Delete one event and its evidence rows, and count it in the anonymous daily aggregates,
        in a single transaction: a crash cannot leave the count without the deletion or the
        reverse. Returns what was deleted (the files are the caller's to remove), or None when the
        event is already gone. The database trigger refuses the delete while a legal hold is
        active, so a hold placed after the caller chose this event still wins."""
        from sqlalchemy import delete

        from lanterne.store.tables import EventAggregateRecord

        with transaction(self.engine) as conn:
            q = select(*EventRecord.__table__.c).where(EventRecord.id == event_id)
            if self.engine.dialect.name == "postgresql":
                q = q.with_for_update()
            r = conn.execute(q).first()
            if r is None:
                return None
            row = _event_row(r)
            files = [
                EvidenceRow(e.id, e.event_id, e.kind, e.path, e.sha256, e.bytes, e.created_at)
                for e in conn.execute(
                    select(*EvidenceRecord.__table__.c)
                    .where(EvidenceRecord.event_id == event_id)
                    .order_by(EvidenceRecord.id)
                )
            ]
            conn.execute(delete(EventRecord).where(EventRecord.id == event_id))
            # Evidence rows go by ON DELETE CASCADE; deleting them here as well keeps a database
            # opened without SQLite's foreign_keys pragma from keeping orphan rows.
            conn.execute(delete(EvidenceRecord).where(EvidenceRecord.event_id == event_id))
            insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
            agg = EventAggregateRecord.__table__
            stmt = insert(agg).values(
                day=row.start.astimezone(UTC).date(),
                camera=row.camera,
                type=str(row.type),
                mode=row.mode,
                events=1,
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["day", "camera", "type", "mode"], set_={"events": agg.c.events + 1}
            )
            conn.execute(stmt)
        return row, files

    def evidence_paths(self) -> set[str]:
        """Every evidence path still referenced, so the orphan sweep never touches one."""
        with self._read() as conn:
            return {r.path for r in conn.execute(select(EvidenceRecord.path))}

    def event_aggregates(self) -> list[tuple[date, str, str, str, int]]:
        """`(day, camera, type, mode, events)` rows, oldest first: what outlives retention (RT-03)."""
        from lanterne.store.tables import EventAggregateRecord as A

        q = select(A.day, A.camera, A.type, A.mode, A.events).order_by(A.day, A.camera, A.type, A.mode)
        with self._read() as conn:
            return [(r.day, r.camera, r.type, r.mode, int(r.events)) for r in conn.execute(q)]


def _event_row(r: Any) -> EventRow:
    return EventRow(
        id=r.id,
        type=EventType(r.type),
        camera=r.camera,
        zone=r.zone,
        start=r.start_ts,
        end=r.end_ts,
        start_offset=r.start_offset,
        end_offset=r.end_offset,
        confidence=r.confidence,
        region=(r.x0, r.y0, r.x1, r.y1),
        object_class=r.object_class,
        ongoing=bool(r.ongoing),
        model_hash=r.model_hash,
        config_hash=r.config_hash,
        mode=r.mode,
        created_at=r.created_at,
    )
