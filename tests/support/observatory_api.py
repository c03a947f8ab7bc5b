"""The observatory API tests' shared site: 10,000 DansMaRue citizen reports and the Paris accidents
and bikes ingested once per module through the example mappings, a console with one account per role.
Registered as a pytest plugin by tests/conftest.py (fixtures `obs_file`, `obs`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from lanterne.api.app import create_app
from lanterne.audit import Action, AuditLog
from lanterne.config import Config, parse_config
from lanterne.config.schema import BoundaryLayer
from lanterne.observatory.ingest import ingest
from lanterne.observatory.mapping import load_mapping
from lanterne.observatory.store import ObservatoryStore
from lanterne.store import Store
from tests.support.console import LOOPBACK, NOW, PASSWORD, SQUARE, Clock, cleared_account, login_json

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "observatory"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "observatory"
DANSMARUE = DATA / "paris_dansmarue_sample_2023_2024.csv.gz"
ARRONDISSEMENTS = DATA / "boundaries" / "paris_arrondissements.geojson"
DEPARTEMENTS = DATA / "boundaries" / "france_departements_simplified.geojson"
SSMSI = DATA / "fr_ssmsi_delinquance_departements_2016_2022.csv.gz"
BAAC = DATA / "fr_road_injury_accidents_baac_2005_2020.parquet"
BIKES = DATA / "paris_bike_counts_weather_hourly_2019_2022.csv.gz"
K = 10
ROLES = {"oper": "operator", "sup": "supervisor", "audi": "auditor", "adm": "admin", "ana": "analyst"}
PURPOSE = {"purpose": "check of the graffiti reports in the 18th, ref OBS-2026-04"}
COUNT_KEYS = frozenset({"count", "total", "unlocated", "observed"})
"""Keys holding a count somewhere in the observatory's answers."""


def layers() -> list[BoundaryLayer]:
    return [BoundaryLayer(id="arrondissements", file=ARRONDISSEMENTS, key="c_arinsee", label="l_ar")]


LAYERS = [
    {"id": "arrondissements", "file": str(ARRONDISSEMENTS), "key": "c_arinsee", "label": "l_ar"},
    {"id": "departements", "file": str(DEPARTEMENTS), "key": "code", "label": "nom"},
]


def paris_accidents_mapping(directory: Path) -> Path:
    """The shipped road-accident mapping narrowed by its own `filter` to Paris in 2019-2020 (10,336
    of the 1.07 M rows, 0.3 s), with the commune codes (75101-75120) placed on the arrondissements:
    the years the Paris bike counts and weather cover. Written for the test only; the shipped
    mapping and data are unchanged."""
    spec = yaml.safe_load((EXAMPLES / "fr_road_accidents.yml").read_text(encoding="utf-8"))
    spec["id"] = "paris_road_accidents"
    spec["title"] = "Road injury accidents, Paris 2019-2020 (BAAC extract)"
    spec["location"]["area"] = {"column": "com_insee", "layer": "arrondissements"}
    spec["filter"] = [{"column": "dep", "values": ["75"]}, {"column": "year", "values": ["2019", "2020"]}]
    path = directory / "paris_road_accidents.yml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def ingest_paris_accidents_and_bikes(store: ObservatoryStore, directory: Path) -> None:
    """Incidents and measures that overlap in time and place, for the cross-source view."""
    mapping = load_mapping(paris_accidents_mapping(directory))
    ingest(store, BAAC, mapping, user_id="u-ingest", layers=layers())
    ingest(store, BIKES, load_mapping(EXAMPLES / "paris_bikes_weather.yml"), user_id="u-ingest")


def ingest_samples(path: Path) -> None:
    """The observatory file the API tests and the browser test read: DansMaRue on the
    arrondissements, SSMSI counts and population by département, and Paris road accidents beside
    the bike counts and weather."""
    store = ObservatoryStore.open(path)
    try:
        ingest(
            store,
            DANSMARUE,
            load_mapping(EXAMPLES / "paris_dansmarue.yml"),
            user_id="u-ingest",
            layers=layers(),
        )
        # French départements: yearly counts by area code, and their population for rates.
        departements = [BoundaryLayer.model_validate(LAYERS[1])]
        for mapping in ("fr_ssmsi_departements", "fr_ssmsi_population"):
            ingest(
                store,
                SSMSI,
                load_mapping(EXAMPLES / f"{mapping}.yml"),
                user_id="u-ingest",
                layers=departements,
            )
        ingest_paris_accidents_and_bikes(store, path.parent)
    finally:
        store.close()


@pytest.fixture(scope="module")
def obs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ingest per module (0.7 s): the tests only read it, as the console does."""
    path = tmp_path_factory.mktemp("obs") / "observatory.duckdb"
    ingest_samples(path)
    return path


def site_settings(tmp_path: Path, obs_store: Path) -> dict[str, Any]:
    """A one-camera site with its database in `tmp_path` and `obs_store` as its observatory."""
    return {
        "site": "Ville d'Exemple",
        "store": {"url": f"sqlite:///{tmp_path / 'lanterne.db'}"},
        "audit": {"key_path": str(tmp_path / "audit.key")},
        "cameras": [
            {
                "id": "quai-nord",
                "source": "quai-nord.mp4",
                "location": {"lat": 48.88, "lon": 2.355},
                "zones": [{"id": "z1", "polygon": SQUARE, "events": {"zone_intrusion": {}}}],
            }
        ],
        "observatory": {
            "store": str(obs_store),
            "min_count": K,
            "layers": LAYERS,
        },
    }


def site(tmp_path: Path, obs_store: Path) -> Config:
    return parse_config(site_settings(tmp_path, obs_store), base_dir=tmp_path)


@dataclass
class Obs:
    client: TestClient
    audit: AuditLog
    ids: dict[str, str]

    sessions: dict[str, tuple[str, dict[str, str]]] = dataclasses.field(default_factory=dict)

    def as_user(self, login: str) -> dict[str, str]:
        """Switch to `login`'s session, logging in the first time: the module shares one site at a
        fixed time, where a second factor code cannot be used twice."""
        if login in self.sessions:
            cookie, csrf = self.sessions[login]
            self.client.cookies.clear()  # the jar keys cookies by domain too: one session cookie only
            self.client.cookies.set("lanterne_session", cookie)
            if self.client.get("/api/me").status_code == 200:  # else logged out: log in again
                return csrf
        r = self.client.post("/api/login", json=login_json(login, at=NOW, account_id=self.ids[login]))
        assert r.status_code == 200, r.text
        csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
        self.sessions[login] = (r.cookies["lanterne_session"], csrf)
        return csrf

    def searches(self) -> list[Any]:
        return [e for e in self.audit.entries() if e.action == Action.SEARCH]


def open_obs(tmp_path: Path, obs_store: Path) -> Iterator[Obs]:
    cfg = site(tmp_path, obs_store)
    store = Store.open(cfg.store.url)
    audit = AuditLog(store.engine, key_path=cfg.audit.key_path)
    ids = {
        login: cleared_account(store.engine, audit, login, role, ["*"], PASSWORD, "test", now=NOW).id
        for login, role in ROLES.items()
    }
    with TestClient(create_app(cfg, clock=Clock()), client=LOOPBACK) as client:
        yield Obs(client, audit, ids)
    store.close()


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory, obs_file: Path) -> Iterator[Obs]:
    # argon2's production cost is tested with the accounts; here it would only slow the logins.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "lanterne.accountability.accounts.HASHER",
            PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
        )
        yield from open_obs(tmp_path_factory.mktemp("site"), obs_file)


def small_counts(payload: Any, k: int = K) -> list[tuple[str, int]]:
    """Every (key, value) in the JSON where a count between 1 and k-1 is shown."""
    found: list[tuple[str, int]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, v in value.items():
                if key in COUNT_KEYS and isinstance(v, int) and not isinstance(v, bool) and 0 < v < k:
                    found.append((key, v))
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(payload)
    return found


def jsonable(value: Any) -> Any:
    """Dataclasses, numpy arrays and datetimes of the observatory modules as the console receives
    them in JSON, to compare two results as a client would see them; NaN and infinities (a trend
    not defined at the edges, a rate over zero exposure) become null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)
