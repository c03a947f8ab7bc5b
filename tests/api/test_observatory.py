"""The observatory's console API over a real dataset (10,000 DansMaRue citizen reports, Paris
2023-2024, ingested through the example mapping): suppressed aggregates for every role but
`analyst`, exact ones for analysts, rows for analysts alone and with a purpose, strict parameters,
no 5xx for hostile values, and an audit record for every call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from lanterne.audit import Action
from tests.support.observatory_api import (
    DANSMARUE,
    PURPOSE,
    ROLES,
    K,
    Obs,
    open_obs,
    small_counts,
)

D = {"dataset": "paris_dansmarue"}
MONTH = {"from": "2024-03-01T00:00:00", "to": "2024-04-01T00:00:00"}
AGGREGATE_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("/api/observatory/map", {**D, "level": "h3:9"}),
    ("/api/observatory/map", {**D, "level": "h3:9", **MONTH}),
    ("/api/observatory/map", {**D, "level": "layer:arrondissements", **MONTH, "channel": "operator"}),
    ("/api/observatory/categories", D),
    ("/api/observatory/series", {**D, "grain": "week", "channel": "operator"}),
    (
        "/api/observatory/series",
        {**D, "grain": "month", "area_level": "layer:arrondissements", "area_key": "75101"},
    ),
    ("/api/observatory/profile", {**D, "by": "dow", "channel": "operator"}),
    ("/api/observatory/anomalies", {**D, "grain": "week", "channel": "operator"}),
]
"""Views with small cells in them (resolution-9 hexagons, a month, the 80 back-office reports)."""


@pytest.mark.parametrize("login", ["oper", "sup", "audi", "adm"])
def test_other_roles_never_see_a_count_below_k(obs: Obs, login: str) -> None:
    obs.as_user(login)
    hidden = 0
    for path, params in AGGREGATE_CALLS:
        r = obs.client.get(path, params=params)
        assert r.status_code == 200, (path, params, r.text)
        body = r.json()
        assert small_counts(body) == [], (path, params)
        assert body.get("analyst", False) is False
        hidden += json.dumps(body).count('"suppressed": true') + json.dumps(body).count('"suppressed":true')
    assert hidden > 0, "these views do hold small cells: suppression must have hidden some"


def test_analysts_get_exact_counts(obs: Obs) -> None:
    obs.as_user("ana")
    small = []
    for path, params in AGGREGATE_CALLS:
        r = obs.client.get(path, params=params)
        assert r.status_code == 200, (path, params, r.text)
        assert 'suppressed": true' not in r.text
        small += small_counts(r.json())
    assert small, "the exact views show the small counts the others cannot see"
    r = obs.client.get("/api/observatory/map", params={**D, "level": "h3:9"})
    body = r.json()
    assert body["analyst"] is True and body["suppressed_cells"] == 0
    assert sum(f["properties"]["count"] for f in body["features"]) == body["total"] == 10_000


def test_map_is_geojson_with_hexagons_or_polygons(obs: Obs) -> None:
    obs.as_user("oper")
    r = obs.client.get("/api/observatory/map", params={**D, "level": "h3:7"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    hexes = r.json()
    assert hexes["type"] == "FeatureCollection" and hexes["k"] == K and hexes["analyst"] is False
    assert "not true crime rates" in hexes["caveat"]
    ring = hexes["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 7 and ring[0] == ring[-1], "a closed hexagon"
    assert all(2.2 < lon < 2.5 and 48.8 < lat < 48.95 for lon, lat in ring), "[lon, lat] order, in Paris"
    props = hexes["features"][0]["properties"]
    assert set(props) == {"key", "label", "count", "interval", "suppressed", "rate", "rate_interval"}
    for f in hexes["features"]:  # OB-07: each shown count with its 95 % Poisson interval
        p = f["properties"]
        if p["suppressed"]:
            assert p["count"] is None and p["interval"] is None
        else:
            assert p["interval"][0] <= p["count"] <= p["interval"][1]

    r = obs.client.get("/api/observatory/map", params={**D, "level": "layer:arrondissements"})
    areas = r.json()
    assert len(areas["features"]) == 20
    by_key = {f["properties"]["key"]: f["properties"] for f in areas["features"]}
    assert by_key["75118"]["label"] and by_key["75118"]["count"] > 100
    assert areas["total"] == 10_000 and areas["unlocated"] == 0

    month = obs.client.get("/api/observatory/map", params={**D, "level": "layer:arrondissements", **MONTH})
    assert 0 < month.json()["total"] < areas["total"], "the slider's month narrows the map"


def test_datasets_give_provenance_to_every_role(obs: Obs) -> None:
    for login in ROLES:
        obs.as_user(login)
        r = obs.client.get("/api/observatory/datasets")
        assert r.status_code == 200, r.text
        body = r.json()
        assert [d["id"] for d in body["datasets"]] == [
            "fr_ssmsi_departements",
            "fr_ssmsi_population",
            "paris_bikes_weather",
            "paris_dansmarue",
            "paris_road_accidents",
        ]
        d = body["datasets"][3]
        assert d["id"] == "paris_dansmarue" and d["kind"] == "incidents"
        assert d["sha256"] == "8c19b5ba5d02ae96c24ad43615c9a99009f8ade6dc4f4ad2943a0b6ebfd2bf64"
        assert (d["rows_read"], d["rows_loaded"], d["rows_rejected"]) == (10_000, 10_000, 0)
        assert d["first"].startswith("2023-08-14") and d["last"].startswith("2024-09-12")
        assert d["source_file"] == DANSMARUE.name, "the file name, not the server's path"
        assert d["located"] is True and d["area_layers"] == ["arrondissements"]
        assert body["analyst"] is (login == "ana") and body["k"] == K
        assert [layer["id"] for layer in body["layers"]] == ["arrondissements", "departements"]
        ssmsi, population = body["datasets"][:2]
        assert ssmsi["located"] is False and ssmsi["area_layers"] == ["departements"]
        assert population["kind"] == "measures" and population["variables"] == ["dwellings", "population"]


def test_rates_per_population_on_a_layer(obs: Obs) -> None:
    obs.as_user("oper")
    params = {
        "dataset": "fr_ssmsi_departements",
        "category": "Cambriolages de logement",
        "level": "layer:departements",
        "from": "2021-01-01T00:00:00",
        "to": "2022-01-01T00:00:00",
    }
    r = obs.client.get("/api/observatory/map", params={**params, "exposure": "fr_ssmsi_population:dwellings"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rate_per"] == 1000
    rates = {f["properties"]["key"]: f["properties"]["rate"] for f in body["features"]}
    # Burglaries per 1,000 dwellings in 2021: a few per thousand everywhere (SSMSI publishes 0.5-9).
    assert all(0.1 < v < 20 for v in rates.values() if v is not None) and rates["75"] is not None
    paris = next(f["properties"] for f in body["features"] if f["properties"]["key"] == "75")
    low, high = paris["rate_interval"]  # OB-07: the count's interval, over the same dwellings
    assert low < paris["rate"] < high and high / low < 1.1, "thousands of burglaries: a narrow interval"
    assert (
        obs.client.get(
            "/api/observatory/map",
            params={**params, "level": "h3:7", "exposure": "fr_ssmsi_population:population"},
        ).status_code
        == 422
    )
    assert (
        obs.client.get(
            "/api/observatory/map", params={**params, "exposure": "paris_dansmarue:population"}
        ).status_code
        == 422
    )


def test_series_has_trend_and_seasonality(obs: Obs) -> None:
    obs.as_user("audi")
    r = obs.client.get("/api/observatory/series", params={**D, "grain": "week"})
    assert r.status_code == 200, r.text
    body = r.json()
    points = body["points"]
    assert len(points) >= 56 and points[0]["start"].startswith("2023-08-14")
    hidden = [p for p in points if p["suppressed"]]
    assert all(p["count"] is None for p in hidden) and len(hidden) != 1, "never one hidden period alone"
    dec = body["decomposition"]
    assert len(dec["trend"]) == len(points) and all(t is None or t > 0 for t in dec["trend"])
    # OB-07: a 95 % interval beside each shown count, none beside a hidden one.
    for p, band in zip(points, body["intervals"], strict=True):
        assert band is None if p["suppressed"] else band[0] <= p["count"] <= band[1]
    obs.as_user("ana")
    exact = obs.client.get("/api/observatory/series", params={**D, "grain": "week"}).json()
    assert sum(p["count"] for p in exact["points"]) == 10_000


def test_profile_and_anomalies(obs: Obs) -> None:
    obs.as_user("oper")
    dow = obs.client.get("/api/observatory/profile", params={**D, "by": "dow"}).json()
    assert [b["key"] for b in dow["bins"]] == list(range(7))
    assert sum(b["count"] for b in dow["bins"]) == 10_000
    # DansMaRue records days: an hour-of-day profile is refused with the reason, not drawn at midnight.
    hour = obs.client.get("/api/observatory/profile", params={**D, "by": "hour"})
    assert hour.status_code == 400 and "day" in hour.json()["detail"]
    found = obs.client.get("/api/observatory/anomalies", params={**D, "grain": "week"})
    assert found.status_code == 200, found.text
    for a in found.json()["anomalies"]:
        assert a["text"] and a["observed"] >= K


def test_rows_are_for_analysts_only_and_recorded(obs: Obs) -> None:
    for login in ("oper", "sup", "audi", "adm"):
        obs.as_user(login)
        before = len(obs.searches())
        r = obs.client.get("/api/observatory/rows", params={**D, **PURPOSE})
        assert r.status_code == 403, login
        entries = obs.searches()
        assert len(entries) == before + 1
        denied = entries[-1]
        assert denied.user_id == obs.ids[login] and denied.object_type == "observatory"
        assert denied.details["denied"] == "observatory_rows" and denied.details["role"] == ROLES[login]

    obs.as_user("ana")
    before = len(obs.searches())
    assert obs.client.get("/api/observatory/rows", params=D).status_code == 400, "a purpose is required"
    assert obs.client.get("/api/observatory/rows", params={**D, "purpose": "  "}).status_code == 400
    assert len(obs.searches()) == before, "a refused request is not served, so not recorded as served"
    r = obs.client.get(
        "/api/observatory/rows",
        params={**D, **PURPOSE, **MONTH, "category": "Propreté", "limit": 5},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["rows"]) == 5 and body["total"] > 5
    row = body["rows"][0]
    assert set(row) == {"ts", "category", "channel", "h3", "area_layer", "area_code", "n"}
    assert row["category"] == "Propreté" and row["ts"].startswith("2024-03")
    last = obs.searches()[-1]
    assert last.user_id == obs.ids["ana"] and last.purpose == PURPOSE["purpose"]
    assert last.object_id == "rows" and last.details["category"] == "Propreté"


@pytest.mark.parametrize(
    "path",
    [
        "/api/observatory/datasets",
        "/api/observatory/categories",
        "/api/observatory/map",
        "/api/observatory/series",
        "/api/observatory/profile",
        "/api/observatory/anomalies",
        "/api/observatory/audit",
        "/api/observatory/hotspots",
        "/api/observatory/rows",
        "/api/observatory/cross",
    ],
)
def test_unknown_parameters_are_refused(obs: Obs, path: str) -> None:
    obs.as_user("ana")
    params = {**D, **PURPOSE, "by": "dow", "measure": "x:y", "category": "Propreté", "person": "someone"}
    if path.endswith("datasets"):
        params = {"person": "someone"}
    r = obs.client.get(path, params=params)
    assert r.status_code == 422 and "person" in r.json()["detail"], r.text


HOSTILE: list[tuple[str, dict[str, str]]] = [
    ("map", {"dataset": "paris_dansmarue' OR 1=1 --"}),
    ("map", {"dataset": "x" * 65}),
    ("map", {**D, "level": "h3:99"}),
    ("map", {**D, "level": "h3:10"}),
    ("map", {**D, "level": "h3:4"}),
    ("map", {**D, "level": "h3:-1"}),
    ("map", {**D, "level": "h3:99999999999999999999"}),
    ("map", {**D, "level": "layer:nope"}),
    ("map", {**D, "level": "layer:../../etc"}),
    ("map", {**D, "from": "yesterday"}),
    ("map", {**D, "from": "2024-13-45"}),
    ("map", {**D, "from": "99999-01-01"}),
    ("map", {**D, "from": "2024-05-01", "to": "2024-04-01"}),
    ("map", {**D, "channel": "rumour"}),
    ("map", {**D, "category": "x\x00y"}),
    ("map", {**D, "category": "é" * 300}),
    ("map", {"dataset": "unknown_set"}),
    ("series", {**D, "grain": "century"}),
    ("series", {**D, "grain": "hour"}),
    ("series", {**D, "area_level": "h3:8", "area_key": "zzz"}),
    ("series", {**D, "area_level": "layer:arrondissements", "area_key": "99999"}),
    ("series", {**D, "area_level": "layer:arrondissements"}),
    ("profile", {**D, "by": "minute"}),
    ("anomalies", {**D, "threshold": "1e308"}),
    ("cross", {**D, "measure": "paris_dansmarue:x"}),
    ("cross", {**D, "measure": "a:b;DROP TABLE incidents"}),
    ("audit", {**D, "level": "h3:0"}),
    ("hotspots", {**D, "top": "100000"}),
    ("hotspots", {**D, "category": "Propreté", "include_discovered": "perhaps"}),
    ("cross", {**D, "measure": ["paris_bikes_weather:bike_count"] * 5}),
    ("rows", {**D, **PURPOSE, "limit": "1000000"}),
    ("rows", {**D, "purpose": "x" * 1001}),
]


@pytest.mark.parametrize(("endpoint", "params"), HOSTILE)
def test_hostile_values_are_4xx_never_5xx(obs: Obs, endpoint: str, params: dict[str, str]) -> None:
    obs.as_user("ana")
    r = obs.client.get(f"/api/observatory/{endpoint}", params=params)
    assert 400 <= r.status_code < 500, (params, r.status_code, r.text)
    assert "Traceback" not in r.text


def test_sql_in_a_category_is_only_a_name(obs: Obs) -> None:
    obs.as_user("oper")
    r = obs.client.get("/api/observatory/map", params={**D, "category": "'; DROP TABLE incidents; --"})
    assert r.status_code == 200 and r.json()["total"] == 0
    assert obs.client.get("/api/observatory/map", params=D).json()["total"] == 10_000


def test_every_call_is_audited_with_its_filters(obs: Obs) -> None:
    obs.as_user("oper")
    calls = [
        ("/api/observatory/datasets", {}),
        *AGGREGATE_CALLS,
        ("/api/observatory/audit", {**D, "level": "layer:arrondissements"}),
        ("/api/observatory/hotspots", {**D, "level": "layer:arrondissements", "category": "Propreté"}),
    ]
    for path, params in calls:
        before = len(obs.searches())
        r = obs.client.get(path, params=params)
        assert r.status_code == 200, (path, r.text)
        entries = obs.searches()
        assert len(entries) == before + 1, path
        last = entries[-1]
        assert last.user_id == obs.ids["oper"] and last.object_type == "observatory"
        assert last.object_id == path.rsplit("/", 1)[1]
        for key in ("dataset", "level", "category", "from", "to", "grain", "by"):
            if key in params:
                assert last.details[key] == params[key], (path, key)


def test_login_required(obs: Obs) -> None:
    obs.client.post("/api/logout", headers=obs.as_user("oper"))
    assert obs.client.get("/api/observatory/datasets").status_code == 401
    assert obs.client.get("/api/observatory/map", params=D).status_code == 401


def test_no_store_yet_says_how_to_ingest(tmp_path: Path, obs: Obs) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "lanterne.accountability.accounts.HASHER",
            PasswordHasher(time_cost=1, memory_cost=64, parallelism=1),
        )
        for empty in open_obs(tmp_path, tmp_path / "none.duckdb"):
            empty.as_user("audi")
            r = empty.client.get("/api/observatory/datasets")
            assert r.status_code == 404 and "lanterne observatory ingest" in r.json()["detail"]


def test_audit_and_hotspots_come_together(obs: Obs) -> None:
    obs.as_user("audi")
    r = obs.client.get("/api/observatory/audit", params={**D, "level": "layer:arrondissements"})
    assert r.status_code == 200, r.text
    audit = r.json()["audit"]
    assert audit["categories"] and "caveat" in audit
    graffiti = "Graffitis, tags, affiches et autocollants"
    params = {**D, "level": "layer:arrondissements", "top": 5, "category": graffiti}
    r = obs.client.get("/api/observatory/hotspots", params=params)
    assert r.status_code == 200, r.text
    h = r.json()["hotspots"]
    assert [a["rank"] for a in h["ranking"]] == [1, 2, 3, 4, 5]
    assert h["audit"]["category"] == graffiti and h["audit"]["discovered"] is False
    assert "patrols" in h["feedback_text"] and 0 < h["naive"]["true_top_share"] < 1
    assert small_counts(r.json()) == []
    without = obs.client.get("/api/observatory/hotspots", params={**D, "level": "layer:arrondissements"})
    assert without.status_code == 422, "a ranking is of one category"


STUPS = "Usage de stupéfiants"
DRUGS = {"dataset": "fr_ssmsi_departements", "category": STUPS, "level": "layer:departements", "top": 5}


def test_hotspots_refuse_police_activity_unless_asked_and_say_so(obs: Obs) -> None:
    """Research note §6.1: categories mostly found by police activity are left out of rankings by
    default (OB-05). Asking for one anyway is possible, recorded, and comes with the audit."""
    obs.as_user("audi")
    r = obs.client.get("/api/observatory/hotspots", params=DRUGS)
    assert r.status_code == 400
    assert r.json()["detail"] == (
        f"{STUPS} is 100.0 % police-initiated: a ranking would map where police looked; "
        "pass include_discovered to rank it anyway, with the audit"
    )
    assert obs.searches()[-1].details["include_discovered"] is False, "the refused request is recorded"

    r = obs.client.get("/api/observatory/hotspots", params={**DRUGS, "include_discovered": "true"})
    assert r.status_code == 200, r.text
    h = r.json()["hotspots"]
    assert h["audit"]["category"] == STUPS and h["audit"]["discovered"] is True
    assert "police activity" in h["warning"] and len(h["ranking"]) == 5
    assert h["naive"]["discovered_share"] == 1.0
    last = obs.searches()[-1]
    assert last.object_id == "hotspots" and last.details["include_discovered"] is True
    assert last.details["category"] == STUPS

    # A category reported by victims is ranked without being asked twice.
    burglaries = {**DRUGS, "category": "Cambriolages de logement"}
    r = obs.client.get("/api/observatory/hotspots", params=burglaries)
    assert r.status_code == 200 and r.json()["hotspots"]["warning"] is None


CROSS: dict[str, Any] = {
    "dataset": "paris_road_accidents",
    "measure": [
        "paris_bikes_weather:bike_count",
        "paris_bikes_weather:temperature_c",
        "paris_bikes_weather:rain_mm",
    ],
    "grain": "week",
}


def test_cross_puts_road_accidents_beside_bikes_and_weather(obs: Obs) -> None:
    obs.as_user("audi")
    r = obs.client.get("/api/observatory/cross", params=CROSS)
    assert r.status_code == 200, r.text
    body = r.json()
    c = body["cross"]
    assert c["grain"] == "week" and body["analyst"] is False
    # ISO weeks from the one holding 1 January 2019 to the one holding 31 December 2020.
    assert c["starts"][0].startswith("2018-12-31") and c["starts"][-1].startswith("2020-12-28")
    assert len(c["starts"]) == len(c["incidents"]) == 105
    assert sum(n or 0 for n in c["incidents"]) == 10_336
    measures = {m["variable"]: m for m in c["measures"]}
    assert [m["aggregation"] for m in c["measures"]] == ["sum", "mean", "sum"]
    bikes, temperature = measures["bike_count"], measures["temperature_c"]
    assert len(bikes["values"]) == 105 and bikes["periods"] >= 100
    # Weeks with more cycling have more accidents (the spring 2020 lockdown emptied both).
    assert 0.3 < bikes["correlation"] < 0.6
    temps = [t for t in temperature["values"] if t is not None]
    assert -5 < min(temps) < 8 < 20 < max(temps) < 32, "weekly means of Paris temperature"
    assert "not causation" in c["caveat"] and "not true crime rates" in body["caveat"]
    last = obs.searches()[-1]
    assert last.object_id == "cross" and last.details["measure"] == CROSS["measure"]
    assert last.details["dataset"] == "paris_road_accidents" and last.details["grain"] == "week"


def test_cross_hides_small_counts_and_keeps_them_out_of_the_correlation(obs: Obs) -> None:
    # The 16th arrondissement: about ten accidents a week, so some weeks fall below k.
    params = {
        **CROSS,
        "measure": "paris_bikes_weather:bike_count",
        "area_level": "layer:arrondissements",
        "area_key": "75116",
    }
    obs.as_user("oper")
    hidden = obs.client.get("/api/observatory/cross", params=params).json()["cross"]
    shown = [n for n in hidden["incidents"] if n is not None]
    assert None in hidden["incidents"] and all(n == 0 or n >= K for n in shown), "0 < n < k never shown"
    assert hidden["measures"][0]["periods"] <= len(shown) < 105
    assert any("whole dataset" in note for note in hidden["notes"])
    obs.as_user("ana")
    exact = obs.client.get("/api/observatory/cross", params=params).json()["cross"]
    assert None not in exact["incidents"] and any(0 < n < K for n in exact["incidents"])
    assert exact["measures"][0]["periods"] > hidden["measures"][0]["periods"]


def test_cross_without_a_common_period_has_no_correlation(obs: Obs) -> None:
    """DansMaRue (2023-2024) and the bike counts (2019-2022) never overlap: nothing to compare."""
    obs.as_user("audi")
    r = obs.client.get(
        "/api/observatory/cross", params={**D, "measure": "paris_bikes_weather:bike_count", "grain": "month"}
    )
    assert r.status_code == 200, r.text
    m = r.json()["cross"]["measures"][0]
    assert m["values"] and all(v is None for v in m["values"])
    assert m["correlation"] is None and m["periods"] == 0


def test_page_is_served_without_inline_code(obs: Obs) -> None:
    obs.as_user("oper")
    page = obs.client.get("/console/observatory")
    assert page.status_code == 200 and "/static/console/observatory.js" in page.text
    assert "<script>" not in page.text and "style=" not in page.text
    for asset in ("/static/console/observatory.js", "/static/console/observatory.css"):
        assert obs.client.get(asset).status_code == 200
    assert 'href="/console/observatory"' in obs.client.get("/console/map").text


def exports(obs: Obs) -> list[Any]:
    return [e for e in obs.audit.entries() if e.action == Action.EXPORT]


def test_export_is_a_suppressed_report_recorded_with_purpose_and_recipient(obs: Obs) -> None:
    csrf = obs.as_user("ana")  # even an analyst's report is suppressed: it leaves the system
    body = {
        **D,
        "from": "2024-01-01T00:00:00",
        "to": "2024-04-01T00:00:00",
        "level": "layer:arrondissements",
        "format": "html",
        "purpose": "quarterly report to the council, ref OBS-2026-05",
        "recipient": "Conseil de Paris, commission sécurité",
    }
    before = len(exports(obs))
    r = obs.client.post("/api/observatory/export", json=body, headers=csrf)
    assert r.status_code == 200, r.text
    assert (
        r.headers["content-type"].startswith("text/html") and "attachment" in r.headers["content-disposition"]
    )
    assert "not the true rate" in r.text and "<script" not in r.text
    entries = exports(obs)
    assert len(entries) == before + 1
    last = entries[-1]
    assert last.user_id == obs.ids["ana"] and last.purpose == body["purpose"]
    assert last.recipient == body["recipient"] and last.details["format"] == "html"
    assert last.details["k"] == K and len(last.details["sha256"]) == 64

    pdf = obs.client.post("/api/observatory/export", json={**body, "format": "pdf"}, headers=csrf)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"purpose": " "}, 400),
        ({"recipient": ""}, 400),
        ({"format": "docx"}, 422),
        ({"person": "x"}, 422),
        ({"dataset": "a;b"}, 422),
        ({"level": "h3:42"}, 422),
    ],
)
def test_export_refusals(obs: Obs, change: dict[str, str], status: int) -> None:
    csrf = obs.as_user("oper")
    body = {**D, "format": "html", "purpose": "press request", "recipient": "Le Parisien", **change}
    before = len(exports(obs))
    assert obs.client.post("/api/observatory/export", json=body, headers=csrf).status_code == status
    assert len(exports(obs)) == before


def test_export_needs_the_csrf_header(obs: Obs) -> None:
    obs.as_user("oper")
    body = {**D, "format": "html", "purpose": "press request", "recipient": "Le Parisien"}
    assert obs.client.post("/api/observatory/export", json=body).status_code == 403


def test_concurrent_requests_share_the_read_only_store(obs: Obs) -> None:
    """A page load sends about eight requests at once, each opening and closing the DuckDB file in
    its own thread: none may fail because another closed it."""
    from concurrent.futures import ThreadPoolExecutor

    obs.as_user("oper")
    calls = [
        ("/api/observatory/map", {**D, "level": "h3:8"}),
        ("/api/observatory/series", D),
        ("/api/observatory/profile", {**D, "by": "dow"}),
        ("/api/observatory/audit", D),
    ] * 6
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda c: obs.client.get(c[0], params=c[1]).status_code, calls))
    assert codes == [200] * len(calls)
