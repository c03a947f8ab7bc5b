"""What one ingester stores a second from the events stream into PostgreSQL, against what a city's
workers send (issue 12, "Tests and benchmarks": ingest events/s), with the count checked.

Starts a private `nats-server -js` (Debian's, on a free port) and a fresh database on the local
PostgreSQL ($LANTERNE_TEST_PG, as the tests), then:

1. `--publishers` workers (one `EventPublisher` each, in threads of this process) publish
   `--events` event updates over `--cameras` cameras, each acknowledged by JetStream before the
   next: the rate the stream takes them;
2. one `Ingester` (upsert, commit, acknowledge, as `lanterne ingest`) drains the stream: the rate
   it stores them, batch by batch;
3. the check beside the speed: rows in `events` against distinct events sent (none lost, none
   doubled), and the consumer's backlog at the end.

Each camera's events come as a worker sends them: an ongoing update then its closing one, so half
the messages update a row the other half created. The database is dropped at the end.

    .venv/bin/python benchmarks/ingest.py [--events 20000] [--cameras 4000] [--publishers 4]
        [--batch 64]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from lanterne.audit import AuditLog
from lanterne.cluster import EventPublisher, Ingester
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from lanterne.store.tables import EventRecord
from leases import nats_server
from search_scale import database

ORIGIN = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
TYPES = (EventType.ZONE_INTRUSION, EventType.WRONG_WAY, EventType.ABANDONED_OBJECT, EventType.PERSON_DOWN)


def updates(n: int, cameras: int) -> list[tuple[Event, int]]:
    """`n` messages: `n // 2` events, each sent ongoing then closed, with its camera's epoch 1."""
    out: list[tuple[Event, int]] = []
    for k in range(n // 2):
        camera = f"cam-{k % cameras:05d}"
        start = 30.0 * (k // cameras) + 0.5
        for ongoing in (True, False):
            event = Event(
                id=f"ev-{k:07d}",
                type=TYPES[k % len(TYPES)],
                camera=camera,
                zone="z1",
                start=start,
                end=start + (1.0 if ongoing else 12.0),
                confidence=0.75,
                region=(0.1, 0.2, 0.3, 0.4),
                ongoing=ongoing,
                object_class="person",
                model_hash="m" * 8,
                config_hash="c" * 8,
            )
            out.append((event, 1))
    return out


def publish(url: str, batches: list[list[tuple[Event, int]]]) -> float:
    """Every batch published by its own worker at once; the seconds until all were acknowledged."""
    publishers = [EventPublisher(url, f"w{i}") for i in range(len(batches))]
    for p in publishers:
        p.start()

    def send(p: EventPublisher, batch: list[tuple[Event, int]]) -> None:
        for event, epoch in batch:
            p.publish(event, ORIGIN, "alerts", epoch)

    threads = [threading.Thread(target=send, args=(p, b)) for p, b in zip(publishers, batches, strict=True)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    for p in publishers:
        p.stop()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000, help="messages (each event sent twice)")
    ap.add_argument("--cameras", type=int, default=4000)
    ap.add_argument("--publishers", type=int, default=4, help="workers publishing at once")
    ap.add_argument("--batch", type=int, default=64, help="messages the ingester fetches at a time")
    args = ap.parse_args()
    messages = updates(args.events, args.cameras)
    # A camera belongs to one worker: its updates stay in order, as a lease makes them.
    batches: list[list[tuple[Event, int]]] = [[] for _ in range(args.publishers)]
    for event, epoch in messages:
        batches[int(event.camera[4:]) % args.publishers].append((event, epoch))
    with tempfile.TemporaryDirectory() as d, database(False, None) as dsn:
        proc, url = nats_server(Path(d))
        try:
            store = Store.open(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
            sent_s = publish(url, batches)
            ingester = Ingester(url, store, AuditLog(store.engine), batch=args.batch)
            ingester.connect()
            t0 = time.monotonic()
            stored = 0
            while stored < len(messages):
                got = ingester.run_once(timeout=2.0)
                if got == 0 and ingester.backlog() == 0:
                    break
                stored += got
            ingest_s = time.monotonic() - t0
            backlog = ingester.backlog()
            ingester.stop()
            with store.engine.connect() as conn:
                rows = conn.execute(select(func.count()).select_from(EventRecord)).scalar_one()
                still = conn.execute(
                    select(func.count()).select_from(EventRecord).where(EventRecord.ongoing)
                ).scalar_one()
            store.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    events = len(messages) // 2
    print(
        f"{len(messages):,} event updates ({events:,} events, ongoing then closed) over "
        f"{args.cameras:,} cameras from {args.publishers} publishers; nats-server (Debian), "
        f"PostgreSQL, one ingester fetching {args.batch} at a time"
    )
    print("| step | messages/s | seconds |")
    print("|---|---|---|")
    print(f"| published and acknowledged by JetStream | {len(messages) / sent_s:,.0f} | {sent_s:.1f} |")
    print(
        f"| stored in PostgreSQL by one ingester (upsert, commit, ack) | {stored / ingest_s:,.0f} | {ingest_s:.1f} |"
    )
    print(
        f"check: {rows:,} rows for {events:,} events sent ({'none lost, none doubled' if rows == events else 'MISMATCH'}), "
        f"{still} still ongoing (expected 0), backlog at the end {backlog}"
    )


if __name__ == "__main__":
    main()
