"""Camera leases: which worker analyses which cameras, and proof that it still may.

Cameras are grouped into shards by a stable hash of their id; a worker holds a shard through a key
in the JetStream key-value bucket `LANTERNE_LEASES`, created with `create` (refused when the key
exists) and renewed with `update(…, last=revision)` (refused when anybody else wrote the key
since). The bucket's TTL (its `max_age`) removes a key nobody renewed, which frees the shard for
the others; per-key TTLs would need nats-server 2.11, Debian ships 2.9.

Each worker also writes a heartbeat into `LANTERNE_WORKERS` (same TTL), counts the live ones and
aims at a fair share, `ceil(shards / live workers)`: it takes free shards up to that share and
hands back, with a revision-checked delete, those above it. Shards are tried in a per-worker
order (rendezvous hashing), so two workers looking for shards at once rarely reach for the same.

The revision returned when a shard is taken is its **fencing epoch**: it grows with every change
of owner, travels with each event, and lets the ingester refuse a message from an owner that has
been replaced. A worker that could not renew a shard by `ttl - margin` after its last successful
renewal was sent calls `on_lose(shard)` itself: the key can only expire `ttl` after that send, so
the worker has stopped the cameras before anybody else can take the shard.

>>> shard_of("cam-1", 256) == shard_of("cam-1", 256)
True
>>> 0 <= shard_of("parvis-nord.2", 256) < 256
True
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from lanterne.cluster.connection import ClusterError, NatsThread

log = logging.getLogger(__name__)

LEASES_BUCKET = "LANTERNE_LEASES"
WORKERS_BUCKET = "LANTERNE_WORKERS"

DEFAULT_SHARDS = 256
"""4,000 cameras in 256 shards is 16 cameras a shard; renewing every shard each `ttl / 3` costs
256 / 2 s = 128 compare-and-set writes a second for the whole city, whatever the number of
workers, and a worker's death moves whole shards, not 4,000 keys."""
DEFAULT_TTL = 6.0
"""Seconds a lease lives without renewal. A dead worker's cameras are taken over at most `ttl`
after its death (the lease expires `ttl` after its last renewal and the others wake up for that
moment), which leaves about 3 s to open the cameras again within the 10 s the issue asks for."""

_WORKER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def shard_of(camera: str, shards: int) -> int:
    """The shard of a camera: a hash that every process computes alike (Python's `hash()` is
    salted per process)."""
    digest = hashlib.blake2b(camera.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def lease_key(shard: int) -> str:
    """The shard's key in `LANTERNE_LEASES`.

    >>> lease_key(17)
    'shard-00017'
    """
    return f"shard-{shard:05d}"


def _shard(key: str) -> int | None:
    if not key.startswith("shard-"):
        return None
    try:
        return int(key[6:])
    except ValueError:
        return None


def _weight(worker_id: str, shard: int) -> int:
    """Rendezvous weight: each worker ranks the shards in its own stable order."""
    digest = hashlib.blake2b(f"{worker_id}/{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class Lease:
    """A shard this worker holds."""

    shard: int
    epoch: int
    """The key's revision when the shard was taken: larger for every later owner."""
    revision: int
    """The key's revision as this worker last wrote it: the next renewal must find it unchanged."""


@dataclass(slots=True)
class _Held:
    epoch: int
    revision: int
    deadline: float
    """Monotonic time after which the shard counts as lost: last successful renewal's send time
    plus `ttl - margin`."""


@dataclass(slots=True)
class _Seen:
    owner: str
    """`worker/incarnation` of the holder, or the worker id for a heartbeat."""
    revision: int
    expires: float
    """Monotonic time when the server drops the key if nobody writes it again."""


WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code for a write conditioned on a revision the key no longer has."""


class LeaseKeeper:
    """Keeps this worker's fair share of the camera shards, thread-safe, for a thread-based runner.

    `on_gain(shard, epoch)` and `on_lose(shard)` are called from the keeper's own thread: they must
    return quickly (tell the camera threads to start or stop; do not join them), since renewals of
    the other shards wait for them. `epoch_of(camera)` answers from any thread, from the local
    clock, so a camera thread can check before each publish that its lease is still good even if
    the keeper's thread was held up. With `deferred_release`, a shard handed back to even the shares
    keeps its key until the caller says its cameras have finished (`released(shard)`).
    """

    def __init__(
        self,
        worker_id: str,
        url: str,
        cameras: Iterable[str] = (),
        *,
        shards: int = DEFAULT_SHARDS,
        ttl: float = DEFAULT_TTL,
        margin: float | None = None,
        on_gain: Callable[[int, int], None] | None = None,
        on_lose: Callable[[int], None] | None = None,
        replicas: int = 1,
        connect_timeout: float = 5.0,
        deferred_release: bool = False,
    ) -> None:
        if not _WORKER_ID.match(worker_id):
            raise ClusterError(
                f"worker id {worker_id!r} is not usable as a key; use 1 to 64 letters, digits, '_' or '-'"
            )
        if shards < 1:
            raise ClusterError(f"shards must be at least 1, got {shards}")
        if ttl < 1.0:
            raise ClusterError(
                f"lease ttl must be at least 1 s (NATS expires keys about to the second), got {ttl}"
            )
        margin = ttl / 6 if margin is None else margin
        if not 0 < margin < ttl / 3:
            # Below ttl/3 a renewal that failed once is retried before the deadline.
            raise ClusterError(f"lease margin must lie between 0 and ttl/3 = {ttl / 3:.2f} s, got {margin}")
        self.worker_id = worker_id
        self.url = url
        self.shards = shards
        self.ttl = ttl
        self.margin = margin
        self.period = ttl / 3
        self.replicas = replicas
        self.on_gain = on_gain
        self.on_lose = on_lose
        self.deferred_release = deferred_release
        self._incarnation = secrets.token_hex(4)
        self._owner = f"{worker_id}/{self._incarnation}"
        self._value = json.dumps({"worker": worker_id, "incarnation": self._incarnation}).encode()
        self._cameras: dict[int, tuple[str, ...]] = {}
        self._camera_shard: dict[str, int] = {}
        self.set_cameras(cameras)
        self._lock = threading.Lock()
        self._held: dict[int, _Held] = {}
        self._leases: dict[int, _Seen] = {}
        self._workers: dict[str, _Seen] = {}
        self._nats = NatsThread(url, f"lanterne-worker-{worker_id}", connect_timeout=connect_timeout)
        self._kv_leases: KeyValue | None = None
        self._kv_workers: KeyValue | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: asyncio.Task[None] | None = None
        self._acquiring: set[int] = set()
        self._handing: dict[int, tuple[int, float]] = {}
        """Shards handed back whose key waits for `released()`: revision and monotonic expiry."""
        self._writable_until: dict[int, tuple[int, float]] = {}
        """Shards handed back: their epoch, and until when their key is surely still this
        worker's (the lease's deadline when handed back), so that their cameras may finish
        writing (`may_write`)."""
        self._orphans: set[asyncio.Task[None]] = set()
        self.ops = 0
        """KV writes sent (creates, renewals, deletes, heartbeats): the cost the issue bounds."""

    # --- cameras and shards (any thread) --------------------------------------------------

    def set_cameras(self, cameras: Iterable[str]) -> None:
        """Replace the camera list (a configuration change). Shards do not move: a camera's shard
        depends only on its id and the shard count."""
        by_shard: dict[int, list[str]] = {}
        camera_shard: dict[str, int] = {}
        for camera in sorted(set(cameras)):
            s = shard_of(camera, self.shards)
            by_shard.setdefault(s, []).append(camera)
            camera_shard[camera] = s
        self._cameras = {s: tuple(c) for s, c in by_shard.items()}
        self._camera_shard = camera_shard

    def shard_of(self, camera: str) -> int:
        return shard_of(camera, self.shards)

    def cameras_of(self, shard: int) -> tuple[str, ...]:
        """The configured cameras in `shard`, sorted."""
        return self._cameras.get(shard, ())

    def held(self) -> tuple[Lease, ...]:
        """The shards held now (not past their deadline), by shard."""
        now = time.monotonic()
        with self._lock:
            return tuple(
                Lease(s, h.epoch, h.revision) for s, h in sorted(self._held.items()) if h.deadline > now
            )

    def leases(self) -> dict[int, int]:
        """`{shard: epoch}` of the shards held now (not past their deadline)."""
        now = time.monotonic()
        with self._lock:
            return {s: h.epoch for s, h in self._held.items() if h.deadline > now}

    def epoch_of(self, camera: str) -> int | None:
        """The fencing epoch under which this worker may analyse `camera` now, or None when it
        holds no valid lease on the camera's shard."""
        shard = shard_of(camera, self.shards)
        now = time.monotonic()
        with self._lock:
            h = self._held.get(shard)
            return h.epoch if h is not None and h.deadline > now else None

    def may_write(self, camera: str, epoch: int) -> bool:
        """Whether this worker may still write what it opened for `camera` under `epoch` (a
        recording's next packet, its seal): while it holds the camera's shard under that epoch,
        or hands it back and the key is surely still its own. False once another worker may have
        held the shard since (not renewed in time, renewal refused, key rewritten), even if this
        one has taken it again under a newer epoch: what was opened under the old one must then
        be left as it stands, for whoever recovers it. From the local clock, as `epoch_of`, so a
        thread that was held up (a paused process) learns it before the keeper's thread runs."""
        shard = shard_of(camera, self.shards)
        now = time.monotonic()
        with self._lock:
            h = self._held.get(shard)
            if h is not None and h.epoch == epoch and h.deadline > now:
                return True
            handing = self._writable_until.get(shard)
            return handing is not None and handing[0] == epoch and handing[1] > now

    def live_workers(self) -> int:
        """Workers whose heartbeat has not expired, this one included."""
        now = time.monotonic()
        with self._lock:
            others = sum(1 for w, s in self._workers.items() if w != self.worker_id and s.expires > now)
        return others + 1

    def target(self) -> int:
        """This worker's fair share of shards."""
        return math.ceil(self.shards / self.live_workers())

    def released(self, shard: int) -> None:
        """The cameras of a shard handed back have finished (threads joined, segments sealed):
        delete its key now so that another worker takes it at once. With `deferred_release`, a
        shard handed back to even the shares keeps its key until then (or until it expires, if
        this worker dies first), because its next owner must not open the camera's recording
        while this one still seals it. A shard lost any other way is not ours: nothing is sent."""
        with self._lock:
            handing = self._handing.pop(shard, None)
            self._writable_until.pop(shard, None)
        if handing is None or self._kv_leases is None:
            return
        revision, expires = handing
        if expires <= time.monotonic():
            return
        try:
            self._nats.call(self._delete(self._kv_leases, lease_key(shard), revision), timeout=self.period)
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning(
                "worker %s: shard %d not handed back (%s); it expires by TTL",
                self.worker_id,
                shard,
                type(exc).__name__,
            )

    # --- lifecycle (any thread but the keeper's) ------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Connect, announce this worker and take a first share; `ClusterError` when NATS is
        unreachable or its buckets are configured with another TTL."""
        self._nats.start()
        try:
            self._nats.call(self._open(), timeout=timeout)
        except BaseException:
            self._nats.stop()
            self._kv_leases = None
            raise

    def stop(self, release: bool = True, timeout: float = 5.0) -> None:
        """Stop every camera (`on_lose` for each shard held) and, when `release`, hand the shards
        back at once so that the others need not wait for the TTL. `release=False` leaves the keys
        to expire, as a crash would."""
        if self._kv_leases is None:
            return
        try:
            self._nats.call(self._close(release), timeout=timeout)
        except TimeoutError:
            log.warning(
                "worker %s: shards not all handed back within %s s; they expire by TTL",
                self.worker_id,
                timeout,
            )
        finally:
            self._nats.stop()
            self._kv_leases = None

    # --- the keeper's loop ----------------------------------------------------------------

    async def _bucket(self, name: str) -> KeyValue:
        js = self._nats.js
        try:
            kv = await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            try:
                return await js.create_key_value(bucket=name, ttl=self.ttl, history=1, replicas=self.replicas)
            except nats.js.errors.BadRequestError:
                kv = await js.key_value(name)  # another worker created it first
        info = await js.stream_info(f"KV_{name}")
        if info.config.max_age is None or abs(info.config.max_age - self.ttl) > 1e-3:
            raise ClusterError(
                f"NATS bucket {name} keeps keys {info.config.max_age} s, this worker expects {self.ttl} s; "
                "give every worker the same lease TTL (or delete the bucket while no worker runs)"
            )
        return kv

    async def _open(self) -> None:
        self._wake = asyncio.Event()
        self._kv_leases = await self._bucket(LEASES_BUCKET)
        self._kv_workers = await self._bucket(WORKERS_BUCKET)
        await self._heartbeat()
        # The first share is taken only once both mirrors hold the buckets' current contents:
        # a worker that counted itself alone would take every shard and hand most back at once.
        leases_ready, workers_ready = asyncio.Event(), asyncio.Event()
        self._tasks = [
            asyncio.create_task(
                self._mirror(LEASES_BUCKET, self._kv_leases, self._on_lease_entry, leases_ready)
            ),
            asyncio.create_task(
                self._mirror(WORKERS_BUCKET, self._kv_workers, self._on_worker_entry, workers_ready)
            ),
        ]
        await leases_ready.wait()
        await workers_ready.wait()
        await self._cycle()
        self._runner = asyncio.create_task(self._run())
        self._tasks.append(asyncio.create_task(self._watchdog()))

    async def _close(self, release: bool) -> None:
        self._stopping = True
        if self._runner is not None and self._wake is not None:
            # Let the lease loop finish its turn rather than cancel it inside a KV request,
            # whose answer would then be dropped with a warning.
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._runner), timeout=self.period + 1.0)
            self._tasks.append(self._runner)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with self._lock:
            held = dict(self._held)
            now = time.monotonic()
            handing = {s: r for s, (r, expires) in self._handing.items() if expires > now}
            self._handing.clear()
            self._writable_until.clear()
        for shard in sorted(held):
            self._lose(shard, "worker stopping")
        if release and self._kv_leases is not None and self._kv_workers is not None:
            kv = self._kv_leases
            revisions = {s: h.revision for s, h in held.items()} | handing
            await asyncio.gather(
                *(self._delete(kv, lease_key(s), r) for s, r in revisions.items()),
                self._delete(self._kv_workers, self.worker_id, None),
                return_exceptions=True,
            )

    async def _delete(self, kv: KeyValue, key: str, revision: int | None) -> None:
        self.ops += 1
        try:
            await asyncio.wait_for(kv.delete(key, last=revision), timeout=self.period)
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        except nats.js.errors.BadRequestError as exc:
            # The key changed since (another worker holds the shard now): nothing of ours to
            # delete. nats-py raises a delete's "wrong last sequence" as a plain bad request
            # (seen by benchmarks/leases.py when a keeper stopped after a takeover).
            if exc.err_code != WRONG_LAST_SEQUENCE:
                raise

    async def _mirror(
        self, name: str, kv: KeyValue, apply: Callable[[Any, float], bool], ready: asyncio.Event
    ) -> None:
        """Keep a local copy of a bucket from a watch. Keys removed by the bucket's TTL send no
        notice (before nats-server 2.11), so each copy carries its own expiry time. The loop is
        woken only by a change that can move a shard (a key freed, a new holder, a worker that
        appears), not by the hundred renewals a second of a city."""
        while not self._stopping:
            try:
                watcher = await kv.watchall()
                async for entry in watcher:
                    if entry is None:
                        ready.set()
                        continue
                    now = time.monotonic()
                    age = 0.0
                    if entry.created is not None:
                        age = min(self.ttl, max(0.0, (datetime.now(UTC) - entry.created).total_seconds()))
                    if apply(entry, now - age + self.ttl) and self._wake is not None:
                        self._wake.set()
            except (TimeoutError, nats.errors.Error) as exc:
                # A watch lost with the connection is opened again; meanwhile the copies age and
                # this worker can only try to take keys, which the server refuses while held.
                log.warning(
                    "worker %s: watch of %s lost (%s); reopening",
                    self.worker_id,
                    name,
                    type(exc).__name__,
                )
                await asyncio.sleep(self.period / 2)

    def _on_worker_entry(self, entry: Any, expires: float) -> bool:
        with self._lock:
            if entry.operation in ("DEL", "PURGE"):
                return self._workers.pop(entry.key, None) is not None
            before = self._workers.get(entry.key)
            self._workers[entry.key] = _Seen(entry.key, entry.revision, expires)
            return before is None or before.expires <= time.monotonic()

    def _on_lease_entry(self, entry: Any, expires: float) -> bool:
        shard = _shard(entry.key)
        if shard is None:
            return False
        owner = ""
        if entry.operation not in ("DEL", "PURGE"):
            try:
                value = json.loads(entry.value)
                owner = f"{value['worker']}/{value['incarnation']}"
            except (ValueError, KeyError, TypeError):
                owner = "?"
        with self._lock:
            before = self._leases.get(shard)
            if owner:
                self._leases[shard] = _Seen(owner, entry.revision, expires)
            else:
                self._leases.pop(shard, None)
            changed = before is None or before.owner != owner
            mine = shard in self._held
            orphan = (
                owner == self._owner
                and not mine
                and shard not in self._acquiring
                and shard not in self._handing
            )
        if mine and owner != self._owner:
            # Somebody else wrote or deleted the key: our lease is gone whatever our clock says.
            self._lose(shard, "taken over (key rewritten by another holder)")
        elif orphan and self._kv_leases is not None and not self._stopping:
            # A create or renewal that timed out here (a partition) reached the server later: the
            # key names us but no camera runs for it. Free it now rather than after the TTL.
            task = asyncio.get_running_loop().create_task(
                self._delete(self._kv_leases, lease_key(shard), entry.revision)
            )
            self._orphans.add(task)
            task.add_done_callback(self._orphans.discard)
        return changed

    async def _run(self) -> None:
        assert self._wake is not None
        next_renew = time.monotonic() + self.period
        while not self._stopping:
            now = time.monotonic()
            wake_at = min(next_renew, self._next_expiry(now))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.02, wake_at - now))
            now = time.monotonic()
            try:
                if now >= next_renew:
                    next_renew = now + self.period
                    await self._cycle()
                else:
                    await self._rebalance()
            except Exception:
                # Never let one failure end the renewals: the watchdog would then stop every
                # camera for good. The next turn tries again.
                log.exception("worker %s: lease cycle failed", self.worker_id)

    def _next_expiry(self, now: float) -> float:
        """When the next key of another worker (a lease or a heartbeat) may expire: a dead
        worker's shards are taken at that moment, not up to a period later."""
        with self._lock:
            times = [s.expires for s in self._leases.values() if s.owner != self._owner and s.expires > now]
            times += [s.expires for w, s in self._workers.items() if w != self.worker_id and s.expires > now]
        return min(times, default=math.inf) + 0.05

    async def _watchdog(self) -> None:
        """Drop every shard whose deadline passed, however busy the rest of the loop is."""
        while not self._stopping:
            now = time.monotonic()
            with self._lock:
                late = [s for s, h in self._held.items() if h.deadline <= now]
                first = min((h.deadline for h in self._held.values()), default=now + 0.25)
            for shard in late:
                self._lose(shard, f"not renewed within {self.ttl - self.margin:.1f} s")
            await asyncio.sleep(min(0.25, max(0.01, first - now)))

    async def _cycle(self) -> None:
        with self._lock:
            held = {s: h.revision for s, h in self._held.items()}
        await asyncio.gather(self._heartbeat(), *(self._renew(s, r) for s, r in held.items()))
        await self._rebalance()

    async def _heartbeat(self) -> None:
        assert self._kv_workers is not None
        self.ops += 1
        try:
            await asyncio.wait_for(self._kv_workers.put(self.worker_id, self._value), timeout=self.period)
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("worker %s: heartbeat not written (%s)", self.worker_id, type(exc).__name__)

    async def _renew(self, shard: int, revision: int) -> None:
        assert self._kv_leases is not None
        sent = time.monotonic()
        self.ops += 1
        try:
            new = await asyncio.wait_for(
                self._kv_leases.update(lease_key(shard), self._value, last=revision), timeout=self.period
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            self._lose(shard, "renewal refused (another holder since)")
            return
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("worker %s: shard %d not renewed (%s)", self.worker_id, shard, type(exc).__name__)
            return
        with self._lock:
            h = self._held.get(shard)
            if h is not None and h.revision == revision:
                h.revision = new
                h.deadline = sent + self.ttl - self.margin
                return
        # Lost while the renewal was on its way (deadline passed): the key is ours again but the
        # cameras are stopped, so free it at once rather than make the others wait for the TTL.
        await self._delete(self._kv_leases, lease_key(shard), new)

    async def _rebalance(self) -> None:
        if self._stopping:
            return
        target = self.target()
        with self._lock:
            held = dict(self._held)
        if len(held) > target:
            surplus = sorted(held, key=lambda s: _weight(self.worker_id, s))[: len(held) - target]
            if self.deferred_release:
                # Before `on_lose`: its cameras finish writing (seal their segments) under a key
                # that stays ours until `released()` or the lease's deadline, whichever first.
                with self._lock:
                    for s in surplus:
                        self._writable_until[s] = (held[s].epoch, held[s].deadline)
            for shard in surplus:
                self._lose(shard, f"handed back (fair share is {target})")
            if self.deferred_release:
                now = time.monotonic()
                with self._lock:
                    for s in surplus:
                        self._handing[s] = (held[s].revision, now + self.ttl)
                    for s, (_, expires) in list(self._handing.items()):
                        if expires <= now:
                            del self._handing[s]
                return
            assert self._kv_leases is not None
            kv = self._kv_leases
            await asyncio.gather(*(self._delete(kv, lease_key(s), held[s].revision) for s in surplus))
        elif len(held) < target:
            now = time.monotonic()
            with self._lock:
                free = [
                    s
                    for s in range(self.shards)
                    if s not in held and (s not in self._leases or self._leases[s].expires <= now)
                ]
            free.sort(key=lambda s: _weight(self.worker_id, s), reverse=True)
            await asyncio.gather(*(self._acquire(s) for s in free[: target - len(held)]))

    async def _acquire(self, shard: int) -> None:
        assert self._kv_leases is not None
        sent = time.monotonic()
        self.ops += 1
        with self._lock:
            self._acquiring.add(shard)
        try:
            revision = await asyncio.wait_for(
                self._kv_leases.create(lease_key(shard), self._value), timeout=self.period
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            return  # held by another, or not yet expired on the server: tried again later
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("worker %s: shard %d not taken (%s)", self.worker_id, shard, type(exc).__name__)
            return
        finally:
            with self._lock:
                self._acquiring.discard(shard)
        if self._stopping:
            await self._delete(self._kv_leases, lease_key(shard), revision)
            return
        with self._lock:
            self._held[shard] = _Held(
                epoch=revision, revision=revision, deadline=sent + self.ttl - self.margin
            )
        log.info("worker %s: took shard %d (epoch %d)", self.worker_id, shard, revision)
        if self.on_gain is not None:
            try:
                self.on_gain(shard, revision)
            except Exception:
                log.exception("worker %s: on_gain(%d) failed", self.worker_id, shard)

    def _lose(self, shard: int, why: str) -> None:
        with self._lock:
            if self._held.pop(shard, None) is None:
                return
        log.info("worker %s: gave up shard %d: %s", self.worker_id, shard, why)
        if self.on_lose is not None:
            try:
                self.on_lose(shard)
            except Exception:
                log.exception("worker %s: on_lose(%d) failed", self.worker_id, shard)
