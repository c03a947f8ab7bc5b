"""Delivery of confirmed alerts: the thread `lanterne serve` runs beside the console, sending the
outbox (`lanterne.accountability.outbound`) to MQTT and signed webhooks.

It runs apart from the operator's request on purpose: a confirmation commits its outbox rows and
returns; a broker that is down or a partner that answers slowly costs this thread retries, never
the operator a spinner. Each message is tried until its destination takes it (MQTT: the broker's
QoS 1 acknowledgement of both topics; webhook: a 2xx answer), with a doubling wait between
attempts, then goes to the dead-letter list after `outbound.max_attempts`.

Webhook bodies are signed like Stripe's and GitHub's: `X-Lanterne-Signature: sha256=<hex>` is the
HMAC-SHA256, under the destination's secret, of the `X-Lanterne-Timestamp` value, a dot and the
body, so a receiver can refuse a replayed or altered message (docs/integration.md shows the
check). Secrets are read from their files at each delivery (rotation needs no restart) and never
appear in a log line, an error or the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from lanterne.accountability.outbound import MQTT, WEBHOOK_PREFIX, Message, claim, mark_failed, mark_sent
from lanterne.audit import AuditLog
from lanterne.config.schema import MqttSettings, OutboundSettings, WebhookSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Lanterne-Signature"
TIMESTAMP_HEADER = "X-Lanterne-Timestamp"
DELIVERY_HEADER = "X-Lanterne-Delivery"
"""The outbox row's id: the same on every retry, so a receiver can drop a duplicate (delivery is
at least once: an answer lost on the way back means the message is sent again)."""
HOLD = timedelta(seconds=120)
"""How long a claimed message is held from other deliverers: longer than one attempt can take
(MQTT and HTTP time out after `TIMEOUT_SECONDS`)."""
TIMEOUT_SECONDS = 10.0


class DeliveryError(Exception):
    """One attempt failed; the message says why, without any secret."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value.

    >>> sign(b"k", "1700000000", b"{}")
    'sha256=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146'
    """
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def topic_level(text: str) -> str:
    """A name as one MQTT topic level: `/`, `+`, `#`, spaces and anything unusual become `_`.

    >>> topic_level("Ville d'Exemple")
    'Ville_d_Exemple'
    """
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text) or "_"


def topics(prefix: str, payload: dict[str, Any]) -> tuple[str, str]:
    """Frigate's pair: every event on one topic, and per camera and type for automations."""
    site = topic_level(str(payload["site"]))
    return (
        f"{prefix}/{site}/events",
        f"{prefix}/{site}/{topic_level(str(payload['camera']))}/{topic_level(str(payload['type']))}",
    )


def _read_secret(path: Path, what: str) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise DeliveryError(
            f"{what}: secret file {path} cannot be read ({exc.strerror}); check its path and permissions"
        ) from None
    if not secret:
        raise DeliveryError(f"{what}: secret file {path} is empty; write the shared secret into it")
    return secret


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured: following it would send the signed body
    somewhere nobody configured."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_webhook(hook: WebhookSettings, m: Message, timeout: float = TIMEOUT_SECONDS) -> None:
    """POST the message, signed; raise `DeliveryError` unless the receiver answers 2xx."""
    what = f"webhook {hook.id}"
    secret = _read_secret(hook.secret_file, what)
    body = json.dumps(m.payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        hook.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "lanterne",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            DELIVERY_HEADER: str(m.id),
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{what} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DeliveryError(f"{what} unreachable: {reason}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"{what} answered HTTP {status}")


def publish_mqtt(
    settings: MqttSettings, batch: Sequence[Message], timeout: float = TIMEOUT_SECONDS
) -> dict[int, str]:
    """Publish each message to its two topics at QoS 1 over one connection. Returns the error per
    message id that the broker did not acknowledge (empty: all delivered)."""
    import paho.mqtt.client as mqtt

    url = urlsplit(settings.url)
    tls = url.scheme == "mqtts"
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if settings.username is not None:
        password = None
        if settings.password_file is not None:
            password = _read_secret(settings.password_file, "MQTT").decode("utf-8")
        client.username_pw_set(settings.username, password)
    if tls:
        client.tls_set()
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    where = f"MQTT broker {url.hostname}:{url.port or (8883 if tls else 1883)}"
    try:
        client.connect(url.hostname or "localhost", url.port or (8883 if tls else 1883), keepalive=30)
    except OSError as exc:
        raise DeliveryError(f"{where} unreachable: {exc.strerror or exc}") from None
    client.loop_start()
    try:
        if not connected.wait(timeout) or refused:
            raise DeliveryError(f"{where} refused the connection: {refused[0] if refused else 'no answer'}")
        infos = []
        for m in batch:
            body = json.dumps(m.payload, separators=(",", ":"), sort_keys=True)
            infos.append(
                (m, [client.publish(t, body, qos=1) for t in topics(settings.topic_prefix, m.payload)])
            )
        errors: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        for m, sent in infos:
            for info in sent:
                try:
                    info.wait_for_publish(max(deadline - time.monotonic(), 0.0))
                except (RuntimeError, ValueError) as exc:
                    errors[m.id] = f"{where}: {exc}"
                    break
                if not info.is_published():
                    errors[m.id] = f"{where} did not acknowledge within {timeout:g} s"
                    break
        return errors
    finally:
        client.disconnect()
        client.loop_stop()


class Delivery:
    """Sends due messages; `start()` runs it as a thread every `poll_seconds` until `stop()`."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditLog,
        settings: OutboundSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_seconds: float = 1.0,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.engine, self.audit, self.settings, self.clock = engine, audit, settings, clock
        self.poll_seconds, self.timeout = poll_seconds, timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Try every due message once. Returns how many were tried."""
        batch = claim(self.engine, self.clock(), HOLD)
        if not batch:
            return 0
        hooks = {WEBHOOK_PREFIX + w.id: w for w in self.settings.webhooks}
        to_mqtt = [m for m in batch if m.destination == MQTT]
        if to_mqtt:
            if self.settings.mqtt is None:
                for m in to_mqtt:
                    self._failed(m, "MQTT is no longer configured; configure outbound.mqtt or leave it dead")
            else:
                try:
                    errors = publish_mqtt(self.settings.mqtt, to_mqtt, self.timeout)
                except DeliveryError as exc:
                    errors = {m.id: str(exc) for m in to_mqtt}
                for m in to_mqtt:
                    if m.id in errors:
                        self._failed(m, errors[m.id])
                    else:
                        self._sent(m)
        for m in batch:
            if m.destination == MQTT:
                continue
            hook = hooks.get(m.destination)
            if hook is None:
                self._failed(m, f"{m.destination} is no longer configured; add it to outbound.webhooks")
                continue
            try:
                post_webhook(hook, m, self.timeout)
            except DeliveryError as exc:
                self._failed(m, str(exc))
            else:
                self._sent(m)
        return len(batch)

    def _sent(self, m: Message) -> None:
        mark_sent(self.engine, self.audit, m, self.clock())
        log.info("outbound message %d (alert %s) delivered to %s", m.id, m.event_id, m.destination)

    def _failed(self, m: Message, error: str) -> None:
        state = mark_failed(self.engine, self.audit, m, self.clock(), error, self.settings)
        log.warning(
            "outbound message %d to %s failed (attempt %d, now %s): %s",
            m.id,
            m.destination,
            m.attempts + 1,
            state,
            error,
        )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:
                # The store may be down for a moment; the messages wait in it, so the thread goes on.
                log.warning(
                    "outbound delivery pass failed: %s: %s",
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                )
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="lanterne-outbound", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self.timeout + 5)


def start_delivery(
    engine: Engine, audit: AuditLog, settings: OutboundSettings, clock: Callable[[], datetime]
) -> Delivery | None:
    """The delivery thread for `lanterne serve`, started; None when no destination is configured
    (rows queued by an earlier configuration then wait, listed in the console, until one is)."""
    if settings.mqtt is None and not settings.webhooks:
        return None
    delivery = Delivery(engine, audit, settings, clock=clock)
    delivery.start()
    return delivery
