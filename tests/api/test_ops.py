"""Probes and metrics of `lanterne serve`: `/healthz` while the process serves, `/readyz` only
while the store is reachable and at the newest migration, and `/metrics` (behind its bearer
token) with a series per camera from the health rows every runner writes to the store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lanterne.accountability.alerts import acknowledge, confirm
from lanterne.accountability.cameras import CameraHealth, record_health
from lanterne.accountability.outbound import Outbox
from lanterne.api.app import create_app
from lanterne.api.routes.ops import head_revision, not_ready
from lanterne.audit import AuditLog
from lanterne.config.schema import MetricsSettings
from lanterne.store import Store
from lanterne.store.db import create_engine_for, current_revision, migrate
from tests.api.test_camera_health import row
from tests.support.console import LOOPBACK, NOW, Clock, add_event, site_config

TOKEN = "prometheus-scrape-token"


def health(camera: str, **kw: object) -> CameraHealth:
    return row(camera, **{"lag_seconds": 0.4, **kw})


@pytest.fixture
def server(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[tuple[TestClient, Store]]:
    token = tmp_path / "metrics.token"
    token.write_text(TOKEN + "\n", encoding="utf-8")
    cfg = site_config(db_url, tmp_path).model_copy(update={"metrics": MetricsSettings(token_file=token)})
    store = Store.open(cfg.store.url)
    with TestClient(create_app(cfg, clock=clock), client=LOOPBACK) as client:
        yield client, store
    store.close()


def test_probes_answer(server: tuple[TestClient, Store]) -> None:
    client, _ = server
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_metrics_need_the_token(server: tuple[TestClient, Store]) -> None:
    client, _ = server
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_metrics_are_off_without_a_token_file(sqlite_url: str, tmp_path: Path, clock: Clock) -> None:
    with TestClient(create_app(site_config(sqlite_url, tmp_path), clock=clock), client=LOOPBACK) as client:
        r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 404 and "metrics.token_file" in r.json()["detail"]


def test_metrics_parse_and_cover_every_camera(server: tuple[TestClient, Store]) -> None:
    client, store = server
    record_health(
        store.engine,
        [
            health("quai-nord", worker="w-est"),
            health(
                "parvis", state="shedding", lag_seconds=4.5, analysis_fps=2.5, frames_dropped=12, restarts=3
            ),
        ],
    )
    add_event(store, "e1", "parvis")
    acknowledge(store.engine, AuditLog(store.engine), "e1", "op", NOW)
    confirm(store.engine, AuditLog(store.engine), "e1", "op", NOW, "none", Outbox("site", ("webhook:gone",)))

    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("lanterne_camera_analysis_fps", camera="parvis") == 2.5
    assert value("lanterne_camera_configured_fps", camera="parvis") == 5.0
    assert value("lanterne_camera_lag_seconds", camera="parvis") == 4.5
    assert value("lanterne_camera_frames_dropped_total", camera="parvis") == 12
    assert value("lanterne_camera_reconnects_total", camera="parvis") == 3
    assert value("lanterne_camera_state", camera="parvis", state="shedding") == 1
    assert value("lanterne_camera_up", camera="quai-nord") == 1
    assert value("lanterne_camera_health_age_seconds", camera="quai-nord") == 3
    assert value("lanterne_camera_up", camera="depot") == 0, "configured, but no worker reports it"
    assert value("lanterne_outbound_messages", destination="webhook:gone", state="pending") == 1
    assert value("lanterne_camera_worker", camera="quai-nord", worker="w-est") == 1
    assert value("lanterne_camera_worker", camera="parvis", worker="run") == 1
    assert value("lanterne_worker_cameras", worker="w-est") == 1
    assert any(name == "process_cpu_seconds_total" for name, _ in samples)


def test_readyz_is_503_when_the_store_is_gone(tmp_path: Path, clock: Clock) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    cfg = site_config(f"sqlite:///{folder / 'lanterne.db'}", tmp_path)
    with TestClient(create_app(cfg, clock=clock), client=LOOPBACK) as client:
        assert client.get("/readyz").status_code == 200
        shutil.rmtree(folder)
        # Connections already open still reach the deleted file (Unix keeps it until closed); a
        # new one, as after a pool recycle or a restart, cannot: drop the open ones.
        client.app.state.store.engine.dispose()  # type: ignore[attr-defined]
        r = client.get("/readyz")
        assert (r.status_code, r.json()) == (503, {"status": "unavailable", "reason": "store unreachable"})
        assert client.get("/healthz").status_code == 200, "the process itself is alive"


def test_not_ready_names_an_unreachable_server_or_an_old_schema(tmp_path: Path) -> None:
    closed = create_engine_for("postgresql+psycopg://lanterne@127.0.0.1:1/lanterne")
    assert not_ready(closed) == "store unreachable"
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0011")
    engine = create_engine_for(url)
    assert not_ready(engine) is not None and "newest migration" in str(not_ready(engine))
    migrate(engine)
    assert not_ready(engine) is None
    assert head_revision() == current_revision(engine) == "0024"
    engine.dispose()
