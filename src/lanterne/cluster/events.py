"""Events from the workers to the store through a JetStream stream, none lost, none doubled.

A worker publishes each event update on `lanterne.events.<camera>` of the stream
`LANTERNE_EVENTS` with a `Nats-Msg-Id` made of the event id and its state (`ongoing` or
`ended`): a worker that publishes the same state again (a retry after a lost answer) is dropped by
the stream's duplicate window. The message carries what `Store.upsert_event` takes (the event,
the wall-clock time of stream offset 0, the mode) plus the worker's id and the shard's fencing
epoch.

The `Ingester` reads the stream through a durable pull consumer, upserts each message, commits,
and only then acknowledges. A crash between the commit and the acknowledgement makes JetStream
deliver the message again after `ack_wait`, and the upsert by event id absorbs it: at-least-once
delivery plus an idempotent write gives each event exactly one row.

The ingester also keeps, per camera, the newest epoch it has stored (key-value bucket
`LANTERNE_INGEST`). A message from a newer epoch means another worker took the camera over: the
events of that camera the previous owner left ongoing are closed, and why is recorded in the
audit log (`event_closed`) before they are. A message from an older epoch comes from an owner
that has been replaced (a worker that was paused past its lease) and is refused: that is what the
epoch fences. The per-camera order this needs holds for one ingester reading the stream in order;
several ingesters must not share a camera.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from lanterne.audit import Action, AuditLog
from lanterne.cluster.connection import ClusterError, NatsThread, NoAnswerError
from lanterne.core.types import Event, EventType
from lanterne.store import Store, StoreError
from lanterne.store.db import transaction
from lanterne.store.tables import EVENT_MODES, EventRecord

log = logging.getLogger(__name__)

STREAM = "LANTERNE_EVENTS"
SUBJECT_PREFIX = "lanterne.events"
INGEST_BUCKET = "LANTERNE_INGEST"
DUPLICATE_WINDOW = 120.0
"""Seconds during which a re-sent message id is dropped: longer than any publish retry, short
enough that the server's table of recent ids stays small."""
STREAM_MAX_AGE = 24 * 3600.0
"""How long the stream keeps a message: a day of ingester outage is absorbed without loss, and
events (situations, never persons) do not pile up in a second place for the legal 30 days."""
CLOSE_REASON = "owner_changed"

_CAMERA = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def subject_for(camera: str) -> str:
    """The subject a camera's events go to.

    >>> subject_for("parvis-nord")
    'lanterne.events.parvis-nord'
    """
    if not _CAMERA.match(camera) or len(camera) > 64:
        raise ClusterError(
            f"camera id {camera!r} cannot name a NATS subject; use letters, digits, '_', '-' and "
            "dots between them"
        )
    return f"{SUBJECT_PREFIX}.{camera}"


def message_id(event: Event) -> str:
    """The deduplication id: the same event in the same state is the same message.

    Rules emit an event twice, when it fires and when it ends (`lanterne.rules.base`), so the
    state is its version.

    >>> from dataclasses import replace
    >>> e = Event("ab12", EventType.FIRE, "cam-1", "z", 1.0, 2.0, 0.9, (0, 0, 1, 1))
    >>> message_id(e), message_id(replace(e, ongoing=False))
    ('ab12:ongoing', 'ab12:ended')
    """
    return f"{event.id}:{'ongoing' if event.ongoing else 'ended'}"


@dataclass(frozen=True, slots=True)
class EventMessage:
    """What travels on the stream: `Store.upsert_event`'s arguments, who sent them and under
    which epoch."""

    event: Event
    origin: datetime
    mode: str
    worker: str
    epoch: int

    @property
    def msg_id(self) -> str:
        return message_id(self.event)

    def to_bytes(self) -> bytes:
        e = self.event
        body = {
            "v": 1,
            "worker": self.worker,
            "epoch": self.epoch,
            "mode": self.mode,
            "origin": self.origin.isoformat(),
            # Floats unrounded: a row ingested from the stream must equal the row `lanterne run`
            # would have written.
            "event": {
                "id": e.id,
                "type": str(e.type),
                "camera": e.camera,
                "zone": e.zone,
                "start": float(e.start),
                "end": float(e.end),
                "confidence": float(e.confidence),
                "region": [float(v) for v in e.region],
                "ongoing": bool(e.ongoing),
                "object_class": e.object_class,
                "model_hash": e.model_hash,
                "config_hash": e.config_hash,
            },
        }
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> EventMessage:
        """Parse a message; `ValueError` naming what is wrong."""
        try:
            body = json.loads(data)
            if body.get("v") != 1:
                raise ValueError(f"unknown message version {body.get('v')!r}")
            e = body["event"]
            x0, y0, x1, y1 = (float(v) for v in e["region"])
            event = Event(
                id=str(e["id"]),
                type=EventType(e["type"]),
                camera=str(e["camera"]),
                zone=str(e["zone"]),
                start=float(e["start"]),
                end=float(e["end"]),
                confidence=float(e["confidence"]),
                region=(x0, y0, x1, y1),
                ongoing=bool(e["ongoing"]),
                object_class=e["object_class"],
                model_hash=str(e["model_hash"]),
                config_hash=str(e["config_hash"]),
            )
            origin = datetime.fromisoformat(body["origin"])
            if origin.tzinfo is None:
                raise ValueError("origin has no time zone")
            mode = str(body["mode"])
            if mode not in EVENT_MODES:
                raise ValueError(f"mode {mode!r} is not one of {EVENT_MODES}")
            return cls(event, origin, mode, str(body["worker"]), int(body["epoch"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"event message lacks a field or has a wrong type: {exc!r}") from None


async def ensure_stream(js: JetStreamContext, *, max_age: float = STREAM_MAX_AGE, replicas: int = 1) -> None:
    """Create the events stream unless it exists; an existing one is left as its operator set it."""
    try:
        await js.stream_info(STREAM)
        return
    except nats.js.errors.NotFoundError:
        pass
    config = api.StreamConfig(
        name=STREAM,
        subjects=[f"{SUBJECT_PREFIX}.>"],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=max_age,
        duplicate_window=DUPLICATE_WINDOW,
        num_replicas=replicas,
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError:
        await js.stream_info(STREAM)  # created by another process meanwhile


class EventPublisher:
    """Publishes a worker's events; thread-safe, blocking until JetStream has stored each one."""

    def __init__(
        self,
        url: str,
        worker_id: str,
        *,
        timeout: float = 5.0,
        replicas: int = 1,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.worker_id = worker_id
        self.timeout = timeout
        self.replicas = replicas
        self._nats = NatsThread(url, f"lanterne-publisher-{worker_id}", connect_timeout=connect_timeout)

    @property
    def connected(self) -> bool:
        return self._nats.connected

    def start(self) -> None:
        self._nats.start()
        try:
            self._nats.call(ensure_stream(self._nats.js, replicas=self.replicas), timeout=self.timeout)
        except BaseException:
            self._nats.stop()
            raise

    def stop(self) -> None:
        self._nats.stop()

    def publish(self, event: Event, origin: datetime, mode: str, epoch: int) -> bool:
        """Publish one event update under `epoch`; True when the stream stored it, False when it
        was a duplicate of a message it already had. `TimeoutError` when NATS did not answer: the
        caller may publish again, the duplicate window absorbs it."""
        message = EventMessage(event, origin, mode, self.worker_id, epoch)
        return self.publish_message(message)

    def publish_message(self, message: EventMessage) -> bool:
        subject = subject_for(message.event.camera)
        ack = self._nats.call(
            self._nats.js.publish(
                subject,
                message.to_bytes(),
                timeout=self.timeout,
                stream=STREAM,
                headers={"Nats-Msg-Id": message.msg_id},
            ),
            timeout=self.timeout + 1.0,
        )
        return not ack.duplicate


@dataclass(slots=True)
class IngestStats:
    stored: int = 0
    """Messages upserted and acknowledged (a redelivered one counts again: the row does not)."""
    closed: int = 0
    """Events closed because their camera changed owner."""
    fenced: int = 0
    """Messages refused because they came from a replaced owner."""
    rejected: int = 0
    """Messages that can never be stored (malformed, an unknown event type): terminated."""
    retried: int = 0
    """Messages handed back for later because the database failed."""


STORED_SUBJECTS = "lanterne.stored.>"
"""Where the ingester says an event was committed: `lanterne.stored.<camera>`."""


def stored_subject(camera: str) -> str:
    return f"lanterne.stored.{camera}"


class StoredBell:
    """The console's side of the live queue in a city: calls `ring(camera)` (from NATS's thread)
    each time the ingester commits an event, so an open stream reads the store at once instead
    of polling it every 250 ms. What is shown still comes from the store, in the user's scope;
    the bell carries no event and no data."""

    def __init__(self, url: str, ring: Callable[[str], None], *, connect_timeout: float = 5.0) -> None:
        self.ring = ring
        self._nats = NatsThread(url, "lanterne-console-bell", connect_timeout=connect_timeout)

    def start(self) -> StoredBell:
        self._nats.start()

        async def on_message(msg: Msg) -> None:
            self.ring(msg.subject.removeprefix("lanterne.stored."))

        self._nats.call(self._nats.nc.subscribe(STORED_SUBJECTS, cb=on_message), timeout=5.0)
        return self

    def announce(self, camera: str) -> None:
        """Ring every console for `camera` (after a decision taken in one of them); a lost ring
        costs that console a few seconds, never an alert."""
        with contextlib.suppress(TimeoutError, nats.errors.Error, RuntimeError):
            self._nats.call(self._nats.nc.publish(stored_subject(camera)), timeout=2.0)

    def stop(self) -> None:
        self._nats.stop()


class Ingester:
    """Moves events from the stream into the store: upsert, commit, then acknowledge.

    `on_stored(message)` is called after the commit and before the acknowledgement (feeding the
    console's live queue or a metric); it must not block for long, the message waits for it.
    `ack_wait` (how long a message handed out stays unacknowledged before it is delivered again)
    applies when the durable consumer is first created; an existing consumer keeps its own.
    """

    def __init__(
        self,
        url: str,
        store: Store,
        audit: AuditLog,
        *,
        durable: str = "store",
        batch: int = 64,
        ack_wait: float = 30.0,
        replicas: int = 1,
        on_stored: Callable[[EventMessage], None] | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.store = store
        self.audit = audit
        self.durable = durable
        self.batch = batch
        self.ack_wait = ack_wait
        self.replicas = replicas
        self.on_stored = on_stored
        self.stats = IngestStats()
        self._nats = NatsThread(url, f"lanterne-ingest-{durable}", connect_timeout=connect_timeout)
        self._sub: JetStreamContext.PullSubscription | None = None
        self._kv: KeyValue | None = None
        self._epochs: dict[str, int] = {}
        self._revisions: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and make sure the stream, the consumer and the epoch bucket exist."""
        if self._sub is not None:
            return
        self._nats.start()
        try:
            self._nats.call(self._open(), timeout=timeout)
        except BaseException:
            self._nats.stop()
            raise

    async def _open(self) -> None:
        js = self._nats.js
        await ensure_stream(js, replicas=self.replicas)
        try:
            self._kv = await js.key_value(INGEST_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            try:
                self._kv = await js.create_key_value(bucket=INGEST_BUCKET, history=1, replicas=self.replicas)
            except nats.js.errors.BadRequestError:
                self._kv = await js.key_value(INGEST_BUCKET)
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_deliver=-1,
            deliver_policy=api.DeliverPolicy.ALL,
        )
        self._sub = await js.pull_subscribe(
            f"{SUBJECT_PREFIX}.>", durable=self.durable, stream=STREAM, config=config
        )

    def start(self) -> None:
        """Connect and ingest in a background thread until `stop()`."""
        self.connect()
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, name=f"ingest-{self.durable}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._halt.is_set():
            try:
                self.run_once(timeout=0.5)
            except StoreError as exc:
                log.warning("ingest: %s; retrying in 1 s", exc)
                self._halt.wait(1.0)
            except (TimeoutError, nats.errors.Error) as exc:
                log.warning("ingest: NATS did not answer (%s); retrying", type(exc).__name__)
                self._halt.wait(0.5)

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        self._nats.stop()
        self._sub = None

    @property
    def connected(self) -> bool:
        return self._nats.connected

    def backlog(self, timeout: float = 2.0) -> int:
        """Messages on the stream this ingester has not acknowledged yet (waiting or handed out):
        the figure that says whether ingest keeps up with the workers."""
        self.connect()
        assert self._sub is not None
        sub = self._sub
        info = self._nats.call(sub.consumer_info(), timeout=timeout)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    # --- one batch --------------------------------------------------------------------------

    def run_once(self, timeout: float = 1.0) -> int:
        """Fetch up to `batch` messages (waiting at most `timeout` for the first) and handle them
        in stream order; returns how many were stored."""
        self.connect()
        assert self._sub is not None
        sub = self._sub
        try:
            msgs = self._nats.call(sub.fetch(self.batch, timeout=timeout), timeout=timeout + 5.0)
        except NoAnswerError:
            raise
        except TimeoutError:
            return 0  # nothing to read within `timeout`: an idle stream, not an outage
        stored = 0
        for i, msg in enumerate(msgs):
            try:
                stored += self._handle(msg)
            except StoreError:
                # Keep the stream's order per camera: hand this message and the rest of the batch
                # back, and try again once the database answers.
                self._hand_back(msgs[i:])
                raise
        return stored

    def _hand_back(self, msgs: Sequence[Msg]) -> None:
        for msg in msgs:
            self.stats.retried += 1
            # Redelivered after ack_wait anyway if the nak is lost.
            with contextlib.suppress(TimeoutError, nats.errors.Error):
                self._nats.call(msg.nak(delay=1.0), timeout=2.0)

    def _handle(self, msg: Msg) -> int:
        try:
            m = EventMessage.from_bytes(msg.data)
        except ValueError as exc:
            log.error(
                "ingest: message %s refused for good: %s", msg.header and msg.header.get("Nats-Msg-Id"), exc
            )
            self.stats.rejected += 1
            self._nats.call(msg.term(), timeout=2.0)
            return 0
        camera = m.event.camera
        known = self._known_epoch(camera)
        if m.epoch < known:
            log.warning(
                "ingest: event %s of camera %s refused: epoch %d of worker %s was replaced by epoch %d",
                m.event.id,
                camera,
                m.epoch,
                m.worker,
                known,
            )
            self.stats.fenced += 1
            self._nats.call(msg.ack_sync(), timeout=5.0)
            return 0
        try:
            if m.epoch > known:
                self.stats.closed += self._close_previous(m, known)
            self.store.upsert_event(m.event, origin=m.origin, mode=m.mode)
        except (IntegrityError, ValueError) as exc:
            log.error("ingest: event %s refused for good: %s", m.event.id, str(exc).splitlines()[0])
            self.stats.rejected += 1
            self._nats.call(msg.term(), timeout=2.0)
            return 0
        if m.epoch > known:
            self._remember_epoch(camera, m.epoch)
        if self.on_stored is not None:
            self.on_stored(m)
        # Rings the consoles' live queues (`StoredBell`): core NATS, no payload but the subject,
        # lost without harm (the console's stream also re-reads the store every few seconds).
        with contextlib.suppress(TimeoutError, nats.errors.Error):
            self._nats.call(self._nats.nc.publish(stored_subject(camera)), timeout=2.0)
        self._nats.call(msg.ack_sync(), timeout=5.0)
        self.stats.stored += 1
        return 1

    # --- epochs -----------------------------------------------------------------------------

    def _known_epoch(self, camera: str) -> int:
        if camera in self._epochs:
            return self._epochs[camera]
        assert self._kv is not None
        kv = self._kv
        try:
            entry = self._nats.call(kv.get(camera), timeout=5.0)
        except nats.js.errors.KeyNotFoundError:
            return 0
        assert entry.value is not None and entry.revision is not None
        self._revisions[camera] = entry.revision
        self._epochs[camera] = int(entry.value)
        return self._epochs[camera]

    def _remember_epoch(self, camera: str, epoch: int) -> None:
        """Written after the commit: a crash before it replays the message, which finds nothing
        left to close and stores the same row again."""
        assert self._kv is not None
        kv = self._kv
        value = str(epoch).encode()
        revision = self._revisions.get(camera)
        try:
            if revision is None:
                new = self._nats.call(kv.create(camera, value), timeout=5.0)
            else:
                new = self._nats.call(kv.update(camera, value, last=revision), timeout=5.0)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise ClusterError(
                f"the epoch of camera {camera} was changed by another ingester; run one ingester per "
                "camera (see lanterne.cluster.events)"
            ) from None
        self._revisions[camera] = new
        self._epochs[camera] = epoch

    def _close_previous(self, m: EventMessage, known: int) -> int:
        """Close the events a previous owner left ongoing on this camera. The audit record comes
        first: a crash between the two replays the message and records again, never closes
        silently."""
        e = EventRecord
        q: Any = select(e.id).where(
            e.camera == m.event.camera, e.mode == m.mode, e.ongoing.is_(True), e.id != m.event.id
        )
        with transaction(self.store.engine) as conn:
            ids = sorted(r.id for r in conn.execute(q))
        if not ids:
            return 0
        self.audit.append(
            "system",
            Action.EVENT_CLOSED,
            object_type="camera",
            object_id=m.event.camera,
            details={
                "reason": CLOSE_REASON,
                "events": ids,
                "previous_epoch": known,
                "epoch": m.epoch,
                "worker": m.worker,
            },
        )
        with transaction(self.store.engine) as conn:
            conn.execute(update(e).where(e.id.in_(ids), e.ongoing.is_(True)).values(ongoing=False))
        log.info(
            "ingest: camera %s moved to worker %s (epoch %d): %d ongoing events closed",
            m.event.camera,
            m.worker,
            m.epoch,
            len(ids),
        )
        return len(ids)
