"""Time series, anomalies and cross-source views on real data: Chicago thefts (2013-2017), Paris
road accidents (BAAC, 2019-2020) beside Paris bike counts and weather, Auckland footfall.

The store is built here by direct inserts of a few categories (seconds, not the full ingest): these
tests are about the series arithmetic, and must not depend on the mapping of every column.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import duckdb
import h3.api.basic_int as h3
import numpy as np
import pytest

from lanterne.observatory.aggregate import AreaRef, Filters, Grain, series
from lanterne.observatory.store import ObservatoryError, ObservatoryStore
from lanterne.observatory.timeseries import (
    CORRELATION_CAVEAT,
    aggregation_of,
    anomalies,
    cross_source,
    decompose,
    explain,
    find_anomalies,
    pearson,
)
from tests.support.observatory_data import AUCKLAND, BAAC, BIKES, CHICAGO, K, h3_cells, register_dataset


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObservatoryStore]:
    """Chicago THEFT and BATTERY with H3 cells; Paris BAAC accidents 2019-2020; Paris bikes and
    weather as measures (named as in examples/observatory/paris_bikes_weather.yml)."""
    obs = ObservatoryStore.open(tmp_path_factory.mktemp("obs") / "observatory.duckdb")
    with obs.transaction() as con:
        rows = con.execute(
            f"SELECT datetime_local, primary_type, arrest, lat, lon FROM '{CHICAGO}' "
            "WHERE primary_type IN ('THEFT', 'BATTERY')"
        ).fetchnumpy()
        cells, located = h3_cells(
            np.ma.filled(rows["lat"].astype(float), np.nan), np.ma.filled(rows["lon"].astype(float), np.nan)
        )
        con.register(
            "chicago",
            {
                "ts": rows["datetime_local"],
                "category": rows["primary_type"].astype(str),
                "channel": np.where(rows["arrest"], "police_initiated", "citizen_report"),
                "h3": cells,
                "located": located,
            },
        )
        con.execute(
            "INSERT INTO incidents SELECT 'chicago_crimes', date_trunc('minute', ts), category, channel, "
            "CASE WHEN located THEN h3 END, NULL, NULL, 1 FROM chicago"
        )
        register_dataset(con, "chicago_crimes", source=CHICAGO.name, time_zone="America/Chicago")
        con.execute(
            f"INSERT INTO incidents SELECT 'fr_road_accidents', date_trunc('minute', datetime_local), "
            f"'accident', 'police_initiated', NULL, 'communes', com_insee, 1 FROM '{BAAC}' "
            "WHERE com_insee LIKE '751%' AND year >= 2019"
        )
        register_dataset(con, "fr_road_accidents", source=BAAC.name)
        for variable, expression in (
            ("bike_count", "comptage_h"),
            ("temperature_c", "temp"),
            ("rain_mm", "greatest(pluie, 0)"),
        ):
            con.execute(
                f"INSERT INTO measures SELECT 'paris_bikes_weather', "
                f"(date_heure_comptage AT TIME ZONE 'Europe/Paris'), '{variable}', NULL, NULL, NULL, NULL, "
                f"{expression} FROM read_csv('{BIKES}') WHERE {expression} IS NOT NULL"
            )
        register_dataset(con, "paris_bikes_weather", kind="measures", source=BIKES.name, precision="hour")
    yield obs
    obs.close()


def _weekly(store: ObservatoryStore, category: str) -> tuple[list[datetime], np.ndarray]:
    # The full weeks of 2013-2017 (2013-01-07 … 2017-12-31): the edges are tested on their own.
    points = series(
        store,
        Filters("chicago_crimes", category=category, start=datetime(2013, 1, 7), end=datetime(2018, 1, 1)),
        Grain.WEEK,
        k=K,
        analyst=True,
    )
    return [p.start for p in points], np.array([p.count for p in points], dtype=float)


# --- decomposition ----------------------------------------------------------------------------


def test_chicago_theft_weekly_decomposition_has_summer_above_winter(store: ObservatoryStore) -> None:
    starts, values = _weekly(store, "THEFT")
    d = decompose(starts, values, Grain.WEEK)
    assert d.notes == ()
    assert len(d.yearly_profile) == 52 and len(d.weekly_profile) == 0
    np.testing.assert_allclose(d.trend + d.yearly + d.weekly + d.residual, values)
    assert np.all(d.weekly == 0)
    # Summer (ISO weeks 27-35, July-August) against winter (weeks 2-10, January-early March).
    summer, winter = d.yearly_profile[26:35].mean(), d.yearly_profile[1:10].mean()
    assert summer > 1.1 > 1.0 > 0.9 > winter
    summer_weeks = np.array([s.month in (7, 8) for s in starts])
    winter_weeks = np.array([s.month in (1, 2) for s in starts])
    assert d.yearly[summer_weeks].mean() > 100 > -100 > d.yearly[winter_weeks].mean()
    # Thefts fell from 2013 to 2015 and rose again by 2017 (59.2k, 51.9k, 56.6k in the full weeks).
    trend_in = {
        year: d.trend[[s.year == year and s.month == 7 for s in starts]].mean() for year in (2013, 2015, 2017)
    }
    assert trend_in[2013] > trend_in[2015] < trend_in[2017]
    # The residual is small beside the seasonal swing: the model explains the series.
    assert np.median(np.abs(d.residual)) < 0.1 * np.median(values)
    # Trend and seasons without noise hold nothing unusual, at any scale.
    assert find_anomalies(starts, d.expected, Grain.WEEK) == []
    assert find_anomalies(starts, d.expected * 0.01, Grain.WEEK) == []


def _bike_hours() -> tuple[list[datetime], list[float | None], list[float | None], list[float | None]]:
    con = duckdb.connect()
    rows = con.execute(
        "SELECT date_trunc('hour', date_heure_comptage AT TIME ZONE 'Europe/Paris') AS h, sum(comptage_h), "
        f"avg(temp), sum(greatest(pluie, 0)) FROM read_csv('{BIKES}') GROUP BY h ORDER BY h"
    ).fetchall()
    found = {r[0]: r[1:] for r in rows}
    starts, moment = [], rows[0][0]
    while moment <= rows[-1][0]:
        starts.append(moment)
        moment += timedelta(hours=1)
    columns = [[found[s][i] if s in found else None for s in starts] for i in range(3)]
    return starts, columns[0], columns[1], columns[2]


@pytest.fixture(scope="module")
def bike_hours() -> tuple[list[datetime], list[float | None], list[float | None], list[float | None]]:
    return _bike_hours()


def test_paris_bikes_hour_of_week_profile_has_commuting_peaks(bike_hours) -> None:  # type: ignore[no-untyped-def]
    starts, bikes, _, _ = bike_hours
    d = decompose(starts, bikes, Grain.HOUR)
    assert len(d.weekly_profile) == 168 and len(d.yearly_profile) == 52
    tuesday = d.weekly_profile[24:48]
    sunday = d.weekly_profile[144:168]
    assert tuesday[8] > 2 and tuesday[18] > 2  # commuting peaks
    assert tuesday[3] < 0.1  # night
    assert tuesday[8] > 2 * sunday[8]  # Sunday morning is not a commute
    assert int(np.isnan(d.observed).sum()) == sum(v is None for v in bikes)


def test_short_series_has_no_yearly_seasonality_and_says_so(store: ObservatoryStore) -> None:
    starts, values = _weekly(store, "THEFT")
    d = decompose(starts[:78], values[:78], Grain.WEEK)
    assert np.all(d.yearly == 0) and len(d.yearly_profile) == 0
    assert any("no yearly seasonality" in note and "1.5 years" in note for note in d.notes)
    np.testing.assert_allclose(d.trend + d.yearly + d.weekly + d.residual, values[:78])


def test_daily_weekday_profile_sums_to_a_week() -> None:
    starts = [datetime(2020, 1, 6) + timedelta(days=i) for i in range(70)]
    d = decompose(starts, [10.0, 10, 10, 10, 10, 20, 20] * 10, Grain.DAY)
    np.testing.assert_allclose(d.weekly_profile, np.array([10, 10, 10, 10, 10, 20, 20]) / (90 / 7))
    np.testing.assert_allclose(d.residual, 0, atol=1e-9)


# --- anomalies, pure --------------------------------------------------------------------------


def test_injected_spike_is_found_with_its_ratio_and_named_in_words(store: ObservatoryStore) -> None:
    starts, values = _weekly(store, "THEFT")
    usual = {a.start for a in find_anomalies(starts, values, Grain.WEEK)}
    assert len(usual) <= 5 and datetime(2016, 8, 8) not in usual
    spiked = values.copy()
    week = starts.index(datetime(2016, 8, 8))
    spiked[week] *= 3
    found = find_anomalies(starts, spiked, Grain.WEEK)
    assert found[0].start == datetime(2016, 8, 8) and {a.start for a in found} - usual == {
        datetime(2016, 8, 8)
    }
    spike = found[0]
    assert 2.7 < spike.ratio < 3.3 and spike.score > 10
    assert spike.observed == int(spiked[week])
    assert spike.text.startswith("week 32 of 2016 (8 Aug): 3.")
    assert "the usual for August" in spike.text and f"{spike.observed:,} vs about" in spike.text
    # A dip reads the same way.
    dipped = values.copy()
    dipped[starts.index(datetime(2015, 3, 2))] *= 0.4
    dip = find_anomalies(starts, dipped, Grain.WEEK)[0]
    assert dip.score < -5 and 0.35 < dip.ratio < 0.45
    assert dip.text.startswith("week 10 of 2015 (2 Mar): 0.4× the usual for March")


def test_scaling_a_series_flags_nothing_new() -> None:
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT date_trunc('day', datetime_local) AS d, count(*) FROM '{CHICAGO}' "
        "WHERE primary_type = 'BATTERY' GROUP BY d ORDER BY d"
    ).fetchall()
    starts, values = [r[0] for r in rows], np.array([r[1] for r in rows], dtype=float)
    found = find_anomalies(starts, values, Grain.DAY)
    # New Year's Day stands out every year (the 1 January date default of the records as well as
    # the night itself).
    assert {datetime(2013, 1, 1), datetime(2014, 1, 1), datetime(2015, 1, 1), datetime(2016, 1, 1)} <= {
        a.start for a in found
    }
    assert found[0].text.startswith("Tuesday 1 Jan 2013: 2.7× the usual for a Tuesday in January")
    scaled = find_anomalies(starts, values * 10, Grain.DAY)
    assert [a.start for a in scaled] == [a.start for a in found]
    np.testing.assert_allclose([a.ratio for a in scaled], [a.ratio for a in found])
    # A constant series has nothing unusual in it (and a zero spread does not divide by zero).
    assert find_anomalies(starts, np.full(len(starts), 37.0), Grain.DAY) == []


def test_auckland_lockdowns_are_dips_in_footfall() -> None:
    con = duckdb.connect()
    rows = con.execute(
        "SELECT date_trunc('week', date::DATE)::TIMESTAMP AS w, sum(\"45 Queen Street\"), "
        f"count(\"45 Queen Street\") FROM read_csv('{AUCKLAND}') GROUP BY w ORDER BY w"
    ).fetchall()
    # A week with fewer than 150 of its 168 hours measured is a gap, not a quiet week.
    starts = [r[0] for r in rows]
    values = [r[1] if r[2] >= 150 else None for r in rows]
    found = find_anomalies(starts, values, Grain.WEEK)
    by_start = {a.start: a for a in found}
    # Alert level 4 from 26 March 2020; Auckland's August 2021 lockdown.
    for week in (datetime(2020, 3, 30), datetime(2020, 4, 6), datetime(2021, 8, 23), datetime(2021, 9, 6)):
        assert by_start[week].ratio < 0.3 and by_start[week].score < -4
    assert by_start[datetime(2020, 4, 6)].text.startswith("week 15 of 2020 (6 Apr): 0.1× the usual for April")
    assert sum(a.score < 0 for a in found) > 0.8 * len(found)
    assert not any(v is None and s in by_start for s, v in zip(starts, values, strict=True))


def test_explain_covers_each_grain() -> None:
    assert (
        explain(datetime(2016, 8, 8, 14), 412, 133.0, Grain.HOUR)
        == "Monday 8 Aug 2016, 14:00: 3.1× the usual for a Monday at 14:00 in August (412 vs about 133)"
    )
    assert explain(datetime(2016, 8, 8), 0, 4.26, Grain.DAY) == (
        "Monday 8 Aug 2016: none recorded, against about 4.3 usually for a Monday in August"
    )
    assert explain(datetime(2015, 3, 1), 1234, 3085.0, Grain.MONTH) == (
        "March 2015: 0.4× the usual for March (1,234 vs about 3,085)"
    )
    assert explain(datetime(2016, 8, 8), 40, 2.0, Grain.WEEK, seasonal=False) == (
        "week 32 of 2016 (8 Aug): 20× the usual for the weeks around it (40 vs about 2.0)"
    )
    with pytest.raises(ObservatoryError, match="grain"):
        find_anomalies([datetime(2013, 1, 1)] * 5, [1.0] * 5, Grain.YEAR)


# --- anomalies on the store -------------------------------------------------------------------


def test_periods_before_the_first_record_are_not_flagged(store: ObservatoryStore) -> None:
    theft = Filters("chicago_crimes", category="THEFT", start=datetime(2012, 6, 4), end=datetime(2018, 1, 1))
    # Before 1 January 2013 the dataset has no record at all: no data, not thirty weeks of zero
    # thefts. The series starts with the week holding the first record...
    points = series(store, theft, Grain.WEEK, k=K, analyst=True)
    assert points[0].start == datetime(2012, 12, 31) and points[0].count > 0
    # ...and that first week, partial (31 December has no record), is not judged either.
    found = anomalies(store, theft, Grain.WEEK, k=K, analyst=True)
    assert all(a.start >= datetime(2013, 1, 7) for a in found)
    # A window entirely outside the data is an empty series, however far it reaches.
    assert series(store, Filters("chicago_crimes", start=datetime(2030, 1, 1)), Grain.HOUR, k=K) == []


def test_source_gap_is_not_an_anomaly_but_a_real_zero_is(store: ObservatoryStore) -> None:
    # A copy of the thefts with one month the source never published, and one where it published
    # only other categories (thefts genuinely absent): the first is a gap, the second a finding.
    with store.transaction() as con:
        con.execute(
            "INSERT INTO incidents SELECT 'chicago_gap', ts, category, channel, h3, area_layer, area_code, n "
            "FROM incidents WHERE dataset = 'chicago_crimes' "
            "AND NOT (ts >= '2015-06-01' AND ts < '2015-07-01') "
            "AND NOT (category = 'THEFT' AND ts >= '2016-06-01' AND ts < '2016-07-01')"
        )
        register_dataset(con, "chicago_gap", source=CHICAGO.name, time_zone="America/Chicago")
    gap = Filters("chicago_gap", category="THEFT")
    found = {a.start: a for a in anomalies(store, gap, Grain.MONTH, k=K, analyst=True)}
    before = {
        a.start for a in anomalies(store, Filters("chicago_crimes", category="THEFT"), Grain.MONTH, k=K)
    }
    assert set(found) - before == {datetime(2016, 6, 1)}
    assert found[datetime(2016, 6, 1)].observed == 0
    assert found[datetime(2016, 6, 1)].text.startswith("June 2016: none recorded, against about")
    # Taken as a zero, the unpublished month would have been the top anomaly.
    points = series(store, gap, Grain.MONTH, k=K, analyst=True)
    naive = find_anomalies([p.start for p in points], [p.count for p in points], Grain.MONTH)
    assert datetime(2015, 6, 1) in {a.start for a in naive} and datetime(2015, 6, 1) not in found


def test_small_counts_are_withheld_outside_the_analyst_role(store: ObservatoryStore) -> None:
    accidents = Filters("fr_road_accidents")
    # Paris's spring 2020 lockdown: weeks far below the usual.
    weekly = anomalies(store, accidents, Grain.WEEK, k=K, analyst=True)
    lockdown = [a for a in weekly if datetime(2020, 3, 16) <= a.start < datetime(2020, 5, 11)]
    assert len(lockdown) >= 6 and all(a.ratio < 0.5 for a in lockdown)
    # Day by day, its emptiest days are anomalies of fewer than k accidents.
    exact = anomalies(store, accidents, Grain.DAY, k=K, analyst=True)
    public = anomalies(store, accidents, Grain.DAY, k=K)
    published = {p.start: p for p in series(store, accidents, Grain.DAY, k=K)}
    assert any(a.observed < K and datetime(2020, 3, 17) <= a.start < datetime(2020, 5, 11) for a in exact)
    assert public.withheld == sum(published[a.start].suppressed for a in exact) > 0
    assert len(public) + public.withheld == len(exact)
    assert all(a.observed >= K and not published[a.start].suppressed for a in public)
    assert any("withheld" in note for note in public.notes)
    assert exact.withheld == 0
    with pytest.raises(ObservatoryError, match="legal floor"):
        anomalies(store, accidents, Grain.WEEK, k=2)


def test_area_series_anomalies(store: ObservatoryStore) -> None:
    # The busiest resolution-8 cell for thefts (the Loop / Magnificent Mile).
    cell = store.query(
        "SELECT h3 >> 0 FROM incidents WHERE dataset = 'chicago_crimes' AND category = 'THEFT' "
        "AND h3 IS NOT NULL GROUP BY h3 ORDER BY count(*) DESC LIMIT 1"
    )[0][0]
    area = AreaRef("h3:8", h3.int_to_str(h3.cell_to_parent(cell, 8)).lower())
    theft = Filters("chicago_crimes", category="THEFT")
    found = anomalies(store, theft, Grain.WEEK, area=area, k=K)
    points = {p.start: p.count for p in series(store, theft, Grain.WEEK, area=area, k=K)}
    assert all(points[a.start] == a.observed for a in found)
    with pytest.raises(ObservatoryError, match="H3"):
        anomalies(store, theft, Grain.WEEK, area=AreaRef("h3:8", "not-a-cell"), k=K)


# --- cross-source -----------------------------------------------------------------------------


def test_bikes_follow_temperature_up_and_rain_down_hourly(bike_hours) -> None:  # type: ignore[no-untyped-def]
    _, bikes, temp, rain = bike_hours
    with_temp, n = pearson(bikes, temp)
    with_rain, _ = pearson(bikes, rain)
    assert n > 32_000
    # 0.24 and -0.04 over 32,000 hours; both signs hold in each year 2019-2022 separately.
    assert with_temp is not None and with_temp > 0.15
    assert with_rain is not None and with_rain < -0.02
    assert pearson([1, 2, 3], [5, 5, 5]) == (None, 3)
    assert pearson([1, None, 3, 4], [2, 3, None, 8])[1] == 2


def test_accidents_beside_bikes_and_weather(store: ObservatoryStore) -> None:
    measures = [
        ("paris_bikes_weather", "bike_count"),
        ("paris_bikes_weather", "temperature_c"),
        ("paris_bikes_weather", "rain_mm", "sum"),
    ]
    exact = cross_source(store, Filters("fr_road_accidents"), Grain.DAY, measures, k=K, analyst=True)
    public = cross_source(store, Filters("fr_road_accidents"), Grain.DAY, measures, k=K)
    assert (
        exact.starts == public.starts and exact.starts[0] == datetime(2019, 1, 1) and len(exact.starts) == 731
    )
    assert [m.aggregation for m in exact.measures] == ["sum", "mean", "sum"]
    assert aggregation_of("Temperature") == "mean" and aggregation_of("POP") == "mean"
    assert aggregation_of("pedestrians") == "sum" and aggregation_of("rain_mm") == "sum"
    bikes, temp, _ = exact.measures
    # More cycling, more traffic, more accidents: 0.41 over the 731 days.
    assert bikes.correlation is not None and bikes.correlation > 0.3 and bikes.periods == 731
    assert temp.values[0] is not None and -5 < temp.values[0] < 15  # a January day's mean, not a sum
    # Suppressed days (fewer than k accidents) are None and stay out of the correlation.
    hidden = sum(c is None for c in public.incidents)
    assert hidden > 100 and all(c is None or c == 0 or c >= K for c in public.incidents)
    assert public.measures[0].periods == bikes.periods - sum(
        c is None and v is not None for c, v in zip(public.incidents, bikes.values, strict=True)
    )
    assert public.caveat == CORRELATION_CAVEAT and "not causation" in public.caveat
    with pytest.raises(ObservatoryError, match="no variable 'wind'"):
        cross_source(store, Filters("fr_road_accidents"), Grain.DAY, [("paris_bikes_weather", "wind")], k=K)
    with pytest.raises(ObservatoryError, match="not incidents"):
        cross_source(store, Filters("paris_bikes_weather"), Grain.DAY, measures, k=K)
    with pytest.raises(ObservatoryError, match="sum or mean"):
        cross_source(
            store,
            Filters("fr_road_accidents"),
            Grain.DAY,
            [("paris_bikes_weather", "temperature_c", "max")],
            k=K,
        )  # type: ignore[list-item]
