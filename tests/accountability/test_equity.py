"""Spatial equity of alerts (RK-02): alerts per 1,000 camera-hours by neighbourhood, with the
observatory's small-cell suppression, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from lanterne.accountability.equity import (
    UNPLACED,
    equity_report,
    poisson_interval,
    ratio_interval,
    suppress_one_group,
)
from lanterne.accountability.transparency import public_data, render_html
from lanterne.config import parse_config
from lanterne.core.types import Counts, Event, EventType
from lanterne.observatory.suppression import suppress
from lanterne.store import Store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("seed", range(200))
def test_suppression_hides_what_the_observatory_hides(seed: int) -> None:
    """Rewritten for the layer contract, so checked against the observatory's own rule."""
    rng = random.Random(seed)
    counts = [rng.choice([0, 0, 1, 2, 3, 4, 6, 9, 12, 40]) for _ in range(rng.randint(1, 8))]
    k = rng.choice([5, 10])
    expected = suppress(np.array(counts), [np.arange(len(counts))], k).tolist()
    assert suppress_one_group(counts, k) == expected


def test_intervals() -> None:
    lo, hi = poisson_interval(10, 1000.0)  # type: ignore[misc]
    assert 4.7 < lo < 4.8 and 18.3 < hi < 18.4  # Garwood's table for 10 events
    assert poisson_interval(0, 1000.0) == (0.0, pytest.approx(3.689, abs=1e-3))
    assert poisson_interval(3, 0.0) is None
    # Same rate on both sides: the ratio's interval holds 1.
    r = ratio_interval(20, 1000.0, 40, 2000.0)
    assert r is not None and r[0] < 1 < (r[1] or 0)
    alone = ratio_interval(5, 10.0, 0, 10.0)  # no alert anywhere else: no upper end
    assert alone is not None and alone[0] > 0 and alone[1] is None


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url)
    yield s
    s.close()


def square(code: str, name: str, lon0: float) -> dict[str, object]:
    ring = [[lon0, 48.0], [lon0 + 1, 48.0], [lon0 + 1, 49.0], [lon0, 49.0], [lon0, 48.0]]
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def site(tmp_path: Path) -> dict[str, object]:
    layer = tmp_path / "quartiers.geojson"
    layer.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": [square("11", "Nord", 2.0), square("12", "Sud", 3.0)]}
        )
    )
    zone = {"id": "z", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "events": {"zone_intrusion": {}}}
    cams = [("n1", 2.5), ("n2", 2.6), ("s1", 3.5), ("s2", 3.6), ("out", 9.0)]
    return {
        "mode": "alerts",
        "cameras": [
            {"id": c, "source": "a.mp4", "location": {"lat": 48.5, "lon": lon}, "zones": [zone]}
            for c, lon in cams
        ],
        "observatory": {
            "min_count": 5,
            "layers": [{"id": "quartiers", "file": str(layer), "key": "code", "label": "name"}],
        },
    }


def run(store: Store, camera: str, hours: int, alerts: int) -> None:
    """`hours` of count buckets from the camera's worker (hour-long, to keep the test short; the
    runner writes minutes), and `alerts` alerts among them."""
    origin = NOW - timedelta(days=2)
    for h in range(hours):
        store.add_counts(Counts(camera, "z", h * 3600.0, 3600.0, samples=300), origin)
    for i in range(alerts):
        t = i * 60.0 + 5
        store.upsert_event(
            Event(
                f"{camera}-{i:04d}", EventType.ZONE_INTRUSION, camera, "z", t, t + 3, 0.8, (0, 0, 1, 1), False
            ),
            origin,
            "alerts",
        )


def test_rates_per_camera_hour_flag_the_neighbourhood_far_above_the_others(
    store: Store, tmp_path: Path
) -> None:
    cfg = parse_config(site(tmp_path))
    run(store, "n1", 10, 30)  # Nord: 2 cameras, 20 h, 45 alerts: 2,250 per 1,000 h
    run(store, "n2", 10, 15)
    run(store, "s1", 10, 6)  # Sud: 2 cameras, 40 h, 9 alerts: 225 per 1,000 h
    run(store, "s2", 30, 3)
    run(store, "out", 5, 2)  # outside every polygon
    exact = equity_report(cfg, store.engine, NOW, exact=True)
    rows = {r.key: r for r in exact.rows}
    assert exact.layer == "quartiers" and set(rows) == {"11", "12", UNPLACED}
    nord, sud = rows["11"], rows["12"]
    assert (nord.label, nord.cameras, nord.camera_hours, nord.alerts) == ("Nord", 2, 20.0, 45)
    assert nord.rate == pytest.approx(2250.0) and sud.rate == pytest.approx(225.0)
    assert nord.interval is not None and nord.interval[0] < 2250 < nord.interval[1]
    assert nord.flagged and not sud.flagged and not rows[UNPLACED].flagged
    assert nord.ratio_interval is not None and nord.ratio_interval[0] >= 2.0
    # Public view: the unplaced 2 (< k) is hidden, and Sud's 9 with it, else the total gives it back.
    public = equity_report(cfg, store.engine, NOW)
    shown = {r.key: r for r in public.rows}
    assert (
        shown[UNPLACED].alerts is None and shown[UNPLACED].rate is None and shown[UNPLACED].interval is None
    )
    assert shown["12"].alerts is None and shown["11"].alerts == 45 and shown["11"].flagged
    assert public.alerts == 56
    html = render_html(public_data(cfg, store.engine, NOW))
    assert 'data-area="11"' in html and "far above the others" in html and "hidden" in html


def test_more_hours_not_more_alerts_raise_no_flag(store: Store, tmp_path: Path) -> None:
    """Nord has three times the alerts of Sud, and three times the camera-hours: the same rate."""
    cfg = parse_config(site(tmp_path))
    run(store, "n1", 30, 30)
    run(store, "s1", 10, 10)
    rows = {r.key: r for r in equity_report(cfg, store.engine, NOW, exact=True).rows}
    assert rows["11"].rate == pytest.approx(rows["12"].rate)
    assert not any(r.flagged for r in rows.values())
