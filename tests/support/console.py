"""The console helpers the API tests share: a three-camera site, accounts of each role, a fixed
clock, and a login that returns the CSRF header. Registered as a pytest plugin by tests/conftest.py,
so its fixtures (`clock`, `console`, `cheap_hashes`) are available everywhere by name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from lanterne.accountability.accounts import create_account
from lanterne.api.app import create_app
from lanterne.audit import Action, AuditLog
from lanterne.config import Config, parse_config
from lanterne.core.types import Event, EventType
from lanterne.store import Store

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
PASSWORD = "lanterns carry light slowly"
SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
CAMERAS = ("quai-nord", "parvis", "depot")


def site_config(db_url: str, tmp_path: Path, **console: Any) -> Config:
    cameras = [
        {
            "id": cam,
            "name": f"Camera {cam}",
            "source": f"{cam}.mp4",
            "location": {"lat": 48.88 + i * 0.001, "lon": 2.355 + i * 0.001},
            "zones": [{"id": "z1", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
        }
        for i, cam in enumerate(CAMERAS)
    ]
    data = {
        "site": "Ville d'Exemple",
        "store": {"url": db_url},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": cameras,
        "console": console,
    }
    return parse_config(data, base_dir=tmp_path)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


ACCOUNTS: dict[str, tuple[str, list[str]]] = {
    "sup": ("supervisor", ["*"]),
    "sup-nord": ("supervisor", ["quai-nord"]),
    "oper": ("operator", ["*"]),
    "oper-nord": ("operator", ["quai-nord"]),
    "audi": ("auditor", ["*"]),
}


class Console:
    """An app with one logged-in user at a time (`as_user` switches the session cookie)."""

    def __init__(self, client: TestClient, store: Store, audit: AuditLog, ids: dict[str, str]) -> None:
        self.client, self.store, self.audit, self.ids = client, store, audit, ids
        self.csrf: dict[str, str] = {}

    def as_user(self, login: str) -> dict[str, str]:
        r = self.client.post("/api/login", json={"login": login, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
        return self.csrf

    def audit_entries(self, action: Action) -> list[Any]:
        return [e for e in self.audit.entries() if e.action == action]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id's production cost (64 MiB, 3 passes) is the point in service and a minute of CPU
    over these tests; the hashing itself is tested with the accounts."""
    monkeypatch.setattr(
        "lanterne.accountability.accounts.HASHER", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )


def open_console(cfg: Config, clock: Clock) -> Iterator[Console]:
    store = Store.open(cfg.store.url)
    audit = AuditLog(store.engine)
    ids = {
        login: create_account(store.engine, audit, login, role, scope, PASSWORD, "test", now=NOW).id
        for login, (role, scope) in ACCOUNTS.items()
    }
    with TestClient(create_app(cfg, clock=clock)) as client:
        yield Console(client, store, audit, ids)
    store.close()


def add_event(
    store: Store,
    eid: str,
    camera: str,
    type: EventType = EventType.ZONE_INTRUSION,
    at: datetime = NOW,
    *,
    zone: str = "z1",
    confidence: float = 0.8,
    object_class: str | None = "person",
    mode: str = "alerts",
) -> None:
    store.upsert_event(
        Event(eid, type, camera, zone, 0.0, 5.0, confidence, (0.1, 0.1, 0.2, 0.2), False, object_class),
        at,
        mode,
    )


@pytest.fixture
def console(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Console]:
    yield from open_console(site_config(db_url, tmp_path), clock)
