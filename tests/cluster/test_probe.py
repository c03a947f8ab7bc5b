"""`--metrics-port` of a worker and an ingester: what only the process knows (frames analysed,
detector seconds, cameras and shards held, the ingester's counts and backlog) in Prometheus's
text format, `/healthz`, and a `/readyz` that turns 503 with its reason when NATS goes away and
200 again when it is back. Real nats-server, real clip, real SQLite."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lanterne.config import parse_config
from lanterne.runtime.worker import ClusterOptions, IngestService, Worker
from tests.support.nats import NatsServer
from tests.support.video import VIDEO, excerpt


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return excerpt(VIDEO / "vtest.avi", tmp_path_factory.mktemp("clip") / "vtest-20s.mp4", 20)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for(condition: Callable[[], object], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_a_worker_and_an_ingester_serve_their_metrics_health_and_readiness(
    tmp_path: Path, clip: Path, nats_server: NatsServer
) -> None:
    cfg = parse_config(
        {
            "mode": "statistics",
            "store": {"url": f"sqlite:///{tmp_path / 'p.db'}"},
            "cameras": [
                {"id": "north", "source": str(clip), "location": {"lat": 51.44, "lon": -0.94}, "fps": 2}
            ],
        }
    )
    options = ClusterOptions(nats_url=nats_server.url, worker_id="w1", shards=4, ttl=4.0)
    worker = Worker(cfg, options, loop_files=True)
    ingest = IngestService(cfg, nats_server.url)
    worker_probe = worker.serve_probe(0)
    ingest_probe = ingest.serve_probe(0)
    w_url, i_url = f"http://127.0.0.1:{worker_probe.port}", f"http://127.0.0.1:{ingest_probe.port}"
    assert get(i_url + "/readyz")[0] == 503  # not started yet: it says so rather than fail
    feeder = threading.Thread(target=ingest.run_forever, daemon=True)
    worker.start()
    feeder.start()
    try:
        for _ in range(100):
            worker.step(0.1)
            if worker.runner.workers.get("north") and worker.runner.workers["north"].state.frames >= 3:
                break
        assert get(w_url + "/healthz") == (200, '{"status":"ok"}')
        assert get(w_url + "/readyz")[0] == 200
        m = samples(get(w_url + "/metrics")[1])
        assert m[("lanterne_worker_cameras_held", (("worker", "w1"),))] == 1
        assert m[("lanterne_worker_shards_held", (("worker", "w1"),))] == 4
        assert m[("lanterne_camera_frames_analysed_total", (("camera", "north"),))] >= 3
        assert m[("lanterne_camera_detector_runs_total", (("camera", "north"),))] >= 1
        assert m[("lanterne_camera_detector_seconds_total", (("camera", "north"),))] > 0
        assert m[("lanterne_camera_live_streams", (("camera", "north"),))] == 0

        wait_for(lambda: get(i_url + "/readyz")[0] == 200, 10)
        im = samples(get(i_url + "/metrics")[1])
        assert im[("lanterne_ingest_backlog", ())] >= 0
        assert ("lanterne_ingest_messages_total", (("outcome", "stored"),)) in im
        assert get(i_url + "/nowhere")[0] == 404

        nats_server.stop()
        wait_for(lambda: get(w_url + "/readyz")[0] == 503, 15)
        _, body = get(w_url + "/readyz")
        assert json.loads(body) == {"status": "not ready", "reason": "NATS unreachable"}
        assert get(w_url + "/healthz")[0] == 200  # alive, only not ready
        nats_server.start()
        wait_for(lambda: get(w_url + "/readyz")[0] == 200, 20)
    finally:
        ingest.request_stop()
        feeder.join(timeout=10)
        worker.stop()
        worker_probe.stop()
        ingest_probe.stop()
