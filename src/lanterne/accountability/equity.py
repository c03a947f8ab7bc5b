"""Spatial equity of alerts (RK-02): alerts per 1,000 camera-hours, by neighbourhood.

A neighbourhood with many alerts may only have many cameras, or cameras that run longer; the
question a DPO must be able to answer is whether the system *suspects* some places more than
others for the same watching time (Picaud; Lum & Isaac 2016). So alerts are divided by the hours
Lanterne actually analysed there: a camera's analysed time is the number of its one-minute count
buckets (`zone_counts`: a running camera writes one per zone every minute, even when nothing
happens), whatever its mode, so a camera switched off or down adds no hours.

A camera's neighbourhood is the area of the observatory's first boundary layer
(`observatory.layers`, the same GeoJSON the observatory counts incidents by) that holds its
location; cameras outside every polygon, or a site with no layer, fall in one "unplaced" row.

A neighbourhood is flagged when its rate is far above the rest's: the lower end of the 95 %
interval of its rate ratio against all other neighbourhoods together is at least `FLAG_RATIO`.
The interval is exact (conditional on the total, the neighbourhood's share of alerts is
binomial; Clopper-Pearson), so three alerts in a few hours never raise a flag on their own.

Outside the auditor's view, counts below the observatory's `min_count` k are hidden with their
rate and interval, and further rows are hidden so that the published total cannot give a hidden
count back: the observatory's rule (`lanterne.observatory.suppression`) for one group, rewritten
here because `accountability` may not import the observatory; tests/accountability/test_equity.py
checks that both hide the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import shapely
from scipy.stats import beta, chi2
from sqlalchemy import Engine, func, select

from lanterne.config import Config
from lanterne.config.schema import Camera
from lanterne.store.tables import ZoneCountRecord

PER_HOURS = 1000.0
FLAG_RATIO = 2.0
"""A rate at least twice the rest's, with 95 % confidence, is flagged: a factor a DPO can act on
(placement, thresholds), well above the spread between busy and quiet streets that camera-hours
already remove."""
UNPLACED = "unplaced"
DEFAULT_DAYS = 90


@dataclass(frozen=True, slots=True)
class NeighbourhoodRate:
    key: str
    label: str
    cameras: int
    camera_hours: float
    alerts: int | None
    """None when hidden (below k, or hidden so that the total cannot give a small one back)."""
    confirmed: int | None
    rate: float | None
    """Alerts per 1,000 camera-hours."""
    interval: tuple[float, float] | None
    """95 % exact Poisson interval of the rate."""
    confirmed_rate: float | None
    ratio: float | None
    """This rate ÷ the rate of all other neighbourhoods together."""
    ratio_interval: tuple[float, float | None] | None
    """None as the upper end: unbounded (no alert anywhere else)."""
    flagged: bool
    suppressed: bool


@dataclass(frozen=True, slots=True)
class EquityReport:
    since: str
    """ISO 8601 UTC, like every time the public page publishes."""
    until: str
    layer: str | None
    """The boundary layer's id; None when the site has none (every camera unplaced)."""
    k: int
    exact: bool
    rows: tuple[NeighbourhoodRate, ...]
    alerts: int | None
    camera_hours: float


def camera_neighbourhoods(cfg: Config) -> tuple[str | None, dict[str, tuple[str, str]]]:
    """The layer used, and per camera id `(code, label)` of the area holding it."""
    if not cfg.observatory.layers:
        return None, {c.id: (UNPLACED, "unplaced") for c in cfg.cameras}
    layer = cfg.observatory.layers[0]
    try:
        data = json.loads(Path(layer.file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # The map is what is missing, not the figures: every camera is counted, unplaced.
        return layer.id, {c.id: (UNPLACED, "unplaced") for c in cfg.cameras}
    areas: list[tuple[str, str, shapely.Geometry]] = []
    for feature in data.get("features") or []:
        props = feature.get("properties") or {}
        code = props.get(layer.key)
        if code is None or not feature.get("geometry"):
            continue
        code_text = str(int(code)) if isinstance(code, float) and code.is_integer() else str(code)
        label = str(props.get(layer.label) or code_text) if layer.label else code_text
        areas.append((code_text, label, shapely.from_geojson(json.dumps(feature["geometry"]))))
    out: dict[str, tuple[str, str]] = {}
    for cam in cfg.cameras:
        point = shapely.Point(cam.location.lon, cam.location.lat)
        # The lowest code wins on a shared border, so the answer does not depend on file order.
        hits = sorted((code, label) for code, label, shape in areas if shape.covers(point))
        out[cam.id] = hits[0] if hits else (UNPLACED, "unplaced")
    return layer.id, out


def camera_hours(engine: Engine, since: datetime, until: datetime) -> dict[str, float]:
    """Hours each camera was analysed in `[since, until)`, from its count buckets (one per
    bucket start, whatever the number of zones)."""
    z = ZoneCountRecord
    buckets = (
        select(z.camera, z.bucket_start, func.max(z.bucket_seconds).label("seconds"))
        .where(z.bucket_start >= since, z.bucket_start < until)
        .group_by(z.camera, z.bucket_start)
        .subquery()
    )
    with engine.connect() as conn:
        rows = conn.execute(select(buckets.c.camera, func.sum(buckets.c.seconds)).group_by(buckets.c.camera))
        return {r[0]: float(r[1] or 0.0) / 3600.0 for r in rows}


def poisson_interval(count: int, hours: float) -> tuple[float, float] | None:
    """95 % exact (Garwood) interval of a rate per `PER_HOURS` hours."""
    if hours <= 0:
        return None
    lo = chi2.ppf(0.025, 2 * count) / 2 if count > 0 else 0.0
    hi = chi2.ppf(0.975, 2 * count + 2) / 2
    return (float(lo) * PER_HOURS / hours, float(hi) * PER_HOURS / hours)


def ratio_interval(a: int, ta: float, b: int, tb: float) -> tuple[float, float | None] | None:
    """95 % interval of the rate ratio (a/ta) ÷ (b/tb), exact given a + b (Clopper-Pearson on the
    share a / (a + b), turned into a ratio by the exposures)."""
    n = a + b
    if n == 0 or ta <= 0 or tb <= 0:
        return None
    lo_p = float(beta.ppf(0.025, a, n - a + 1)) if a > 0 else 0.0
    hi_p = float(beta.ppf(0.975, a + 1, n - a)) if a < n else 1.0
    scale = tb / ta
    lo = lo_p / (1 - lo_p) * scale
    return (lo, hi_p / (1 - hi_p) * scale if hi_p < 1 else None)


def suppress_one_group(counts: Sequence[int], k: int) -> list[bool]:
    """Rows to hide when their sum is published: counts in 1..k-1, then the smallest shown
    non-zero counts until the hidden ones are none, or at least two adding up to k or more."""
    hidden = [0 < c < k for c in counts]
    while True:
        shown_hidden = [c for c, h in zip(counts, hidden, strict=True) if h and c > 0]
        if not shown_hidden or (len(shown_hidden) >= 2 and sum(shown_hidden) >= k):
            return hidden
        candidates = [i for i, c in enumerate(counts) if c > 0 and not hidden[i]]
        if not candidates:
            return hidden
        hidden[min(candidates, key=lambda i: (counts[i], i))] = True


def _round(pair: tuple[float, float] | None, digits: int = 3) -> tuple[float, float] | None:
    return None if pair is None else (round(pair[0], digits), round(pair[1], digits))


def _round_ratio(pair: tuple[float, float | None] | None) -> tuple[float, float | None] | None:
    if pair is None:
        return None
    return (round(pair[0], 3), None if pair[1] is None else round(pair[1], 3))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def equity_report(
    cfg: Config,
    engine: Engine,
    now: datetime,
    days: int = DEFAULT_DAYS,
    *,
    exact: bool = False,
    neighbourhoods: Mapping[str, tuple[str, str]] | None = None,
) -> EquityReport:
    """Alerts and confirmed alerts per 1,000 camera-hours by neighbourhood over the `days` before
    `now`. `exact`: the auditor's view, nothing hidden. `neighbourhoods`: per camera `(code,
    label)`, instead of the observatory's first layer."""
    from lanterne.accountability.precision import precision_table

    since, until = now - timedelta(days=days), now
    layer, placed = (None, dict(neighbourhoods)) if neighbourhoods is not None else camera_neighbourhoods(cfg)
    hours = camera_hours(engine, since, until)
    alerts: dict[str, int] = {}
    confirmed: dict[str, int] = {}
    for p in precision_table(engine, now, days=days):
        if p.camera is not None:
            alerts[p.camera] = alerts.get(p.camera, 0) + p.alerts
            confirmed[p.camera] = confirmed.get(p.camera, 0) + p.confirmed
    groups: dict[str, dict[str, float | int | str]] = {}
    cameras: list[Camera] = list(cfg.cameras)
    for cam in cameras:
        code, label = placed.get(cam.id, (UNPLACED, "unplaced"))
        g = groups.setdefault(code, {"label": label, "cameras": 0, "hours": 0.0, "alerts": 0, "confirmed": 0})
        g["cameras"] = int(g["cameras"]) + 1
        g["hours"] = float(g["hours"]) + hours.get(cam.id, 0.0)
        g["alerts"] = int(g["alerts"]) + alerts.get(cam.id, 0)
        g["confirmed"] = int(g["confirmed"]) + confirmed.get(cam.id, 0)
    keys = sorted(groups)
    a = [int(groups[key]["alerts"]) for key in keys]
    c = [int(groups[key]["confirmed"]) for key in keys]
    t = [float(groups[key]["hours"]) for key in keys]
    k = cfg.observatory.min_count
    hide_a = [False] * len(keys) if exact else suppress_one_group(a, k)
    hide_c = [False] * len(keys) if exact else suppress_one_group(c, k)
    total_a, total_t = sum(a), sum(t)
    rows = []
    for i, key in enumerate(keys):
        rest_a, rest_t = total_a - a[i], total_t - t[i]
        ratio_ci = ratio_interval(a[i], t[i], rest_a, rest_t)
        ratio = (a[i] / t[i]) / (rest_a / rest_t) if t[i] > 0 and rest_t > 0 and rest_a > 0 else None
        flagged = ratio_ci is not None and ratio_ci[0] >= FLAG_RATIO
        hidden = hide_a[i]
        rows.append(
            NeighbourhoodRate(
                key=key,
                label=str(groups[key]["label"]),
                cameras=int(groups[key]["cameras"]),
                camera_hours=round(t[i], 2),
                alerts=None if hidden else a[i],
                confirmed=None if hide_c[i] else c[i],
                rate=None if hidden or t[i] <= 0 else round(a[i] * PER_HOURS / t[i], 3),
                interval=None if hidden else _round(poisson_interval(a[i], t[i])),
                confirmed_rate=None if hide_c[i] or t[i] <= 0 else round(c[i] * PER_HOURS / t[i], 3),
                ratio=None if hidden or ratio is None else round(ratio, 3),
                ratio_interval=None if hidden else _round_ratio(ratio_ci),
                # A flag on a hidden row would hint at its count: it is for the auditor's exact view.
                flagged=flagged and not hidden,
                suppressed=hidden or hide_c[i],
            )
        )
    return EquityReport(
        since=_iso(since),
        until=_iso(until),
        layer=layer,
        k=k,
        exact=exact,
        rows=tuple(rows),
        alerts=total_a if exact or not (0 < total_a < k) else None,
        camera_hours=round(total_t, 2),
    )
