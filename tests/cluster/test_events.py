"""The events stream on a real nats-server into a real store (SQLite and PostgreSQL): duplicates
dropped, an ingester killed between commit and acknowledgement loses and doubles nothing, and a
camera's change of owner closes what the previous owner left ongoing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest

from lanterne.audit import Action, AuditLog
from lanterne.cluster import (
    CLOSE_REASON,
    STREAM,
    EventMessage,
    EventPublisher,
    Ingester,
    NatsThread,
    NoAnswerError,
)
from lanterne.core.types import Event, EventType
from lanterne.store import Store
from tests.support.nats import NatsServer

ORIGIN = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def event(n: int, camera: str = "cam-1", ongoing: bool = True) -> Event:
    return Event(
        id=f"ev{n:04d}",
        type=EventType.ZONE_INTRUSION,
        camera=camera,
        zone="quai",
        start=10.0 * n + 0.125,
        end=10.0 * n + (0.5 if ongoing else 7.375),
        confidence=0.8125,
        region=(0.1, 0.2, 0.3, 0.4),
        ongoing=ongoing,
        object_class="person",
        model_hash="m" * 8,
        config_hash="c" * 8,
    )


def stream_state(url: str) -> tuple[int, int, int]:
    """(messages in the stream, messages the consumer has not been sent, sent but not acknowledged)."""

    async def read() -> tuple[int, int, int]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        consumer = await js.consumer_info(STREAM, "store")
        await nc.close()
        return info.state.messages, consumer.num_pending, consumer.num_ack_pending

    return asyncio.run(read())


@pytest.fixture
def publisher(nats_server: NatsServer):
    p = EventPublisher(nats_server.url, "w1")
    p.start()
    yield p
    p.stop()


def test_the_same_event_state_sent_twice_is_stored_once(nats_server: NatsServer, publisher, tmp_path) -> None:
    assert publisher.publish(event(1), ORIGIN, "alerts", epoch=7) is True
    assert publisher.publish(event(1), ORIGIN, "alerts", epoch=7) is False  # a retry: dropped
    assert publisher.publish(event(1, ongoing=False), ORIGIN, "alerts", epoch=7) is True  # its end
    assert publisher.publish(event(1, ongoing=False), ORIGIN, "alerts", epoch=7) is False

    store = Store.open(f"sqlite:///{tmp_path / 'l.db'}")
    ingester = Ingester(nats_server.url, store, AuditLog(store.engine))
    try:
        assert ingester.run_once(timeout=1.0) == 2
    finally:
        ingester.stop()
    assert stream_state(nats_server.url) == (2, 0, 0)
    [row] = store.events(camera="cam-1")
    # The row is what `lanterne run` would have written for the event's final state.
    assert (row.id, row.ongoing, row.start_offset, row.end_offset) == ("ev0001", False, 10.125, 17.375)
    assert row.start == datetime(2026, 3, 14, 9, 0, 10, 125000, tzinfo=UTC)
    assert (row.region, row.object_class, row.confidence, row.mode) == (
        (0.1, 0.2, 0.3, 0.4),
        "person",
        0.8125,
        "alerts",
    )


CRASHING_INGESTER = textwrap.dedent(
    """
    import os, signal, sys
    from lanterne.audit import AuditLog
    from lanterne.cluster import Ingester
    from lanterne.store import Store

    url, db, crash_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store.open(db)
    seen = []

    def stored(message):
        seen.append(message.msg_id)
        if len(seen) == crash_at:
            print(message.msg_id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # committed, not acknowledged

    ingester = Ingester(url, store, AuditLog(store.engine), ack_wait=1.0, on_stored=stored)
    while True:
        ingester.run_once(timeout=1.0)
    """
)


def test_an_ingester_killed_between_commit_and_ack_loses_and_doubles_nothing(
    nats_server: NatsServer, publisher, db_url: str
) -> None:
    sent = []
    for n in range(10):
        for ongoing in (True, False):
            e = event(n, camera=f"cam-{n % 3}", ongoing=ongoing)
            assert publisher.publish(e, ORIGIN, "alerts", epoch=5)
            sent.append(EventMessage(e, ORIGIN, "alerts", "w1", 5).msg_id)
    Store.open(db_url).close()  # the schema, before two processes race to create it

    crash = subprocess.run(
        [sys.executable, "-c", CRASHING_INGESTER, nats_server.url, db_url, "7"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crash.returncode == -signal.SIGKILL, crash.stderr[-2000:]
    killed_on = crash.stdout.strip()
    assert killed_on == sent[6]

    store = Store.open(db_url)
    # The seventh message was committed before the crash; six were acknowledged.
    assert store.event(killed_on.split(":")[0]) is not None
    _, pending, unacked = stream_state(nats_server.url)
    assert pending + unacked == 14

    redelivered: list[str] = []
    ingester = Ingester(
        nats_server.url,
        store,
        AuditLog(store.engine),
        ack_wait=1.0,
        on_stored=lambda m: redelivered.append(m.msg_id),
    )
    try:
        while len(redelivered) < 14:
            ingester.run_once(timeout=3.0)
    finally:
        ingester.stop()
    assert sorted(redelivered) == sorted(sent[6:])  # the crashed one came again, none other
    assert stream_state(nats_server.url) == (20, 0, 0)
    rows = store.events(limit=1000)
    assert sorted(r.id for r in rows) == [f"ev{n:04d}" for n in range(10)]
    assert not any(r.ongoing for r in rows)
    store.close()


def test_a_change_of_owner_closes_the_previous_owner_s_ongoing_events(
    nats_server: NatsServer, publisher, tmp_path
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'l.db'}")
    audit = AuditLog(store.engine)
    new_owner = EventPublisher(nats_server.url, "w2")
    new_owner.start()
    ingester = Ingester(nats_server.url, store, audit)
    try:
        publisher.publish(event(1, "cam-1"), ORIGIN, "alerts", epoch=10)
        publisher.publish(event(2, "cam-1"), ORIGIN, "alerts", epoch=10)
        publisher.publish(event(3, "cam-2"), ORIGIN, "alerts", epoch=11)
        assert ingester.run_once() == 3
        # w1 dies; w2 takes cam-1's shard over under a later epoch and sees a new situation.
        new_owner.publish(event(4, "cam-1"), ORIGIN, "alerts", epoch=40)
        assert ingester.run_once() == 1

        ongoing = {r.id: r.ongoing for r in store.events(limit=100)}
        assert ongoing == {"ev0001": False, "ev0002": False, "ev0003": True, "ev0004": True}
        [record] = audit.entries(action=Action.EVENT_CLOSED)
        assert (record.user_id, record.object_type, record.object_id) == ("system", "camera", "cam-1")
        assert record.details == {
            "reason": CLOSE_REASON,
            "events": ["ev0001", "ev0002"],
            "previous_epoch": 10,
            "epoch": 40,
            "worker": "w2",
        }

        # The replaced owner, paused past its lease, wakes up and publishes: fenced off.
        publisher.publish(event(1, "cam-1", ongoing=False), ORIGIN, "alerts", epoch=10)
        publisher.publish(event(5, "cam-1"), ORIGIN, "alerts", epoch=10)
        assert ingester.run_once() == 0
        assert ingester.stats.fenced == 2
        assert store.event("ev0005") is None
    finally:
        ingester.stop()

    # A restarted ingester remembers the epoch (it is kept in NATS, beside the stream).
    publisher.publish(event(6, "cam-1"), ORIGIN, "alerts", epoch=10)
    again = Ingester(nats_server.url, store, audit)
    try:
        assert again.run_once() == 0
        assert again.stats.fenced == 1
    finally:
        again.stop()
        new_owner.stop()
    assert len(audit.entries(action=Action.EVENT_CLOSED)) == 1


def test_a_message_that_can_never_be_stored_is_set_aside(
    nats_server: NatsServer, publisher, tmp_path
) -> None:
    async def publish_garbage() -> None:
        nc = await nats.connect(nats_server.url)
        await nc.jetstream().publish("lanterne.events.cam-1", b"{not json", stream=STREAM)
        await nc.close()

    asyncio.run(publish_garbage())
    publisher.publish(event(1), ORIGIN, "alerts", epoch=1)
    store = Store.open(f"sqlite:///{tmp_path / 'l.db'}")
    ingester = Ingester(nats_server.url, store, AuditLog(store.engine))
    try:
        assert ingester.run_once() == 1
    finally:
        ingester.stop()
    assert ingester.stats.rejected == 1
    assert [r.id for r in store.events()] == ["ev0001"]
    assert stream_state(nats_server.url)[1:] == (0, 0)


def test_an_idle_stream_is_not_an_outage(nats_server: NatsServer, publisher, tmp_path) -> None:
    """On Python 3.11 a fetch that finds nothing and a server that does not answer both raise
    `TimeoutError`; only the second is `NoAnswerError`, so an idle ingester logs nothing."""
    store = Store.open(f"sqlite:///{tmp_path / 'idle.db'}")
    ingester = Ingester(nats_server.url, store, AuditLog(store.engine))
    try:
        assert ingester.run_once(timeout=0.2) == 0
        thread = NatsThread(nats_server.url, "probe")
        thread.start()
        try:

            async def idle_fetch() -> None:
                raise TimeoutError("nothing to fetch")

            with pytest.raises(TimeoutError) as own:
                thread.call(idle_fetch(), timeout=5.0)
            assert not isinstance(own.value, NoAnswerError)
            with pytest.raises(NoAnswerError, match=r"no answer from NATS within 0\.2 s"):
                thread.call(asyncio.sleep(5), timeout=0.2)
        finally:
            thread.stop()
    finally:
        ingester.stop()
        store.close()
