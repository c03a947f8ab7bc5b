"""Confirmed alerts leave for MQTT and signed webhooks, and nothing else does (EV-04, AC-06).

Against a real Mosquitto on 127.0.0.1:1883 (a fresh topic prefix per test) and a real HTTP
receiver in a thread that checks each body's HMAC as a partner would. The console's own delivery
thread sends (the app's lifespan starts it); a failing receiver shows the doubling wait, the
dead-letter list and a supervisor's recorded retry."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from lanterne.accountability.alerts import acknowledge, confirm
from lanterne.accountability.outbound import Outbox, messages
from lanterne.audit import Action, AuditLog
from lanterne.config.schema import MqttSettings, OutboundSettings, WebhookSettings
from lanterne.runtime.outbound import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, Delivery
from lanterne.store import Store
from tests.support.console import Clock, Console, add_event, open_console, site_config

pytestmark = pytest.mark.usefixtures("cheap_hashes")
SECRET = "s3cret-shared-with-the-partner"
BROKER = "mqtt://127.0.0.1:1883"


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float
    signature_ok: bool


@dataclass
class Receiver:
    """A partner's webhook endpoint: answers the statuses queued in `answers` (then 200) and
    checks each request's signature with the shared secret."""

    answers: list[int] = field(default_factory=list)
    always: int | None = None
    got: list[Received] = field(default_factory=list)
    url: str = ""

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        ts = headers.get(TIMESTAMP_HEADER, "")
        expected = (
            "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        ok = (
            hmac.compare_digest(headers.get(SIGNATURE_HEADER, ""), expected)
            and abs(time.time() - int(ts)) < 300
        )
        self.got.append(Received(body, headers, time.monotonic(), ok))
        if self.always is not None:
            return self.always
        return self.answers.pop(0) if self.answers else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = rec.handle(body, dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@dataclass
class Subscriber:
    prefix: str
    got: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber(prefix=f"test-{secrets.token_hex(4)}")
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2)
    ready = threading.Event()
    client.on_subscribe = lambda *_a: ready.set()
    client.on_message = lambda _c, _u, msg: sub.got.append((msg.topic, json.loads(msg.payload), msg.qos))
    client.on_connect = lambda c, *_a: c.subscribe(f"{sub.prefix}/#", qos=1)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    assert ready.wait(5), "Mosquitto on 127.0.0.1:1883 did not accept the subscription"
    yield sub
    client.disconnect()
    client.loop_stop()


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def outbound(tmp_path: Path, hook_url: str, prefix: str | None, **kw: Any) -> OutboundSettings:
    secret = tmp_path / "partner.secret"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    mqtt_settings = MqttSettings(url=BROKER, topic_prefix=prefix) if prefix else None
    hooks = [WebhookSettings(id="partner", url=hook_url, secret_file=secret)]
    return OutboundSettings(mqtt=mqtt_settings, webhooks=hooks, **kw)


@pytest.fixture
def make_console(tmp_path: Path, clock: Clock) -> Iterator[Callable[[str, OutboundSettings], Console]]:
    opened: list[Iterator[Console]] = []

    def make(db_url: str, settings: OutboundSettings) -> Console:
        cfg = site_config(db_url, tmp_path).model_copy(update={"outbound": settings})
        gen = open_console(cfg, clock)
        opened.append(gen)
        return next(gen)

    yield make
    for gen in opened:
        for _ in gen:
            pass


def decide(console: Console, alert: str, verb: str, body: dict[str, str] | None = None) -> None:
    r = console.client.post(f"/api/alerts/{alert}/{verb}", json=body or {}, headers=console.csrf)
    assert r.status_code == 200, r.text


def test_only_a_confirmed_alert_leaves_signed_and_without_pixels(
    db_url: str,
    tmp_path: Path,
    receiver: Receiver,
    subscriber: Subscriber,
    make_console: Callable[..., Console],
) -> None:
    console = make_console(db_url, outbound(tmp_path, receiver.url, subscriber.prefix))
    for eid in ("e-confirmed", "e-dismissed", "e-acknowledged", "e-new"):
        add_event(console.store, eid, "parvis")
    console.as_user("oper")
    decide(console, "e-acknowledged", "ack")
    decide(console, "e-dismissed", "ack")
    decide(console, "e-dismissed", "dismiss", {"reason": "street_furniture"})
    decide(console, "e-confirmed", "ack")
    decide(console, "e-confirmed", "confirm", {"follow_up": "field_request"})

    # The outbox rows were written by the confirmation itself: one per destination, for it alone.
    rows = messages(console.store.engine)
    assert sorted((m.event_id, m.destination) for m in rows) == [
        ("e-confirmed", "mqtt"),
        ("e-confirmed", "webhook:partner"),
    ]
    wait_for("both deliveries", lambda: len(messages(console.store.engine, state="sent")) == 2)
    wait_for("both MQTT topics", lambda: len(subscriber.got) == 2)

    site = "Ville_d_Exemple"  # "Ville d'Exemple" as one topic level
    topics = sorted(t for t, _, _ in subscriber.got)
    assert topics == [
        f"{subscriber.prefix}/{site}/events",
        f"{subscriber.prefix}/{site}/parvis/zone_intrusion",
    ]
    assert {qos for _, _, qos in subscriber.got} == {1}
    payload = subscriber.got[0][1]
    expected_keys = {
        "state", "id", "type", "site", "camera", "zone", "start", "end",
        "start_time", "end_time", "follow_up", "confirmed_at",
    }  # fmt: skip
    assert set(payload) == expected_keys, "nothing but the situation, where, when and the follow-up"
    assert (payload["id"], payload["type"], payload["camera"], payload["zone"]) == (
        "e-confirmed", "zone_intrusion", "parvis", "z1",
    )  # fmt: skip
    assert payload["follow_up"] == "field_request" and payload["state"] == "confirmed"
    assert payload["confirmed_at"] == "2026-05-04T12:00:00Z"

    [hook] = receiver.got
    assert hook.signature_ok, "the partner's HMAC check fails"
    assert json.loads(hook.body) == payload
    assert hook.headers[DELIVERY_HEADER] == str(next(m.id for m in rows if m.destination != "mqtt"))
    text = hook.body.decode() + json.dumps([p for _, p, _ in subscriber.got])
    for leak in ("oper", console.ids["oper"], "region", "snapshot", "x0", "jpg"):
        assert leak not in text, f"{leak!r} left the system"

    # Each delivery is recorded just after its row is marked sent: wait for both records.
    wait_for("both deliveries recorded", lambda: len(console.audit_entries(Action.OUTBOUND)) >= 2)
    sent = console.audit_entries(Action.OUTBOUND)
    assert sorted((e.recipient, e.details["outcome"], e.object_id) for e in sent) == [
        ("mqtt", "sent", "e-confirmed"),
        ("webhook:partner", "sent", "e-confirmed"),
    ]
    assert {e.user_id for e in sent} == {"system"}


def test_a_failing_partner_gets_retries_with_a_doubling_wait(
    sqlite_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    """The delivery loop on its own, with the real clock and a 0.2 s first wait: two failures,
    then success; the gaps between attempts are measured."""
    store = Store.open(sqlite_url)
    audit = AuditLog(store.engine)
    settings = outbound(tmp_path, receiver.url, None, backoff_seconds=0.2, max_attempts=5)
    receiver.answers = [500, 503]
    add_event(store, "e1", "parvis")
    now = datetime.now(UTC)
    acknowledge(store.engine, audit, "e1", "op", now)
    confirm(store.engine, audit, "e1", "op", now, "monitoring", Outbox("site", ("webhook:partner",)))
    delivery = Delivery(store.engine, audit, settings, poll_seconds=0.02)
    delivery.start()
    try:
        wait_for("the third attempt", lambda: len(messages(store.engine, state="sent")) == 1)
    finally:
        delivery.stop()
    assert [r.signature_ok for r in receiver.got] == [True, True, True]
    gaps = [b.at - a.at for a, b in itertools.pairwise(receiver.got)]
    assert 0.2 <= gaps[0] < 0.2 + 0.5, gaps
    assert 0.4 <= gaps[1] < 0.4 + 0.5, gaps
    [m] = messages(store.engine)
    assert (m.attempts, m.last_error) == (3, None)
    assert len({r.headers[DELIVERY_HEADER] for r in receiver.got}) == 1, "a retry is the same delivery"
    store.close()


def test_a_broker_that_is_down_is_retried_not_lost(sqlite_url: str, tmp_path: Path) -> None:
    store = Store.open(sqlite_url)
    audit = AuditLog(store.engine)
    settings = OutboundSettings(mqtt=MqttSettings(url="mqtt://127.0.0.1:1"), backoff_seconds=60)
    add_event(store, "e1", "parvis")
    now = datetime.now(UTC)
    acknowledge(store.engine, audit, "e1", "op", now)
    confirm(store.engine, audit, "e1", "op", now, "none", Outbox("site", ("mqtt",)))
    assert Delivery(store.engine, audit, settings, timeout=2).run_once() == 1
    [m] = messages(store.engine)
    assert (m.state, m.attempts) == ("pending", 1)
    assert m.last_error is not None and "127.0.0.1:1 unreachable" in m.last_error
    assert m.next_attempt_at >= now + timedelta(seconds=59)
    store.close()


def test_dead_letters_are_listed_and_a_supervisor_retries_on_the_record(
    sqlite_url: str, tmp_path: Path, receiver: Receiver, clock: Clock, make_console: Callable[..., Console]
) -> None:
    receiver.always = 500
    console = make_console(
        sqlite_url, outbound(tmp_path, receiver.url, None, backoff_seconds=1, max_attempts=2)
    )
    add_event(console.store, "e1", "parvis")
    add_event(console.store, "e2", "quai-nord")
    console.as_user("oper")
    for eid in ("e1", "e2"):
        decide(console, eid, "ack")
        decide(console, eid, "confirm", {"follow_up": "monitoring"})
    wait_for("first attempts", lambda: [m.attempts for m in messages(console.store.engine)] == [1, 1])
    clock.now += timedelta(seconds=2)  # the one-second wait has passed
    wait_for("the dead letters", lambda: len(messages(console.store.engine, state="dead")) == 2)
    wait_for("both recorded", lambda: len(console.audit_entries(Action.OUTBOUND)) >= 2)  # just after
    dead = console.audit_entries(Action.OUTBOUND)
    assert sorted((e.object_id, e.details["outcome"], e.details["attempts"]) for e in dead) == [
        ("e1", "dead", 2),
        ("e2", "dead", 2),
    ]
    assert "HTTP 500" in dead[0].details["error"]

    # Operators do not see the list; a supervisor sees the dead letters of their scope.
    assert console.client.get("/api/outbound").status_code == 403
    console.as_user("sup-nord")
    listed = console.client.get("/api/outbound", params={"state": "dead"}).json()
    assert [(m["alert_id"], m["destination"], m["attempts"]) for m in listed] == [
        ("e2", "webhook:partner", 2)
    ]
    e1_id = next(m.id for m in messages(console.store.engine) if m.event_id == "e1")
    r = console.client.post(f"/api/outbound/{e1_id}/retry", headers=console.csrf)
    assert r.status_code == 404, "another camera's message is out of this supervisor's scope"
    assert console.client.post(f"/api/outbound/{listed[0]['id']}/retry").status_code == 403, "CSRF"

    console.as_user("sup")
    receiver.always = None
    r = console.client.post(f"/api/outbound/{e1_id}/retry", headers=console.csrf)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["attempts"]) == ("pending", 0)
    again = console.client.post(f"/api/outbound/{e1_id}/retry", headers=console.csrf)
    assert again.status_code == 409, "only dead letters are retried"
    wait_for("the retried delivery", lambda: any(m.state == "sent" for m in messages(console.store.engine)))
    retried = [e for e in console.audit_entries(Action.OUTBOUND) if e.details["outcome"] == "retry"]
    assert [(e.user_id, e.object_id, e.recipient) for e in retried] == [
        (console.ids["sup"], "e1", "webhook:partner")
    ]
    assert receiver.got[-1].signature_ok
    assert json.loads(receiver.got[-1].body)["id"] == "e1"
    assert console.client.get("/console/outbound").status_code == 200


def test_nothing_is_queued_without_a_destination(sqlite_url: str, tmp_path: Path, clock: Clock) -> None:
    gen = open_console(site_config(sqlite_url, tmp_path), clock)
    console = next(gen)
    add_event(console.store, "e1", "parvis")
    console.as_user("oper")
    decide(console, "e1", "ack")
    decide(console, "e1", "confirm", {"follow_up": "none"})
    assert messages(console.store.engine) == []
    for _ in gen:
        pass


def test_the_outbound_section_reads_secrets_beside_the_config(tmp_path: Path) -> None:
    from lanterne.config import load_config
    from lanterne.core.errors import ConfigError

    site = tmp_path / "site.yml"
    base = (
        "cameras: [{id: c1, source: c1.mp4, location: {lat: 48.8, lon: 2.3}}]\n"
        "outbound:\n  mqtt: {url: 'mqtt://127.0.0.1:1883', password_file: secrets/mqtt}\n"
        "  webhooks: [{id: partner, url: 'https://partner.example/hook', secret_file: secrets/partner}]\n"
        "metrics: {token_file: secrets/metrics}\n"
    )
    site.write_text(base, encoding="utf-8")
    cfg = load_config(site)
    assert cfg.outbound.webhooks[0].secret_file == tmp_path / "secrets/partner"
    assert cfg.outbound.mqtt is not None and cfg.outbound.mqtt.password_file == tmp_path / "secrets/mqtt"
    assert cfg.metrics.token_file == tmp_path / "secrets/metrics"
    site.write_text(base.replace("https://partner.example", "ftp://partner.example"), encoding="utf-8")
    with pytest.raises(ConfigError, match="http"):
        load_config(site)
