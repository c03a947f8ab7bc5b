"""One asyncio event loop in its own thread, holding one NATS connection, for thread-based callers.

The runner runs each camera in a thread and the store is synchronous, while nats-py speaks only
asyncio. Rather than make the runner asynchronous, each cluster component owns a loop in a daemon
thread and hands coroutines to it; a caller blocks on the result with a timeout. Work that must
go on by itself (renewing leases) runs as tasks inside that loop, so a slow camera thread or a
long database commit can never delay a renewal.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from lanterne.core.errors import LanterneError

log = logging.getLogger(__name__)

T = TypeVar("T")


class ClusterError(LanterneError):
    """The cluster cannot do what was asked: NATS unreachable, a bucket or stream configured
    otherwise than this process expects, a worker id that cannot be a key."""


class NoAnswerError(TimeoutError):
    """NATS did not answer a call within its timeout. A subclass of `TimeoutError` kept apart from
    the timeouts a coroutine raises itself (an idle fetch ends with one): on Python 3.11 both are
    `TimeoutError`, and only this one means the server is not answering."""


def redact_url(url: str) -> str:
    """The NATS URL as safe to log: a password or token in it is masked.

    >>> redact_url("nats://lanterne:s3cret@10.0.0.5:4222")
    'nats://lanterne:***@10.0.0.5:4222'
    >>> redact_url("nats://127.0.0.1:4222")
    'nats://127.0.0.1:4222'
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    name = user.split(":", 1)[0] if ":" in user else "***"
    masked = f"{name}:***@{host}" if ":" in user else f"***@{host}"
    return urlunsplit(parts._replace(netloc=masked))


class NatsThread:
    """A NATS connection served by an event loop in a thread of its own.

    `call` runs a coroutine there and waits for its result; `spawn` starts one and returns its
    future. Calling `call` from the loop's own thread would wait on itself forever, so it is refused.
    """

    def __init__(self, url: str, name: str, *, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.name = name
        self.connect_timeout = connect_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._closing = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop and connect; raise `ClusterError` (one line) when NATS is unreachable."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._closing = False
        self._thread = threading.Thread(target=run, name=f"nats-{self.name}", daemon=True)
        self._thread.start()
        ready.wait()
        try:
            self._nc = self.call(self._connect(), timeout=self.connect_timeout + 2.0)
        except BaseException:
            self._halt_loop()
            raise

    async def _connect(self) -> Client:
        async def on_error(exc: Exception) -> None:
            if self._nc is None:
                return  # the first connection's failure is reported once, below
            log.warning(
                "%s: NATS connection error: %s", self.name, str(exc).splitlines()[0] if str(exc) else exc
            )

        async def on_disconnect() -> None:
            if self._closing:
                return
            log.warning("%s: disconnected from NATS at %s; reconnecting", self.name, redact_url(self.url))

        async def on_reconnect() -> None:
            log.info("%s: reconnected to NATS", self.name)

        try:
            return await asyncio.wait_for(
                nats.connect(
                    self.url,
                    name=self.name,
                    connect_timeout=self.connect_timeout,
                    # The first connection fails fast (below); once connected, a lost server is
                    # waited for without limit: a worker keeps its cameras only while it can renew,
                    # and reconnecting is how it gets them back.
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=on_error,
                    disconnected_cb=on_disconnect,
                    reconnected_cb=on_reconnect,
                ),
                timeout=self.connect_timeout,
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterError(
                f"cannot reach NATS at {redact_url(self.url)} ({why}); start `nats-server -js` there "
                "or fix the NATS URL"
            ) from None

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the loop's thread. Safe to call twice."""
        if self._loop is None:
            return
        nc = self._nc
        self._closing = True
        if nc is not None and not nc.is_closed:
            try:
                self.call(nc.close(), timeout=timeout)
            except (TimeoutError, concurrent.futures.TimeoutError, nats.errors.Error) as exc:
                log.warning("%s: NATS connection did not close cleanly: %s", self.name, type(exc).__name__)
        self._halt_loop()

    def _halt_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=5.0)
            except concurrent.futures.TimeoutError:
                log.warning("%s: some tasks did not end within 5 s", self.name)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5.0)
        if not thread.is_alive():
            loop.close()
        self._loop = None
        self._thread = None
        self._nc = None

    # --- use ------------------------------------------------------------------------------

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise RuntimeError(f"{self.name}: not connected; call start() first")
        return self._nc

    @property
    def connected(self) -> bool:
        """Connected to a server now (False while reconnecting or stopped)."""
        return self._nc is not None and bool(self._nc.is_connected)

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    @property
    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start `coro` in the loop; its future is thread-safe."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{self.name}: not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run `coro` in the loop and return its result; `NoAnswerError` after `timeout` seconds (the
        coroutine is then cancelled). An exception of the coroutine, its own timeouts included,
        is raised as it is."""
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError(f"{self.name}: call() from the loop's own thread would wait forever")
        future = self.spawn(coro)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            if future.done() and not future.cancelled():
                raise  # the coroutine's own timeout (an idle fetch), not this call's
            future.cancel()
            raise NoAnswerError(f"{self.name}: no answer from NATS within {timeout} s") from None
