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

`model` says what a report is, `build` gathers its figures, `layout` lays out what both formats
draw, `html` and `pdf` render it, and `export` records and writes it.
"""

from lanterne.observatory.report.build import build_report
from lanterne.observatory.report.export import (
    HTML_FILE,
    PDF_FILE,
    export_report,
    parse_area,
    parse_formats,
    parse_period,
)
from lanterne.observatory.report.html import render_html, write_html
from lanterne.observatory.report.model import (
    CAVEAT,
    MapArea,
    Profile,
    Report,
    ReportMap,
    ReportSeries,
    poisson_interval,
)
from lanterne.observatory.report.pdf import render_pdf, write_pdf

__all__ = [
    "CAVEAT",
    "HTML_FILE",
    "PDF_FILE",
    "MapArea",
    "Profile",
    "Report",
    "ReportMap",
    "ReportSeries",
    "build_report",
    "export_report",
    "parse_area",
    "parse_formats",
    "parse_period",
    "poisson_interval",
    "render_html",
    "render_pdf",
    "write_html",
    "write_pdf",
]
