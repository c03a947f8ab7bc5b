"""The live queue in a city: the ingester rings a bell on NATS after each commit and every open
console's stream reads the store at once (no 250 ms polling of the events table); a decision
taken in one console rings every console. The stream's own fallback is 5 s, so an alert seen
within 2 s came by the bell. Real nats-server, a real uvicorn server, SQLite."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn

from lanterne.api.app import create_app
from lanterne.api.routes.alerts import BELL_FALLBACK_SECONDS
from lanterne.audit import AuditLog
from lanterne.cluster import EventPublisher, Ingester
from lanterne.store import Store
from tests.api.test_alerts import PASSWORD, _event, _free_port, _next_alert, make_site
from tests.support.console import login_json
from tests.support.nats import NatsServer


def test_an_ingested_alert_and_a_decision_reach_open_consoles_by_the_bell(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'city.db'}"
    site = make_site(url, tmp_path)
    cfg = site.cfg.model_copy(
        update={"cluster": site.cfg.cluster.model_copy(update={"nats_url": nats_server.url})}
    )
    port = _free_port()
    app = create_app(cfg)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    store = Store.open(url)
    ingester = Ingester(nats_server.url, store, AuditLog(store.engine))
    publisher = EventPublisher(nats_server.url, "w1")
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        assert app.state.doorbell is not None, "the console listens to the bell, it does not poll"
        ingester.start()
        publisher.start()
        assert BELL_FALLBACK_SECONDS >= 5
        base = f"http://127.0.0.1:{port}"
        with (
            httpx.Client(base_url=base, timeout=10) as watcher,
            httpx.Client(base_url=base, timeout=10) as other,
        ):
            assert watcher.post("/api/login", json=login_json("op-a", PASSWORD)).status_code == 200
            r = other.post("/api/login", json=login_json("sup", PASSWORD))
            assert r.status_code == 200, r.text
            csrf = r.json()["csrf_token"]
            with watcher.stream("GET", "/api/alerts/stream") as stream:
                lines = stream.iter_lines()
                assert next(lines) == "retry: 1000"
                time.sleep(0.5)  # the stream is waiting on the bell now
                sent = time.monotonic()
                assert publisher.publish(_event("city-1", "cam-a"), datetime.now(UTC), "alerts", epoch=1)
                _, alert = _next_alert(lines, 4)
                assert alert["id"] == "city-1" and time.monotonic() - sent < 2.0, (
                    "by the bell, not the fallback"
                )
                time.sleep(0.5)
                decided = time.monotonic()
                r = other.post("/api/alerts/city-1/ack", headers={"X-CSRF-Token": csrf})
                assert r.status_code == 200, r.text
                _, alert = _next_alert(lines, 4)
                assert (alert["id"], alert["state"]) == ("city-1", "acknowledged")
                assert time.monotonic() - decided < 2.0, "another console's decision rings too"
    finally:
        publisher.stop()
        ingester.stop()
        store.close()
        server.should_exit = True
        thread.join(timeout=10)
