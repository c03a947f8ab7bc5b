"""`lanterne observatory report`: one area and period of one dataset, as a self-contained HTML
file and a PDF with the same content, for people outside the system (a council, a newspaper,
an inspection).

A report leaves the system, so it is built as a publication (OB-08): every count goes through
small-cell suppression with the configured k whatever the role of whoever asks, the caveat that
recorded incidents measure reporting and policing activity sits on the first page (OB-07), the
bias audit of the categories shown comes with it (OB-06), and a ranking of areas, when there is
one, comes with the feedback-loop simulation (OB-05). The last section is a provenance record:
the hashes of the source file, the mapping and the boundary layer, the parameters and the code
version, hashed together so that two reports can be compared by one line.

The HTML has no script and no external URL (it opens offline and passes any content security
policy); the map and charts are inline SVG. The PDF draws the same map as polygons and the same
charts as lines and rectangles, so neither depends on a browser.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from h3.api import basic_int as h3int

from lanterne.config.schema import ObservatorySettings
from lanterne.observatory.aggregate import (
    AreaRef,
    Filters,
    Grain,
    categories,
    counts_by_h3,
    counts_by_layer,
    profile,
    resolution_of,
    series,
)
from lanterne.observatory.bias import CategoryAudit, audit, hotspots
from lanterne.observatory.layers import Layer, load_layer
from lanterne.observatory.store import ObservatoryError, ObservatoryStore
from lanterne.observatory.suppression import suppress
from lanterne.observatory.timeseries import Anomalies, Anomaly, decompose, find_anomalies

HTML_FILE = "report.html"
PDF_FILE = "report.pdf"

CAVEAT = (
    "Recorded incidents measure what was reported to and recorded by the police and the city, and "
    "where officers, cameras and patrols were looking: they are not the true rate of crime or "
    "nuisance. Categories that police activity produces (drug offences, weapons, prostitution) map "
    "enforcement, not offending. Compare areas only with the bias audit below, and never use these "
    "counts to judge a person."
)
"""OB-07: on the first page of every report, above the map, in the reader's way rather than in a footnote."""

PALETTE: tuple[str, ...] = ("#deebf7", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
"""Five blues: a sequential scale without the alarm of reds, readable in grey when printed."""
SUPPRESSED_FILL = "#d0d0d0"
ZERO_FILL = "#ffffff"
DOW = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class MapArea:
    """One polygon of the map: a boundary area or an H3 cell, with its published count."""

    key: str
    label: str
    count: int | None
    """None when suppressed."""
    suppressed: bool
    rings: tuple[tuple[tuple[float, float], ...], ...]
    """Outer rings as (lon, lat); holes are left out, a choropleth does not need them."""

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.count is None else poisson_interval(self.count)


@dataclass(frozen=True)
class ReportMap:
    level: str
    areas: tuple[MapArea, ...]
    total: int | None
    """The published total of the map (None when it would reveal a suppressed cell)."""
    suppressed_cells: int
    unlocated: int | None
    """Rows without a place on this map; None when hidden or when the map is part of a larger one."""
    breaks: tuple[int, ...]
    """Lower bounds of the colour classes (the first is k)."""


@dataclass(frozen=True)
class ReportSeries:
    grain: Grain
    starts: tuple[datetime, ...]
    counts: tuple[int | None, ...]
    trend: tuple[float | None, ...]
    note: str | None = None


@dataclass(frozen=True)
class Profile:
    title: str
    labels: tuple[str, ...]
    counts: tuple[int | None, ...]


@dataclass(frozen=True)
class Report:
    """Everything a report shows, computed once and rendered twice (HTML, PDF)."""

    title: str
    subtitle: str
    generated_at: datetime
    dataset: str
    dataset_title: str
    category: str | None
    area: AreaRef | None
    area_label: str
    period: tuple[datetime, datetime]
    k: int
    caveat: str
    provenance: tuple[tuple[str, str], ...]
    map: ReportMap
    monthly: ReportSeries
    weekly: ReportSeries
    profiles: tuple[Profile, ...]
    anomalies: tuple[Anomaly, ...]
    audit_rows: tuple[CategoryAudit, ...]
    audit_notes: tuple[str, ...]
    ranking: tuple[tuple[str, int], ...]
    ranking_notes: tuple[str, ...]
    suppressed: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]
    lanterne_version: str
    inputs_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)


def poisson_interval(n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % interval of a Poisson count (Wilson-Hilferty approximation of Garwood's exact interval,
    within 1 % of it from n = 1): the uncertainty OB-07 asks to show beside every count."""
    if n <= 0:
        return 0.0, 3.689
    lower = n * (1 - 1 / (9 * n) - z / (3 * math.sqrt(n))) ** 3
    m = n + 1
    upper = m * (1 - 1 / (9 * m) + z / (3 * math.sqrt(m))) ** 3
    return max(lower, 0.0), upper


def fmt_count(n: int | None, k: int) -> str:
    """A count as printed: thin-space thousands, `< k` where suppressed."""
    if n is None:
        return f"< {k}"
    return f"{n:,}".replace(",", "\u202f")


def lanterne_version() -> str:
    try:
        return importlib.metadata.version("lanterne")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


# --- Geometry: one projection for both renderers -------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """Equirectangular projection scaled into a box: at city and département scale the distortion
    of a plain lon/lat plot is the cosine of the latitude, corrected once at the centre."""

    lon0: float
    lat1: float
    kx: float
    ky: float
    width: float
    height: float

    @classmethod
    def fit(cls, areas: Sequence[MapArea], width: float, max_height: float) -> Frame:
        points = [p for a in areas for ring in a.rings for p in ring]
        if not points:
            return cls(0.0, 0.0, 1.0, 1.0, width, max_height / 2)
        lons = [p[0] for p in points]
        lats = [p[1] for p in points]
        lon0, lon1, lat0, lat1 = min(lons), max(lons), min(lats), max(lats)
        aspect = math.cos(math.radians((lat0 + lat1) / 2))
        span_x = max((lon1 - lon0) * aspect, 1e-9)
        span_y = max(lat1 - lat0, 1e-9)
        scale = min(width / span_x, max_height / span_y)
        return cls(lon0, lat1, scale * aspect, scale, span_x * scale, span_y * scale)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (self.lat1 - lat) * self.ky


def _rings_of(geometry: dict[str, Any]) -> tuple[tuple[tuple[float, float], ...], ...]:
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return tuple(tuple((float(x), float(y)) for x, y, *_ in poly[0]) for poly in polygons if poly)


def _h3_rings(key: str) -> tuple[tuple[tuple[float, float], ...], ...]:
    cell = int(key, 16) if isinstance(key, str) else int(key)
    return (tuple((lng, lat) for lat, lng in h3int.cell_to_boundary(cell)),)


def class_breaks(values: Sequence[int], k: int, classes: int = len(PALETTE)) -> tuple[int, ...]:
    """Lower bounds of the colour classes: quantiles of the shown non-zero counts, the first
    class starting at k (nothing between 1 and k - 1 is ever shown)."""
    shown = sorted(v for v in values if v >= k)
    if not shown:
        return (k,)
    qs = np.quantile(np.asarray(shown, dtype=np.float64), np.linspace(0, 1, classes + 1)[1:-1])
    breaks = [k]
    for q in qs:
        b = math.ceil(float(q))
        if b > breaks[-1]:
            breaks.append(b)
    return tuple(breaks)


def fill_of(area: MapArea, breaks: Sequence[int]) -> str:
    if area.suppressed:
        return SUPPRESSED_FILL
    if not area.count:
        return ZERO_FILL
    idx = sum(1 for b in breaks if area.count >= b) - 1
    return PALETTE[max(0, min(idx, len(PALETTE) - 1))]


def legend(breaks: Sequence[int], top: int, k: int) -> list[tuple[str, str]]:
    """(colour, label) pairs: `0`, suppressed, then one range per class."""
    out = [(ZERO_FILL, "0"), (SUPPRESSED_FILL, f"suppressed (1 to {k - 1}, or hidden to protect one)")]
    for i, lo in enumerate(breaks):
        hi = breaks[i + 1] - 1 if i + 1 < len(breaks) else top
        label = f"{fmt_count(lo, k)}" if hi <= lo else f"{fmt_count(lo, k)} – {fmt_count(hi, k)}"
        out.append((PALETTE[min(i, len(PALETTE) - 1)], label))
    return out


# --- Charts: laid out once as primitives, drawn by the SVG and the PDF renderers -----------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str | None = None
    dashed: bool = False
    title: str | None = None


@dataclass(frozen=True)
class Line:
    points: tuple[tuple[float, float], ...]
    stroke: str
    width: float = 1.0
    dashed: bool = False


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: float = 9.0
    anchor: str = "start"
    """`start`, `middle` or `end`, as in SVG."""
    fill: str = "#333333"


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    shapes: tuple[Rect | Line | Text, ...]
    caption: str


AXIS = "#666666"
BAR = "#3182bd"
TREND = "#d95f02"

_MARGIN_L, _MARGIN_R, _MARGIN_T, _MARGIN_B = 46.0, 10.0, 10.0, 26.0


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def _axes(width: float, height: float, top: float, k: int) -> list[Rect | Line | Text]:
    x0, y0 = _MARGIN_L, height - _MARGIN_B
    shapes: list[Rect | Line | Text] = [Line(((x0, _MARGIN_T), (x0, y0), (width - _MARGIN_R, y0)), AXIS)]
    for i in range(5):
        v = top * i / 4
        y = y0 - (y0 - _MARGIN_T) * i / 4
        if i:
            shapes.append(Line(((x0, y), (width - _MARGIN_R, y)), "#e4e4e4", 0.5))
        shapes.append(Text(x0 - 4, y + 3, fmt_count(round(v), k), 8, "end"))
    return shapes


def bar_chart(
    labels: Sequence[str],
    counts: Sequence[int | None],
    k: int,
    *,
    caption: str,
    width: float = 640,
    height: float = 180,
    trend: Sequence[float | None] = (),
    label_every: int = 1,
) -> Chart:
    """Bars for shown counts; a dashed outline up to k for a suppressed one, so the reader sees
    that something below k is there without learning what."""
    shown = [c for c in counts if c is not None]
    top = _nice_max(max([*shown, k, *(t for t in trend if t is not None)], default=k))
    x0, y0 = _MARGIN_L, height - _MARGIN_B
    plot_w, plot_h = width - _MARGIN_L - _MARGIN_R, y0 - _MARGIN_T
    n = max(len(counts), 1)
    step = plot_w / n
    shapes = _axes(width, height, top, k)
    for i, (label, c) in enumerate(zip(labels, counts, strict=True)):
        x = x0 + i * step + step * 0.12
        w = step * 0.76
        if c is None:
            h = plot_h * k / top
            shapes.append(Rect(x, y0 - h, w, h, "#f2f2f2", "#999999", True, f"{label}: < {k}"))
        elif c > 0:
            h = plot_h * c / top
            shapes.append(Rect(x, y0 - h, w, h, BAR, None, False, f"{label}: {fmt_count(c, k)}"))
        if i % label_every == 0:
            shapes.append(Text(x0 + (i + 0.5) * step, y0 + 11, label, 7.5, "middle"))
    points = [
        (x0 + (i + 0.5) * step, y0 - plot_h * t / top)
        for i, t in enumerate(trend)
        if t is not None and t >= 0
    ]
    if len(points) > 1:
        shapes.append(Line(tuple(points), TREND, 1.6))
    return Chart(width, height, tuple(shapes), caption)


def line_chart(
    starts: Sequence[datetime],
    counts: Sequence[int | None],
    k: int,
    *,
    caption: str,
    trend: Sequence[float | None] = (),
    marks: Sequence[datetime] = (),
    width: float = 640,
    height: float = 180,
) -> Chart:
    """A weekly line broken where a week is suppressed (a gap, not a guess), the trend over it,
    and a red tick on each anomaly."""
    shown = [c for c in counts if c is not None]
    top = _nice_max(max([*shown, k, *(t for t in trend if t is not None)], default=k))
    x0, y0 = _MARGIN_L, height - _MARGIN_B
    plot_w, plot_h = width - _MARGIN_L - _MARGIN_R, y0 - _MARGIN_T
    n = len(counts)
    shapes = _axes(width, height, top, k)

    def x_at(i: int) -> float:
        return x0 + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    run: list[tuple[float, float]] = []
    for i, c in enumerate(counts):
        if c is None:
            if len(run) > 1:
                shapes.append(Line(tuple(run), BAR, 1.2))
            run = []
            shapes.append(Rect(x_at(i) - 1, y0 - plot_h * k / top, 2, plot_h * k / top, "#e0e0e0"))
            continue
        run.append((x_at(i), y0 - plot_h * c / top))
    if len(run) > 1:
        shapes.append(Line(tuple(run), BAR, 1.2))
    t_points = [(x_at(i), y0 - plot_h * t / top) for i, t in enumerate(trend) if t is not None and t >= 0]
    if len(t_points) > 1:
        shapes.append(Line(tuple(t_points), TREND, 1.6))
    index = {s: i for i, s in enumerate(starts)}
    for m in marks:
        if m in index:
            x = x_at(index[m])
            shapes.append(Line(((x, _MARGIN_T), (x, y0)), "#c0392b", 0.8, True))
    # Label the first week of each year or quarter, whichever keeps under about 12 labels.
    last = None
    last_x = -math.inf
    months_apart = 3 if n <= 80 else 12
    for i, s in enumerate(starts):
        key = (s.year, (s.month - 1) // months_apart)
        if key != last and x_at(i) - last_x > 60:
            shapes.append(Text(x_at(i), y0 + 11, s.strftime("%b %Y"), 7.5, "middle"))
            last, last_x = key, x_at(i)
    return Chart(width, height, tuple(shapes), caption)


# --- HTML ---------------------------------------------------------------------------------------

_e = html.escape


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def chart_svg(chart: Chart) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(chart.width)} {_n(chart.height)}" '
        f'width="{_n(chart.width)}" height="{_n(chart.height)}" role="img" aria-label="{_e(chart.caption)}">'
    ]
    for s in chart.shapes:
        if isinstance(s, Rect):
            stroke = f' stroke="{s.stroke}"' if s.stroke else ""
            dash = ' stroke-dasharray="3 2"' if s.dashed else ""
            title = f"<title>{_e(s.title)}</title>" if s.title else ""
            parts.append(
                f'<rect x="{_n(s.x)}" y="{_n(s.y)}" width="{_n(s.w)}" height="{_n(s.h)}" '
                f'fill="{s.fill}"{stroke}{dash}>{title}</rect>'
            )
        elif isinstance(s, Line):
            dash = ' stroke-dasharray="3 2"' if s.dashed else ""
            pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in s.points)
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{s.stroke}" stroke-width="{_n(s.width)}"{dash}/>'
            )
        else:
            parts.append(
                f'<text x="{_n(s.x)}" y="{_n(s.y)}" font-size="{_n(s.size)}" text-anchor="{s.anchor}" '
                f'fill="{s.fill}">{_e(s.text)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def map_svg(m: ReportMap, k: int, width: float = 640, max_height: float = 560) -> str:
    """One `<path class="area">` per area (an H3 cell or a polygon of the layer), its count in a
    tooltip. Suppressed areas are hatched grey: a reader sees where a count is withheld."""
    frame = Frame.fit(m.areas, width, max_height)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="-2 -2 {_n(frame.width + 4)} {_n(frame.height + 4)}" '
        f'width="{_n(frame.width + 4)}" height="{_n(frame.height + 4)}" role="img" aria-label="map">',
        '<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="4" height="4" fill="#d0d0d0"/>'
        '<line x1="0" y1="0" x2="0" y2="4" stroke="#9a9a9a" stroke-width="1.2"/></pattern></defs>',
    ]
    for a in m.areas:
        d = " ".join(
            "M" + " L".join(f"{_n(x)},{_n(y)}" for x, y in (frame.xy(*p) for p in ring)) + " Z"
            for ring in a.rings
        )
        fill = "url(#hatch)" if a.suppressed else fill_of(a, m.breaks)
        parts.append(
            f'<path class="area" d="{d}" fill="{fill}" stroke="#7a7a7a" stroke-width="0.4">'
            f"<title>{_e(a.label)}: {_e(fmt_count(a.count, k))}</title></path>"
        )
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body { font-family: "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: #222; margin: 2rem auto;
       max-width: 56rem; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem;
     border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
.sub { color: #555; margin-top: 0; } .meta { color: #666; font-size: .85rem; }
.caveat { background: #fff3cd; border-left: 4px solid #d9a400; padding: .6rem .9rem; margin: 1rem 0; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
th, td { border: 1px solid #d5d5d5; padding: .2rem .45rem; text-align: left; vertical-align: top; }
th { background: #eef1f5; } td.num, td.count { text-align: right; font-variant-numeric: tabular-nums; }
.legend span.sw { display: inline-block; width: 1rem; height: .8rem; border: 1px solid #888;
                  vertical-align: middle; margin: 0 .3rem 0 .8rem; }
.legend span.hatch { background: repeating-linear-gradient(45deg, #d0d0d0 0 2px, #9a9a9a 2px 3px); }
figure { margin: .5rem 0 1rem; } figcaption { font-size: .85rem; color: #555; }
code, .hash { font-family: "DejaVu Sans Mono", monospace; font-size: .8rem; word-break: break-all; }
svg { max-width: 100%; height: auto; }
@media print { h2 { break-after: avoid; } figure { break-inside: avoid; } }
"""


def _count_cell(n: int | None, k: int) -> str:
    """Every published count goes through here, marked `count`, so a test (or an auditor) can
    find them all and check none is below k."""
    cls = "count suppressed" if n is None else "count"
    return f'<td class="{cls}">{_e(fmt_count(n, k))}</td>'


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows are already HTML (cells escaped by their builders)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: str, cls: str | None = None) -> str:
    return f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"


def _natural(a: MapArea) -> tuple[int, str]:
    """Beats 111, 112, 1011 in that order, not as text (1011 before 111)."""
    return (int(a.label), "") if a.label.isdigit() else (1 << 62, a.label)


def _map_summary(m: ReportMap, k: int) -> str:
    if m.total is None:
        total = "total not shown (the area's total is the sum of its series below)"
    else:
        total = f"total {fmt_count(m.total, k)}"
    if m.unlocated is None:
        unlocated = "records without a location: not shown (suppressed)"
    else:
        unlocated = f"{fmt_count(m.unlocated, k)} records without a location are not on the map"
    return f"{len(m.areas)} areas at level {m.level}; {total}; {m.suppressed_cells} suppressed; {unlocated}."


def _period_text(period: tuple[datetime, datetime]) -> str:
    start, end = period
    last = end - timedelta(days=1)
    return f"{start:%Y-%m-%d} to {last:%Y-%m-%d}"


def _charts(report: Report) -> list[Chart]:
    k = report.k
    m = report.monthly
    charts = [
        bar_chart(
            [f"{s:%b %y}" for s in m.starts],
            m.counts,
            k,
            trend=m.trend,
            label_every=max(1, math.ceil(len(m.starts) / 12)),
            caption="Incidents per month (bars) and trend (orange line); dashed outline: suppressed month.",
        ),
        line_chart(
            report.weekly.starts,
            report.weekly.counts,
            k,
            trend=report.weekly.trend,
            marks=[a.start for a in report.anomalies],
            caption="Incidents per week (blue), trend (orange), anomalies (red dashes); grey: suppressed week.",
        ),
    ]
    for p in report.profiles:
        charts.append(bar_chart(p.labels, p.counts, k, caption=p.title, height=140))
    return charts


def _audit_table_rows(report: Report) -> tuple[tuple[str, ...], list[tuple[str | int | None, ...]]]:
    """Header and rows of the bias audit (HTML and PDF): counts stay ints for `fmt_count`."""
    header = (
        "category",
        "incidents",
        "police-initiated",
        "recorded as",
        "Gini over areas",
        "share in top 10 % of areas",
        "top-area persistence",
    )
    rows: list[tuple[str | int | None, ...]] = []
    for a in report.audit_rows:
        rows.append(
            (
                a.category,
                a.total,
                _pct(a.channel_shares.get("police_initiated")),
                "discovered (police activity)" if a.discovered else "reported",
                "–" if a.gini is None else f"{a.gini:.2f}",
                _pct(a.top10_share),
                "–" if a.persistence is None else f"{a.persistence:.2f}",
            )
        )
    return header, rows


def render_html(report: Report) -> str:
    """One self-contained page: inline CSS and SVG, no script, no external URL."""
    k = report.k
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        f'<p class="sub">{_e(report.subtitle)}</p>',
        f'<p class="meta">Generated by Lanterne {_e(report.lanterne_version)} on '
        f"{report.generated_at:%Y-%m-%d %H:%M} UTC. Counts below {k} are suppressed (k = {k}), and enough "
        "others with them that no total gives one back.</p>",
        f'<div class="caveat" id="caveat"><strong>Read this first.</strong> {_e(report.caveat)}</div>',
        "<h2>1. Map</h2>",
    ]
    m = report.map
    out.append(f"<p>{_e(_map_summary(m, k))}</p>")
    out.append(f"<figure>{map_svg(m, k)}")
    sw = []
    for colour, label in legend(m.breaks, max((a.count or 0 for a in m.areas), default=k), k):
        cls = "sw hatch" if colour == SUPPRESSED_FILL else "sw"
        sw.append(f'<span class="{cls}" style="background-color:{colour}"></span>{_e(label)}')
    out.append(f'<figcaption class="legend">{"".join(sw)}</figcaption></figure>')

    out.append("<h2>2. Over time</h2>")
    charts = _charts(report)
    for c in charts[:2]:
        out.append(f"<figure>{chart_svg(c)}<figcaption>{_e(c.caption)}</figcaption></figure>")
    for note in sorted({report.monthly.note, report.weekly.note} - {None}):
        out.append(f"<p class='meta'>{_e(str(note))}</p>")
    rows = [
        [_td(f"{s:%Y-%m}"), _count_cell(c, k)]
        for s, c in zip(report.monthly.starts, report.monthly.counts, strict=True)
    ]
    out.append(
        "<details><summary>Monthly counts</summary>" + _table(("month", "incidents"), rows) + "</details>"
    )

    out.append("<h2>3. When in the day, week and year</h2>")
    for c in charts[2:]:
        out.append(f"<figure>{chart_svg(c)}<figcaption>{_e(c.caption)}</figcaption></figure>")

    out.append("<h2>4. Anomalies</h2>")
    if report.anomalies:
        out.append("<ul>" + "".join(f"<li>{_e(a.text)}</li>" for a in report.anomalies) + "</ul>")
    else:
        out.append("<p>No week in the period is far from its usual level.</p>")
    out.extend(f"<p class='meta'>{_e(n)}</p>" for n in report.extra.get("anomaly_notes", ()))

    out.append("<h2>5. Bias audit</h2>")
    out.append(f'<p class="caveat">{_e(report.caveat)}</p>')
    header, audit_rows = _audit_table_rows(report)
    out.append(
        _table(
            header,
            [
                [_td(str(r[0])), _count_cell(r[1] if isinstance(r[1], int) else None, k)]
                + [_td(str(v), "num") for v in r[2:]]
                for r in audit_rows
            ],
        )
    )
    out.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.audit_notes) + "</ul>")

    if report.ranking:
        out.append("<h2>6. Ranking of areas, with its feedback-loop simulation</h2>")
        out.append(
            _table(
                ("rank", "area", "incidents"),
                [
                    [_td(str(i), "num"), _td(label), _count_cell(n, k)]
                    for i, (label, n) in enumerate(report.ranking, 1)
                ],
            )
        )
    if report.ranking_notes:
        if not report.ranking:
            out.append("<h2>6. Ranking of areas</h2>")
        out.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.ranking_notes) + "</ul>")

    out.append("<h2>7. Counts by area</h2>")
    area_rows = []
    for a in sorted(m.areas, key=_natural):
        ci = a.interval
        area_rows.append(
            [
                _td(a.label),
                _count_cell(a.count, k),
                _td("–" if ci is None else f"{ci[0]:.0f} – {ci[1]:.0f}", "num"),
            ]
        )
    out.append(
        "<details><summary>All areas, alphabetical (95 % Poisson interval beside each count)</summary>"
        + _table(("area", "incidents", "95 % interval"), area_rows)
        + "</details>"
    )
    out.append(f"<h2>8. Suppressed cells ({len(report.suppressed)})</h2>")
    out.append(
        "<p>"
        + (
            _e(", ".join(report.suppressed))
            if report.suppressed
            else "None: every area holds 0 or at least k."
        )
        + "</p>"
    )

    out.append("<h2>9. Provenance</h2>")
    out.append(
        _table(("", ""), [[_td(a), _td(b, "hash" if "sha256" in a else None)] for a, b in report.provenance])
    )
    out.append("<h3>Parameters</h3>")
    out.append(_table(("parameter", "value"), [[_td(a), _td(b)] for a, b in report.parameters]))
    out.append(
        f"<p>Lanterne {_e(report.lanterne_version)}. sha256 of this report's inputs (source, mapping, boundary "
        f'layer, parameters, code version): <span class="hash" id="inputs-sha256">{report.inputs_sha256}</span></p>'
    )
    out.append("</body></html>")
    return "\n".join(out)


def write_html(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


# --- PDF ----------------------------------------------------------------------------------------


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _draw_chart(pdf: Any, chart: Chart, x0: float, y0: float, width_mm: float, family: str) -> float:
    """Draw `chart` with its top-left at (x0, y0) mm, scaled to `width_mm`; returns its height in mm."""
    s = width_mm / chart.width
    for shape in chart.shapes:
        if isinstance(shape, Rect):
            pdf.set_fill_color(*_rgb(shape.fill))
            if shape.stroke:
                pdf.set_draw_color(*_rgb(shape.stroke))
                pdf.set_line_width(0.15)
                if shape.dashed:
                    pdf.set_dash_pattern(dash=0.8, gap=0.5)
            pdf.rect(
                x0 + shape.x * s,
                y0 + shape.y * s,
                shape.w * s,
                shape.h * s,
                style="DF" if shape.stroke else "F",
            )
            pdf.set_dash_pattern()
        elif isinstance(shape, Line):
            pdf.set_draw_color(*_rgb(shape.stroke))
            pdf.set_line_width(max(shape.width * s, 0.1))
            if shape.dashed:
                pdf.set_dash_pattern(dash=0.8, gap=0.5)
            pdf.polyline([(x0 + x * s, y0 + y * s) for x, y in shape.points])
            pdf.set_dash_pattern()
        else:
            pdf.set_font(family, "", shape.size * 0.8)
            pdf.set_text_color(*_rgb(shape.fill))
            w = pdf.get_string_width(shape.text)
            dx = {"start": 0.0, "middle": -w / 2, "end": -w}[shape.anchor]
            pdf.text(x0 + shape.x * s + dx, y0 + shape.y * s, shape.text)
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    return chart.height * s


def render_pdf(report: Report) -> bytes:
    """The same sections as the HTML, for print: A4 portrait, the map as filled polygons."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    from lanterne.dpia import _font_files

    k = report.k
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(report.title)
    pdf.set_subject(report.subtitle)
    pdf.set_creator(f"Lanterne {report.lanterne_version}")
    pdf.set_creation_date(report.generated_at)
    fonts = _font_files()
    if fonts is not None:
        pdf.add_font("DejaVu", "", str(fonts[0]))
        pdf.add_font("DejaVu", "B", str(fonts[1]))
        family = "DejaVu"

        def text(s: str) -> str:
            return s
    else:
        family = "Helvetica"

        def text(s: str) -> str:
            # Core fonts are Latin-1: French accents survive, anything else becomes "?".
            return (
                s.replace("–", "-")
                .replace("×", "x")
                .replace("\u202f", " ")
                .replace("≥", ">=")
                .encode("latin-1", "replace")
                .decode("latin-1")
            )

    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(title: str) -> None:
        pdf.ln(3)
        pdf.set_font(family, "B", 13)
        pdf.multi_cell(0, 7, text(title), new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.set_font(family, "", 9.5)

    def para(s: str, size: float = 9.5, colour: tuple[int, int, int] = (0, 0, 0)) -> None:
        pdf.set_font(family, "", size)
        pdf.set_text_color(*colour)
        pdf.multi_cell(0, size * 0.5, text(s), new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.set_text_color(0, 0, 0)

    def table(
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        size: float = 7.5,
        widths: Sequence[int] | None = None,
    ) -> None:
        pdf.set_font(family, "", size)
        with pdf.table(
            headings_style=FontFace(emphasis="BOLD", fill_color=(235, 238, 242)),
            line_height=pdf.font_size * 1.5,
            text_align="LEFT",
            col_widths=widths,
        ) as t:
            t.row([text(h) for h in header])
            for r in rows:
                t.row([text(c) for c in r])
        pdf.set_font(family, "", 9.5)

    def ensure(height: float) -> None:
        if pdf.get_y() + height > pdf.h - pdf.b_margin:
            pdf.add_page()

    pdf.add_page()
    pdf.set_font(family, "B", 16)
    pdf.multi_cell(0, 8, text(report.title), new_x="LMARGIN", new_y="NEXT", align="L")
    para(report.subtitle, 10.5, (70, 70, 70))
    para(
        f"Generated by Lanterne {report.lanterne_version} on {report.generated_at:%Y-%m-%d %H:%M} UTC. "
        f"Counts below {k} are suppressed (k = {k}), and enough others with them that no total gives one back.",
        8.5,
        (100, 100, 100),
    )
    pdf.ln(2)
    pdf.set_fill_color(255, 243, 205)
    pdf.set_font(family, "B", 9.5)
    pdf.multi_cell(0, 5.5, text("Read this first."), fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9.5)
    pdf.multi_cell(0, 5, text(report.caveat), fill=True, new_x="LMARGIN", new_y="NEXT")

    heading("1. Map")
    m = report.map
    para(_map_summary(m, k), 9)
    map_h = min(pdf.h - pdf.b_margin - pdf.get_y() - 28, 150.0)
    frame = Frame.fit(m.areas, width, map_h)
    x0 = pdf.l_margin + (width - frame.width) / 2
    y0 = pdf.get_y() + 2
    pdf.set_line_width(0.1)
    pdf.set_draw_color(120, 120, 120)
    for a in m.areas:
        pdf.set_fill_color(*_rgb(fill_of(a, m.breaks)))
        for ring in a.rings:
            pts = [(x0 + x, y0 + y) for x, y in (frame.xy(*p) for p in ring)]
            if len(pts) >= 3:
                pdf.polygon(pts, style="DF")
    pdf.set_y(y0 + frame.height + 3)
    pdf.set_font(family, "", 7.5)
    x = pdf.l_margin
    for colour, label in legend(m.breaks, max((a.count or 0 for a in m.areas), default=k), k):
        w = pdf.get_string_width(text(label)) + 8
        if x + w > pdf.l_margin + width:
            x = pdf.l_margin
            pdf.ln(5)
        pdf.set_fill_color(*_rgb(colour))
        pdf.rect(x, pdf.get_y() + 0.6, 4, 3, style="DF")
        pdf.text(x + 5, pdf.get_y() + 3.2, text(label))
        x += w
    pdf.ln(6)

    charts = _charts(report)
    pdf.add_page()
    heading("2. Over time")
    for c in charts[:2]:
        ensure(c.height * width / c.width + 12)
        h = _draw_chart(pdf, c, pdf.l_margin, pdf.get_y(), width, family)
        pdf.set_y(pdf.get_y() + h + 1)
        para(c.caption, 8, (90, 90, 90))
        pdf.ln(2)
    for note in sorted({report.monthly.note, report.weekly.note} - {None}):
        para(str(note), 8, (90, 90, 90))
    heading("3. When in the day, week and year")
    for c in charts[2:]:
        ensure(c.height * width / c.width + 10)
        h = _draw_chart(pdf, c, pdf.l_margin, pdf.get_y(), width, family)
        pdf.set_y(pdf.get_y() + h + 1)
        para(c.caption, 8, (90, 90, 90))

    heading("4. Anomalies")
    if report.anomalies:
        for a in report.anomalies:
            pdf.set_x(pdf.l_margin + 3)
            para("• " + a.text, 9)
    else:
        para("No week in the period is far from its usual level.", 9)
    for n in report.extra.get("anomaly_notes", ()):
        para(n, 8, (90, 90, 90))

    heading("5. Bias audit")
    pdf.set_fill_color(255, 243, 205)
    pdf.multi_cell(0, 4.5, text(report.caveat), fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    header, audit_rows = _audit_table_rows(report)
    table(
        header,
        [
            [str(r[0]), fmt_count(r[1] if isinstance(r[1], int) else None, k), *(str(v) for v in r[2:])]
            for r in audit_rows
        ],
        6.5,
    )
    for n in report.audit_notes:
        para("• " + n, 8.5)

    if report.ranking or report.ranking_notes:
        heading("6. Ranking of areas" + (", with its feedback-loop simulation" if report.ranking else ""))
        if report.ranking:
            table(
                ("rank", "area", "incidents"),
                [(str(i), label, fmt_count(n, k)) for i, (label, n) in enumerate(report.ranking, 1)],
                8,
                (10, 60, 20),
            )
        for n in report.ranking_notes:
            para("• " + n, 8.5)

    heading("7. Counts by area")
    cols = 3
    ordered = sorted(m.areas, key=_natural)
    per_col = math.ceil(len(ordered) / cols) if ordered else 0
    rows = []
    for i in range(per_col):
        row: list[str] = []
        for c in range(cols):
            j = c * per_col + i
            if j < len(ordered):
                a = ordered[j]
                row += [a.label, fmt_count(a.count, k)]
            else:
                row += ["", ""]
        rows.append(row)
    table(("area", "incidents") * cols, rows, 6.5, (22, 11) * cols)

    heading(f"8. Suppressed cells ({len(report.suppressed)})")
    para(", ".join(report.suppressed) if report.suppressed else "None: every area holds 0 or at least k.", 8)

    heading("9. Provenance")
    table(("", ""), list(report.provenance), 7, (35, 145))
    pdf.ln(2)
    table(("parameter", "value"), list(report.parameters), 7, (35, 145))
    pdf.ln(2)
    para(
        f"sha256 of this report's inputs (source, mapping, boundary layer, parameters, code version): {report.inputs_sha256}",
        8,
    )
    return bytes(pdf.output())


def write_pdf(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_pdf(report))
    return path


# --- Building a report --------------------------------------------------------------------------

DEFAULT_H3_LEVEL = "h3:8"
"""About 0.7 km² a cell: fine enough to show a neighbourhood, coarse enough that most cells of a
month hold more than k."""


def build_report(
    store: ObservatoryStore,
    cfg_observatory: ObservatorySettings,
    *,
    dataset: str,
    category: str | None = None,
    area: AreaRef | None = None,
    period: tuple[datetime, datetime],
    level: str | None = None,
    top: int = 10,
    now: datetime | None = None,
) -> Report:
    """Compute everything a report shows for `dataset` (one `category` or all), inside `area` (a
    layer's area or an H3 cell; None for the whole dataset) over `period` = [start, end) in the
    dataset's local time, mapped at `level` (`h3:<res>` or `layer:<id>`; default: the layer the
    dataset records its areas in, else h3:8, and h3:8 inside an area).

    Always suppressed with k = `min_count`: a report leaves the system whoever asks for it (OB-08).
    `top` areas are ranked (0: no ranking), always beside the feedback-loop simulation (OB-05).
    """
    now = now or datetime.now(UTC)
    k = cfg_observatory.min_count
    start, end = period
    if end <= start:
        raise ObservatoryError("the report period is empty: its end must come after its start")
    sheet = next((d for d in store.datasets() if d["id"] == dataset), None)
    if sheet is None:
        known = ", ".join(d["id"] for d in store.datasets()) or "none yet"
        raise ObservatoryError(f"no dataset {dataset!r} in the observatory store (known: {known})")
    if sheet["kind"] != "incidents":
        raise ObservatoryError(f"dataset {dataset!r} holds measures; a report maps an incidents dataset")
    if category is not None and not store.query(
        "SELECT 1 FROM incidents WHERE dataset = $d AND category = $c LIMIT 1", {"d": dataset, "c": category}
    ):
        some = ", ".join(name for name, _ in categories(store, dataset)[:5])
        raise ObservatoryError(f"dataset {dataset!r} has no category {category!r}; the largest are: {some}")
    settings = {layer.id: layer for layer in cfg_observatory.layers}

    def layer(layer_id: str) -> Layer:
        if layer_id not in settings:
            raise ObservatoryError(
                f"layer {layer_id!r} is not configured; add it to observatory.layers or use one of: "
                f"{', '.join(settings) or 'none configured'}"
            )
        return load_layer(settings[layer_id])

    area_label = "whole dataset"
    if area is not None:
        if area.level.startswith("layer:"):
            lay = layer(area.level.removeprefix("layer:"))
            if area.key not in lay.codes:
                sample = ", ".join(lay.codes[:5])
                raise ObservatoryError(f"layer {lay.id} has no area {area.key!r}; codes look like {sample}")
            name = lay.labels.get(area.key, area.key)
            area_label = f"{lay.id} {area.key}" + (f" ({name})" if name != area.key else "")
        elif area.level.startswith("h3:"):
            area_label = f"H3 cell {area.key}"
        else:
            raise ObservatoryError(
                f"area {area.level}:{area.key} is neither layer:<id>:<code> nor h3:<res>:<cell>"
            )
    level = level or _default_level(store, dataset, area, settings)
    filters = Filters(dataset=dataset, category=category, start=start, end=end)

    report_map = _map(store, filters, level, area, k, layer)
    context = Filters(dataset=dataset, category=category)
    precision = str(sheet["time_precision"])
    monthly, _ = _series(store, context, Grain.MONTH, area, period, k, precision)
    weekly, weekly_context = _series(store, context, Grain.WEEK, area, period, k, precision)
    found = _anomalies(weekly_context, period)

    profiles = []
    for by, title, labels in (
        ("hour", "Incidents by hour of the day (local time)", tuple(f"{h:02d}" for h in range(24))),
        ("dow", "Incidents by day of the week", DOW),
        ("month", "Incidents by month of the year", MONTHS),
    ):
        if by == "hour" and precision not in ("minute", "hour"):
            continue
        if by == "dow" and precision in ("month", "year"):
            continue
        values = profile(store, filters, by, k=k, area=area)  # type: ignore[arg-type]
        profiles.append(Profile(title, labels, tuple(c for _, c in values)))

    audit_level = level if level.startswith("layer:") else DEFAULT_H3_LEVEL
    audit_rows, audit_notes = _audit(store, dataset, category, audit_level, settings, k)
    ranking, ranking_notes = _ranking(store, filters, report_map, top, k, area, settings)

    layer_ids = sorted(
        {x.removeprefix("layer:") for x in (level, area.level if area else "") if x.startswith("layer:")}
    )
    layer_hashes = {lid: layer(lid).sha256 for lid in layer_ids}
    parameters: tuple[tuple[str, str], ...] = (
        ("dataset", dataset),
        ("category", category or "all categories"),
        ("area", "whole dataset" if area is None else f"{area.level}:{area.key}"),
        ("period", f"[{start.isoformat()}, {end.isoformat()}) local time ({sheet['time_zone']})"),
        ("map level", level),
        ("small-cell threshold k", str(k)),
        ("ranking", f"top {top}" if top else "none"),
        ("anomalies", f"weekly, robust z ≥ {ANOMALY_THRESHOLD}, baseline from the whole dataset"),
        ("bias audit level", audit_level),
    )
    version = lanterne_version()
    inputs = {
        "dataset_sha256": sheet["sha256"],
        "mapping_sha256": sheet["mapping_sha256"],
        "layers": layer_hashes,
        "parameters": dict(parameters),
        "lanterne_version": version,
    }
    inputs_sha256 = hashlib.sha256(
        json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()
    provenance: list[tuple[str, str]] = [
        ("dataset", f"{sheet['title']} ({dataset})"),
        ("origin", str(sheet["origin"])),
        ("licence", str(sheet["licence"])),
        ("source file", Path(str(sheet["source_file"])).name),
        ("source sha256", str(sheet["sha256"])),
        ("mapping sha256", str(sheet["mapping_sha256"])),
        (
            "rows",
            f"{sheet['rows_read']:,} read, {sheet['rows_loaded']:,} loaded, {sheet['rows_rejected']:,} rejected "
            "(each rejected row is listed with its reason in the store)",
        ),
        ("time", f"{sheet['time_zone']}, recorded to the {sheet['time_precision']}"),
        (
            "ingested",
            f"{sheet['ingested_at']:%Y-%m-%d %H:%M} by {sheet['ingested_by']} (Lanterne {sheet['lanterne_version']})",
        ),
    ]
    provenance += [(f"layer {lid} sha256", sha) for lid, sha in layer_hashes.items()]
    what = category or "all categories"
    period_text = _period_text(period)
    return Report(
        title=f"{sheet['title']}: {what}",
        subtitle=f"{area_label[0].upper() + area_label[1:]}, {period_text}",
        generated_at=now,
        dataset=dataset,
        dataset_title=str(sheet["title"]),
        category=category,
        area=area,
        area_label=area_label,
        period=period,
        k=k,
        caveat=CAVEAT,
        provenance=tuple(provenance),
        map=report_map,
        monthly=monthly,
        weekly=weekly,
        profiles=tuple(profiles),
        anomalies=tuple(found),
        audit_rows=tuple(audit_rows),
        audit_notes=tuple(audit_notes),
        ranking=tuple(ranking),
        ranking_notes=tuple(ranking_notes),
        suppressed=tuple(a.label for a in report_map.areas if a.suppressed),
        parameters=parameters,
        lanterne_version=version,
        inputs_sha256=inputs_sha256,
        extra={"anomaly_notes": getattr(found, "notes", ())},
    )


ANOMALY_THRESHOLD = 3.5


def _default_level(
    store: ObservatoryStore, dataset: str, area: AreaRef | None, settings: dict[str, Any]
) -> str:
    """The layer the dataset records its areas in (Chicago's beats), so the map shows the areas
    the source itself used; H3 inside an area, where one polygon would say nothing."""
    if area is not None:
        return DEFAULT_H3_LEVEL
    rows = store.query(
        "SELECT area_layer, count(*) AS n FROM incidents WHERE dataset = $d AND area_layer IS NOT NULL "
        "GROUP BY area_layer ORDER BY n DESC",
        {"d": dataset},
    )
    for layer_id, _ in rows:
        if layer_id in settings:
            return f"layer:{layer_id}"
    return DEFAULT_H3_LEVEL


def _map(
    store: ObservatoryStore,
    filters: Filters,
    level: str,
    area: AreaRef | None,
    k: int,
    layer: Any,
) -> ReportMap:
    """The map at `level`, as the console publishes it for the same filters.

    Inside an area, the report shows the part of the whole map that lies in it (an H3 cell's
    centre, a layer polygon's inner point) rather than suppressing a sub-map of its own: a cell
    the console hides for secondary suppression then stays hidden here too, and two
    publications of the same cells can never be combined to recover one.
    """
    if level.startswith("h3:"):
        amap = counts_by_h3(store, filters, resolution_of(level), k=k)
        rings = {c.key: _h3_rings(c.key) for c in amap.cells}
        points = {key: _centre(r[0]) for key, r in rings.items()}
    elif level.startswith("layer:"):
        lay: Layer = layer(level.removeprefix("layer:"))
        amap = counts_by_layer(store, filters, lay, k=k)
        rings = {f["properties"]["code"]: _rings_of(f["geometry"]) for f in lay.geojson["features"]}
        points = {
            code: (p.x, p.y)
            for code, p in zip(lay.codes, shapely.point_on_surface(lay.polygons), strict=True)
        }
    else:
        raise ObservatoryError(f"map level {level!r} is not h3:<resolution> or layer:<id>")
    cells = amap.cells
    total, unlocated = amap.total, amap.unlocated
    if area is not None:
        inside = _inside(area, layer, points)
        cells = [c for c in cells if c.key in inside]
        # The sum of a part of the map is not published anywhere: the area's total is the sum of
        # its series, counted by the area's own rule (recorded code first).
        total, unlocated = None, None
    areas = tuple(
        MapArea(c.key, c.label or c.key, c.count, c.suppressed, rings.get(c.key, ())) for c in cells
    )
    return ReportMap(
        level=amap.level,
        areas=areas,
        total=total,
        suppressed_cells=sum(1 for a in areas if a.suppressed),
        unlocated=unlocated,
        breaks=class_breaks([a.count for a in areas if a.count is not None], k),
    )


def _centre(ring: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)


def _inside(area: AreaRef, layer: Any, points: dict[str, tuple[float, float]]) -> set[str]:
    """Keys of the map whose inner point lies in `area` (a layer polygon or an H3 cell)."""
    if area.level.startswith("h3:"):
        cell = h3int.str_to_int(area.key)
        res = resolution_of(area.level)
        return {key for key, (lon, lat) in points.items() if h3int.latlng_to_cell(lat, lon, res) == cell}
    lay: Layer = layer(area.level.removeprefix("layer:"))
    polygon = lay.polygons[lay.codes.index(area.key)]
    keys = list(points)
    xy = np.array([points[key] for key in keys], dtype=np.float64).reshape(-1, 2)
    hit = shapely.contains_xy(polygon, xy[:, 0], xy[:, 1]) if len(keys) else np.zeros(0, dtype=bool)
    return {key for key, h in zip(keys, hit, strict=True) if h}


_GRAIN_NEEDS = {Grain.WEEK: ("minute", "hour", "day"), Grain.MONTH: ("minute", "hour", "day", "month")}


@dataclass(frozen=True)
class _Context:
    """A whole-dataset series as published (suppressed), the baseline for trend and anomalies."""

    starts: list[datetime]
    values: list[int | None]


def _series(
    store: ObservatoryStore,
    context: Filters,
    grain: Grain,
    area: AreaRef | None,
    period: tuple[datetime, datetime],
    k: int,
    precision: str,
) -> tuple[ReportSeries, _Context]:
    """The period's slice of the whole-dataset series, with the trend fitted on the whole series.

    Counted exactly, then suppressed here with two groups: the whole series (its sum is the
    dataset total) and the period's slice (its sum is the map total). B's `series` would only
    know the first, and a slice with a single hidden month beside a published map total gives
    that month back. The trend is fitted on the suppressed values only, so it carries nothing
    the published counts do not.
    """
    if precision not in _GRAIN_NEEDS[grain]:
        note = f"No {grain.value}ly series: the dataset records time to the {precision}."
        return ReportSeries(grain, (), (), (), note), _Context([], [])
    start, end = period
    points = series(store, context, grain, area=area, k=k, analyst=True)
    published = series(store, context, grain, area=area, k=k)
    starts = [p.start for p in points]
    counts = np.array([p.count or 0 for p in points], dtype=np.int64)
    width = timedelta(days=7) if grain is Grain.WEEK else timedelta(0)
    inside = np.array([s < end and (s >= start or s + width > start) for s in starts], dtype=bool)
    groups = [np.arange(len(counts))]
    if inside.any():
        groups.append(np.flatnonzero(inside))
    hidden = suppress(counts, groups, k) if len(counts) else np.zeros(0, dtype=bool)
    # Whatever the console hides stays hidden: the union of two safe suppressions is safe for
    # every group of either (more hidden cells, never fewer).
    hidden |= np.array([p.suppressed for p in published], dtype=bool)
    values: list[int | None] = [None if h else int(c) for c, h in zip(counts, hidden, strict=True)]
    trend: list[float | None] = [None] * len(values)
    note = None
    per_year = 52 if grain is Grain.WEEK else 12
    if len(values) < 2 * per_year:
        # A year-long moving mean over less than two years is one flat average: drawn as a
        # "trend" it would look like a finding.
        note = f"No {grain.value}ly trend line: the dataset covers less than two years."
    else:
        try:
            d = decompose(starts, values, grain)
            trend = [None if not np.isfinite(t) else float(t) for t in d.trend]
        except (ValueError, ObservatoryError) as exc:
            note = f"No trend: {exc}."
    idx = np.flatnonzero(inside)
    return (
        ReportSeries(
            grain,
            tuple(starts[i] for i in idx),
            tuple(values[i] for i in idx),
            tuple(trend[i] for i in idx),
            note,
        ),
        _Context(starts, values),
    )


def _anomalies(context: _Context, period: tuple[datetime, datetime]) -> list[Anomaly]:
    """Weekly anomalies judged against the whole dataset (several years give the season's usual
    level), listed for the weeks of the period only."""
    if not context.starts:
        return []
    found = find_anomalies(context.starts, context.values, Grain.WEEK, threshold=ANOMALY_THRESHOLD)
    start, end = period
    kept = Anomalies(
        sorted((a for a in found if start <= a.start < end), key=lambda a: a.start),
        notes=getattr(found, "notes", ()),
    )
    return kept


def _audit(
    store: ObservatoryStore,
    dataset: str,
    category: str | None,
    level: str,
    settings: dict[str, Any],
    k: int,
) -> tuple[list[CategoryAudit], list[str]]:
    """The bias audit of the categories shown (one, or all), over the whole dataset: persistence
    needs several years, and a category's recording process does not change with the window."""
    layers = {lid: load_layer(s) for lid, s in settings.items() if level == f"layer:{lid}"}
    result = audit(store, dataset, level=level, layers=layers, k=k)
    if category is None:
        rows = list(result.categories)
    else:
        rows = [r for r in result.categories if r.category == category]
    notes = [
        f"Computed over the whole dataset (every year), at level {result.level} over {result.areas} areas. "
        "A category is recorded as discovered when police initiated at least half of its records: its map "
        "shows police activity, not where the offence is more common.",
    ]
    if category is not None and not rows:
        notes.append(f"{category} has fewer than {k} records in the whole dataset: its audit is withheld.")
    if result.suppressed_categories:
        notes.append(f"{result.suppressed_categories} categories with fewer than {k} records are left out.")
    if result.discovered_vs_reported is not None:
        notes.append(
            "The top 10 % of areas for discovered categories and for reported ones overlap with a Jaccard "
            f"index of {result.discovered_vs_reported:.2f} (1 = the same areas, 0 = none in common)."
        )
    notes.extend(result.drift_notes)
    return rows, notes


def _ranking(
    store: ObservatoryStore,
    filters: Filters,
    report_map: ReportMap,
    top: int,
    k: int,
    area: AreaRef | None,
    settings: dict[str, Any],
) -> tuple[list[tuple[str, int]], list[str]]:
    """The top areas of the map, only with the feedback-loop simulation (OB-05); counts as the
    map publishes them (an area the map hides for secondary suppression is not ranked)."""
    if top <= 0:
        return [], []
    if filters.category is None:
        return [], ["No ranking of areas: a ranking is only given for one category, with its audit."]
    if area is not None:
        return [], ["No ranking of areas: a ranking is given for a whole dataset's map, not inside one area."]
    level = report_map.level
    layers = {lid: load_layer(s) for lid, s in settings.items() if level == f"layer:{lid}"}
    hs = hotspots(store, filters, level, top=top, k=k, layers=layers)
    shown = {a.key: a for a in report_map.areas if not a.suppressed and a.count is not None}
    ranking = [(shown[r.key].label, shown[r.key].count or 0) for r in hs.ranking if r.key in shown]
    notes = []
    if hs.warning:
        notes.append(hs.warning + ".")
    naive, mitigated = hs.naive, hs.mitigated
    notes.append(
        f"Feedback-loop simulation (Ensign et al. 2018), {naive.rounds} {hs.rounds_unit}s, patrols sent to "
        f"the top {naive.top} areas, {100 * naive.discovered_share:.0f} % of incidents found only by a patrol: "
        f"ranked again from every new record, the top {naive.top} areas end up with "
        f"{100 * naive.final_record_top_share:.0f} % of the records while they hold "
        f"{100 * naive.true_top_share:.0f} % of the simulated true incidents (gap between records and truth: "
        f"{naive.final_estimate_gap:.2f}); ranked from reported incidents only, "
        f"{100 * mitigated.final_record_top_share:.0f} % (gap {mitigated.final_estimate_gap:.2f})."
    )
    if hs.excluded_below_k:
        notes.append(f"{hs.excluded_below_k} areas with fewer than {k} records are never ranked.")
    notes.append(hs.caveat)
    return ranking, notes


# --- Command-line arguments ---------------------------------------------------------------------


def _unit_bounds(text: str, option: str) -> tuple[datetime, datetime]:
    """`2016` → the year, `2016-03` → the month, `2016-03-01` → the day, as [start, end)."""
    t = text.strip()
    try:
        if len(t) == 4:
            y = int(t)
            return datetime(y, 1, 1), datetime(y + 1, 1, 1)
        if len(t) == 7:
            first = datetime.strptime(t, "%Y-%m")
            return first, first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
        day = date.fromisoformat(t)
    except ValueError:
        day = None
    if day is None:
        raise ObservatoryError(
            f"{option} {text!r} is not a year, month or day; write 2016, 2016-03 or 2016-03-01"
        )
    first = datetime(day.year, day.month, day.day)
    return first, first + timedelta(days=1)


def parse_period(
    period: str | None, date_from: str | None = None, date_to: str | None = None
) -> tuple[datetime, datetime]:
    """`--period 2016-01..2016-12` (both ends included, each a year, month or day), or `--from`
    and `--to` with the same forms. Returns [start, end) in the dataset's local time."""
    if period is not None:
        if date_from is not None or date_to is not None:
            raise ObservatoryError("give either --period or --from/--to, not both")
        first, _, last = period.partition("..")
        date_from, date_to = first, last or first
    if not date_from or not date_to:
        raise ObservatoryError(
            "the report needs a period; pass --period 2016-01..2016-12 (or --from and --to)"
        )
    start = _unit_bounds(date_from, "--from")[0]
    end = _unit_bounds(date_to, "--to")[1]
    if end <= start:
        raise ObservatoryError(f"period {date_from}..{date_to} ends before it starts; swap its ends")
    return start, end


def parse_area(text: str | None) -> AreaRef | None:
    """`districts:11` (or `layer:districts:11`) → that area of the layer; `h3:7:872664c1effffff` → one cell."""
    if text is None or not text.strip():
        return None
    parts = text.strip().split(":")
    if parts[0] == "h3" and len(parts) == 3 and parts[1].isdigit():
        return AreaRef(f"h3:{parts[1]}", parts[2].lower())
    if parts[0] == "layer":
        parts = parts[1:]
    if len(parts) == 2 and all(parts):
        return AreaRef(f"layer:{parts[0]}", parts[1])
    raise ObservatoryError(f"--area {text!r} is not LAYER:CODE (e.g. districts:11) or h3:<res>:<cell>")


def write_report(
    config: Path,
    *,
    dataset: str,
    out: Path,
    period: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    category: str | None = None,
    area: str | None = None,
    level: str | None = None,
    top: int = 10,
    formats: str = "html,pdf",
    purpose: str | None = None,
    recipient: str | None = None,
    user_id: str,
    now: datetime | None = None,
) -> list[Path]:
    """The `report` command: build, render in memory, record the export (Action.EXPORT with
    purpose, recipient and the files' hashes), then write. The audit record comes first, so a
    refused record (no purpose, no recipient) leaves no file behind."""
    from lanterne.audit import Action, AuditLog
    from lanterne.config import load_config
    from lanterne.store.db import check_connection, create_engine_for, migrate

    wanted = [f.strip().lower() for f in formats.split(",") if f.strip()]
    unknown = sorted(set(wanted) - {"html", "pdf"})
    if unknown or not wanted:
        raise ObservatoryError(f"--format {formats!r}: use html, pdf or html,pdf")
    span = parse_period(period, date_from, date_to)
    where = parse_area(area)
    cfg = load_config(config)
    store = ObservatoryStore.open(cfg.observatory.store, read_only=True)
    try:
        report = build_report(
            store,
            cfg.observatory,
            dataset=dataset,
            category=category,
            area=where,
            period=span,
            level=level,
            top=top,
            now=now,
        )
    finally:
        store.close()
    files: dict[Path, bytes] = {}
    if "html" in wanted:
        files[out / HTML_FILE] = render_html(report).encode("utf-8")
    if "pdf" in wanted:
        files[out / PDF_FILE] = render_pdf(report)
    engine = create_engine_for(cfg.store.url)
    try:
        check_connection(engine)
        migrate(engine)
        AuditLog(engine, key_path=cfg.audit.key_path, checkpoint_every=cfg.audit.checkpoint_every).append(
            user_id,
            Action.EXPORT,
            object_type="observatory_report",
            object_id=report.inputs_sha256[:16],
            purpose=purpose,
            recipient=recipient,
            details={
                "event": "observatory_report",
                "dataset": dataset,
                "category": category,
                "area": None if where is None else f"{where.level}:{where.key}",
                "period": [span[0].isoformat(), span[1].isoformat()],
                "k": report.k,
                "inputs_sha256": report.inputs_sha256,
                "files": {p.name: hashlib.sha256(b).hexdigest() for p, b in files.items()},
            },
        )
    finally:
        engine.dispose()
    out.mkdir(parents=True, exist_ok=True)
    for path, body in files.items():
        path.write_bytes(body)
    return list(files)
