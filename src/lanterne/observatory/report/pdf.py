"""The report as a PDF for print (A4 portrait): the same sections as the HTML, the map drawn as
filled polygons and the charts as lines and rectangles, so the PDF does not depend on a browser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lanterne.core.pdf_fonts import set_up_fonts
from lanterne.observatory.report.layout import (
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
from lanterne.observatory.report.model import Report


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


class _Doc:
    """The PDF being written, with the font, the text filter and the usable width every section
    shares: the paragraph, heading and table styles are defined once here."""

    def __init__(self, pdf: Any, family: str, text: Callable[[str], str]) -> None:
        self.pdf = pdf
        self.family = family
        self.text = text
        self.width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(self, title: str) -> None:
        pdf = self.pdf
        pdf.ln(3)
        pdf.set_font(self.family, "B", 13)
        pdf.multi_cell(0, 7, self.text(title), new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.set_font(self.family, "", 9.5)

    def para(self, s: str, size: float = 9.5, colour: tuple[int, int, int] = (0, 0, 0)) -> None:
        pdf = self.pdf
        pdf.set_font(self.family, "", size)
        pdf.set_text_color(*colour)
        pdf.multi_cell(0, size * 0.5, self.text(s), new_x="LMARGIN", new_y="NEXT", align="L")
        pdf.set_text_color(0, 0, 0)

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        size: float = 7.5,
        widths: Sequence[int] | None = None,
    ) -> None:
        from fpdf.fonts import FontFace

        pdf = self.pdf
        pdf.set_font(self.family, "", size)
        with pdf.table(
            headings_style=FontFace(emphasis="BOLD", fill_color=(235, 238, 242)),
            line_height=pdf.font_size * 1.5,
            text_align="LEFT",
            col_widths=widths,
        ) as t:
            t.row([self.text(h) for h in header])
            for r in rows:
                t.row([self.text(c) for c in r])
        pdf.set_font(self.family, "", 9.5)

    def ensure(self, height: float) -> None:
        pdf = self.pdf
        if pdf.get_y() + height > pdf.h - pdf.b_margin:
            pdf.add_page()

    def chart(self, chart: Chart, spacing: float) -> None:
        """`chart` across the page (on a new page if fewer than its height and `spacing` mm are
        left), then its caption."""
        pdf = self.pdf
        self.ensure(chart.height * self.width / chart.width + spacing)
        h = _draw_chart(pdf, chart, pdf.l_margin, pdf.get_y(), self.width, self.family)
        pdf.set_y(pdf.get_y() + h + 1)
        self.para(chart.caption, 8, (90, 90, 90))


def render_pdf(report: Report) -> bytes:
    """The same sections as the HTML, for print: A4 portrait, the map as filled polygons."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(report.title)
    pdf.set_subject(report.subtitle)
    pdf.set_creator(f"Lanterne {report.lanterne_version}")
    pdf.set_creation_date(report.generated_at)
    family, text = set_up_fonts(pdf, {"–": "-", "×": "x", "\u202f": " ", "≥": ">="})
    doc = _Doc(pdf, family, text)

    _first_page(doc, report)
    _map(doc, report)
    _over_time(doc, report)
    _anomalies(doc, report)
    _bias_audit(doc, report)
    _ranking(doc, report)
    _counts_by_area(doc, report)
    _suppressed_and_provenance(doc, report)
    return bytes(pdf.output())


def _first_page(doc: _Doc, report: Report) -> None:
    """Title, what k is, and the caveat before anything else (OB-07)."""
    pdf, k = doc.pdf, report.k
    pdf.add_page()
    pdf.set_font(doc.family, "B", 16)
    pdf.multi_cell(0, 8, doc.text(report.title), new_x="LMARGIN", new_y="NEXT", align="L")
    doc.para(report.subtitle, 10.5, (70, 70, 70))
    doc.para(
        f"Generated by Lanterne {report.lanterne_version} on {report.generated_at:%Y-%m-%d %H:%M} UTC. "
        f"Counts below {k} are suppressed (k = {k}), and enough others with them that no total gives one back.",
        8.5,
        (100, 100, 100),
    )
    pdf.ln(2)
    pdf.set_fill_color(255, 243, 205)
    pdf.set_font(doc.family, "B", 9.5)
    pdf.multi_cell(0, 5.5, doc.text("Read this first."), fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(doc.family, "", 9.5)
    pdf.multi_cell(0, 5, doc.text(report.caveat), fill=True, new_x="LMARGIN", new_y="NEXT")


def _map(doc: _Doc, report: Report) -> None:
    pdf, k, width, text = doc.pdf, report.k, doc.width, doc.text
    doc.heading("1. Map")
    m = report.map
    doc.para(map_summary(m, k), 9)
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
    pdf.set_font(doc.family, "", 7.5)
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


def _over_time(doc: _Doc, report: Report) -> None:
    """Sections 2 and 3: the monthly and weekly series on a new page, then the profiles."""
    charts = report_charts(report)
    doc.pdf.add_page()
    doc.heading("2. Over time")
    for c in charts[:2]:
        doc.chart(c, 12)
        doc.pdf.ln(2)
    for note in sorted({report.monthly.note, report.weekly.note} - {None}):
        doc.para(str(note), 8, (90, 90, 90))
    doc.heading("3. When in the day, week and year")
    for c in charts[2:]:
        doc.chart(c, 10)


def _anomalies(doc: _Doc, report: Report) -> None:
    doc.heading("4. Anomalies")
    if report.anomalies:
        for a in report.anomalies:
            doc.pdf.set_x(doc.pdf.l_margin + 3)
            doc.para("• " + a.text, 9)
    else:
        doc.para("No week in the period is far from its usual level.", 9)
    for n in report.extra.get("anomaly_notes", ()):
        doc.para(n, 8, (90, 90, 90))


def _bias_audit(doc: _Doc, report: Report) -> None:
    """Section 5, under the caveat again (OB-06, OB-07)."""
    pdf, k = doc.pdf, report.k
    doc.heading("5. Bias audit")
    pdf.set_fill_color(255, 243, 205)
    pdf.multi_cell(0, 4.5, doc.text(report.caveat), fill=True, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    header, audit_rows = audit_table(report)
    doc.table(
        header,
        [
            [str(r[0]), fmt_count(r[1] if isinstance(r[1], int) else None, k), *(str(v) for v in r[2:])]
            for r in audit_rows
        ],
        6.5,
    )
    for n in report.audit_notes:
        doc.para("• " + n, 8.5)


def _ranking(doc: _Doc, report: Report) -> None:
    """Section 6, only with the feedback-loop simulation beside it (OB-05)."""
    if not (report.ranking or report.ranking_notes):
        return
    doc.heading("6. Ranking of areas" + (", with its feedback-loop simulation" if report.ranking else ""))
    if report.ranking:
        doc.table(
            ("rank", "area", "incidents"),
            [(str(i), label, fmt_count(n, report.k)) for i, (label, n) in enumerate(report.ranking, 1)],
            8,
            (10, 60, 20),
        )
    for n in report.ranking_notes:
        doc.para("• " + n, 8.5)


def _counts_by_area(doc: _Doc, report: Report) -> None:
    """Section 7: every area's published count, in three column pairs."""
    doc.heading("7. Counts by area")
    cols = 3
    ordered = sorted(report.map.areas, key=natural_order)
    per_col = math.ceil(len(ordered) / cols) if ordered else 0
    rows = []
    for i in range(per_col):
        row: list[str] = []
        for c in range(cols):
            j = c * per_col + i
            if j < len(ordered):
                a = ordered[j]
                row += [a.label, fmt_count(a.count, report.k)]
            else:
                row += ["", ""]
        rows.append(row)
    doc.table(("area", "incidents") * cols, rows, 6.5, (22, 11) * cols)


def _suppressed_and_provenance(doc: _Doc, report: Report) -> None:
    doc.heading(f"8. Suppressed cells ({len(report.suppressed)})")
    doc.para(
        ", ".join(report.suppressed) if report.suppressed else "None: every area holds 0 or at least k.", 8
    )

    doc.heading("9. Provenance")
    doc.table(("", ""), list(report.provenance), 7, (35, 145))
    doc.pdf.ln(2)
    doc.table(("parameter", "value"), list(report.parameters), 7, (35, 145))
    doc.pdf.ln(2)
    doc.para(
        f"sha256 of this report's inputs (source, mapping, boundary layer, parameters, code version): {report.inputs_sha256}",
        8,
    )


def write_pdf(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render_pdf(report))
    return path
