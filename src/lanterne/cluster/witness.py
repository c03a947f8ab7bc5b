"""A remote witness of the audit log's signed heads: a JetStream stream (issue 13, item 1).

The witness file (`lanterne.audit.witness`) lives on another volume of the same machines; an
administrator of those machines can still reach it. Where the site runs NATS (a city), every
signed checkpoint is also published to the stream `LANTERNE_AUDIT_HEADS`, created with deletes
and purges denied: a message once stored cannot be removed through the JetStream API, only by
destroying the whole stream — an act of NATS's own operator, visible to every process that
publishes there (they recreate it and say so), not something a database administrator can do
quietly. `lanterne audit verify --config` then checks the database against the heads of the
stream as well as those of the file, so deleting the newest records and their checkpoint shows as
"records N-M missing: witness signed head M at …" even if the witness file went with them.

Messages carry the head's JSON line (what the signature covers) and a message id per head, so a
head written twice (a retry after a lost acknowledgement) is stored once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.js import api

from lanterne.audit.witness import SignedHead, WitnessError, WitnessLine, parse_witness_line
from lanterne.cluster.connection import ClusterError, NatsThread, redact_url

log = logging.getLogger(__name__)

STREAM = "LANTERNE_AUDIT_HEADS"
SUBJECT_PREFIX = "lanterne.audit.heads"
DUPLICATE_WINDOW = 600.0


def site_subject(site: str) -> str:
    """One subject per site, from its name: letters, digits, '-' and '_' kept, and a short hash
    so that two sites whose names differ only in other characters do not share a subject."""
    plain = re.sub(r"[^A-Za-z0-9_-]", "_", site)[:48]
    return f"{SUBJECT_PREFIX}.{plain}-{hashlib.sha256(site.encode()).hexdigest()[:8]}"


async def ensure_stream(js: object, replicas: int = 1) -> bool:
    """Create the heads stream unless it exists; True when it had to be created."""
    try:
        await js.stream_info(STREAM)  # type: ignore[attr-defined]
        return False
    except nats.js.errors.NotFoundError:
        pass
    config = api.StreamConfig(
        name=STREAM,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW,
        num_replicas=replicas,
        deny_delete=True,
        deny_purge=True,
    )
    try:
        await js.add_stream(config)  # type: ignore[attr-defined]
    except nats.js.errors.BadRequestError:
        await js.stream_info(STREAM)  # type: ignore[attr-defined]
        return False
    return True


class JetStreamWitness:
    """Publishes signed heads to the heads stream; connects on the first write, so a process that
    signs nothing never opens a connection."""

    def __init__(self, url: str, site: str, *, timeout: float = 2.0) -> None:
        self.url = url
        self.subject = site_subject(site)
        self.timeout = timeout
        self.name = f"{redact_url(url)} stream {STREAM}"
        self._nats: NatsThread | None = None
        self._lock = threading.Lock()
        self._created_logged = False

    def _connected(self) -> NatsThread:
        if self._nats is None:
            n = NatsThread(self.url, "lanterne-audit-witness", connect_timeout=self.timeout)
            n.start()
            if self._nats_call(n, ensure_stream(n.js)) and not self._created_logged:
                self._created_logged = True
                log.warning("audit: witness stream %s created on %s", STREAM, redact_url(self.url))
            self._nats = n
        return self._nats

    def _nats_call(self, n: NatsThread, coro: object) -> bool:
        return bool(n.call(coro, timeout=self.timeout + 1.0))  # type: ignore[arg-type]

    def write(self, heads: Sequence[SignedHead]) -> None:
        with self._lock:
            try:
                n = self._connected()
                for h in heads:
                    msg_id = f"{self.subject}:{h.seq}:{h.kid}:{h.ts.isoformat()}"
                    n.call(
                        n.js.publish(
                            self.subject,
                            h.to_line().encode(),
                            timeout=self.timeout,
                            headers={"Nats-Msg-Id": msg_id},
                        ),
                        timeout=self.timeout + 1.0,
                    )
            except (ClusterError, TimeoutError, nats.errors.Error) as exc:
                self._drop()
                raise WitnessError(
                    f"audit witness {self.name}: not written ({type(exc).__name__}); kept for the next head"
                ) from None

    def _drop(self) -> None:
        n, self._nats = self._nats, None
        if n is not None:
            n.stop()

    def close(self) -> None:
        with self._lock:
            self._drop()


def read_heads(url: str, site: str, *, timeout: float = 5.0, batch: int = 1000) -> list[WitnessLine]:
    """Every head the stream holds for `site`, in order, parsed as the file's lines are (a line
    that does not parse is kept with its problem). `WitnessError` when NATS cannot be read."""
    subject = site_subject(site)
    source = f"{redact_url(url)} stream {STREAM}"

    async def fetch() -> list[tuple[int, bytes]]:
        nc = await nats.connect(url, connect_timeout=timeout, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info(STREAM, subjects_filter=subject)
            except nats.js.errors.NotFoundError:
                return []
            wanted = (info.state.subjects or {}).get(subject, 0)
            if not wanted:
                return []
            config = api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.ALL,
                ack_policy=api.AckPolicy.NONE,
                filter_subject=subject,
                inactive_threshold=30.0,
            )
            sub = await js.pull_subscribe(subject, stream=STREAM, config=config)
            out: list[tuple[int, bytes]] = []
            while len(out) < wanted:
                msgs = await sub.fetch(min(batch, wanted - len(out)), timeout=timeout)
                out += [(m.metadata.sequence.stream, m.data) for m in msgs]
            await sub.unsubscribe()
            return out
        finally:
            await nc.close()

    try:
        messages = asyncio.run(asyncio.wait_for(fetch(), timeout=timeout * 4))
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        raise WitnessError(
            f"audit witness {source}: cannot read it ({type(exc).__name__}); is NATS reachable?"
        ) from None
    return [parse_witness_line(source, seq, data.decode("utf-8", "replace")) for seq, data in messages]
