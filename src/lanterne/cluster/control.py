"""Supervisors' stops, suspensions and authorisation changes pushed to the workers (issue 12).

On one machine every camera thread reads the stops from the store at most every second. A city
of dozens of workers doing that for thousands of cameras is a steady load on the central database
for changes that happen a few times a day, and a second is still a second. So whoever changes
one of them (the console's routes, the CLI) rings `lanterne.control.<kind>` on NATS after the
commit, and every worker drops its cached copy of that kind at once: the next frame reads the
store. The bell carries no data — the store stays the one truth, read with the usual checks — so
a lost ring costs only the delay of the workers' slow fallback read (`FALLBACK_SECONDS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import nats
import nats.errors
from nats.aio.msg import Msg

from lanterne.cluster.connection import NatsThread, redact_url

log = logging.getLogger(__name__)

SUBJECTS = "lanterne.control.>"
KINDS = ("stops", "suspensions", "authorisations")
FALLBACK_SECONDS = 15.0
"""How often a worker that hears the bell still reads stops, suspensions and authorisations from
the store: the bound on a change whose ring was lost (NATS down at that moment)."""


def subject(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown control kind {kind!r}; one of {', '.join(KINDS)}")
    return f"lanterne.control.{kind}"


class ControlBell:
    """Rings and hears the control subjects. `on_change(kind)` runs on NATS's thread: it must only
    drop caches, never read the store."""

    def __init__(
        self, url: str, on_change: Callable[[str], None] | None = None, *, connect_timeout: float = 5.0
    ) -> None:
        self.on_change = on_change
        self._nats = NatsThread(url, "lanterne-control", connect_timeout=connect_timeout)

    def start(self) -> ControlBell:
        self._nats.start()
        if self.on_change is not None:
            callback = self.on_change

            async def heard(msg: Msg) -> None:
                kind = msg.subject.removeprefix("lanterne.control.")
                if kind in KINDS:
                    try:
                        callback(kind)
                    except Exception:
                        log.exception("control: reacting to a change of %s failed", kind)

            self._nats.call(self._nats.nc.subscribe(SUBJECTS, cb=heard), timeout=5.0)
            # The subscription reaches the server before start() returns: a ring sent after it is heard.
            self._nats.call(self._nats.nc.flush(timeout=5), timeout=6.0)
        return self

    def announce(self, kind: str) -> None:
        """Ring every worker about `kind`. Never raises for the network: the workers' fallback read
        sees the change later."""
        with contextlib.suppress(TimeoutError, nats.errors.Error, RuntimeError):
            self._nats.call(self._nats.nc.publish(subject(kind)), timeout=2.0)
            self._nats.call(self._nats.nc.flush(timeout=2), timeout=3.0)

    def stop(self) -> None:
        self._nats.stop()


def announce_once(url: str | None, kind: str, timeout: float = 3.0) -> bool:
    """Ring `kind` from a short-lived process (the CLI): connect, publish, close. False (and a
    warning naming the fallback delay) when NATS cannot be reached or no URL is configured."""
    if not url:
        return False
    subject_ = subject(kind)

    async def ring() -> None:
        nc = await nats.connect(url, connect_timeout=timeout, max_reconnect_attempts=0)
        try:
            await nc.publish(subject_)
            await nc.flush(timeout=timeout)
        finally:
            await nc.close()

    try:
        asyncio.run(asyncio.wait_for(ring(), timeout=timeout * 2))
        return True
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        log.warning(
            "workers not told at once about the change of %s (NATS at %s: %s); they read it within %.0f s",
            kind,
            redact_url(url),
            type(exc).__name__,
            FALLBACK_SECONDS,
        )
        return False
