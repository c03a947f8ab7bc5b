"""Ingest of the real published tables: every row is loaded or refused with its reason, totals
match the files (computed independently), provenance is kept, and nothing the mapping leaves out
(addresses, exact coordinates, row contents of refused rows) reaches the store."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest
import yaml
from h3.api import basic_int as h3
from typer.testing import CliRunner

from lanterne.audit import Action, AuditLog
from lanterne.cli.main import app
from lanterne.config.schema import BoundaryLayer
from lanterne.observatory.ingest import IngestReport, ingest, personal_identifier
from lanterne.observatory.layers import load_layer
from lanterne.observatory.mapping import Mapping, load_mapping, parse_mapping
from lanterne.observatory.store import ObservatoryError, ObservatoryStore
from tests.support.observatory_data import (
    AUCKLAND,
    BAAC,
    BAD_CSV,
    BAD_MAPPING,
    BIKES,
    CHICAGO,
    DANSMARUE,
    DATA,
    EXAMPLES,
    SSMSI,
)

AUCKLAND_SITES = DATA / "auckland_pedestrian_sensor_locations.csv"

runner = CliRunner()
GV_DPIA = "https://ville.example/aipd-observatoire.pdf"
GV_FRIA = "FRIA-OBS-1"
GV_NOTICE = "https://ville.example/transparence"


@pytest.fixture
def store(tmp_path: Path) -> ObservatoryStore:
    s = ObservatoryStore.open(tmp_path / "obs.duckdb")
    yield s
    s.close()


def example(name: str) -> Mapping:
    return load_mapping(EXAMPLES / f"{name}.yml")


def check_invariant(store: ObservatoryStore, report: IngestReport) -> None:
    """rows_read == loaded + rejected, in the report, the provenance row and the tables."""
    assert report.rows_read == report.rows_loaded + report.rows_rejected
    [(read, loaded, rejected)] = store.query(
        "SELECT rows_read, rows_loaded, rows_rejected FROM datasets WHERE id = $d", {"d": report.dataset}
    )
    assert (read, loaded, rejected) == (report.rows_read, report.rows_loaded, report.rows_rejected)
    [(n_rejects,)] = store.query("SELECT count(*) FROM rejects WHERE dataset = $d", {"d": report.dataset})
    assert n_rejects == rejected
    assert sum(report.rejects_by_reason.values()) == rejected


# --- Chicago (the session fixture: full file, beats and districts indexed) -----------------------


def test_chicago_totals_match_the_file(chicago_store: ObservatoryStore) -> None:
    [d] = [d for d in chicago_store.datasets() if d["id"] == "chicago_crimes"]
    assert d["rows_read"] == 1_382_764
    assert d["rows_loaded"] + d["rows_rejected"] == d["rows_read"]
    assert d["rows_rejected"] == 0
    assert d["sha256"] == "4a9032be01b1f346d90fd9d37bcd879f0b0fceebe5983c4a1171118c4a940cce"
    assert (d["time_zone"], d["time_precision"], d["kind"]) == ("America/Chicago", "minute", "incidents")
    assert d["ingested_by"] == "test" and d["lanterne_version"]
    assert json.loads(d["mapping_json"])["id"] == "chicago_crimes" and len(d["mapping_sha256"]) == 64
    per_year = dict(
        chicago_store.query(
            "SELECT year(ts), sum(n) FROM incidents WHERE dataset = 'chicago_crimes' GROUP BY 1"
        )
    )
    # SOURCES.md, section 1.
    assert per_year == {2013: 307_030, 2014: 275_200, 2015: 263_929, 2016: 268_813, 2017: 267_792}


def test_chicago_rows_without_coordinates_are_kept_unlocated(chicago_store: ObservatoryStore) -> None:
    [(no_coords, arrests)] = duckdb.sql(
        f"SELECT count(*) FILTER (lat IS NULL OR lon IS NULL), count(*) FILTER (arrest) FROM '{CHICAGO}'"
    ).fetchall()
    assert no_coords == 12_594  # 99.09 % located (SOURCES.md)
    [(unlocated, police, beats)] = chicago_store.query(
        "SELECT count(*) FILTER (h3 IS NULL), count(*) FILTER (channel = 'police_initiated'), "
        "count(*) FILTER (area_layer = 'beats' AND area_code IS NOT NULL) FROM incidents WHERE dataset = 'chicago_crimes'"
    )
    assert unlocated == no_coords
    assert police == arrests
    assert beats == 1_382_764


def test_chicago_cells_belong_to_their_own_rows(chicago_store: ObservatoryStore) -> None:
    """The H3 cells are computed apart from the SQL pass and joined back by position: the
    (time, category, channel, cell) multiset of a day must equal one computed row by row."""
    rows = duckdb.sql(
        f"SELECT datetime_local, primary_type, arrest, lat, lon FROM '{CHICAGO}' "
        "WHERE datetime_local >= '2015-06-01' AND datetime_local < '2015-06-02'"
    ).fetchall()
    expected = Counter(
        (
            ts,
            cat,
            "police_initiated" if arrest else "citizen_report",
            h3.latlng_to_cell(lat, lon, 10) if lat else None,
        )
        for ts, cat, arrest, lat, lon in rows
    )
    stored = Counter(
        chicago_store.query(
            "SELECT ts, category, channel, h3 FROM incidents WHERE dataset = 'chicago_crimes' "
            "AND ts >= '2015-06-01' AND ts < '2015-06-02'"
        )
    )
    assert len(rows) > 500
    assert stored == expected
    assert all(h3.get_resolution(c) == 10 for (_, _, _, c) in stored if c is not None)


def test_chicago_beats_match_the_layer_and_cells_are_indexed(
    chicago_store: ObservatoryStore, obs_layers: dict[str, BoundaryLayer]
) -> None:
    beats = set(load_layer(obs_layers["beats"]).codes)
    codes = {r[0] for r in chicago_store.query("SELECT DISTINCT area_code FROM incidents")}
    assert len(codes & beats) >= 270 and codes <= beats | {
        "2532"
    }  # one beat code not in the Dec 2012 polygons at most
    indexed = dict(chicago_store.query("SELECT layer, count(DISTINCT h3) FROM layer_cells GROUP BY 1"))
    [(cells,)] = chicago_store.query("SELECT count(DISTINCT h3) FROM incidents WHERE h3 IS NOT NULL")
    assert indexed == {"beats": cells, "districts": cells}


def test_no_exact_coordinates_anywhere(chicago_store: ObservatoryStore) -> None:
    columns = chicago_store.query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'main'"
    )
    assert not [c for c in columns if c[1].lower() in {"lat", "lon", "latitude", "longitude", "x", "y"}]
    assert not [c for c in columns if c[2] in ("DOUBLE", "FLOAT") and c[0] == "incidents"]


# --- BAAC ------------------------------------------------------------------------------------------


def test_baac_every_loaded_row_has_its_commune(store: ObservatoryStore) -> None:
    report = ingest(store, BAAC, example("fr_road_accidents"), user_id="t")
    check_invariant(store, report)
    assert report.rows_read == 1_065_053
    # SOURCES.md says every row has a commune code; two 2005 rows do not, and are refused for it.
    missing = [
        r[0]
        for r in duckdb.sql(
            f"SELECT file_row_number + 1 FROM read_parquet('{BAAC}', file_row_number = true) "
            "WHERE com_insee IS NULL OR trim(com_insee) = '' ORDER BY 1"
        ).fetchall()
    ]
    rejected = store.query("SELECT row_number, field, reason FROM rejects ORDER BY 1")
    assert rejected == [(n, "area", "area code is missing") for n in missing]
    [(rows, with_code, located)] = store.query(
        "SELECT count(*), count(*) FILTER (area_layer = 'communes' AND length(area_code) = 5), count(h3) FROM incidents"
    )
    assert rows == with_code == 1_065_053 - len(missing)
    [(coords,)] = duckdb.sql(
        f"SELECT count(*) FROM '{BAAC}' WHERE lat IS NOT NULL AND lon IS NOT NULL AND com_insee IS NOT NULL"
    ).fetchall()
    assert located == coords
    per_year = dict(store.query("SELECT year(ts), count(*) FROM incidents GROUP BY 1"))
    assert per_year[2019] == 58_840 and per_year[2020] == 47_744


# --- SSMSI -----------------------------------------------------------------------------------------


def ssmsi_rows() -> list[dict[str, str]]:
    with gzip.open(SSMSI, "rt", encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def test_ssmsi_counts_and_rates_match_the_file(store: ObservatoryStore) -> None:
    crimes = ingest(store, SSMSI, example("fr_ssmsi_departements"), user_id="t")
    population = ingest(store, SSMSI, example("fr_ssmsi_population"), user_id="t")
    check_invariant(store, crimes)
    check_invariant(store, population)
    assert (crimes.rows_read, crimes.rows_rejected) == (9_898, 0)
    assert (population.rows_read, population.rows_outside_filter) == (707, 9_898 - 707)

    rows = ssmsi_rows()
    faits: Counter[int] = Counter()
    for r in rows:
        faits[2000 + int(r["annee"])] += int(r["faits"])
    stored = dict(store.query("SELECT year(ts), sum(n) FROM incidents GROUP BY 1"))
    assert stored == dict(faits)

    # tauxpourmille = faits / POP × 1000 (faits / LOG × 1000 for burglaries of dwellings),
    # recomputed from the two stored datasets for every row of the file.
    rates = {
        (cat, year, dep, variable): rate
        for cat, year, dep, variable, rate in store.query(
            "SELECT i.category, year(i.ts), i.area_code, m.variable, 1000.0 * i.n / m.value FROM incidents i "
            "JOIN measures m ON m.dataset = 'fr_ssmsi_population' AND m.ts = i.ts AND m.area_code = i.area_code"
        )
    }
    assert len(rates) == 2 * 9_898
    for r in rows:
        expected = float(r["tauxpourmille"].replace(",", "."))
        per = "dwellings" if r["classe"] == "Cambriolages de logement" else "population"
        got = rates[(r["classe"], 2000 + int(r["annee"]), r["Code.département"], per)]
        assert got == pytest.approx(expected, rel=1e-9)
    channels = dict(store.query("SELECT category, any_value(channel) FROM incidents GROUP BY 1"))
    assert channels["Trafic de stupéfiants"] == channels["Usage de stupéfiants"] == "police_initiated"
    assert channels["Cambriolages de logement"] == "citizen_report"


# --- DansMaRue -------------------------------------------------------------------------------------


def test_dansmarue_point_text_and_no_address_in_the_store(
    store: ObservatoryStore, obs_layers: dict[str, BoundaryLayer]
) -> None:
    report = ingest(store, DANSMARUE, example("paris_dansmarue"), user_id="t")
    check_invariant(store, report)
    assert (report.rows_read, report.rows_loaded) == (10_000, 10_000)
    with gzip.open(DANSMARUE, "rt", encoding="utf-8", newline="") as fh:
        source = list(csv.DictReader(fh))
    first = source[0]
    point = eval(first["geo_point_2d"], {"__builtins__": {}})  # the file's Python-dict text (test only)
    cell = h3.latlng_to_cell(point["lat"], point["lon"], 10)
    assert (
        store.query(
            "SELECT count(*) FROM incidents WHERE h3 = $c AND ts = $d AND category = $t",
            {"c": cell, "d": first["datedecl"], "t": first["type"]},
        )[0][0]
        >= 1
    )
    assert store.query("SELECT count(h3) FROM incidents")[0][0] == 10_000
    codes = {r[0] for r in store.query("SELECT DISTINCT area_code FROM incidents")}
    assert codes == set(load_layer(obs_layers["arrondissements"]).codes)  # all 20, as 751xx
    assert dict(store.query("SELECT channel, count(*) FROM incidents GROUP BY 1")) == {
        "citizen_report": 9_920,
        "operator": 80,
    }

    # `adresse` is not mapped: no column, and none of its 10,000 values, in any table.
    addresses = {r["adresse"] for r in source if r["adresse"]}
    assert len(addresses) > 1_000
    columns = store.query(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND data_type = 'VARCHAR'"
    )
    assert not [c for c in columns if c[1] == "adresse"]
    for table, column in columns:
        values = {r[0] for r in store.query(f'SELECT DISTINCT "{column}" FROM "{table}"')}
        assert not values & addresses, (table, column)
        assert not [v for v in values if v and any(a in v for a in list(addresses)[:200])], (table, column)


# --- measures ---------------------------------------------------------------------------------------


def test_bike_counts_offsets_become_paris_time(store: ObservatoryStore) -> None:
    report = ingest(store, BIKES, example("paris_bikes_weather"), user_id="t")
    check_invariant(store, report)
    assert (report.rows_read, report.rows_rejected) == (32_300, 0)
    per_variable = dict(store.query("SELECT variable, count(*) FROM measures GROUP BY 1"))
    assert per_variable == {"bike_count": 32_300, "temperature_c": 32_300, "rain_mm": 32_300}
    # Winter (+01:00) and summer (+02:00) rows keep their wall-clock hour in Europe/Paris.
    got = dict(
        store.query(
            "SELECT ts, value FROM measures WHERE variable = 'bike_count' "
            "AND ts IN ('2019-01-01 00:00', '2019-07-01 01:00')"
        )
    )
    assert {str(k): v for k, v in got.items()} == {"2019-01-01 00:00:00": 407.0, "2019-07-01 01:00:00": 283.0}
    [(total,)] = store.query("SELECT sum(value) FROM measures WHERE variable = 'bike_count'")
    with gzip.open(BIKES, "rt", encoding="utf-8", newline="") as fh:
        assert total == sum(float(r["comptage_h"]) for r in csv.DictReader(fh))


def test_offsets_are_converted_to_the_mapping_zone(store: ObservatoryStore, tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("when,v\n2019-07-01T00:00:00Z,1\n2019-01-01 00:00:00-05:00,2\n2019-03-31 12:30:00,3\n")
    m = parse_mapping(
        {
            "id": "offsets",
            "title": "t",
            "kind": "measures",
            "origin": "test",
            "licence": "test",
            "time": {"column": "when", "time_zone": "Europe/Paris", "precision": "minute"},
            "measures": [{"variable": "v", "column": "v"}],
        }
    )
    ingest(store, f, m, user_id="t")
    got = {v: str(ts) for ts, v in store.query("SELECT ts, value FROM measures")}
    assert got == {1.0: "2019-07-01 02:00:00", 2.0: "2019-01-01 06:00:00", 3.0: "2019-03-31 12:30:00"}


def test_auckland_wide_to_long_with_sensor_locations(store: ObservatoryStore) -> None:
    report = ingest(store, AUCKLAND, example("auckland_footfall"), user_id="t")
    check_invariant(store, report)
    assert (report.rows_read, report.rows_rejected) == (61_367, 0)
    with gzip.open(AUCKLAND, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        sensors = [c for c in reader.fieldnames or [] if c not in ("date", "hour", "year")]
        expected: Counter[str] = Counter()
        first = None
        for row in reader:
            first = first or row
            for s in sensors:
                if row[s].strip():
                    expected[s] += 1
    assert len(sensors) == 21
    stored = dict(
        store.query("SELECT site, count(*) FROM measures WHERE variable = 'pedestrians' GROUP BY 1")
    )
    # Empty cells produce no row; a sensor empty for years is not an error.
    assert stored == {s: n for s, n in expected.items() if n}
    assert report.measures_loaded == sum(expected.values())
    quay = [s for s in sensors if s.startswith("188 Quay Street Lower Albert")]
    assert len(quay) == 2 and all(expected[s] < 61_367 / 2 for s in quay)
    with AUCKLAND_SITES.open(encoding="utf-8", newline="") as fh:
        where = {r["Address"]: (float(r["Latitude"]), float(r["Longitude"])) for r in csv.DictReader(fh)}
    cells = dict(store.query("SELECT site, any_value(h3) FROM measures GROUP BY 1"))
    assert cells == {s: h3.latlng_to_cell(*where[s], 10) for s in stored}
    assert first is not None and first["hour"] == "6:00-6:59"
    # The counting day runs 6:00 → 5:59: the row dated 2019-12-31 "0:00-0:59" is New Year's
    # midnight (crowds), stored at 2020-01-01 00:00; the first row is 2019-01-01 06:00.
    got = dict(
        store.query(
            "SELECT ts, value FROM measures WHERE site = '30 Queen Street' "
            "AND ts IN ('2019-01-01 06:00', '2020-01-01 00:00', '2020-01-02 00:00')"
        )
    )
    with gzip.open(AUCKLAND, "rt", encoding="utf-8", newline="") as fh:
        source = {
            (r["date"], r["hour"]): float(r["30 Queen Street"])
            for r in csv.DictReader(fh)
            if r["30 Queen Street"]
        }
    assert {str(k): v for k, v in got.items()} == {
        "2019-01-01 06:00:00": source[("2019-01-01", "6:00-6:59")],
        "2020-01-01 00:00:00": source[("2019-12-31", "0:00-0:59")],
        "2020-01-02 00:00:00": source[("2020-01-01", "0:00-0:59")],
    }
    assert source[("2019-12-31", "0:00-0:59")] > 5 * source[("2020-01-01", "0:00-0:59")]
    [(earliest,)] = store.query("SELECT min(ts) FROM measures")
    assert str(earliest) == "2019-01-01 06:00:00"


# --- bad rows, bad mappings, bad files -------------------------------------------------------------


def test_bad_rows_are_refused_with_their_number_and_reason(store: ObservatoryStore, tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(BAD_CSV, encoding="utf-8")
    report = ingest(store, f, parse_mapping(BAD_MAPPING), user_id="t")
    check_invariant(store, report)
    rejects = {
        n: (field, reason)
        for n, field, reason in store.query("SELECT row_number, field, reason FROM rejects")
    }
    assert rejects == {
        2: ("time", "time is not a date/time (`%Y-%m-%d %H:%M`)"),
        3: ("location", "coordinates out of range"),
        4: ("location", "coordinates are not numbers"),
        5: ("channel", "channel value not listed in `channel.values`"),
        6: ("category", "category looks like an e-mail address (OB-02)"),
        7: ("category", "category looks like a phone number (OB-02)"),
        8: ("count", "count is not a whole number ≥ 0"),
        9: ("count", "count is not a whole number ≥ 0"),
        10: ("category", "category is empty"),
        12: ("category", "category looks like a vehicle registration plate (OB-02)"),
        13: ("category", "category looks like a French social security number (NIR) (OB-02)"),
        14: ("time", "time is missing"),
        15: ("location", "coordinates incomplete (one of lat, lon)"),
    }
    assert (report.rows_read, report.rows_loaded) == (15, 2)
    loaded = sorted(store.query("SELECT ts, category, channel, h3, n FROM incidents"), key=lambda r: r[1])
    assert [(str(r[0]), r[1], r[2], r[4]) for r in loaded] == [
        ("2021-03-04 12:00:00", "Dégradation", "police_initiated", 4),  # case-insensitive channel, unlocated
        ("2021-03-04 10:15:00", "Vol", "citizen_report", 1),
    ]
    assert loaded[0][3] is None and loaded[1][3] == h3.latlng_to_cell(48.85, 2.35, 10)
    # The refused values are nowhere in the store.
    for table in ("incidents", "rejects", "datasets"):
        dump = json.dumps(store.query(f"SELECT * FROM {table}"), default=str)
        assert "jean.dupont" not in dump and "06 12 34" not in dump and "AB-123-CD" not in dump


def test_personal_identifier_patterns() -> None:
    assert personal_identifier("contact: a.b@c.fr") == "an e-mail address"
    assert personal_identifier("+33 6 12 34 56 78") == "a phone number"
    assert personal_identifier("2 69 05 49 588 157 80") is not None
    assert personal_identifier("1234 AB 56") == "a vehicle registration plate"
    for fine in (
        "THEFT",
        "CRIM SEXUAL ASSAULT",
        "Vols d'accessoires sur véhicules",
        "0110",
        "Accident corporel",
    ):
        assert personal_identifier(fine) is None


def test_wkt_and_geojson_locations(store: ObservatoryStore, tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text(
        'd,geom,c\n2020-01-01,POINT (2.35 48.85),A\n2020-01-02,"LINESTRING (0 0, 1 1)",A\n2020-01-03,,A\n'
    )
    m = {
        **{k: v for k, v in BAD_MAPPING.items() if k not in ("csv", "count", "channel")},
        "id": "wkt",
        "time": {"column": "d", "time_zone": "UTC", "precision": "day"},
        "location": {"wkt": "geom"},
        "category": {"column": "c"},
        "channel": {"value": "operator"},
    }
    report = ingest(store, f, parse_mapping(m), user_id="t")
    assert (report.rows_loaded, report.rejects_by_reason) == (2, {"location: WKT is not a POINT": 1})
    assert sorted(store.query("SELECT h3 FROM incidents"), key=str) == sorted(
        [(h3.latlng_to_cell(48.85, 2.35, 10),), (None,)], key=str
    )

    g = tmp_path / "p.geojson"
    features = [
        {"type": "Feature", "properties": {"t": "2020-05-01T10:00:00", "k": "X"}, "geometry": {"type": "Point", "coordinates": [2.35, 48.85]}},
        {"type": "Feature", "properties": {"t": "2020-05-01T11:00:00", "k": "X"}, "geometry": {"type": "Polygon", "coordinates": []}},
        {"type": "Feature", "properties": {"t": "2020-05-01T12:00:00", "k": 7}, "geometry": None},
    ]  # fmt: skip
    g.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    gm = {**m, "id": "geo", "time": {"column": "t", "time_zone": "UTC", "precision": "hour"}}
    gm["location"], gm["category"] = {"geometry": True}, {"column": "k"}
    report = ingest(store, g, parse_mapping(gm), user_id="t")
    assert (report.rows_read, report.rows_loaded) == (3, 2)
    assert report.rejects_by_reason == {"location: geometry is not a Point": 1}
    assert dict(store.query("SELECT category, h3 FROM incidents WHERE dataset = 'geo'")) == {
        "X": h3.latlng_to_cell(48.85, 2.35, 10),
        "7": None,
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"colour": "red"}, "bad.yml: colour: unknown key"),
        ({"time": "noon"}, "bad.yml: time: Input should be a valid dictionary"),
        ({"channel": {"colum": "who"}}, "bad.yml: channel.colum: unknown key"),
        ({"time": {"column": "when", "time_zone": "Paris", "precision": "minute"}}, "time.time_zone: unknown time zone 'Paris'"),
        ({"kind": "measures"}, "measures need `measures` or `unpivot`"),
        ({"id": "Bad Id"}, "bad.yml: id: String should match pattern"),
    ],
)  # fmt: skip
def test_bad_mapping_is_one_line(tmp_path: Path, change: dict[str, object], expected: str) -> None:
    data = {**BAD_MAPPING, **change}
    data = {k: v for k, v in data.items() if v is not None}
    p = tmp_path / "bad.yml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ObservatoryError) as exc:
        load_mapping(p)
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_missing_time_is_named(tmp_path: Path) -> None:
    p = tmp_path / "m.yml"
    p.write_text(yaml.safe_dump({k: v for k, v in BAD_MAPPING.items() if k != "time"}))
    with pytest.raises(ObservatoryError, match=r"^m\.yml: time: is required$"):
        load_mapping(p)


def test_corrupt_parquet_and_missing_column_name_the_file(store: ObservatoryStore, tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00garbage" * 100 + b"PAR1")
    with pytest.raises(ObservatoryError, match=r"^broken\.parquet: cannot be read as Parquet") as exc:
        ingest(store, broken, example("chicago_crimes"), user_id="t")
    assert "\n" not in str(exc.value)
    with pytest.raises(
        ObservatoryError, match=r"column 'com_insee' \(mapping `location.area.column`\) is not in"
    ):
        ingest(store, CHICAGO, example("fr_road_accidents"), user_id="t")
    assert store.datasets() == []
    assert store.query("SELECT count(*) FROM incidents") == [(0,)]


def test_reingest_needs_replace_and_replace_is_atomic(store: ObservatoryStore, tmp_path: Path) -> None:
    mapping = example("paris_dansmarue")
    first = ingest(store, DANSMARUE, mapping, user_id="t")
    with pytest.raises(ObservatoryError, match="already ingested; pass --replace"):
        ingest(store, DANSMARUE, mapping, user_id="t")
    # A replacement that fails leaves the previous version whole.
    broken = tmp_path / "dmr.csv"
    broken.write_text('numero,type\n1,"unterminated\n')
    with pytest.raises(ObservatoryError):
        ingest(store, broken, mapping, user_id="t", replace=True)
    assert store.query("SELECT count(*) FROM incidents") == [(10_000,)]
    again = ingest(store, DANSMARUE, mapping, user_id="u", replace=True)
    assert again.replaced and again.rows_loaded == first.rows_loaded
    assert store.query("SELECT count(*) FROM incidents") == [(10_000,)]
    assert [(d["id"], d["ingested_by"]) for d in store.datasets()] == [("paris_dansmarue", "u")]


# --- command line ------------------------------------------------------------------------------------


def test_cli_ingest_datasets_rejects_and_audit(tmp_path: Path, obs_layers: dict[str, BoundaryLayer]) -> None:
    site = yaml.safe_load((EXAMPLES / "site.yml").read_text())
    site["store"] = {"url": f"sqlite:///{tmp_path / 'lanterne.db'}"}
    site["observatory"]["layers"] = [
        {**layer, "file": str(obs_layers[layer["id"]].file)}
        for layer in site["observatory"]["layers"]
        if layer["id"] == "arrondissements"
    ]
    cfg = tmp_path / "site.yml"
    cfg.write_text(yaml.safe_dump(site, allow_unicode=True))
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV)
    mapping = tmp_path / "bad.yml"
    mapping.write_text(yaml.safe_dump(BAD_MAPPING, allow_unicode=True))

    ingest_bad = ["observatory", "ingest", str(bad), "--mapping", str(mapping), "--config", str(cfg)]
    r = runner.invoke(app, [*ingest_bad, "--user", "ana"], env={"COLUMNS": "400"})
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert "ingest refused (GV-05)" in r.output and "--what observatory_source --file" in r.output
    _gv_fria(cfg)
    for source in (mapping, EXAMPLES / "paris_dansmarue.yml"):
        r = runner.invoke(
            app,
            ["governance", "approve", "--config", str(cfg), "--what", "observatory_source", "--file", str(source),
             "--dpia", GV_DPIA, "--fria", GV_FRIA, "--ref", GV_NOTICE, "--summary", "reviewed", "--user", "u-dpo"],
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        assert f"DPIA {GV_DPIA}; FRIA {GV_FRIA}" in r.output
    r = runner.invoke(app, [*ingest_bad, "--user", "ana"])
    assert r.exit_code == 0, r.output
    assert "15 rows read, 2 loaded, 13 rejected" in r.output
    assert "category looks like" in r.output and "jean.dupont" not in r.output

    ingest_dansmarue = ["observatory", "ingest", str(DANSMARUE), "-m", str(EXAMPLES / "paris_dansmarue.yml")]
    r = runner.invoke(app, [*ingest_dansmarue, "-c", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "10,000 rows read, 10,000 loaded, 0 rejected" in r.output
    r = runner.invoke(app, [*ingest_dansmarue, "-c", str(cfg)])
    assert r.exit_code == 2 and "pass --replace" in r.output

    r = runner.invoke(app, ["observatory", "datasets", "--config", str(cfg)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "bad_rows" in r.output and "paris_dansmarue" in r.output and "8c19b5ba5d02" in r.output

    out = tmp_path / "rejects.csv"
    r = runner.invoke(
        app,
        ["observatory", "rejects", "bad_rows", "--config", str(cfg), "--csv", str(out)],
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    assert "13 of 15 rows rejected" in r.output and "coordinates out of range" in r.output
    with out.open(newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert [int(x["row_number"]) for x in listed] == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15]
    r = runner.invoke(app, ["observatory", "rejects", "nope", "--config", str(cfg)])
    assert r.exit_code == 2 and "no dataset 'nope'" in r.output

    audit = AuditLog.open(site["store"]["url"])
    try:
        entries = audit.entries(action=Action.DATASET_CHANGE)
    finally:
        audit.close()
    assert (entries[0].user_id, entries[0].object_type, entries[0].object_id) == (
        "ana",
        "dataset",
        "bad_rows",
    )
    assert len(entries) == 2
    details = entries[0].details
    assert (details["rows_read"], details["rows_loaded"], details["rows_rejected"]) == (15, 2, 13)
    assert details["sha256"] and details["mapping_sha256"] and details["change"] == "ingested"


# --- change control: only an approved source is ingested (GV-05) --------------------------------------


def _gv_fria(path: Path) -> None:
    """The FRIA approvals name, recorded on the site of `path`."""
    from datetime import date

    from lanterne.accountability.fria import Elements, FriaRegister
    from lanterne.config import load_config
    from lanterne.runtime.site import open_site

    with open_site(load_config(path)) as site:
        what = ("processes", "period", "affected", "risks", "oversight", "mitigation")
        FriaRegister(site.store.engine, site.audit).add(
            GV_FRIA, date(2026, 5, 1), Elements(*(f"test: the observatory's {w}" for w in what)), "u-dpo"
        )


def _gv_site(tmp_path: Path) -> Path:
    """A site with an observatory store, its audit key beside it, and the FRIA approvals name."""
    path = tmp_path / "site.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "site": "Observatoire de test",
                "cameras": [{"id": "c", "source": "c.mp4", "location": {"lat": 48.85, "lon": 2.35}}],
                "store": {"url": f"sqlite:///{tmp_path / 'lanterne.db'}"},
                "observatory": {"store": "obs.duckdb"},
            }
        )
    )
    _gv_fria(path)
    return path


def test_only_a_source_whose_mapping_file_is_approved_is_ingested(tmp_path: Path) -> None:
    from sqlalchemy import text

    from lanterne.accountability.governance import Change, Governance, GovernanceError
    from lanterne.config import load_config
    from lanterne.core.assets import sha256_file
    from lanterne.runtime.observatory_sources import ingest_source
    from lanterne.runtime.site import open_site

    cfg = load_config(_gv_site(tmp_path))
    data = tmp_path / "bad.csv"
    data.write_text(BAD_CSV)
    mapping = tmp_path / "bad.yml"
    mapping.write_text(yaml.safe_dump(BAD_MAPPING, allow_unicode=True))
    sha = sha256_file(mapping)
    with open_site(cfg) as site:
        governance = Governance(site.store.engine, site.audit)
        with pytest.raises(GovernanceError) as info:
            ingest_source(site, data, mapping, user_id="ana")
        line = str(info.value)
        assert "\n" not in line
        assert line.startswith(
            f"ingest refused (GV-05): no signed governance record for the observatory source {mapping} "
            f"(mapping sha256 {sha}); "
        )
        assert (
            f"lanterne governance approve --what observatory_source --file {mapping} --dpia DPIA_REF" in line
        )
        assert not (tmp_path / "obs.duckdb").exists(), "nothing read, no store opened before the approval"
        # A record of the data file, not of the mapping, approves nothing here.
        governance.approve(
            Change.OBSERVATORY_SOURCE, sha256_file(data), notice_url=GV_NOTICE, summary="the data file",
            user_id="u-dpo", dpia=GV_DPIA, fria=GV_FRIA,
        )  # fmt: skip
        with pytest.raises(GovernanceError, match="no signed governance record"):
            ingest_source(site, data, mapping, user_id="ana")

        record = governance.approve(
            Change.OBSERVATORY_SOURCE, sha, notice_url=GV_NOTICE, summary="test reports, reviewed",
            user_id="u-dpo", dpia=GV_DPIA, fria=GV_FRIA,
        )  # fmt: skip
        report = ingest_source(site, data, mapping, user_id="ana")
        assert (report.dataset, report.rows_read, report.rows_loaded) == ("bad_rows", 15, 2)
        [entry] = site.audit.entries(action=Action.DATASET_CHANGE)
        assert (entry.user_id, entry.object_id) == ("ana", "bad_rows")
        assert entry.details["mapping_file_sha256"] == sha and entry.details["governance_record"] == record.id

        # The same source with its mapping edited (a comment is enough) is a new one.
        mapping.write_text("# now reads a column more\n" + mapping.read_text())
        with pytest.raises(GovernanceError, match=f"mapping sha256 {sha256_file(mapping)}"):
            ingest_source(site, data, mapping, user_id="ana", replace=True)
        mapping.write_text(yaml.safe_dump(BAD_MAPPING, allow_unicode=True))
        assert sha256_file(mapping) == sha

        # A record edited in the database no longer counts, and the refusal says so.
        with site.store.engine.begin() as conn:
            conn.execute(
                text("UPDATE governance_records SET approved_by = 'u-mayor' WHERE sha256 = :s"), {"s": sha}
            )
        with pytest.raises(GovernanceError, match=r"\(1 record with a bad signature ignored\)"):
            ingest_source(site, data, mapping, user_id="ana", replace=True)
        assert len(site.audit.entries(action=Action.DATASET_CHANGE)) == 1
        with pytest.raises(GovernanceError, match=r"none\.yml: mapping file not found"):
            ingest_source(site, data, tmp_path / "none.yml", user_id="ana")


def test_import_cameras_copies_hourly_counts_above_k(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from lanterne.core.types import Counts
    from lanterne.store import Store

    site = yaml.safe_load((EXAMPLES / "site.yml").read_text())
    site["store"] = {"url": f"sqlite:///{tmp_path / 'lanterne.db'}"}
    site["observatory"] = {"store": str(tmp_path / "obs.duckdb"), "min_count": 10}
    cfg = tmp_path / "site.yml"
    cfg.write_text(yaml.safe_dump(site, allow_unicode=True))
    video = Store.open(site["store"]["url"])
    origin = datetime(2024, 7, 1, 6, 0, tzinfo=UTC)  # 08:00 in Paris
    # Two 30-min buckets in the first hour (7 + 8 persons: 15 ≥ k), 3 persons the next hour (< k).
    for start, persons, bikes in ((0, 7, 1), (1800, 8, 0), (3600, 3, 0)):
        entries = {"person": persons} | ({"bicycle": bikes} if bikes else {})
        video.add_counts(Counts("example-camera", "forecourt", start, 1800, 4, 1.5, entries, 900), origin)
    video.close()

    r = runner.invoke(app, ["observatory", "import-cameras", "--config", str(cfg), "--user", "ana"])
    assert r.exit_code == 0, r.output
    assert "3 hourly values from 3 zone buckets, 1 copied, 2 below k = 10 left out" in r.output
    store = ObservatoryStore.open(tmp_path / "obs.duckdb", read_only=True)
    try:
        rows = store.query("SELECT ts, variable, site, h3, value FROM measures")
        cam = site["cameras"][0]["location"]
        assert [(str(ts), v, s, c, x) for ts, v, s, c, x in rows] == [
            (
                "2024-07-01 08:00:00",
                "entries_person",
                "example-camera/forecourt",
                h3.latlng_to_cell(cam["lat"], cam["lon"], 10),
                15.0,
            )
        ]
        [d] = store.datasets()
        assert (d["rows_read"], d["rows_loaded"], d["rows_rejected"]) == (3, 1, 2)
        assert {r[0] for r in store.query("SELECT reason FROM rejects")} == {"count below k = 10 (OB-01)"}
        columns = {c[0] for c in store.query("SELECT column_name FROM information_schema.columns")}
        assert not columns & {"track_id", "track", "frame"}
    finally:
        store.close()
    audit = AuditLog.open(site["store"]["url"])
    try:
        [entry] = audit.entries(action=Action.DATASET_CHANGE)
    finally:
        audit.close()
    assert (entry.user_id, entry.object_id, entry.details["rows_loaded"]) == ("ana", "camera_counts", 1)


def test_docs_observatory_mapping_md_is_generated_from_schema() -> None:
    from lanterne.observatory.mapping import render_docs

    committed = (Path(__file__).resolve().parents[2] / "docs" / "observatory-mapping.md").read_text(
        encoding="utf-8"
    )
    assert committed == render_docs(), (
        "docs/observatory-mapping.md is stale: run `lanterne observatory mapping-docs -o docs/observatory-mapping.md`"
    )
