"""`open_site`: one database and one audit log as the configuration describes them (signing key,
checkpoint interval, retention), sharing one engine, closed together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lanterne.audit import Action
from lanterne.config import parse_config
from lanterne.core.errors import ConfigError
from lanterne.runtime import site as site_mod
from lanterne.runtime.site import open_site


def raw_config(db_url: str, **audit: Any) -> dict[str, Any]:
    return {
        "store": {"url": db_url},
        "audit": {"retention_days": 400, "checkpoint_every": 7, **audit},
        "cameras": [{"id": "cam-1", "source": "a.mp4", "location": {"lat": 43.3, "lon": 5.37}}],
    }


def test_site_opens_the_configured_audit_log_on_the_store_engine(db_url: str, tmp_path: Path) -> None:
    cfg = parse_config(raw_config(db_url), base_dir=tmp_path)
    with open_site(cfg) as site:
        assert site.cfg is cfg
        assert site.audit.engine is site.store.engine
        assert site.audit.key_path == cfg.audit.key_path
        assert site.audit.checkpoint_every == 7
        # The configured retention is applied on opening, and the change is on record.
        assert site.audit.keep_days() == 400
        (change,) = site.audit.entries(action=Action.CONFIG_CHANGE, user_id="system")
        assert change.object_type == "audit_settings"
    with open_site(cfg) as again:
        # Opening again with the same configuration changes nothing.
        assert len(again.audit.entries(action=Action.CONFIG_CHANGE, user_id="system")) == 1


def test_a_refused_audit_log_leaves_nothing_open(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = parse_config(raw_config(db_url), base_dir=tmp_path)
    closed: list[bool] = []
    real_open = site_mod.Store.open

    def tracked_open(url: str) -> Any:
        store = real_open(url)
        real_close = store.close
        monkeypatch.setattr(store, "close", lambda: (closed.append(True), real_close())[1])
        return store

    def refuse(*_: Any, **__: Any) -> Any:
        raise ConfigError("audit retention refused")

    monkeypatch.setattr(site_mod.Store, "open", tracked_open)
    monkeypatch.setattr(site_mod.AuditLog, "from_config", refuse)
    with pytest.raises(ConfigError):
        open_site(cfg)
    assert closed == [True]
