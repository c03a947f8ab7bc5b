"""City scale: cameras spread over many worker machines, events carried to one store (issue 12).

Design, and why:

- **Shards, not cameras.** A camera belongs to one of `shards` buckets by a stable hash of its id
  (`shard_of`), and workers lease shards. With 256 shards, renewing every lease each 2 s costs
  about 128 key-value writes a second for 4,000 cameras whatever the number of workers, and a
  dead worker's cameras move as a few dozen keys instead of hundreds.
- **Leases in a JetStream key-value bucket with its TTL.** `create` is refused when the key
  exists, `update(…, last=revision)` when anybody wrote it since: a lease is taken and renewed by
  compare-and-set. The bucket's `max_age` removes a key nobody renewed; per-key TTLs need
  nats-server 2.11 and Debian ships 2.9, and every lease has the same life anyway.
- **Fencing.** The revision when a shard was taken is its epoch; it grows with every owner. A
  worker that has not renewed by `ttl - margin` stops the shard's cameras itself (`on_lose`)
  before the key can expire and another take it; its late renewal is refused by the revision
  check; and its events carry the epoch, so the ingester refuses those from a replaced owner and
  closes the events it left ongoing, with the reason in the audit log.
- **Commit, then acknowledge.** Events go on the stream `LANTERNE_EVENTS` with a deterministic
  `Nats-Msg-Id` (a re-send is dropped); the `Ingester` upserts each into the store, commits and
  only then acknowledges, so a crash redelivers and the upsert by event id absorbs the copy.

The runner is thread-based and nats-py is asyncio: each component runs its own event loop in a
thread (`NatsThread`) behind blocking, thread-safe methods. Nothing here imports the video,
runtime or web layers; `lanterne worker` and `lanterne ingest` wire these parts to the runner.
"""

from lanterne.cluster.connection import ClusterError, NatsThread, NoAnswerError, redact_url
from lanterne.cluster.events import (
    CLOSE_REASON,
    STREAM,
    EventMessage,
    EventPublisher,
    Ingester,
    IngestStats,
    StoredBell,
    message_id,
    stored_subject,
    subject_for,
)
from lanterne.cluster.leases import DEFAULT_SHARDS, DEFAULT_TTL, Lease, LeaseKeeper, lease_key, shard_of

__all__ = [
    "CLOSE_REASON",
    "DEFAULT_SHARDS",
    "DEFAULT_TTL",
    "STREAM",
    "ClusterError",
    "EventMessage",
    "EventPublisher",
    "IngestStats",
    "Ingester",
    "Lease",
    "LeaseKeeper",
    "NatsThread",
    "NoAnswerError",
    "StoredBell",
    "lease_key",
    "message_id",
    "redact_url",
    "shard_of",
    "stored_subject",
    "subject_for",
]
