"""The observatory store in PostgreSQL (`observatory.store: postgresql://…`): the same ingests of
real published data (10,000 DansMaRue reports with the Paris arrondissements, the SSMSI
département-years with their population, a file with refused rows) into a DuckDB file and into
PostgreSQL give the same provenance, rows, rejects, maps, series, anomalies and audit; a replace
is atomic there too; the tables really are PostgreSQL tables; the console serves a map from it.

PostgreSQL is part of the test environment (see conftest.py): a server that cannot be reached
fails these tests, it never skips them. Each module instance gets a database of its own rather
than a schema of the session's database, because the observatory refuses any database holding
the console's tables (OB-01) and the session database holds them for the `db_url` tests.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from lanterne.api.routes.observatory import NO_STORE
from lanterne.config.schema import BoundaryLayer
from lanterne.observatory.aggregate import (
    AreaRef,
    ExposureSpec,
    Filters,
    Grain,
    categories,
    counts_by_h3,
    counts_by_layer,
    profile,
    series,
)
from lanterne.observatory.bias import audit, hotspots
from lanterne.observatory.ingest import ingest
from lanterne.observatory.layers import Layer, load_layer
from lanterne.observatory.mapping import load_mapping, parse_mapping
from lanterne.observatory.store import (
    ObservatoryError,
    ObservatoryStore,
    StoreNotFoundError,
    postgres_target,
)
from lanterne.observatory.timeseries import anomalies
from tests.support.observatory_api import jsonable
from tests.support.observatory_data import BAD_CSV, BAD_MAPPING
from tests.support.postgres import PG_ADMIN_DSN, admin_connection

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "observatory"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "observatory"
DANSMARUE = DATA / "paris_dansmarue_sample_2023_2024.csv.gz"
SSMSI = DATA / "fr_ssmsi_delinquance_departements_2016_2022.csv.gz"
K = 10
TABLES = ("datasets", "incidents", "measures", "rejects", "layer_cells")


def _create_database(tag: str) -> str:
    name = f"lanterne_obs_{tag}_{secrets.token_hex(4)}"
    with admin_connection() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"


def _drop_database(dsn: str) -> None:
    with admin_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dsn.rsplit("/", 1)[1]))
        )


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A database for this module (plain `postgresql://` DSN), dropped at its end."""
    dsn = _create_database("t")
    yield dsn
    _drop_database(dsn)


def schema_url(dsn: str, schema: str, *, psycopg_scheme: bool = False) -> str:
    url = f"{dsn}?options=-csearch_path%3D{schema}"
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if psycopg_scheme else url


def load(store: ObservatoryStore, layers: dict[str, BoundaryLayer], bad_file: Path) -> list[Any]:
    """The same four ingests, in the same order, whatever the store."""
    reports = [
        ingest(
            store,
            DANSMARUE,
            load_mapping(EXAMPLES / "paris_dansmarue.yml"),
            user_id="u",
            layers=[layers["arrondissements"]],
        )
    ]
    for name in ("fr_ssmsi_departements", "fr_ssmsi_population"):
        reports.append(
            ingest(
                store,
                SSMSI,
                load_mapping(EXAMPLES / f"{name}.yml"),
                user_id="u",
                layers=[layers["departements"]],
            )
        )
    reports.append(ingest(store, bad_file, parse_mapping(BAD_MAPPING), user_id="u"))
    return reports


@dataclass
class Pair:
    file: ObservatoryStore
    pg: ObservatoryStore
    dsn: str
    schema: str
    file_reports: list[Any]
    pg_reports: list[Any]
    arrondissements: Layer
    departements: Layer


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, obs_layers: dict[str, BoundaryLayer]
) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("obs_pg")
    bad = tmp / "bad.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    file_store = ObservatoryStore.open(tmp / "observatory.duckdb")
    # The console store's URL spelling (SQLAlchemy's driver suffix) is accepted too.
    pg_store = ObservatoryStore.open(schema_url(pg_database, "obs", psycopg_scheme=True))
    try:
        yield Pair(
            file_store,
            pg_store,
            pg_database,
            "obs",
            load(file_store, obs_layers, bad),
            load(pg_store, obs_layers, bad),
            load_layer(obs_layers["arrondissements"]),
            load_layer(obs_layers["departements"]),
        )
    finally:
        file_store.close()
        pg_store.close()


def same(a: Any, b: Any) -> None:
    """Equal as the console would send them (dataclasses, numpy arrays and datetimes as JSON),
    floats to 1e-9: the two stores may sum measures in another order."""
    _close(jsonable(a), jsonable(b))


def _close(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


# --- the same data --------------------------------------------------------------------------------


def test_same_provenance_rows_and_rejects(pair: Pair) -> None:
    for f, p in zip(pair.file_reports, pair.pg_reports, strict=True):
        assert (f.dataset, f.rows_read, f.rows_loaded, f.rows_rejected, f.rejects_by_reason, f.sha256) == (
            p.dataset,
            p.rows_read,
            p.rows_loaded,
            p.rows_rejected,
            p.rejects_by_reason,
            p.sha256,
        )
    assert pair.pg_reports[-1].rows_rejected == 13  # the refused rows of BAD_CSV, with their reasons

    def provenance(store: ObservatoryStore) -> list[dict[str, Any]]:
        return [{k: v for k, v in d.items() if k != "ingested_at"} for d in store.datasets()]

    assert provenance(pair.pg) == provenance(pair.file)
    assert len(provenance(pair.pg)) == 4
    for table in TABLES:
        assert pair.pg.query(f"SELECT count(*) FROM {table}") == pair.file.query(
            f"SELECT count(*) FROM {table}"
        )
    # Row for row, in the same order (rows are stored in file order).
    for table, order in (
        ("incidents", "dataset, ts, category, channel, h3, area_code, n"),
        ("rejects", "dataset, row_number, field"),
        ("measures", "dataset, ts, variable, area_code"),
        ("layer_cells", "layer, h3"),
    ):
        assert pair.pg.query(f"SELECT * FROM {table} ORDER BY {order}") == pair.file.query(
            f"SELECT * FROM {table} ORDER BY {order}"
        ), table


def test_same_maps_series_anomalies_and_audit(pair: Pair) -> None:
    dmr = Filters(dataset="paris_dansmarue")
    march = Filters(dataset="paris_dansmarue", start=_dt("2024-03-01"), end=_dt("2024-04-01"))
    ssmsi = Filters(dataset="fr_ssmsi_departements", category="Cambriolages de logement")
    population = ExposureSpec("fr_ssmsi_population", "population")
    store_a, store_b = pair.file, pair.pg
    for analyst in (False, True):
        same(
            counts_by_layer(store_a, march, pair.arrondissements, k=K, analyst=analyst),
            counts_by_layer(store_b, march, pair.arrondissements, k=K, analyst=analyst),
        )
        same(
            counts_by_layer(store_a, ssmsi, pair.departements, k=K, analyst=analyst, exposure=population),
            counts_by_layer(store_b, ssmsi, pair.departements, k=K, analyst=analyst, exposure=population),
        )
        for resolution in (7, 9):
            same(
                counts_by_h3(store_a, dmr, resolution, k=K, analyst=analyst),
                counts_by_h3(store_b, dmr, resolution, k=K, analyst=analyst),
            )
        for grain in (Grain.DAY, Grain.WEEK, Grain.MONTH):
            same(
                series(store_a, dmr, grain, k=K, analyst=analyst),
                series(store_b, dmr, grain, k=K, analyst=analyst),
            )
        area = AreaRef("layer:arrondissements", "75118")
        same(
            series(store_a, dmr, Grain.WEEK, area=area, k=K, analyst=analyst),
            series(store_b, dmr, Grain.WEEK, area=area, k=K, analyst=analyst),
        )
        for by in ("dow", "month"):  # DansMaRue records days: no hour profile
            same(
                profile(store_a, dmr, by, k=K, analyst=analyst),
                profile(store_b, dmr, by, k=K, analyst=analyst),
            )
        found = anomalies(store_a, dmr, Grain.DAY, k=K, analyst=analyst)
        same(found, anomalies(store_b, dmr, Grain.DAY, k=K, analyst=analyst))
        layers = {"arrondissements": pair.arrondissements}
        same(
            audit(
                store_a,
                "paris_dansmarue",
                level="layer:arrondissements",
                layers=layers,
                k=K,
                analyst=analyst,
            ),
            audit(
                store_b,
                "paris_dansmarue",
                level="layer:arrondissements",
                layers=layers,
                k=K,
                analyst=analyst,
            ),
        )
        same(
            audit(store_a, "paris_dansmarue", level="h3:8", k=K, analyst=analyst),
            audit(store_b, "paris_dansmarue", level="h3:8", k=K, analyst=analyst),
        )
    assert categories(pair.pg, "paris_dansmarue") == categories(pair.file, "paris_dansmarue")
    graffiti = Filters(dataset="paris_dansmarue", category=categories(pair.pg, "paris_dansmarue")[0][0])
    layers = {"arrondissements": pair.arrondissements}
    same(
        hotspots(pair.file, graffiti, "layer:arrondissements", k=K, layers=layers, rounds=50),
        hotspots(pair.pg, graffiti, "layer:arrondissements", k=K, layers=layers, rounds=50),
    )
    # Not vacuous: the views hold data, and suppression hid something in the suppressed ones.
    h3_map = counts_by_h3(pair.pg, dmr, 9, k=K)
    assert h3_map.total == 10_000 and h3_map.suppressed_cells > 0


def _dt(day: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(day)


# --- PostgreSQL itself ------------------------------------------------------------------------------


def test_the_tables_are_postgresql_tables_with_their_constraints(pair: Pair) -> None:
    with psycopg.connect(pair.dsn) as conn:
        counts = {
            t: conn.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(pair.schema), sql.Identifier(t))
            ).fetchone()[0]
            for t in TABLES
        }
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'incidents'",
                (pair.schema,),
            ).fetchall()
        )
        checks = conn.execute(
            "SELECT count(*) FROM information_schema.check_constraints c JOIN information_schema.constraint_column_usage u "
            "USING (constraint_schema, constraint_name) WHERE u.table_schema = %s AND u.table_name = 'incidents'",
            (pair.schema,),
        ).fetchone()[0]
    assert counts["incidents"] == 10_000 + 9_898 + 2
    assert counts["datasets"] == 4 and counts["rejects"] == 13 and counts["measures"] > 0
    assert types["h3"] == "bigint" and types["ts"] == "timestamp without time zone"
    assert checks == 2  # channel in the four values, n ≥ 0
    # Enforced by PostgreSQL through the attachment (and the failed write leaves nothing).
    with pytest.raises(Exception, match="check constraint"):
        pair.pg.query(
            "INSERT INTO incidents VALUES ('x', TIMESTAMP '2024-01-01', 'c', 'somebody', NULL, NULL, NULL, 1)"
        )
    assert pair.pg.query("SELECT count(*) FROM incidents WHERE dataset = 'x'") == [(0,)]


def test_replace_is_atomic_on_postgresql(
    pg_database: str, obs_layers: dict[str, BoundaryLayer], monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS atomic")
    store = ObservatoryStore.open(schema_url(pg_database, "atomic"))
    mapping = load_mapping(EXAMPLES / "paris_dansmarue.yml")
    try:
        ingest(store, DANSMARUE, mapping, user_id="first", layers=[obs_layers["arrondissements"]])
        seen_during: list[int] = []
        real_cursor = store.cursor

        class Failing:
            """A cursor whose provenance insert fails: the old rows are already deleted and the
            new ones written in the open transaction when it does."""

            def __init__(self) -> None:
                self.cur = real_cursor()

            def execute(self, statement: str, *args: Any) -> Any:
                if statement.startswith("INSERT INTO datasets"):
                    with psycopg.connect(pg_database) as other:
                        seen_during.append(
                            other.execute("SELECT count(*) FROM atomic.incidents").fetchone()[0]
                        )
                    raise ObservatoryError("disk full (simulated)")
                return self.cur.execute(statement, *args)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.cur, name)

        monkeypatch.setattr(store, "cursor", Failing)
        with pytest.raises(ObservatoryError, match="simulated"):
            ingest(store, DANSMARUE, mapping, user_id="second", replace=True)
        monkeypatch.undo()
        # Another PostgreSQL session saw the old version whole while the replace was under way
        # (deleted and rewritten but not committed), and the rollback kept it.
        assert seen_during == [10_000]
        assert store.query("SELECT count(*) FROM incidents") == [(10_000,)]
        assert [d["ingested_by"] for d in store.datasets()] == ["first"]
        again = ingest(store, DANSMARUE, mapping, user_id="second", replace=True)
        assert again.replaced and again.rows_loaded == 10_000
        assert store.query("SELECT count(*) FROM incidents") == [(10_000,)]
        assert [d["ingested_by"] for d in store.datasets()] == ["second"]
    finally:
        store.close()


def test_read_only_missing_refused_and_unreachable(pair: Pair) -> None:
    reader = ObservatoryStore.open(schema_url(pair.dsn, pair.schema), read_only=True)
    try:
        assert [d["id"] for d in reader.datasets()] == [d["id"] for d in pair.pg.datasets()]
        with pytest.raises(Exception, match="read-only"):
            reader.query("DELETE FROM incidents")
    finally:
        reader.close()
    assert pair.pg.query("SELECT count(*) FROM datasets") == [(4,)]
    # A schema nothing was ingested into: not found (the console's 404), and not created.
    with pytest.raises(StoreNotFoundError, match="ingest a dataset first"):
        ObservatoryStore.open(schema_url(pair.dsn, "nothing_here"), read_only=True)
    with psycopg.connect(pair.dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'nothing_here'"
        ).fetchone() == (0,)
    # Other schemes are refused, and a password never reaches a message.
    with pytest.raises(ObservatoryError, match="not supported"):
        ObservatoryStore.open("mysql://u@h/db")
    unreachable = "postgresql://someone:s3cret@127.0.0.1:9/db?connect_timeout=2"
    with pytest.raises(ObservatoryError, match="cannot open observatory store") as err:
        ObservatoryStore.open(unreachable)
    assert "s3cret" not in str(err.value) and "***" in str(err.value)
    assert postgres_target(unreachable).schema == "public"


def test_the_console_database_is_refused(tmp_path: Path) -> None:
    """OB-01: an observatory attached to the console's database could reach the alerts."""
    from lanterne.store import Store

    dsn = _create_database("console")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA console")
        Store.open(schema_url(dsn, "console", psycopg_scheme=True)).close()
        with pytest.raises(ObservatoryError, match="console's database"):
            ObservatoryStore.open(schema_url(dsn, "observatory"))
    finally:
        _drop_database(dsn)


# --- the console -------------------------------------------------------------------------------------


def test_the_console_serves_the_same_map_from_postgresql(tmp_path: Path, pair: Pair) -> None:
    from argon2 import PasswordHasher

    from tests.support.observatory_api import open_obs

    calls = [
        ("/api/observatory/map", {"dataset": "paris_dansmarue", "level": "layer:arrondissements"}),
        ("/api/observatory/map", {"dataset": "paris_dansmarue", "level": "h3:8"}),
        ("/api/observatory/series", {"dataset": "paris_dansmarue", "grain": "month"}),
    ]
    answers: dict[str, list[Any]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "lanterne.accountability.accounts.HASHER",
            PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
        )
        # A copy of the DuckDB file: this process holds the file itself open for writing, and
        # DuckDB refuses a second, read-only open of it in the same process.
        pair.file.query("CHECKPOINT")
        copy = tmp_path / "observatory.duckdb"
        shutil.copyfile(pair.file.path, copy)
        for name, target in (("file", str(copy)), ("pg", schema_url(pair.dsn, pair.schema))):
            (tmp_path / name).mkdir()
            for console in open_obs(tmp_path / name, target):
                console.as_user("oper")
                answers[name] = []
                for path, params in calls:
                    r = console.client.get(path, params=params)
                    assert r.status_code == 200, r.text
                    answers[name].append(r.json())
        # A schema nothing was ingested into answers like a missing DuckDB file.
        (tmp_path / "empty").mkdir()
        for empty in open_obs(tmp_path / "empty", schema_url(pair.dsn, "no_observatory_here")):
            empty.as_user("oper")
            r = empty.client.get("/api/observatory/datasets")
            assert r.status_code == 404 and r.json()["detail"] == NO_STORE
    assert answers["pg"] == answers["file"]
    layer_map = answers["pg"][0]
    assert layer_map["total"] == 10_000 and len(layer_map["features"]) == 20
