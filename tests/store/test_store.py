from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from lanterne.core.errors import LanterneError
from lanterne.core.types import Counts, Event, EventType
from lanterne.store import Store, StoreError, create_engine_for, migrate
from lanterne.store.db import current_revision
from lanterne.store.tables import Base, EventRecord

ORIGIN = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def make_event(id_: str = "e1", **kw: object) -> Event:
    fields: dict[str, object] = {
        "id": id_,
        "type": EventType.ZONE_INTRUSION,
        "camera": "cam1",
        "zone": "quay",
        "start": 10.0,
        "end": 11.0,
        "confidence": 0.6,
        "region": (0.1, 0.2, 0.3, 0.4),
        "object_class": "person",
        "model_hash": "m" * 8,
        "config_hash": "c" * 8,
    }
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(db_url: str):
    s = Store.open(db_url)
    yield s
    s.close()


def test_migrations_create_the_schema(db_url: str) -> None:
    engine = create_engine_for(db_url)
    assert current_revision(engine) is None
    migrate(db_url)
    migrate(db_url)  # a second run at every start must be a no-op
    assert current_revision(engine) == "0024"
    names = set(inspect(engine).get_table_names())
    assert {"events", "evidence", "zone_counts", "alembic_version"} <= names
    assert {"audit_records", "audit_checkpoints", "audit_settings", "authorisations", "legal_holds"} <= names
    engine.dispose()


def test_migration_matches_the_models(db_url: str) -> None:
    """The hand-written migration and the typed models describe the same schema."""
    migrate(db_url)
    engine = create_engine_for(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def _add_account(engine: object, account_id: str, role: str) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            text(
                "INSERT INTO accounts (id, login, role, scope, password_hash, created_at, created_by) "
                "VALUES (:id, :id, :role, '[\"*\"]', 'x', :at, 'test')"
            ),
            {"id": account_id, "role": role, "at": ORIGIN},
        )


def test_0023_admits_export_officers_and_keeps_every_session_and_second_factor(db_url: str) -> None:
    """AC-03: the widened role check keeps existing accounts' rows and what hangs on them (SQLite
    would cascade-delete them in a table rebuild), and still refuses a role that does not exist."""
    migrate(db_url, "0022")
    engine = create_engine_for(db_url)
    _add_account(engine, "u-1", "operator")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sessions (token_sha256, account_id, csrf_token, created_at, last_seen, expires_at) "
                "VALUES ('t', 'u-1', 'c', :at, :at, :at)"
            ),
            {"at": ORIGIN},
        )
    with pytest.raises(IntegrityError):
        _add_account(engine, "u-2", "export_officer")
    engine.dispose()
    migrate(db_url)
    engine = create_engine_for(db_url)
    _add_account(engine, "u-2", "export_officer")
    with pytest.raises(IntegrityError):
        _add_account(engine, "u-3", "root")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT account_id FROM sessions")).scalars().all() == ["u-1"]
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    engine.dispose()


FORBIDDEN = re.compile(r"face|embed|ident|name|age|gender|track|biometr|attribute|plate|person|colou?r")


def test_no_column_can_hold_an_identity(db_url: str) -> None:
    migrate(db_url)
    engine = create_engine_for(db_url)
    insp = inspect(engine)
    columns = [(t, c["name"]) for t in insp.get_table_names() for c in insp.get_columns(t)]
    engine.dispose()
    assert len(columns) > 30  # the scan really saw the schema
    assert [tc for tc in columns if FORBIDDEN.search(tc[1].lower())] == []
    # Same scan on the models, which is what a future migration would be generated from.
    model_cols = [c.name for t in Base.metadata.tables.values() for c in t.columns]
    assert [c for c in model_cols if FORBIDDEN.search(c.lower())] == []


def test_upsert_is_idempotent_and_updates_the_moving_parts(store: Store) -> None:
    opened = make_event(end=11.0, ongoing=True, confidence=0.6)
    store.upsert_event(opened, ORIGIN, "alerts")
    first = store.events()[0]
    store.upsert_event(opened, ORIGIN, "alerts")
    closed = make_event(end=25.5, ongoing=False, confidence=0.8, region=(0.2, 0.2, 0.5, 0.6))
    store.upsert_event(closed, ORIGIN, "alerts")
    rows = store.events()
    assert len(rows) == 1
    row = rows[0]
    assert (row.end_offset, row.ongoing, row.confidence, row.region) == (
        25.5,
        False,
        0.8,
        (0.2, 0.2, 0.5, 0.6),
    )
    assert row.end == ORIGIN + timedelta(seconds=25.5)
    assert (row.start, row.start_offset, row.created_at) == (first.start, 10.0, first.created_at)
    assert row.type is EventType.ZONE_INTRUSION and row.mode == "alerts"
    assert store.event("e1") == row and store.event("nope") is None


def test_times_are_stored_in_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    store.upsert_event(make_event(), datetime(2026, 5, 1, 10, 0, tzinfo=paris), "evaluation")
    row = store.events()[0]
    assert row.start == datetime(2026, 5, 1, 8, 0, 10, tzinfo=UTC)
    assert row.start.utcoffset() == timedelta(0)


@pytest.mark.parametrize("bad", ["loitering", "face_match", ""])
def test_check_constraint_refuses_unknown_event_types(store: Store, bad: str) -> None:
    with pytest.raises(IntegrityError):
        store.upsert_event(make_event(type=bad), ORIGIN, "alerts")
    # Straight SQL too: the database itself refuses, not only the Python layer.
    row = {
        "id": "raw",
        "type": bad,
        "camera": "c",
        "zone": "z",
        "start_ts": ORIGIN,
        "end_ts": ORIGIN,
        "start_offset": 0.0,
        "end_offset": 0.0,
        "confidence": 1.0,
        "x0": 0.0,
        "y0": 0.0,
        "x1": 1.0,
        "y1": 1.0,
        "ongoing": True,
        "model_hash": "",
        "config_hash": "",
        "mode": "alerts",
        "created_at": ORIGIN,
    }
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(insert(EventRecord).values(**row))
    with store.engine.begin() as conn:
        conn.execute(insert(EventRecord).values(**{**row, "type": "fire"}))
    assert [e.id for e in store.events()] == ["raw"]


def test_every_event_type_is_accepted(store: Store) -> None:
    for i, t in enumerate(EventType):
        store.upsert_event(make_event(f"e{i}", type=t), ORIGIN, "alerts")
    assert {r.type for r in store.events()} == set(EventType)


def test_bad_mode_and_naive_origin_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="mode"):
        store.upsert_event(make_event(), ORIGIN, "statistics")
    with pytest.raises(ValueError, match="timezone-aware"):
        store.upsert_event(make_event(), datetime(2026, 5, 1, 8, 0), "alerts")


def test_evidence_needs_its_event(store: Store) -> None:
    with pytest.raises(IntegrityError):
        store.add_evidence("missing", "snapshot", "cam1/x.jpg", "0" * 64, 10)
    store.upsert_event(make_event(), ORIGIN, "alerts")
    store.add_evidence("e1", "snapshot", "cam1/2026-05-01/e1-snapshot.jpg", "a" * 64, 1000)
    store.add_evidence("e1", "clip", "cam1/2026-05-01/e1-clip.mp4", "b" * 64, 5000)
    store.add_evidence("e1", "clip", "cam1/2026-05-01/e1-clip.mp4", "c" * 64, 6000)  # re-encoded
    ev = store.evidence_for("e1")
    assert [(e.kind, e.sha256[0], e.bytes) for e in ev] == [("snapshot", "a", 1000), ("clip", "c", 6000)]
    with pytest.raises(ValueError, match="kind"):
        store.add_evidence("e1", "audio", "x", "0" * 64, 1)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["d", "c", "b", "a"]),
        ({"camera": "cam2"}, ["d", "c"]),
        ({"type": EventType.FIRE}, ["d", "b"]),
        ({"type": "fire", "camera": "cam1"}, ["b"]),
        ({"since": ORIGIN + timedelta(seconds=20)}, ["d", "c", "b"]),
        ({"until": ORIGIN + timedelta(seconds=20)}, ["a"]),
        ({"since": ORIGIN + timedelta(seconds=20), "until": ORIGIN + timedelta(seconds=40)}, ["c", "b"]),
        ({"limit": 2}, ["d", "c"]),
        ({"mode": "evaluation"}, ["d"]),
    ],
)
def test_event_queries(store: Store, query: dict, expected: list[str]) -> None:
    store.upsert_event(make_event("a", start=10, end=11), ORIGIN, "alerts")
    store.upsert_event(make_event("b", type=EventType.FIRE, start=20, end=21), ORIGIN, "alerts")
    store.upsert_event(make_event("c", camera="cam2", start=30, end=31), ORIGIN, "alerts")
    store.upsert_event(
        make_event("d", type=EventType.FIRE, camera="cam2", start=40, end=41), ORIGIN, "evaluation"
    )
    assert [r.id for r in store.events(**query)] == expected


def test_counts_round_trip_and_replace_their_bucket(store: Store) -> None:
    store.add_counts(Counts("cam1", "quay", 60, 60, 4, 2.5, {"person": 7}, 300), ORIGIN)
    store.add_counts(Counts("cam1", "quay", 0, 60, 3, 1.5, {"person": 5, "bicycle": 1}, 300), ORIGIN)
    store.add_counts(Counts("cam1", "quay", 0, 60, 3, 1.6, {"person": 6}, 301), ORIGIN)  # same bucket
    store.add_counts(Counts("cam2", "gate", 0, 60, 1, 0.2, {}, 300), ORIGIN)
    rows = store.counts(camera="cam1")
    assert [(r.bucket_start, r.mean_people, dict(r.entries), r.samples) for r in rows] == [
        (ORIGIN, 1.6, {"person": 6}, 301),
        (ORIGIN + timedelta(seconds=60), 2.5, {"person": 7}, 300),
    ]
    assert len(store.counts()) == 3
    assert [r.camera for r in store.counts(since=ORIGIN + timedelta(seconds=30))] == ["cam1"]


def test_sqlite_connection_settings(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url)
    with engine.connect() as conn:
        got = [
            conn.execute(text(f"PRAGMA {p}")).scalar()
            for p in ("journal_mode", "synchronous", "foreign_keys")
        ]
        timeout = conn.execute(text("PRAGMA busy_timeout")).scalar()
    engine.dispose()
    assert got == ["wal", 1, 1]  # synchronous 1 = NORMAL
    assert timeout is not None and timeout >= 5000


def test_concurrent_writers_on_sqlite(sqlite_url: str) -> None:
    """Camera workers share one Store from their own threads; none may see 'database is locked'."""
    store = Store.open(sqlite_url)
    errors: list[BaseException] = []
    n_threads, n_events = 6, 40
    start = threading.Barrier(n_threads)

    def worker(k: int) -> None:
        try:
            start.wait()
            for i in range(n_events):
                e = make_event(f"t{k}-{i}", camera=f"cam{k}", start=float(i), end=float(i))
                store.upsert_event(e, ORIGIN, "alerts")
                store.upsert_event(make_event(f"t{k}-{i}", camera=f"cam{k}", start=float(i), end=i + 2.0,
                                              ongoing=False), ORIGIN, "alerts")  # fmt: skip
                store.add_evidence(f"t{k}-{i}", "snapshot", f"cam{k}/{i}.jpg", "0" * 64, i)
                store.add_counts(Counts(f"cam{k}", "z", float(i * 60), 60, i, 0.5, {"person": i}, 5), ORIGIN)
                store.events(camera=f"cam{k}", limit=5)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = store.events(limit=10_000)
    assert len(rows) == n_threads * n_events
    assert all(not r.ongoing and r.end_offset == r.start_offset + 2 for r in rows)
    assert len(store.counts()) == n_threads * n_events
    assert sum(len(store.evidence_for(r.id)) for r in rows) == n_threads * n_events
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a valid URL"),
        ("mysql://admin:s3cret@db.example/lanterne", "unsupported database 'mysql'"),
        ("postgresql+psycopg://admin:s3cret@127.0.0.1:1/lanterne", "cannot be used"),
        ("postgresql://admin:s3cret@127.0.0.1:1/lanterne", "cannot be used"),
        ("sqlite:////nonexistent-dir-for-lanterne/x.db", "does not exist"),
    ],
)
def test_bad_urls_give_one_line_without_the_password(url: str, message: str) -> None:
    with pytest.raises(StoreError) as info:
        Store.open(url)
    text_ = str(info.value)
    assert isinstance(info.value, LanterneError)
    assert message in text_
    assert "s3cret" not in text_ and "\n" not in text_
    # No chained driver traceback (which may print the DSN) under the one-line message.
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_migrate_reports_an_unreachable_server() -> None:
    with pytest.raises(StoreError, match="cannot be used") as info:
        migrate("postgresql+psycopg://admin:s3cret@127.0.0.1:1/lanterne")
    assert "s3cret" not in str(info.value)
