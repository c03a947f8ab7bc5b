"""The demo's observatory: the README's main job loads published data into the observatory so
that a new user finds maps, series and the audit in the console."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from lanterne.observatory.store import ObservatoryStore
from lanterne.runtime.demo import OBSERVATORY_DATASETS, prepare_demo, prepare_observatory
from lanterne.store.db import create_engine_for
from lanterne.store.tables import AuditRecord


def test_demo_ingests_published_data_once_and_records_it(tmp_path: Path) -> None:
    cfg, site = prepare_demo(tmp_path / "demo-out", user_id="tester")
    assert {layer.id for layer in cfg.observatory.layers} == {"beats", "districts", "arrondissements"}
    assert "observatory" in site.read_text(encoding="utf-8")
    paris = tuple(d for d in OBSERVATORY_DATASETS if d[1] == "paris_dansmarue.yml")

    loaded = prepare_observatory(cfg, "tester", datasets=paris)
    assert loaded == ["paris_dansmarue (10,000 rows, 0 rejected)"]
    assert prepare_observatory(cfg, "tester", datasets=paris) == []  # kept, not loaded twice

    store = ObservatoryStore.open(cfg.observatory.store, read_only=True)
    try:
        assert [d["id"] for d in store.datasets()] == ["paris_dansmarue"]
        assert store.query("SELECT count(*) FROM layer_cells WHERE layer = 'arrondissements'")[0][0] > 0
    finally:
        store.close()
    engine = create_engine_for(cfg.store.url)
    with engine.connect() as conn:
        actions = conn.execute(select(AuditRecord.action, AuditRecord.object_id)).all()
    engine.dispose()
    assert actions.count(("dataset_change", "paris_dansmarue")) == 1
