"""What the report's HTML and PDF both draw, laid out once: the map projection, the colour
classes of the choropleth, the charts as primitives (rectangles, lines, text), and the texts and
tables whose wording must be the same on screen and on paper.

Keeping the layout out of the two renderers is what makes them agree: a chart is computed here and
each renderer only translates its shapes (SVG elements, fpdf calls), so a count or a suppressed
bar cannot appear in one format and not in the other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from lanterne.observatory.report.model import MapArea, Report, ReportMap

PALETTE: tuple[str, ...] = ("#deebf7", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
"""Five blues: a sequential scale without the alarm of reds, readable in grey when printed."""
SUPPRESSED_FILL = "#d0d0d0"
ZERO_FILL = "#ffffff"


def fmt_count(n: int | None, k: int) -> str:
    """A count as printed: thin-space thousands, `< k` where suppressed."""
    if n is None:
        return f"< {k}"
    return f"{n:,}".replace(",", "\u202f")


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


# --- Texts and tables shared by both renderers -------------------------------------------------


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def natural_order(a: MapArea) -> tuple[int, str]:
    """Beats 111, 112, 1011 in that order, not as text (1011 before 111)."""
    return (int(a.label), "") if a.label.isdigit() else (1 << 62, a.label)


def map_summary(m: ReportMap, k: int) -> str:
    if m.total is None:
        total = "total not shown (the area's total is the sum of its series below)"
    else:
        total = f"total {fmt_count(m.total, k)}"
    if m.unlocated is None:
        unlocated = "records without a location: not shown (suppressed)"
    else:
        unlocated = f"{fmt_count(m.unlocated, k)} records without a location are not on the map"
    return f"{len(m.areas)} areas at level {m.level}; {total}; {m.suppressed_cells} suppressed; {unlocated}."


def report_charts(report: Report) -> list[Chart]:
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


def audit_table(report: Report) -> tuple[tuple[str, ...], list[tuple[str | int | None, ...]]]:
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
