"""A report leaving the system as files: the command line's period, area and format arguments,
and the export itself, recorded in the audit log (Action.EXPORT with its purpose, recipient and
the files' hashes) before any file is written.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path

from lanterne.audit import Action, AuditLog
from lanterne.observatory.aggregate import AreaRef, Grain, period_end
from lanterne.observatory.report.html import render_html
from lanterne.observatory.report.model import Report
from lanterne.observatory.report.pdf import render_pdf
from lanterne.observatory.store import ObservatoryError

HTML_FILE = "report.html"
PDF_FILE = "report.pdf"


def parse_formats(formats: str) -> list[str]:
    """`--format html,pdf` → the formats to write, refusing anything else."""
    wanted = [f.strip().lower() for f in formats.split(",") if f.strip()]
    unknown = sorted(set(wanted) - {"html", "pdf"})
    if unknown or not wanted:
        raise ObservatoryError(f"--format {formats!r}: use html, pdf or html,pdf")
    return wanted


def _unit_bounds(text: str, option: str) -> tuple[datetime, datetime]:
    """`2016` → the year, `2016-03` → the month, `2016-03-01` → the day, as [start, end)."""
    t = text.strip()
    try:
        if len(t) == 4:
            y = int(t)
            return datetime(y, 1, 1), datetime(y + 1, 1, 1)
        if len(t) == 7:
            first = datetime.strptime(t, "%Y-%m")
            return first, period_end(first, Grain.MONTH)
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


def export_report(
    report: Report,
    audit: AuditLog,
    *,
    out: Path,
    formats: list[str],
    purpose: str | None,
    recipient: str | None,
    user_id: str,
) -> list[Path]:
    """Render `report` in memory, record the export, then write the files into `out`. The audit
    record comes first, so a refused record (no purpose, no recipient) leaves no file behind."""
    files: dict[Path, bytes] = {}
    if "html" in formats:
        files[out / HTML_FILE] = render_html(report).encode("utf-8")
    if "pdf" in formats:
        files[out / PDF_FILE] = render_pdf(report)
    where, span = report.area, report.period
    audit.append(
        user_id,
        Action.EXPORT,
        object_type="observatory_report",
        object_id=report.inputs_sha256[:16],
        purpose=purpose,
        recipient=recipient,
        details={
            "event": "observatory_report",
            "dataset": report.dataset,
            "category": report.category,
            "area": None if where is None else f"{where.level}:{where.key}",
            "period": [span[0].isoformat(), span[1].isoformat()],
            "k": report.k,
            "inputs_sha256": report.inputs_sha256,
            "files": {p.name: hashlib.sha256(b).hexdigest() for p, b in files.items()},
        },
    )
    out.mkdir(parents=True, exist_ok=True)
    for path, body in files.items():
        path.write_bytes(body)
    return list(files)
