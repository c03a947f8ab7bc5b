"""Stops pushed to the workers (issue 12): a supervisor stops a camera in the console of a city,
and a worker whose own read of the stops is 15 s apart obeys within a moment, because the
console rang `lanterne.control.stops` on NATS. Real nats-server, the real console app, the real
worker; the store is the one truth, the bell carries nothing."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from lanterne.cluster import control
from lanterne.runtime.worker import ClusterOptions, Worker
from tests.support.console import Clock, open_console, site_config
from tests.support.nats import NatsServer


def test_a_stop_placed_in_the_console_reaches_a_worker_at_once(
    tmp_path: Path, nats_server: NatsServer, cheap_hashes: None
) -> None:
    cfg = site_config(f"sqlite:///{tmp_path / 'city.db'}", tmp_path)
    cfg = cfg.model_copy(update={"cluster": cfg.cluster.model_copy(update={"nats_url": nats_server.url})})
    for console in open_console(cfg, Clock()):
        worker = Worker(cfg, ClusterOptions(nats_server.url, "w1", shards=2, ttl=4.0))
        worker.start()
        try:
            stops = worker.runner.stops
            assert stops.refresh.total_seconds() == control.FALLBACK_SECONDS
            assert not stops.inference_stopped("parvis")  # read once: cached for 15 s from here

            headers = console.as_user("sup")
            r = console.client.post(
                "/api/stops", json={"scope": "camera", "camera": "parvis", "reason": "test"}, headers=headers
            )
            assert r.status_code == 201, r.text
            t0 = time.monotonic()
            while not stops.inference_stopped("parvis"):
                assert time.monotonic() - t0 < 3.0, "the worker did not hear the stop"
                time.sleep(0.05)
            print(f"stop obeyed by the worker {time.monotonic() - t0:.2f} s after it was placed")

            r = console.client.post(f"/api/stops/{r.json()['id']}/lift", headers=headers)
            assert r.status_code == 200, r.text
            t0 = time.monotonic()
            while stops.inference_stopped("parvis"):
                assert time.monotonic() - t0 < 3.0, "the worker did not hear the lift"
                time.sleep(0.05)
        finally:
            worker.stop()


def test_a_ring_that_cannot_be_sent_says_how_long_the_workers_take(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert control.announce_once(None, "authorisations") is False
    assert control.announce_once("nats://127.0.0.1:1", "authorisations", timeout=1.0) is False
    assert "they read it within 15 s" in caplog.text
    with pytest.raises(ValueError, match="unknown control kind"):
        control.subject("everything")
