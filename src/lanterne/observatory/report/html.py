"""The report as one self-contained HTML page: inline CSS and SVG, no script and no external URL,
so it opens offline and passes any content security policy.

Every published count is written by `_count_cell`, marked with the class `count`, so a test or an
auditor can find all of them and check that none is below k.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from lanterne.observatory.report.layout import (
    SUPPRESSED_FILL,
    Chart,
    Frame,
    Line,
    Rect,
    audit_table,
    fill_of,
    fmt_count,
    legend,
    map_summary,
    natural_order,
    report_charts,
)
from lanterne.observatory.report.model import Report, ReportMap

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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows are already HTML (cells escaped by their builders)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: str, cls: str | None = None) -> str:
    return f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"


def render_html(report: Report) -> str:
    """One self-contained page: inline CSS and SVG, no script, no external URL."""
    out = [
        *_first_page(report),
        *_map(report),
        *_over_time(report),
        *_anomalies(report),
        *_bias_audit(report),
        *_ranking(report),
        *_counts_by_area(report),
        *_provenance(report),
        "</body></html>",
    ]
    return "\n".join(out)


def _first_page(report: Report) -> list[str]:
    """Title, what k is, and the caveat before anything else (OB-07)."""
    k = report.k
    return [
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
    ]


def _map(report: Report) -> list[str]:
    k, m = report.k, report.map
    sw = []
    for colour, label in legend(m.breaks, max((a.count or 0 for a in m.areas), default=k), k):
        cls = "sw hatch" if colour == SUPPRESSED_FILL else "sw"
        sw.append(f'<span class="{cls}" style="background-color:{colour}"></span>{_e(label)}')
    return [
        "<h2>1. Map</h2>",
        f"<p>{_e(map_summary(m, k))}</p>",
        f"<figure>{map_svg(m, k)}",
        f'<figcaption class="legend">{"".join(sw)}</figcaption></figure>',
    ]


def _over_time(report: Report) -> list[str]:
    """Sections 2 and 3: the monthly and weekly series with the monthly counts, then the profiles."""
    k = report.k
    out = ["<h2>2. Over time</h2>"]
    charts = report_charts(report)
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
    return out


def _anomalies(report: Report) -> list[str]:
    out = ["<h2>4. Anomalies</h2>"]
    if report.anomalies:
        out.append("<ul>" + "".join(f"<li>{_e(a.text)}</li>" for a in report.anomalies) + "</ul>")
    else:
        out.append("<p>No week in the period is far from its usual level.</p>")
    out.extend(f"<p class='meta'>{_e(n)}</p>" for n in report.extra.get("anomaly_notes", ()))
    return out


def _bias_audit(report: Report) -> list[str]:
    """Section 5, under the caveat again (OB-06, OB-07)."""
    k = report.k
    header, audit_rows = audit_table(report)
    return [
        "<h2>5. Bias audit</h2>",
        f'<p class="caveat">{_e(report.caveat)}</p>',
        _table(
            header,
            [
                [_td(str(r[0])), _count_cell(r[1] if isinstance(r[1], int) else None, k)]
                + [_td(str(v), "num") for v in r[2:]]
                for r in audit_rows
            ],
        ),
        "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.audit_notes) + "</ul>",
    ]


def _ranking(report: Report) -> list[str]:
    """Section 6, only with the feedback-loop simulation beside it (OB-05)."""
    out = []
    if report.ranking:
        out.append("<h2>6. Ranking of areas, with its feedback-loop simulation</h2>")
        out.append(
            _table(
                ("rank", "area", "incidents"),
                [
                    [_td(str(i), "num"), _td(label), _count_cell(n, report.k)]
                    for i, (label, n) in enumerate(report.ranking, 1)
                ],
            )
        )
    if report.ranking_notes:
        if not report.ranking:
            out.append("<h2>6. Ranking of areas</h2>")
        out.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.ranking_notes) + "</ul>")
    return out


def _counts_by_area(report: Report) -> list[str]:
    """Sections 7 and 8: every area's published count with its interval (OB-07), and which are suppressed."""
    area_rows = []
    for a in sorted(report.map.areas, key=natural_order):
        ci = a.interval
        area_rows.append(
            [
                _td(a.label),
                _count_cell(a.count, report.k),
                _td("–" if ci is None else f"{ci[0]:.0f} – {ci[1]:.0f}", "num"),
            ]
        )
    suppressed = (
        _e(", ".join(report.suppressed)) if report.suppressed else "None: every area holds 0 or at least k."
    )
    return [
        "<h2>7. Counts by area</h2>",
        "<details><summary>All areas, alphabetical (95 % Poisson interval beside each count)</summary>"
        + _table(("area", "incidents", "95 % interval"), area_rows)
        + "</details>",
        f"<h2>8. Suppressed cells ({len(report.suppressed)})</h2>",
        "<p>" + suppressed + "</p>",
    ]


def _provenance(report: Report) -> list[str]:
    return [
        "<h2>9. Provenance</h2>",
        _table(("", ""), [[_td(a), _td(b, "hash" if "sha256" in a else None)] for a, b in report.provenance]),
        "<h3>Parameters</h3>",
        _table(("parameter", "value"), [[_td(a), _td(b)] for a, b in report.parameters]),
        f"<p>Lanterne {_e(report.lanterne_version)}. sha256 of this report's inputs (source, mapping, boundary "
        f'layer, parameters, code version): <span class="hash" id="inputs-sha256">{report.inputs_sha256}</span></p>',
    ]


def write_html(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
