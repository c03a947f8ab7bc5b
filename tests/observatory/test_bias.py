"""Bias audit and feedback-loop simulation, on the shipped Chicago and BAAC files.

Chicago comes from the session fixture `chicago_store` (full ingest through the example mapping,
beats indexed); BAAC is loaded here by direct insert (commune code and resolution-10 cell, 4 s),
since only its coverage by year is under test.

The reference figures come from the research note (§6.3, computed independently on the same
Chicago file over its 274 police beats) and from SOURCES.md (arrest-at-record shares, BAAC
coordinate coverage by year).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lanterne.config.schema import BoundaryLayer
from lanterne.observatory.aggregate import Filters
from lanterne.observatory.bias import (
    CAVEAT,
    audit,
    drift_notes,
    gini,
    hotspots,
    jaccard,
    persistence,
    top_areas,
    top_decile_size,
)
from lanterne.observatory.feedback import Allocation, Update, feedback_loop
from lanterne.observatory.layers import Layer, load_layer
from lanterne.observatory.store import ObservatoryError, ObservatoryStore
from tests.support.observatory_data import BAAC, K, h3_cells, register_dataset


@pytest.fixture(scope="module")
def beats(obs_layers: dict[str, BoundaryLayer]) -> Layer:
    return load_layer(obs_layers["beats"])


@pytest.fixture(scope="module")
def beats_audit(chicago_store: ObservatoryStore, beats: Layer):
    return audit(chicago_store, "chicago_crimes", level="layer:beats", layers={"beats": beats}, k=K)


@pytest.fixture(scope="module")
def h3_audit(chicago_store: ObservatoryStore):
    return audit(chicago_store, "chicago_crimes", level="h3:8", k=K)


# --- statistics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 10, 274])
def test_gini_of_uniform_is_zero_and_of_one_hot_is_n_minus_one_over_n(n: int) -> None:
    assert gini(np.full(n, 7)) == pytest.approx(0.0, abs=1e-12)
    one_hot = np.zeros(n)
    one_hot[n // 2] = 42
    assert gini(one_hot) == pytest.approx((n - 1) / n)


def test_gini_known_value_and_empty() -> None:
    # Sorted 1, 2, 3, 4: G = Σ_i Σ_j |x_i − x_j| / (2 n² mean) = 20 / (2 · 16 · 2.5) = 0.25.
    assert gini(np.array([4, 1, 3, 2])) == pytest.approx(0.25)
    assert gini(np.zeros(5)) == 0.0
    assert gini(np.array([])) == 0.0


def test_top_decile_and_persistence() -> None:
    assert top_decile_size(274) == 27  # the research note's "top-27 beats"
    assert top_decile_size(5) == 1
    assert top_areas(np.array([5, 0, 9, 9, 1]), 2) == frozenset({2, 3})
    assert top_areas(np.array([0, 0, 3]), 2) == frozenset({2})  # areas without records never count
    assert top_areas(np.array([5, 5, 5, 1]), 2) == frozenset({0, 1, 2})  # ties kept, not broken by code
    assert jaccard(frozenset({1, 2}), frozenset({2, 3})) == pytest.approx(1 / 3)
    by_year = np.array([[9, 9, 0], [1, 1, 9], [0, 0, 1]])  # areas × years
    # Years 1→2 keep area 0 (J = 1), years 2→3 move to area 1 (J = 0).
    assert persistence(by_year, 1) == pytest.approx(0.5)
    assert persistence(by_year[:, :1], 1) is None


# --- Chicago: who recorded it ---------------------------------------------------------------------


def test_chicago_channel_shares_match_sources(beats_audit) -> None:
    narcotics = beats_audit.category("NARCOTICS")
    burglary = beats_audit.category("BURGLARY")
    assert narcotics.total == 112_066 and burglary.total == 72_933  # research §6.3
    assert narcotics.police_initiated_share == pytest.approx(0.996, abs=0.001)
    assert burglary.police_initiated_share == pytest.approx(0.055, abs=0.001)
    assert beats_audit.category("THEFT").police_initiated_share == pytest.approx(0.110, abs=0.001)
    assert narcotics.discovered and narcotics.shown_as == "police activity"
    assert not burglary.discovered and burglary.shown_as == "recorded incidents"
    for row in beats_audit.categories:
        assert sum(row.channel_shares.values()) == pytest.approx(1.0)
    discovered = {row.category for row in beats_audit.categories if row.discovered}
    assert {"PROSTITUTION", "WEAPONS VIOLATION", "GAMBLING"} <= discovered
    assert not {"BATTERY", "ROBBERY", "HOMICIDE", "CRIMINAL DAMAGE"} & discovered
    assert beats_audit.caveat == CAVEAT and "not true crime rates" in CAVEAT


def test_chicago_beat_concentration_matches_research(beats_audit) -> None:
    """Research §6.3: Gini over beats 0.53 / 0.29 / 0.30, top-10 % share 41 % / 21 % / 25 %,
    persistence 0.69 vs 0.46, top-decile overlap NARCOTICS–BURGLARY 0.06, NARCOTICS–THEFT 0.00."""
    assert beats_audit.areas == 274
    narcotics, burglary = beats_audit.category("NARCOTICS"), beats_audit.category("BURGLARY")
    theft = beats_audit.category("THEFT")
    assert narcotics.gini == pytest.approx(0.53, abs=0.01)
    assert burglary.gini == pytest.approx(0.29, abs=0.01)
    assert theft.gini == pytest.approx(0.30, abs=0.01)
    assert beats_audit.category("PROSTITUTION").gini == pytest.approx(0.86, abs=0.01)
    assert narcotics.top10_share == pytest.approx(0.41, abs=0.01)
    assert burglary.top10_share == pytest.approx(0.21, abs=0.01)
    assert theft.top10_share == pytest.approx(0.25, abs=0.01)
    assert narcotics.persistence == pytest.approx(0.69, abs=0.02)
    assert burglary.persistence == pytest.approx(0.46, abs=0.02)
    assert narcotics.gini > burglary.gini and narcotics.persistence > burglary.persistence
    assert narcotics.areas == 274 and narcotics.unlocated == 0
    overlap = {(o.discovered, o.reported): o.jaccard for o in beats_audit.overlaps}
    assert overlap["NARCOTICS", "BURGLARY"] == pytest.approx(0.06, abs=0.01)
    assert overlap["NARCOTICS", "THEFT"] == pytest.approx(0.0, abs=0.01)
    assert beats_audit.discovered_vs_reported is not None and beats_audit.discovered_vs_reported < 0.3


def test_chicago_h3_level_keeps_the_ordering(h3_audit) -> None:
    narcotics, burglary = h3_audit.category("NARCOTICS"), h3_audit.category("BURGLARY")
    assert h3_audit.level == "h3:8" and h3_audit.areas > 800
    assert narcotics.gini > burglary.gini + 0.15
    assert narcotics.top10_share > burglary.top10_share + 0.2
    assert narcotics.persistence > burglary.persistence + 0.15
    # Rows without coordinates have no H3 area: counted, never silently dropped.
    assert 0 < narcotics.unlocated < 0.05 * narcotics.total


# --- suppression ------------------------------------------------------------------------------------


def test_channel_mix_by_area_suppresses_small_areas_and_shares(h3_audit, chicago_store) -> None:
    mix = h3_audit.channel_mix
    assert len(mix) == h3_audit.areas
    hidden = [m for m in mix if m.suppressed]
    assert h3_audit.suppressed_areas == len(hidden) > 0
    assert all(m.total is None and m.channel_shares is None for m in hidden)
    shown = [m for m in mix if not m.suppressed]
    assert all(m.total is not None and m.total >= K for m in shown)
    partly = [m for m in shown if None in m.channel_shares.values()]
    assert partly, "some areas have a channel with fewer than k records"
    for m in partly:
        # Never exactly one share hidden: 1 − the others would give it back.
        assert sum(v is None for v in m.channel_shares.values()) >= 2
        for share in m.channel_shares.values():
            assert share is None or share == 0 or share * m.total >= K - 1e-9

    exact = audit(chicago_store, "chicago_crimes", level="h3:8", k=K, analyst=True)
    assert exact.suppressed_areas == 0
    assert all(sum(m.channel_shares.values()) == pytest.approx(1.0) for m in exact.channel_mix)
    assert sum(m.total for m in exact.channel_mix) == 1_382_764 - sum(c.unlocated for c in exact.categories)


def test_small_categories_only_for_analysts(beats_audit, chicago_store, beats) -> None:
    names = {row.category for row in beats_audit.categories}
    assert "NON-CRIMINAL (SUBJECT SPECIFIED)" not in names  # 4 records in five years
    assert beats_audit.suppressed_categories == 1
    exact = audit(
        chicago_store, "chicago_crimes", level="layer:beats", layers={"beats": beats}, k=K, analyst=True
    )
    assert exact.category("NON-CRIMINAL (SUBJECT SPECIFIED)").total == 4
    with pytest.raises(ObservatoryError, match="legal floor"):
        audit(chicago_store, "chicago_crimes", level="h3:8", k=2)


def test_bad_requests_are_named(chicago_store) -> None:
    with pytest.raises(ObservatoryError, match="ingest it first"):
        audit(chicago_store, "no_such_dataset", k=K)
    with pytest.raises(ObservatoryError, match="no boundary layer 'wards'"):
        audit(chicago_store, "chicago_crimes", level="layer:wards", k=K)
    with pytest.raises(ObservatoryError, match="resolution"):
        audit(chicago_store, "chicago_crimes", level="h3:10", k=K)  # storage grain: analysts only
    with pytest.raises(ObservatoryError, match="understood"):
        audit(chicago_store, "chicago_crimes", level="beats", k=K)


# --- coverage and drift -----------------------------------------------------------------------------


def test_chicago_coverage_by_year(beats_audit) -> None:
    by_year = {c.year: c for c in beats_audit.coverage}
    assert {y: c.records for y, c in by_year.items()} == {
        2013: 307_030,
        2014: 275_200,
        2015: 263_929,
        2016: 268_813,
        2017: 267_792,
    }
    assert all(0.97 < c.located_share < 1.0 and c.coded_share == 1.0 for c in by_year.values())
    assert all(sum(c.channel_shares.values()) == pytest.approx(1.0) for c in by_year.values())
    # Arrests fell after 2015: 28 % of records in 2013, 20 % in 2016-2017.
    assert by_year[2013].channel_shares["police_initiated"] == pytest.approx(0.28, abs=0.01)
    assert by_year[2017].channel_shares["police_initiated"] == pytest.approx(0.195, abs=0.01)
    notes = beats_audit.drift_notes
    assert "category CONCEALED CARRY LICENSE VIOLATION absent before 2014" in notes
    assert "category NON - CRIMINAL absent from 2017" in notes
    assert not [n for n in notes if "coordinates" in n or "area code" in n]


@pytest.fixture(scope="module")
def baac_store() -> Iterator[ObservatoryStore]:
    table = pq.read_table(BAAC, columns=["datetime_local", "com_insee", "lat", "lon"])
    cells, located = h3_cells(
        table["lat"].to_numpy(zero_copy_only=False), table["lon"].to_numpy(zero_copy_only=False)
    )
    source = table.select(["datetime_local", "com_insee"]).append_column("h3", pa.array(cells, mask=~located))
    store = ObservatoryStore.open(":memory:")
    cur = store.cursor()
    cur.register("source", source)
    cur.execute(
        """INSERT INTO incidents SELECT 'fr_road_accidents', datetime_local, 'Accident corporel',
           'citizen_report', h3, 'communes', com_insee, 1 FROM source"""
    )
    register_dataset(cur, "fr_road_accidents", rows=table.num_rows)
    cur.close()
    yield store
    store.close()


def test_baac_coordinate_drift_is_flagged(baac_store) -> None:
    result = audit(baac_store, "fr_road_accidents", level="h3:6", k=K)
    by_year = {c.year: c for c in result.coverage}
    assert sorted(by_year) == list(range(2005, 2021))
    assert by_year[2009].located_share == 0.0  # SOURCES.md: the package's 2009 coordinates are unusable
    assert 0.11 < by_year[2006].located_share < 0.15
    assert by_year[2019].located_share > 0.98
    assert all(c.coded_share > 0.9999 for c in by_year.values())  # the commune code: all but 2 rows
    notes = result.drift_notes
    assert "coordinates absent in 2009" in notes
    assert "share of records with coordinates rises from 49 % in 2015 to 68 % in 2016" in notes
    assert not [n for n in notes if "area code" in n or "partial year" in n]
    category = result.category("Accident corporel")
    assert category.unlocated == sum(round(c.records * (1 - c.located_share)) for c in result.coverage)
    assert not category.discovered


def test_drift_notes_on_constructed_coverage() -> None:
    from lanterne.observatory.bias import YearCoverage

    def year(y: int, records: int, located: float) -> YearCoverage:
        return YearCoverage(y, records, located, 1.0, {"citizen_report": 1.0, "police_initiated": 0.0})

    coverage = [year(2012, 100, 0.0), year(2013, 100, 0.0), year(2014, 100, 0.9), year(2016, 30, 0.92)]
    notes = drift_notes(coverage, {"NEW": [0, 0, 5, 5], "GONE": [5, 5, 5, 0], "ALWAYS": [1, 1, 1, 1]})
    assert notes == [
        "no records at all in 2015",
        "2016 has 30 % of a median year's records (partial year or missing source files?)",
        "coordinates absent before 2014",
        "category NEW absent before 2014",
        "category GONE absent from 2016",
    ]


# --- feedback loop ------------------------------------------------------------------------------------


def test_feedback_loop_is_deterministic_and_fast() -> None:
    rates = np.random.default_rng(5).gamma(2.0, 0.1, size=274)
    started = time.perf_counter()
    first = feedback_loop(rates, rounds=365, top=10, patrols=10, discovered_share=0.9, seed=11)
    assert time.perf_counter() - started < 1.0
    again = feedback_loop(rates, rounds=365, top=10, patrols=10, discovered_share=0.9, seed=11)
    other = feedback_loop(rates, rounds=365, top=10, patrols=10, discovered_share=0.9, seed=12)
    assert np.array_equal(first.record_top_share, again.record_top_share)
    assert np.array_equal(first.final_allocation, again.final_allocation)
    assert not np.array_equal(first.record_top_share, other.record_top_share)


def test_naive_ranking_runs_away_when_rates_are_nearly_equal() -> None:
    """Ensign et al.: ten areas within 10 % of each other; patrols follow the top-ranked area and
    the ranking learns from what patrols find. The map ends up claiming one area holds nearly
    every incident; learning from reported incidents keeps the truth (about 10 % each)."""
    rates = np.linspace(1.0, 1.1, 10)
    for seed in range(3):
        naive = feedback_loop(rates, rounds=1000, discovered_share=1.0, seed=seed)
        assert naive.true_top_share == pytest.approx(0.105, abs=0.001)
        assert np.all(naive.patrol_top_share == 1.0)
        assert naive.final_record_top_share > 0.95
        assert naive.final_estimate_gap > 0.85
        mitigated = feedback_loop(rates, rounds=1000, discovered_share=0.5, update=Update.REPORTED, seed=seed)
        assert mitigated.final_record_top_share == pytest.approx(mitigated.true_top_share, abs=0.03)
        assert mitigated.final_estimate_gap < 0.05


def test_proportional_patrols_run_away_and_reweighting_recovers_the_rates() -> None:
    """Ensign et al.'s urn: two areas with rates 0.3 and 0.1 (true share 75 %). Patrols in
    proportion to the records drift towards the first area; weighting each discovered incident
    by 1 / the chance a patrol was there keeps the allocation near the true share. Medians over
    ten seeds: a reweighted run can still stall when one area's patrol share gets tiny (the
    estimator's variance, which Ensign et al. note), and a single seed would hide that."""
    rates = np.array([0.3, 0.1])

    def final_share(update: Update, seed: int) -> float:
        run = feedback_loop(rates, rounds=1000, allocation=Allocation.PROPORTIONAL, update=update, seed=seed)
        return float(run.patrol_top_share[-1])

    naive = [final_share(Update.NAIVE, s) for s in range(10)]
    fair = [final_share(Update.REWEIGHTED, s) for s in range(10)]
    assert np.median(naive) > 0.9
    assert np.median(fair) == pytest.approx(0.75, abs=0.05)
    assert sum(abs(f - 0.75) < 0.1 for f in fair) >= 7


def test_feedback_loop_refuses_what_it_cannot_simulate() -> None:
    with pytest.raises(ObservatoryError, match="reweighting needs every area"):
        feedback_loop(np.ones(3), update=Update.REWEIGHTED)
    with pytest.raises(ObservatoryError, match="non-negative rate"):
        feedback_loop(np.zeros(3))
    with pytest.raises(ObservatoryError, match="top"):
        feedback_loop(np.ones(3), top=4)


# --- hotspots ---------------------------------------------------------------------------------------


def test_hotspots_refuse_a_discovered_category_unless_asked(chicago_store, beats) -> None:
    """Research note §6.1: a category mostly found by police activity is left out of rankings by
    default, since its ranking maps where police looked (OB-05)."""
    narcotics = Filters("chicago_crimes", category="NARCOTICS")
    with pytest.raises(ObservatoryError) as refused:
        hotspots(chicago_store, narcotics, "layer:beats", top=10, k=K, layers={"beats": beats})
    assert str(refused.value) == (
        "NARCOTICS is 99.6 % police-initiated: a ranking would map where police looked; "
        "pass include_discovered to rank it anyway, with the audit"
    )
    # Also for analysts: exact counts do not make police activity a map of crime.
    with pytest.raises(ObservatoryError, match=r"PROSTITUTION is 99\.7 % police-initiated"):
        hotspots(
            chicago_store,
            Filters("chicago_crimes", category="PROSTITUTION"),
            "h3:8",
            k=K,
            analyst=True,
        )


def test_hotspots_of_a_discovered_category_come_with_warning_audit_and_loop(
    chicago_store, beats, beats_audit
) -> None:
    result = hotspots(
        chicago_store,
        Filters("chicago_crimes", category="NARCOTICS"),
        "layer:beats",
        top=10,
        k=K,
        layers={"beats": beats},
        include_discovered=True,
    )
    assert result.audit == beats_audit.category("NARCOTICS")
    assert result.warning is not None and "99.6 %" in result.warning and "police activity" in result.warning
    assert result.caveat == CAVEAT
    assert [r.rank for r in result.ranking] == list(range(1, 11))
    counts = [r.count for r in result.ranking]
    assert counts == sorted(counts, reverse=True) and counts[-1] >= K
    assert result.ranking[0].label is not None
    # Seeded from the data: 274 beats, the category's own police-initiated share as discovery.
    assert result.naive.true_shares.size == 274
    assert result.naive.discovered_share == pytest.approx(0.996, abs=0.001)
    assert result.naive.final_record_top_share > 2 * result.naive.true_top_share
    assert result.mitigated.final_estimate_gap < result.naive.final_estimate_gap


def test_hotspots_of_a_reported_category_and_small_counts(chicago_store, beats) -> None:
    layers = {"beats": beats}
    burglary = hotspots(
        chicago_store, Filters("chicago_crimes", category="BURGLARY"), "h3:8", top=5, k=K, layers=layers
    )
    assert burglary.warning is None and not burglary.audit.discovered
    assert len(burglary.ranking) == 5
    # Little to discover: the naive and mitigated loops stay close to the truth.
    assert burglary.naive.final_estimate_gap < 0.2

    one_week = Filters(
        "chicago_crimes", category="BURGLARY", start=datetime(2016, 3, 7), end=datetime(2016, 3, 14)
    )
    public = hotspots(chicago_store, one_week, "layer:beats", top=300, k=K, layers=layers)
    analyst = hotspots(chicago_store, one_week, "layer:beats", top=300, k=K, layers=layers, analyst=True)
    assert all(r.count >= K for r in public.ranking)
    assert public.excluded_below_k > 0
    assert len(analyst.ranking) == len(public.ranking) + public.excluded_below_k
    assert min(r.count for r in analyst.ranking) < K
    with pytest.raises(ObservatoryError, match="one category"):
        hotspots(chicago_store, Filters("chicago_crimes"), "layer:beats", k=K, layers=layers)
