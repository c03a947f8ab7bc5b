"""Camera leases on a real nats-server: fair shares, rebalancing, takeover after a death, and a
partitioned worker that stops its cameras before anybody else can start them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import nats
import nats.js.errors
import pytest

from lanterne.cluster import ClusterError, LeaseKeeper, lease_key, shard_of
from tests.support.nats import NatsServer, Partition

SHARDS = 24
TTL = 2.0


class Journal:
    """Every on_gain/on_lose of several keepers, with monotonic times."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gains: list[tuple[float, str, int, int]] = []
        self.losses: list[tuple[float, str, int]] = []

    def keeper(self, worker: str, url: str, **kw: object) -> LeaseKeeper:
        def gain(shard: int, epoch: int) -> None:
            with self.lock:
                self.gains.append((time.monotonic(), worker, shard, epoch))

        def lose(shard: int) -> None:
            with self.lock:
                self.losses.append((time.monotonic(), worker, shard))

        params: dict = {"shards": SHARDS, "ttl": TTL, "on_gain": gain, "on_lose": lose} | kw
        return LeaseKeeper(worker, url, **params)


@pytest.fixture
def keepers() -> Iterator[list[LeaseKeeper]]:
    started: list[LeaseKeeper] = []
    yield started
    for k in started:
        k.stop()


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - t0


def split(ks: list[LeaseKeeper]) -> list[set[int]]:
    return [set(k.leases()) for k in ks]


def exact_cover(ks: list[LeaseKeeper], sizes: list[int]) -> bool:
    held = split(ks)
    return sorted(len(h) for h in held) == sorted(sizes) and set().union(*held) == set(range(SHARDS))


def test_shards_are_spread_fairly_and_rebalance_when_a_worker_joins(nats_server: NatsServer, keepers) -> None:
    journal = Journal()
    cameras = [f"cam-{i}" for i in range(100)]
    a = journal.keeper("a", nats_server.url, cameras=cameras)
    b = journal.keeper("b", nats_server.url, cameras=cameras)
    keepers += [a, b]
    a.start()
    b.start()
    wait_for(lambda: exact_cover([a, b], [12, 12]), 5)
    assert a.live_workers() == b.live_workers() == 2

    c = journal.keeper("c", nats_server.url, cameras=cameras)
    keepers.append(c)
    c.start()
    wait_for(lambda: exact_cover([a, b, c], [8, 8, 8]), 5)

    # Every camera is in exactly one held shard, and its epoch is its shard's.
    owners = {cam: [k.worker_id for k in (a, b, c) if k.epoch_of(cam) is not None] for cam in cameras}
    assert all(len(o) == 1 for o in owners.values()), owners
    for k in (a, b, c):
        for shard, epoch in k.leases().items():
            assert all(k.epoch_of(cam) == epoch for cam in k.cameras_of(shard))
            assert all(shard_of(cam, SHARDS) == shard for cam in k.cameras_of(shard))
    # The handover went through on_lose before the newcomer's on_gain, shard by shard.
    for t_gain, worker, shard, _ in journal.gains:
        if worker == "c":
            lost = [t for t, w, s in journal.losses if s == shard]
            assert lost and max(lost) <= t_gain


def test_a_deferred_hand_back_keeps_the_key_until_the_cameras_have_finished(
    nats_server: NatsServer, keepers
) -> None:
    # A worker seals its cameras' recordings after on_lose; the next owner must wait for that.
    ttl = 6.0
    journal = Journal()
    a = journal.keeper("a", nats_server.url, deferred_release=True, ttl=ttl)
    keepers.append(a)
    a.start()
    wait_for(lambda: len(a.leases()) == SHARDS, 5)
    b = journal.keeper("b", nats_server.url, ttl=ttl)
    keepers.append(b)
    b.start()
    wait_for(lambda: len(a.leases()) == SHARDS // 2, 5)
    handed_at = time.monotonic()
    handed = sorted({s for _, w, s in journal.losses if w == "a"})
    assert len(handed) == SHARDS // 2
    time.sleep(1.5)  # within the TTL: the keys are still a's, b takes none of them
    assert b.leases() == {}
    for shard in handed:
        a.released(shard)
    wait_for(lambda: set(b.leases()) == set(handed), ttl)
    # Taken because they were released: a key not renewed since the hand-back lives at least
    # ttl - ttl/3 (one renewal period may have passed before it) after it.
    assert time.monotonic() - handed_at < ttl - ttl / 3 - 0.5
    a.released(handed[0])  # a second call, or one for a shard not handed back, sends nothing
    assert set(b.leases()) == set(handed)


def test_a_dead_worker_s_shards_are_taken_within_the_ttl(nats_server: NatsServer, keepers) -> None:
    journal = Journal()
    a, b, c = (journal.keeper(w, nats_server.url) for w in "abc")
    keepers += [a, b]
    for k in (a, b, c):
        k.start()
    wait_for(lambda: exact_cover([a, b, c], [8, 8, 8]), 5)
    orphaned = set(c.leases())
    epochs_before = dict(c.leases())

    c.stop(release=False)  # its keys stay until they expire, as after a crash
    took = wait_for(lambda: exact_cover([a, b], [12, 12]), TTL + 3)
    assert took <= TTL + 1.5, took
    for shard in orphaned:
        new_epoch = (a.leases() | b.leases())[shard]
        assert new_epoch > epochs_before[shard]

    # A worker that stops cleanly hands its shards back at once.
    b.stop()
    keepers.remove(b)
    assert wait_for(lambda: len(a.leases()) == SHARDS, TTL + 3) < TTL


def test_a_partitioned_worker_stops_before_another_takes_its_shards(nats_server: NatsServer, keepers) -> None:
    journal = Journal()
    partition = Partition(nats_server.port)
    ttl = 3.0
    a = journal.keeper("a", partition.url, ttl=ttl, shards=8)
    b = journal.keeper("b", nats_server.url, ttl=ttl, shards=8)
    keepers += [a, b]
    a.start()
    b.start()
    wait_for(lambda: len(a.leases()) == 4 and len(b.leases()) == 4, 5)
    held_by_a = {lease.shard: lease for lease in a.held()}
    camera = next(f"cam-{i}" for i in range(1000) if shard_of(f"cam-{i}", 8) in held_by_a)

    cut = time.monotonic()
    partition.cut()
    wait_for(lambda: len(b.leases()) == 8, ttl + 3)
    assert a.leases() == {} and a.epoch_of(camera) is None

    for shard, lease in held_by_a.items():
        lost = max(t for t, w, s in journal.losses if w == "a" and s == shard)
        gained = min(t for t, w, s, _ in journal.gains if w == "b" and s == shard)
        assert lost < gained, f"shard {shard}: b started it before a stopped"
        assert lost - cut < ttl, f"shard {shard}: a held it past the TTL"
        new_epoch = b.leases()[shard]
        assert new_epoch > lease.epoch

    # Fencing: a's renewal with the revision it last wrote is refused by the server now that b
    # holds the key (the renewals a sent into the partition meet the same refusal when it heals).
    async def stale_renewal() -> list[bool]:
        nc = await nats.connect(nats_server.url)
        kv = await nc.jetstream().key_value("LANTERNE_LEASES")
        refused = []
        for shard, lease in held_by_a.items():
            try:
                await kv.update(lease_key(shard), b'{"worker":"a","incarnation":"x"}', last=lease.revision)
                refused.append(False)
            except nats.js.errors.KeyWrongLastSequenceError:
                refused.append(True)
        await nc.close()
        return refused

    assert all(asyncio.run(stale_renewal()))
    assert set(b.leases()) == set(range(8))

    # Healed, a comes back as a newcomer: b hands half back, under new epochs.
    partition.heal()
    wait_for(lambda: len(a.leases()) == 4 and len(b.leases()) == 4, 3 * ttl)
    assert min(a.leases().values()) > max(lease.epoch for lease in held_by_a.values())
    partition.close()


def test_a_keeper_refuses_what_cannot_work(nats_server: NatsServer) -> None:
    with pytest.raises(ClusterError, match="worker id"):
        LeaseKeeper("a b", nats_server.url)
    with pytest.raises(ClusterError, match="margin"):
        LeaseKeeper("a", nats_server.url, ttl=3.0, margin=1.5)
    with pytest.raises(ClusterError, match=r"cannot reach NATS at nats://127\.0\.0\.1:1 .*nats-server -js"):
        LeaseKeeper("a", "nats://127.0.0.1:1", connect_timeout=1.0).start()

    first = LeaseKeeper("a", nats_server.url, ttl=2.0)
    first.start()
    try:
        with pytest.raises(ClusterError, match=r"keeps keys 2\.0 s, this worker expects 4\.0 s"):
            LeaseKeeper("b", nats_server.url, ttl=4.0).start()
    finally:
        first.stop()
