"""Counts by place and period, checked against the source files recomputed independently
(DuckDB on the parquet, the h3 library, shapely on the raw GeoJSON): an aggregation bug that
moves rows between areas or periods shows up as a mismatch here."""

from __future__ import annotations

import gzip
import io
import itertools
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from h3.api import basic_int as h3int

from lanterne.config.schema import BoundaryLayer
from lanterne.observatory.aggregate import (
    AreaRef,
    ExposureSpec,
    Filters,
    Grain,
    categories,
    counts_by_h3,
    counts_by_layer,
    periods,
    profile,
    series,
)
from lanterne.observatory.layers import ensure_layer_cells, load_layer
from lanterne.observatory.store import ObservatoryError, ObservatoryStore
from tests.support.observatory_data import BEATS, BOUNDARIES, DATA, DISTRICTS, K
from tests.support.observatory_data import CHICAGO as PARQUET

JULY_2016 = {"start": datetime(2016, 7, 1), "end": datetime(2016, 8, 1)}


@pytest.fixture
def store(chicago_store: ObservatoryStore) -> ObservatoryStore:
    """The session's Chicago store (conftest): the full parquet through the example mapping,
    layers beats and districts indexed. Read only here."""
    return chicago_store


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    """The parquet as the tests' independent reference."""
    return duckdb.sql(
        f"SELECT datetime_local AS ts, primary_type AS category, arrest, beat, district, lat, lon FROM '{PARQUET}'"
    ).df()


def narcotics_july(source: pd.DataFrame) -> pd.DataFrame:
    return source[
        (source.category == "NARCOTICS") & (source.ts >= JULY_2016["start"]) & (source.ts < JULY_2016["end"])
    ]


# --- layers -----------------------------------------------------------------------------------


def test_layer_codes_labels_and_light_geojson() -> None:
    raw = json.loads(BEATS.file.read_text())
    layer = load_layer(BEATS)
    assert set(layer.codes) == {str(f["properties"]["beat_num"]) for f in raw["features"]}
    assert len(layer.codes) == len(set(layer.codes)) == 275  # 277 features, two beats drawn in two parts
    assert layer.labels["1713"] == "1713"  # no label property: the code is the label
    features = layer.geojson["features"]
    assert [f["properties"] for f in features][:1] == [{"code": layer.codes[0], "label": layer.codes[0]}]
    assert all(set(f["properties"]) == {"code", "label"} for f in features)
    xs = np.array(shapely.get_coordinates(shapely.from_geojson(json.dumps(features[0]["geometry"]))))
    assert np.allclose(xs, np.round(xs, 5))
    assert load_layer(BEATS) is layer  # cached
    districts = load_layer(DISTRICTS)
    assert districts.labels["7"] == "7TH" and len(districts.codes) == 23  # 25 features


def test_layer_cache_follows_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "d.geojson"
    copy.write_bytes(DISTRICTS.file.read_bytes())
    settings = BoundaryLayer(id="d", file=copy, key="district")
    first = load_layer(settings)
    data = json.loads(copy.read_text())
    data["features"] = data["features"][:3]
    copy.write_text(json.dumps(data))
    second = load_layer(settings)
    assert len(second.codes) == 3 and second.sha256 != first.sha256


def test_layer_errors_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ObservatoryError, match="no property 'beat'"):
        load_layer(BoundaryLayer(id="x", file=BEATS.file, key="beat"))
    with pytest.raises(ObservatoryError, match="not found"):
        load_layer(BoundaryLayer(id="x", file=tmp_path / "missing.geojson", key="code"))
    point = tmp_path / "p.geojson"
    point.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"c": 1},
                        "geometry": {"type": "Point", "coordinates": [0, 0]},
                    }
                ],
            }
        )
    )
    with pytest.raises(ObservatoryError, match="not a polygon"):
        load_layer(BoundaryLayer(id="x", file=point, key="c"))


def test_layer_cells_hold_the_cell_centre(store: ObservatoryStore) -> None:
    layer = load_layer(DISTRICTS)
    assert ensure_layer_cells(store, layer) == 0  # ingest indexed it; a second call adds nothing
    rows = store.query(
        "SELECT h3, area_code FROM layer_cells WHERE layer = 'districts' AND layer_sha256 = $sha",
        {"sha": layer.sha256},
    )
    stored = store.query("SELECT count(DISTINCT h3) FROM incidents WHERE h3 IS NOT NULL")[0][0]
    assert len(rows) == stored
    raw = json.loads(DISTRICTS.file.read_text())
    shapes: dict[str, list[shapely.Geometry]] = {}
    for f in raw["features"]:
        shapes.setdefault(str(f["properties"]["district"]), []).append(
            shapely.from_geojson(json.dumps(f["geometry"]))
        )
    rng = np.random.default_rng(7)
    for cell, code in [rows[i] for i in rng.choice(len(rows), 300, replace=False)]:
        lat, lon = h3int.cell_to_latlng(cell)
        inside = [c for c, parts in shapes.items() if any(p.covers(shapely.Point(lon, lat)) for p in parts)]
        assert (code in inside) if code is not None else not inside
    assert sum(code is None for _, code in rows) < 0.02 * len(rows)  # lake shore and airport edges only


def test_stale_layer_versions_are_dropped(tmp_path: Path) -> None:
    own = ObservatoryStore.open(tmp_path / "s.duckdb")
    cell = h3int.latlng_to_cell(41.88, -87.63, 10)
    own.query(
        "INSERT INTO incidents VALUES ('x', TIMESTAMP '2016-01-01', 'c', 'citizen_report', $h, NULL, NULL, 1)",
        {"h": cell},
    )
    own.query("INSERT INTO layer_cells VALUES ('districts', 'old', $h, '99')", {"h": cell})
    layer = load_layer(DISTRICTS)
    assert ensure_layer_cells(own, layer) == 1
    assert own.query("SELECT layer_sha256, area_code FROM layer_cells") == [(layer.sha256, "1")]
    own.close()


# --- maps ------------------------------------------------------------------------------------


def test_h3_map_for_analysts_matches_the_source(store: ObservatoryStore, source: pd.DataFrame) -> None:
    rows = narcotics_july(source)
    located = rows[rows.lat.notna()]
    expected = Counter(
        h3.cell_to_parent(h3.latlng_to_cell(a, b, 10), 8)
        for a, b in zip(located.lat, located.lon, strict=True)
    )
    m = counts_by_h3(store, Filters("chicago_crimes", "NARCOTICS", **JULY_2016), 8, k=K, analyst=True)
    assert m.level == "h3:8"
    assert {c.key: c.count for c in m.cells} == dict(expected)
    assert m.total == len(located) and m.unlocated == len(rows) - len(located)
    assert m.suppressed_cells == 0 and not any(c.suppressed for c in m.cells)


def test_h3_map_channel_filter(store: ObservatoryStore, source: pd.DataFrame) -> None:
    rows = source[
        (source.category == "THEFT") & (source.ts.dt.year == 2015) & source.arrest & source.lat.notna()
    ]
    m = counts_by_h3(
        store,
        Filters(
            "chicago_crimes",
            "THEFT",
            channels=("police_initiated",),
            start=datetime(2015, 1, 1),
            end=datetime(2016, 1, 1),
        ),
        6,
        k=K,
        analyst=True,
    )
    assert m.total == len(rows)


def test_beats_map_uses_the_recorded_beat(store: ObservatoryStore, source: pd.DataFrame) -> None:
    rows = narcotics_july(source)
    m = counts_by_layer(
        store, Filters("chicago_crimes", "NARCOTICS", **JULY_2016), load_layer(BEATS), k=K, analyst=True
    )
    expected = rows.beat.astype(int).astype(str).value_counts().to_dict()
    got = {c.key: c.count for c in m.cells if c.count}
    assert got == expected
    assert len(m.cells) == 275  # every beat listed, zeros included
    assert m.total == len(rows) and m.unlocated == 0


def test_districts_map_by_geometry_close_to_recorded_district(
    store: ObservatoryStore, source: pd.DataFrame
) -> None:
    """Districts come from the cell's polygon (rows record beats for the beats layer only); the
    recorded district agrees for most rows (SOURCES.md: ~92 % beat agreement)."""
    rows = narcotics_july(source)
    m = counts_by_layer(
        store, Filters("chicago_crimes", "NARCOTICS", **JULY_2016), load_layer(DISTRICTS), k=K, analyst=True
    )
    assert m.total + m.unlocated == len(rows)
    assert m.unlocated >= rows.lat.isna().sum()
    recorded = rows.district.astype(int).astype(str).value_counts()
    gap = sum(abs((c.count or 0) - recorded.get(c.key, 0)) for c in m.cells)
    assert gap < 0.1 * len(rows)
    assert {c.label for c in m.cells} >= {"7TH", "11TH"}


def test_rates_per_exposure_reproduce_ssmsi_taux(tmp_path: Path) -> None:
    """SSMSI publishes faits, POP and tauxpourmille = faits / POP × 1000 per département-year:
    rates from counts and a population measure must give its published rate back."""
    raw = pd.read_csv(
        io.BytesIO(
            gzip.decompress((DATA / "fr_ssmsi_delinquance_departements_2016_2022.csv.gz").read_bytes())
        ),
        sep=";",
        decimal=",",
        dtype={"Code.département": str},
        encoding="utf-8-sig",
    )
    own = ObservatoryStore.open(tmp_path / "fr.duckdb")
    cur = own.cursor()
    facts = pd.DataFrame(
        {
            "dataset": "ssmsi",
            "ts": pd.to_datetime((raw.annee + 2000).astype(str) + "-01-01"),
            "category": raw.classe,
            "channel": "citizen_report",
            "h3": pd.array([None] * len(raw), dtype="Int64"),
            "area_layer": "departements",
            "area_code": raw["Code.département"],
            "n": raw.faits.astype(int),
        }
    )
    pop = raw[raw.classe == "Cambriolages de logement"]
    people = pd.DataFrame(
        {
            "dataset": "pop",
            "ts": pd.to_datetime((pop.annee + 2000).astype(str) + "-01-01"),
            "variable": "population",
            "site": None,
            "h3": pd.array([None] * len(pop), dtype="Int64"),
            "area_layer": "departements",
            "area_code": pop["Code.département"],
            "value": pop.POP.astype(float),
        }
    )
    cur.register("facts", facts)
    cur.register("people", people)
    cur.execute("INSERT INTO incidents SELECT * FROM facts")
    cur.execute("INSERT INTO measures SELECT * FROM people")
    for name, kind in (("ssmsi", "incidents"), ("pop", "measures")):
        cur.execute(
            "INSERT INTO datasets VALUES ($id, 't', $kind, 'o', 'l', 'f', 's', 'm', '{}', 'Europe/Paris', 'year',"
            " 0, 0, 0, 'test', TIMESTAMP '2024-01-01', 'v')",
            {"id": name, "kind": kind},
        )
    cur.close()
    layer = load_layer(
        BoundaryLayer(
            id="departements",
            file=BOUNDARIES / "france_departements_simplified.geojson",
            key="code",
            label="nom",
        )
    )
    indicator = "Vols violents sans arme"
    m = counts_by_layer(
        own,
        Filters("ssmsi", indicator, start=datetime(2019, 1, 1), end=datetime(2020, 1, 1)),
        layer,
        k=K,
        exposure=ExposureSpec("pop", "population"),
    )
    published = raw[(raw.classe == indicator) & (raw.annee == 19)].set_index("Code.département")
    by_key = {c.key: c for c in m.cells}
    assert set(by_key) == set(published.index)  # 96 drawn + overseas (label None)
    assert by_key["971"].label is None and by_key["75"].label == "Paris"
    checked = 0
    for code, row in published.iterrows():
        cell = by_key[code]
        assert cell.exposure == pytest.approx(row.POP)
        if not cell.suppressed:
            assert cell.rate == pytest.approx(row.tauxpourmille, abs=6e-4)  # published to 3 decimals
            checked += 1
    assert checked > 90
    # Two years: exposure is person-years (each year's population once).
    two = counts_by_layer(
        own,
        Filters("ssmsi", indicator, start=datetime(2019, 1, 1), end=datetime(2021, 1, 1)),
        layer,
        k=K,
        exposure=ExposureSpec("pop", "population"),
    )
    pops = raw[(raw.classe == indicator) & raw.annee.isin([19, 20])].groupby("Code.département").POP.sum()
    assert {c.key: c.exposure for c in two.cells}["13"] == pytest.approx(pops["13"])
    own.close()


# --- time -------------------------------------------------------------------------------------


def test_weekly_series_for_a_district_is_dense_and_adds_up(store: ObservatoryStore) -> None:
    filters = Filters("chicago_crimes", "NARCOTICS", start=datetime(2014, 1, 6), end=datetime(2016, 1, 4))
    points = series(store, filters, Grain.WEEK, area=AreaRef("layer:districts", "11"), k=K, analyst=True)
    assert len(points) == 104
    assert all(p.start.weekday() == 0 for p in points)
    assert all(b.start - a.start == timedelta(days=7) for a, b in itertools.pairwise(points))
    by_district = counts_by_layer(store, filters, load_layer(DISTRICTS), k=K, analyst=True)
    assert sum(p.count or 0 for p in points) == {c.key: c.count for c in by_district.cells}["11"]


def test_series_for_an_h3_cell_matches_the_map(store: ObservatoryStore) -> None:
    filters = Filters("chicago_crimes", "BATTERY", start=datetime(2017, 1, 1), end=datetime(2018, 1, 1))
    m = counts_by_h3(store, filters, 7, k=K, analyst=True)
    for cell in sorted(m.cells, key=lambda c: -(c.count or 0))[:3]:
        points = series(store, filters, Grain.MONTH, area=AreaRef("h3:7", cell.key), k=K, analyst=True)
        assert len(points) == 12 and sum(p.count or 0 for p in points) == cell.count


def test_series_without_bounds_spans_the_data_with_zero_periods(
    store: ObservatoryStore, source: pd.DataFrame
) -> None:
    points = series(store, Filters("chicago_crimes", "NON-CRIMINAL"), Grain.MONTH, k=K, analyst=True)
    rows = source[source.category == "NON-CRIMINAL"]
    assert points[0].start == datetime(rows.ts.min().year, rows.ts.min().month, 1)
    assert sum(p.count or 0 for p in points) == len(rows)
    assert len(points) == len(periods(rows.ts.min(), rows.ts.max(), Grain.MONTH))
    assert periods(datetime(2016, 12, 31, 23), datetime(2017, 1, 2), Grain.WEEK) == [
        datetime(2016, 12, 26),
        datetime(2017, 1, 2),
    ]


def test_profiles_match_the_source(store: ObservatoryStore, source: pd.DataFrame) -> None:
    rows = source[(source.category == "BURGLARY") & (source.ts.dt.year == 2016)]
    filters = Filters("chicago_crimes", "BURGLARY", start=datetime(2016, 1, 1), end=datetime(2017, 1, 1))
    assert profile(store, filters, "dow", k=K, analyst=True) == sorted(
        Counter(rows.ts.dt.day_of_week).items()
    )
    assert profile(store, filters, "hour", k=K, analyst=True) == sorted(Counter(rows.ts.dt.hour).items())
    months = profile(store, filters, "month", k=K, analyst=True)
    assert [m for m, _ in months] == list(range(1, 13)) and months == sorted(
        Counter(rows.ts.dt.month).items()
    )


def test_categories_match_the_source(store: ObservatoryStore, source: pd.DataFrame) -> None:
    got = categories(store, "chicago_crimes")
    assert dict(got) == source.category.astype(str).value_counts().to_dict()
    assert got[0] == ("THEFT", 316360)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: counts_by_h3(s, Filters("nope"), 8, k=K), "no dataset 'nope'"),
        (lambda s: counts_by_h3(s, Filters("chicago_crimes"), 8, k=3), "legal floor"),
        (lambda s: counts_by_h3(s, Filters("chicago_crimes"), 10, k=K), "0 to 9"),
        (
            lambda s: counts_by_h3(s, Filters("chicago_crimes", channels=("patrol",)), 8, k=K),
            "unknown channel",
        ),
        (
            lambda s: series(s, Filters("chicago_crimes"), Grain.DAY, area=AreaRef("h3:8", "zz"), k=K),
            "not an H3 cell",
        ),
        (
            lambda s: series(s, Filters("chicago_crimes"), Grain.DAY, area=AreaRef("layer:wards", "1"), k=K),
            "not indexed",
        ),
        (
            lambda s: series(s, Filters("chicago_crimes"), Grain.DAY, area=AreaRef("beats", "1"), k=K),
            "map level",
        ),
        (lambda s: profile(s, Filters("chicago_crimes"), "minute", k=K), "not offered"),  # type: ignore[arg-type]
        (
            lambda s: counts_by_h3(
                s, Filters("chicago_crimes", start=datetime(2017, 1, 1), end=datetime(2016, 1, 1)), 8, k=K
            ),
            "empty",
        ),
    ],
)
def test_user_mistakes_raise_one_line_errors(store: ObservatoryStore, call, message: str) -> None:
    with pytest.raises(ObservatoryError, match=message) as err:
        call(store)
    assert "\n" not in str(err.value)


def test_a_series_too_long_for_its_grain_is_refused(
    chicago_store: ObservatoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hourly over five years is 43,824 periods; past the cap the request is refused in words, not
    computed (a client asking for hours up to the year 9999 is cut to the data first)."""
    from lanterne.observatory import aggregate

    hourly = Filters("chicago_crimes", category="NARCOTICS")
    assert len(series(chicago_store, hourly, Grain.HOUR, k=K)) == 43_824
    far = Filters("chicago_crimes", start=datetime(2013, 1, 1), end=datetime(9999, 12, 31))
    assert series(chicago_store, far, Grain.WEEK, k=K)[-1].start == datetime(2017, 12, 25)
    monkeypatch.setattr(aggregate, "MAX_PERIODS", 40_000)
    with pytest.raises(ObservatoryError, match="more than 40,000 periods; choose a coarser grain"):
        series(chicago_store, hourly, Grain.HOUR, k=K)
