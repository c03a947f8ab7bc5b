"""A camera's state on the map from the runner's health rows: lagging when it sheds rate, drops
frames or is behind; offline when its worker failed or when the row is stale (a runner that is
gone must not vouch for its cameras); the old signs of life when there is no row at all. And the
table's migration, both ways, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import inspect

from lanterne.accountability.cameras import (
    HEALTH_STALE_AFTER,
    CameraHealth,
    camera_health,
    camera_status,
    record_health,
)
from lanterne.accountability.stops import Stops
from lanterne.accountability.suspension import Suspensions
from lanterne.audit import AuditLog
from lanterne.core.types import Counts
from lanterne.store import Store, create_engine_for, migrate
from lanterne.store.db import MIGRATIONS_DIR, current_revision
from tests.support.console import NOW, Clock, site_config


def health(camera: str, **kw: Any) -> CameraHealth:
    fields: dict[str, Any] = {
        "camera": camera,
        "state": "running",
        "lag_seconds": 0.1,
        "analysis_fps": 5.0,
        "configured_fps": 5.0,
        "frames_dropped": 0,
        "restarts": 0,
        "last_error": None,
        "updated_at": NOW,
    }
    fields.update(kw)
    return CameraHealth(**fields)


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("keeping up, before its first count bucket", {}, "running"),
    ("shedding", {"state": "shedding", "lag_seconds": 1.2, "analysis_fps": 2.5}, "lagging"),
    (
        "dropping",
        {"state": "dropping", "lag_seconds": 6.0, "analysis_fps": 1.0, "frames_dropped": 40},
        "lagging",
    ),
    ("behind before it sheds", {"lag_seconds": 3.5}, "lagging"),
    ("unpaced file", {"lag_seconds": None}, "running"),
    ("worker failed", {"state": "failed", "last_error": "vtest.avi: file not found"}, "offline"),
    ("stream reconnecting", {"state": "stalled", "lag_seconds": 40.0}, "offline"),
    (
        "stale row that said all is fine",
        {"updated_at": NOW - HEALTH_STALE_AFTER - timedelta(seconds=1)},
        "offline",
    ),
]


@pytest.mark.parametrize(("case", "row", "state"), CASES, ids=[c[0] for c in CASES])
def test_state_from_the_health_row(db_url: str, tmp_path: Path, case: str, row: dict, state: str) -> None:
    cfg = site_config(db_url, tmp_path)
    store = Store.open(db_url)
    audit = AuditLog(store.engine)
    try:
        # A count bucket a minute old: without a health row, the camera would show running.
        store.add_counts(Counts("quai-nord", "z1", 0.0, 60.0, 1, 0.5, {}, 10), NOW - timedelta(minutes=1))
        record_health(store.engine, [health("quai-nord", **row)])
        status = camera_status(
            store.engine,
            cfg.cameras[0],
            Stops(store.engine, audit, Clock()),
            Suspensions(store.engine, audit, cfg.suspension, Clock()),
            NOW,
        )
    finally:
        store.close()
    assert status.state == state
    stale = "stale" in case
    assert status.health_stale is stale
    assert (status.health is None) is stale, "a stale row is not handed on as the camera's health"


def test_rows_are_replaced_and_read_back(db_url: str) -> None:
    store = Store.open(db_url)
    try:
        record_health(store.engine, [health("a"), health("b", state="starting", lag_seconds=None)])
        record_health(
            store.engine,
            [health("a", state="dropping", analysis_fps=1.0, frames_dropped=12, last_error="x" * 900)],
        )
        a, b = camera_health(store.engine, "a"), camera_health(store.engine, "b")
        assert camera_health(store.engine, "c") is None
    finally:
        store.close()
    assert a is not None and a.state == "dropping" and a.frames_dropped == 12 and a.shed
    assert a.last_error == "x" * 500, "an error is cut to the column, not refused"
    assert a.updated_at == NOW and a.updated_at.tzinfo is not None
    assert b is not None and b.lag_seconds is None and not b.shed


def test_migration_0006_up_and_down(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        migrate(engine, "0005")
        assert "camera_health" not in inspect(engine).get_table_names()
        migrate(engine, "0006")  # this revision alone: later ones build on it
        assert current_revision(engine) == "0006"
        migrate(engine)  # the rows as written today (later revisions add columns)
        record_health(engine, [health("a")])
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        assert current_revision(engine) == "0005"
        assert "camera_health" not in inspect(engine).get_table_names()
        migrate(engine)
        assert camera_health(engine, "a") is None, "the table comes back empty"
    finally:
        engine.dispose()


def test_a_stopping_worker_does_not_overwrite_the_new_owner_s_row(db_url: str) -> None:
    """After a handover the old worker's last "stopped" row must not hide that the camera runs
    on its new owner: its final write replaces only its own row (or a row of no worker)."""
    store = Store.open(db_url)
    try:
        record_health(store.engine, [health("cam-1", worker="w-old")])
        record_health(store.engine, [health("cam-1", worker="w-new", state="running")])
        record_health(store.engine, [health("cam-1", worker="w-old", state="stopped")], final=True)
        now = camera_health(store.engine, "cam-1")
        assert now is not None and (now.worker, now.state) == ("w-new", "running")
        record_health(store.engine, [health("cam-1", worker="w-new", state="stopped")], final=True)
        now = camera_health(store.engine, "cam-1")
        assert now is not None and (now.worker, now.state) == ("w-new", "stopped")
        # `lanterne run` writes no worker: its rows are replaced as before.
        record_health(store.engine, [health("cam-2")])
        record_health(store.engine, [health("cam-2", state="finished")], final=True)
        now = camera_health(store.engine, "cam-2")
        assert now is not None and now.state == "finished" and now.worker is None
    finally:
        store.close()
