"""The quarterly public report (PM-04) and the evaluation indicators it carries (PM-07).

Once a quarter the site publishes what its detectors did, per detector and per camera: the
operating figures (`operations`), the false alarms by look-alike (dismissal reasons), the misses
measured by blinded recall audits, the deployments in force, the incidents, the spatial equity of
alerts and what is still unresolved. It is open data (CSV and JSON) and a PDF with the same
figures, for a council, a newspaper or the evaluation committee.

It leaves the system, so it is built as a publication: every count of 1 to k-1 (the
observatory's `min_count`) is hidden, with the counts that would give it back through a total,
and nothing in it names a person. It is signed so that a copy found anywhere can be checked: a
`SHA256SUMS` file lists each file's sha256 (`sha256sum -c SHA256SUMS` checks them) and
`SHA256SUMS.sig` holds an Ed25519 signature over it with the site's audit signing key, the key
whose public half auditors already hold for the audit checkpoints. Writing it is an audit record
(`public_report`) carrying the same hashes, so a report cannot be published twice differently
without the log showing it.

The indicators of décret 2023-939 art. 4 (`INDICATORS`) are each computed or marked with why
Lanterne cannot compute them; docs/reports.md lists both.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, func, select

from lanterne.accountability.equity import equity_report, suppress_one_group
from lanterne.accountability.operations import (
    Operations,
    OperationsRow,
    PeriodError,
    operations,
    period_bounds,
    public_type_figures,
)
from lanterne.audit import Action, AuditLog
from lanterne.audit.signing import key_id, public_key_from_pem, public_key_pem
from lanterne.config import Config, config_hash
from lanterne.core.errors import LanterneError
from lanterne.core.pdf_fonts import set_up_fonts
from lanterne.store.tables import (
    AccessRequestRecord,
    AuditRecord,
    IncidentRecord,
    NoticeRecord,
    SuspensionRecord,
)

SIGNING_DOMAIN = b"lanterne-public-report-v1\n"
"""Prefixed to the signed bytes, so that a report signature can never pass for a checkpoint's or
an export manifest's, though the same key signs all three."""
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
OBJECT = "public_report"


class ReportError(LanterneError):
    """A report that cannot be written, or a directory that is not one."""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """`[since, until)` of a quarter written `2026Q4`."""
    text = quarter.strip().upper()
    if "Q" not in text:
        raise ReportError(f"quarter {quarter!r} is not a quarter; write it YYYYQn, e.g. 2026Q4")
    try:
        return period_bounds(text)
    except PeriodError:
        raise ReportError(f"quarter {quarter!r} is not a quarter; write it YYYYQn, e.g. 2026Q4") from None


# --- PM-07: the decree's indicators ---------------------------------------------------------------


@dataclass(frozen=True)
class Indicator:
    key: str
    label: str
    decree: str
    """Which part of décret 2023-939 art. 4 (or of the committee's list) it answers."""
    value: int | float | None
    """None: Lanterne cannot compute it (see `why_not`) or nothing was decided."""
    why_not: str | None = None


NOT_COMPUTABLE: dict[str, tuple[str, str, str]] = {
    "security_impact": (
        "Effect on crime and on clearance rates",
        "art. 4 II 3° (impact on security)",
        "Lanterne records what an operator decided, not what happened next in the field or in court; "
        "attributing a change in crime figures to the system needs a study design (comparison areas, "
        "time series) outside the system.",
    ),
    "public_perception": (
        "How the public perceives the system",
        "art. 4 II (perception by the public)",
        "Needs surveys or consultations of residents; Lanterne holds no opinion data and must not collect any.",
    ),
    "information_actions_offline": (
        "Signs, letters and public meetings",
        "information actions toward the public",
        "Done outside the system (signage, mail, meetings); only the publications of the public "
        "notice are recorded here.",
    ),
}
"""Indicators an evaluation asks for that Lanterne cannot compute, with why (docs/reports.md)."""


def _count(engine: Engine, query: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one() or 0)


def _audit_count(engine: Engine, action: Action, since: datetime, until: datetime) -> int:
    a = AuditRecord
    return _count(
        engine,
        select(func.count()).where(a.action == str(action), a.ts >= since, a.ts < until),
    )


def evaluation_indicators(
    cfg: Config, engine: Engine, ops: Operations, authorisations: Sequence[Any]
) -> tuple[Indicator, ...]:
    """The indicators of décret 2023-939 art. 4 for the period of `ops`: the committee's list
    (authorisations, cameras, events and alerts per use case, false-alarm share, operational
    effects, information of the public) and art. 4 II's technical performance and effect on
    public freedoms, each computed from the store or marked with why not. `authorisations`: those
    in force during the period."""
    since, until = ops.since, ops.until
    alerts = sum(r.alerts for r in ops.by_type)
    confirmed = sum(r.confirmed for r in ops.by_type)
    dismissed = sum(r.dismissed for r in ops.by_type)
    useful = sum(r.useful for r in ops.by_type)
    known = useful + sum(r.without_action for r in ops.by_type)
    covered = {c for a in authorisations for c in a.cameras}
    ar = AccessRequestRecord
    n = NoticeRecord
    out = [
        Indicator("authorisations", "Authorisations in force during the period", "number of authorisations",
                  len(authorisations)),
        Indicator("cameras", "Cameras configured", "number of cameras", len(cfg.cameras)),
        Indicator("cameras_authorised", "Cameras named by an authorisation in force", "number of cameras",
                  len(covered)),
        Indicator("alerts", "Alerts (all event types)", "number of events and alerts", alerts),
        Indicator("event_types", "Event types that raised alerts (per use case: see the per-type table)",
                  "alerts per use case", len([r for r in ops.by_type if r.alerts])),
        Indicator("false_alarm_share", "False alarms: dismissed ÷ decided", "share of false positives",
                  round(dismissed / (confirmed + dismissed), 4) if confirmed + dismissed else None),
        Indicator("precision", "Confirmed ÷ decided (technical performance)", "art. 4 II 1°",
                  round(confirmed / (confirmed + dismissed), 4) if confirmed + dismissed else None),
        Indicator("useful_to_an_operation", "Confirmed alerts followed by a field request or emergency services",
                  "art. 4 II 2° (operational effects)", useful),
        Indicator("useful_share", "Of confirmed alerts with a known follow-up, the share useful to an operation",
                  "art. 4 II 2° (operational effects)", round(useful / known, 4) if known else None),
        Indicator("notice_publications", "Publications of the public notice", "information actions toward the public",
                  _count(engine, select(func.count()).where(n.published_at >= since, n.published_at < until))),
        Indicator("access_requests", "Requests by people for their own images", "art. 4 II 3° (public freedoms)",
                  _count(engine, select(func.count()).where(ar.received_at >= since, ar.received_at < until))),
        Indicator("video_exports", "Recorded video exported out of the system", "art. 4 II 3° (public freedoms)",
                  _audit_count(engine, Action.EXPORT, since, until)),
        Indicator("privacy_removals", "Video rendered without anonymisation under a permission",
                  "art. 4 II 3° (public freedoms)", _audit_count(engine, Action.PRIVACY_REMOVED, since, until)),
    ]  # fmt: skip
    out += [Indicator(k, label, decree, None, why) for k, (label, decree, why) in NOT_COMPUTABLE.items()]
    return tuple(out)


# --- the report -----------------------------------------------------------------------------------


def _hide(counts: list[int], k: int) -> list[bool]:
    return suppress_one_group(counts, k)


def _camera_rows(rows: Sequence[OperationsRow], k: int) -> list[dict[str, Any]]:
    """Per camera × type, with each type's cameras one group per count (their totals are in the
    per-type table): a hidden count hides every figure computed from it."""
    out: list[dict[str, Any]] = []
    for t in sorted({r.type for r in rows}):
        group = [r for r in rows if r.type == t]
        hide = {
            name: _hide([getattr(r, name) for r in group], k) for name in ("alerts", "confirmed", "dismissed")
        }
        for i, r in enumerate(group):
            row = r.to_json()
            for key in ("dismissed_by_reason", "follow_ups", "follow_up_unknown", "useful_to_an_operation",
                        "confirmed_without_action", "useful_share"):  # fmt: skip
                row.pop(key)  # per type only: per camera they would be cells of one or two
            hidden: set[str] = set()
            if hide["alerts"][i]:
                hidden |= {
                    "alerts",
                    "pending",
                    "alerts_per_camera_hour",
                    "ack_median_s",
                    "ack_p90_s",
                    "acknowledged",
                }
            if hide["confirmed"][i] or hide["dismissed"][i]:
                hidden |= {"confirmed_share", "confirmed_share_interval", "pending"}
            if hide["confirmed"][i]:
                hidden.add("confirmed")
            if hide["dismissed"][i]:
                hidden.add("dismissed")
            row.update(dict.fromkeys(hidden), suppressed=sorted(hidden))
            out.append(row)
    return out


def _type_rows(rows: Sequence[OperationsRow], k: int) -> list[dict[str, Any]]:
    public = {p.event_type: p for p in public_type_figures(rows, k)}
    out = []
    for r in rows:
        row = r.to_json()
        p = public[r.type]
        row.pop("camera")
        row.update(
            follow_ups=p.follow_ups,
            useful_to_an_operation=p.useful_to_an_operation,
            confirmed_without_action=p.confirmed_without_action,
            alerts_per_1000_camera_hours=None
            if r.alerts_per_camera_hour is None
            else round(1000 * r.alerts_per_camera_hour, 2),
        )
        hidden = [key for key in ("useful_to_an_operation", "confirmed_without_action") if row[key] is None]
        if hidden:
            row["useful_share"] = None
            hidden.append("useful_share")
        row["suppressed"] = sorted(hidden)
        reasons = sorted(r.reasons.items())
        hide = _hide([n for _, n in reasons], k)
        row["dismissed_by_reason"] = {c: None if h else n for (c, n), h in zip(reasons, hide, strict=True)}
        out.append(row)
    return out


def _deployments(authorisations: Iterable[Any], until: datetime) -> list[dict[str, Any]]:
    return [
        {
            "reference": a.reference,
            "legal_basis": a.legal_basis,
            "authority": a.authority,
            "valid_from": _iso(a.valid_from),
            "valid_until": _iso(a.valid_until),
            "camera_count": len(a.cameras),
            "event_types": [str(t) for t in a.event_types],
            "state_at_end": a.state(until - timedelta(microseconds=1)),
        }
        for a in authorisations
    ]


def _unresolved(engine: Engine, until: datetime, open_audits: int) -> dict[str, int]:
    i, s = IncidentRecord, SuspensionRecord
    return {
        "incidents_open": _count(
            engine,
            select(func.count()).where(i.opened_at < until, (i.closed_at.is_(None)) | (i.closed_at >= until)),
        ),
        "suspensions_in_force": _count(
            engine,
            select(func.count()).where(
                s.started_at < until, (s.lifted_at.is_(None)) | (s.lifted_at >= until)
            ),
        ),
        "recall_audits_open": open_audits,
    }


def _incidents(engine: Engine, since: datetime, until: datetime) -> dict[str, int]:
    i = IncidentRecord
    with engine.connect() as conn:
        rows = conn.execute(
            select(i.kind, func.count()).where(i.opened_at >= since, i.opened_at < until).group_by(i.kind)
        ).all()
    return {str(kind): int(n) for kind, n in sorted(rows)}


def build_quarterly(cfg: Config, engine: Engine, quarter: str, now: datetime) -> dict[str, Any]:
    """Every section of the quarter's report as plain JSON, small counts hidden."""
    from lanterne.accountability.authorisation import Authorisations
    from lanterne.accountability.recall import published_recall

    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    since, until = quarter_bounds(quarter)
    if since > now:
        raise ReportError(f"quarter {quarter} has not started yet; report on a past or the current quarter")
    k = cfg.observatory.min_count
    watched = {cam.id: sorted({str(t) for z in cam.zones for t in z.events.enabled()}) for cam in cfg.cameras}
    ops = operations(engine, since, until, watched=watched)
    register = Authorisations(engine, AuditLog(engine), cfg.legal_end_date).list()
    in_force = [a for a in register if a.valid_from < until and a.valid_until > since]
    days = (until - since).days
    recall = published_recall(engine, min(until, now), days)
    equity = equity_report(cfg, engine, until, days=days)
    return {
        "site": cfg.site,
        "quarter": quarter.strip().upper(),
        "since": _iso(since),
        "until": _iso(until),
        "generated_at": _iso(now),
        "complete": now >= until,
        "config_sha256": config_hash(cfg),
        "k": k,
        "indicators": [dataclasses.asdict(i) for i in evaluation_indicators(cfg, engine, ops, in_force)],
        "by_type": _type_rows(ops.by_type, k),
        "by_camera": _camera_rows(ops.rows, k),
        "recall": {
            "audits_closed": recall.audits,
            "windows": recall.windows,
            "by_type": [
                {
                    "event_type": f.key,
                    "windows": f.windows,
                    "marks": f.marks,
                    "found": f.found,
                    "recall": None if f.recall is None else round(f.recall, 4),
                    "interval": None if f.interval is None else [round(v, 4) for v in f.interval],
                }
                for f in recall.by_type
            ],
        },
        "deployments": _deployments(in_force, until),
        "incidents_opened": _incidents(engine, since, until),
        "equity": dataclasses.asdict(equity),
        "unresolved": _unresolved(engine, until, recall.open_audits),
    }


# --- files ----------------------------------------------------------------------------------------


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue().encode("utf-8")


TYPE_COLUMNS = (
    "event_type", "alerts", "confirmed", "dismissed", "pending", "confirmed_share", "confirmed_share_interval",
    "camera_hours", "alerts_per_1000_camera_hours", "ack_median_s", "ack_p90_s", "useful_to_an_operation",
    "confirmed_without_action", "follow_up_unknown", "useful_share", "suppressed",
)  # fmt: skip
CAMERA_COLUMNS = (
    "camera", "event_type", "alerts", "confirmed", "dismissed", "pending", "confirmed_share",
    "confirmed_share_interval", "camera_hours", "alerts_per_camera_hour", "acknowledged", "ack_median_s", "ack_p90_s",
    "suppressed",
)  # fmt: skip


def _cell(v: Any) -> Any:
    """An interval as `low-high`; the list of hidden columns as `a;b` (an empty cell in another
    column is then a figure that does not exist, not a hidden one)."""
    if isinstance(v, list):
        return ";".join(v) if all(isinstance(x, str) for x in v) else "-".join(str(x) for x in v)
    return v


def report_files(report: dict[str, Any]) -> dict[str, bytes]:
    """The report's files by name: open data (CSV, JSON) and the PDF."""
    by_type = report["by_type"]
    return {
        "report.json": (json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode(
            "utf-8"
        ),
        "operations_by_type.csv": _csv(TYPE_COLUMNS, ([_cell(r[c]) for c in TYPE_COLUMNS] for r in by_type)),
        "operations_by_camera.csv": _csv(
            CAMERA_COLUMNS, ([_cell(r[c]) for c in CAMERA_COLUMNS] for r in report["by_camera"])
        ),
        "follow_ups.csv": _csv(
            ("event_type", "follow_up", "confirmed"),
            ([r["event_type"], f, n] for r in by_type for f, n in r["follow_ups"].items()),
        ),
        "dismissals_by_reason.csv": _csv(
            ("event_type", "reason", "dismissed"),
            ([r["event_type"], c, n] for r in by_type for c, n in r["dismissed_by_reason"].items()),
        ),
        "indicators.csv": _csv(
            ("key", "label", "decree", "value", "why_not"),
            ([i["key"], i["label"], i["decree"], i["value"], i["why_not"]] for i in report["indicators"]),
        ),
        "report.pdf": report_pdf(report),
    }


def _fmt(v: Any, hidden: bool = False) -> str:
    """A cell: `hidden` for a suppressed count, a dash for a figure that does not exist (no
    decision, no analysed hour)."""
    if v is None:
        return "hidden" if hidden else "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "–".join(_fmt(x) for x in v)
    return str(v)


def _c(row: dict[str, Any], key: str) -> str:
    return _fmt(row[key], key in row.get("suppressed", ()))


def report_pdf(report: dict[str, Any]) -> bytes:
    """The same figures as the open data, on A4 landscape (the per-camera table is wide), drawn
    with fpdf like the observatory's reports and the log review's summary."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    title = f"{report['site']}: quarterly public report {report['quarter']}"
    pdf.set_title(title)
    pdf.set_creator("Lanterne")
    pdf.set_creation_date(datetime.fromisoformat(report["generated_at"].replace("Z", "+00:00")))
    family, text = set_up_fonts(pdf, {"–": "-", "×": "x", "÷": "/", "…": "...", "’": "'", "≥": ">="})
    heading = FontFace(emphasis="BOLD", fill_color=(235, 238, 242))

    def h(s: str) -> None:
        pdf.ln(2)
        pdf.set_font(family, "B", 12)
        pdf.multi_cell(0, 7, text(s), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 8.5)

    def para(s: str) -> None:
        pdf.set_font(family, "", 8.5)
        pdf.multi_cell(0, 4.5, text(s), new_x="LMARGIN", new_y="NEXT")

    def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            para("Nothing in this quarter.")
            return
        pdf.set_font(family, "", 7)
        with pdf.table(headings_style=heading, line_height=pdf.font_size * 1.5, text_align="LEFT") as t:
            t.row([text(c) for c in header])
            for r in rows:
                t.row([text(_fmt(c)) for c in r])
        pdf.set_font(family, "", 8.5)

    pdf.add_page()
    pdf.set_font(family, "B", 15)
    pdf.multi_cell(0, 8, text(title), new_x="LMARGIN", new_y="NEXT")
    para(
        f"From {report['since']} to {report['until']} (UTC), generated {report['generated_at']}"
        f"{'' if report['complete'] else ' before the quarter ended: figures are partial'}. "
        f"Counts from 1 to {report['k'] - 1} are hidden, with any count that a total would give back. "
        "An alert is a machine's suggestion; the figures below are what the operators decided about them. "
        "The open data (CSV, JSON) beside this PDF carries the same figures; SHA256SUMS.sig signs them all."
    )
    h("Evaluation indicators (décret 2023-939 art. 4)")
    table(
        ("Indicator", "Value", "Decree", "Why not computed"),
        [(i["label"], i["value"] if i["why_not"] is None else "n/a", i["decree"], i["why_not"] or "")
         for i in report["indicators"]],
    )  # fmt: skip
    h("Per detector (all cameras)")
    table(
        ("Type", "Alerts", "Confirmed", "Dismissed", "Confirmed share (95 %)", "Per 1,000 camera-h",
         "Ack. median / p90 s", "Useful to an operation", "Confirmed, no action"),
        [(r["event_type"], r["alerts"], r["confirmed"], r["dismissed"],
          f"{_c(r, 'confirmed_share')} ({_c(r, 'confirmed_share_interval')})",
          r["alerts_per_1000_camera_hours"], f"{_c(r, 'ack_median_s')} / {_c(r, 'ack_p90_s')}",
          _c(r, "useful_to_an_operation"), _c(r, "confirmed_without_action")) for r in report["by_type"]],
    )  # fmt: skip
    h("Follow-ups of confirmed alerts")
    table(
        ("Type", "none", "monitoring", "field request", "emergency services", "unknown (deleted)"),
        [(r["event_type"], *(_fmt(n, True) for n in r["follow_ups"].values()), r["follow_up_unknown"])
         for r in report["by_type"]],
    )  # fmt: skip
    h("False alarms by look-alike (dismissal reasons)")
    table(
        ("Type", "Reason", "Dismissed"),
        [(r["event_type"], c, _fmt(n, True)) for r in report["by_type"] for c, n in r["dismissed_by_reason"].items()],
    )  # fmt: skip
    h("Per detector and camera")
    table(
        ("Camera", "Type", "Alerts", "Confirmed", "Dismissed", "Share (95 %)", "Camera-h", "Per camera-h",
         "Ack. median / p90 s"),
        [(r["camera"], r["event_type"], _c(r, "alerts"), _c(r, "confirmed"), _c(r, "dismissed"),
          f"{_c(r, 'confirmed_share')} ({_c(r, 'confirmed_share_interval')})", r["camera_hours"],
          _c(r, "alerts_per_camera_hour"), f"{_c(r, 'ack_median_s')} / {_c(r, 'ack_p90_s')}")
         for r in report["by_camera"]],
    )  # fmt: skip
    h("Misses measured by blinded recall audits")
    recall = report["recall"]
    para(f"{recall['audits_closed']} audits closed this quarter, {recall['windows']} windows reviewed.")
    table(
        ("Type", "Windows", "Situations seen", "Alerted", "Recall (95 %)"),
        [(f["event_type"], f["windows"], f["marks"], f["found"], f"{_fmt(f['recall'])} ({_fmt(f['interval'])})")
         for f in recall["by_type"]],
    )  # fmt: skip
    h("Deployments (authorisations in force during the quarter)")
    table(
        ("Reference", "Authority", "Legal basis", "From", "Until", "Cameras", "Event types", "At quarter end"),
        [(d["reference"], d["authority"], d["legal_basis"], d["valid_from"], d["valid_until"], d["camera_count"],
          ", ".join(d["event_types"]), d["state_at_end"]) for d in report["deployments"]],
    )  # fmt: skip
    h("Spatial equity: alerts per 1,000 camera-hours by neighbourhood")
    table(
        ("Area", "Cameras", "Camera-h", "Alerts", "Rate (95 %)", "Flagged"),
        [(r["label"], r["cameras"], r["camera_hours"], _fmt(r["alerts"], r["suppressed"]),
          f"{_fmt(r['rate'], r['suppressed'])} ({_fmt(r['interval'], r['suppressed'])})",
          "yes" if r["flagged"] else "") for r in report["equity"]["rows"]],
    )  # fmt: skip
    h("Incidents opened, and what is unresolved at the quarter's end")
    table(("Kind", "Opened"), list(report["incidents_opened"].items()))
    table(("Unresolved", "Count"), [(k.replace("_", " "), v) for k, v in report["unresolved"].items()])
    return bytes(pdf.output())


def _message(sums: bytes) -> bytes:
    return SIGNING_DOMAIN + sums


def sums_text(files: dict[str, bytes]) -> bytes:
    """`sha256sum`'s own format, so that the files can be checked without Lanterne."""
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ).encode()


def write_report(
    report: dict[str, Any], out: Path, key: Ed25519PrivateKey, audit: AuditLog, by: str
) -> dict[str, str]:
    """Write the files into `out` (a new or empty directory), sign their sha256 list, and record
    the publication. Returns each file's sha256. A report the audit log refused is removed."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReportError(f"{out} exists and is not an empty directory; give a new directory for each report")
    files = report_files(report)
    sums = sums_text(files)
    kid = key_id(key.public_key())
    signature = {
        "format": "lanterne-public-report-v1",
        "signed_file": SUMS,
        "key_id": kid,
        "public_key": public_key_pem(key),
        "signature": base64.b64encode(key.sign(_message(sums))).decode(),
    }
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for name, data in [
            *files.items(),
            (SUMS, sums),
            (SIGNATURE, (json.dumps(signature, indent=2) + "\n").encode()),
        ]:
            path = out / name
            path.write_bytes(data)
            written.append(path)
        audit.append(
            by,
            Action.PUBLIC_REPORT,
            object_type=OBJECT,
            object_id=report["quarter"],
            time_from=datetime.fromisoformat(report["since"].replace("Z", "+00:00")),
            time_to=datetime.fromisoformat(report["until"].replace("Z", "+00:00")),
            details={"files": hashes, "sha256sums": hashlib.sha256(sums).hexdigest(), "key_id": kid},
        )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return hashes


def verify_report(directory: Path, site_key: Ed25519PublicKey | None = None) -> list[str]:
    """What is wrong with a report directory, one line each; empty means intact. `site_key`: the
    site's published audit key, which must be the signer (without it the signature is checked
    against the key the signature file carries, and the caller must say so)."""
    sums_path, sig_path = directory / SUMS, directory / SIGNATURE
    if not directory.is_dir():
        return [f"{directory}: no such directory"]
    for p in (sums_path, sig_path):
        if not p.is_file():
            return [f"{p.name} is missing from {directory}; a report is only verifiable with it"]
    sums = sums_path.read_bytes()
    problems: list[str] = []
    try:
        sig = json.loads(sig_path.read_text(encoding="utf-8"))
        carried = public_key_from_pem(sig["public_key"])
        carried.verify(base64.b64decode(sig["signature"]), _message(sums))
    except (InvalidSignature, ValueError, KeyError, TypeError, LanterneError):
        problems.append(f"{SIGNATURE}: the signature does not match {SUMS} (the list of hashes was altered)")
    else:
        if site_key is not None and key_id(site_key) != key_id(carried):
            problems.append(
                f"{SIGNATURE}: signed by key {key_id(carried)}, not by this site's key {key_id(site_key)}"
            )
    listed: set[str] = set()
    for line in sums.decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        if not name or "/" in name or name in (SUMS, SIGNATURE):
            problems.append(f"{SUMS}: unexpected line {line!r}")
            continue
        listed.add(name)
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: altered (its sha256 differs from the signed list)")
    for path in sorted(directory.iterdir()):
        if path.name not in listed and path.name not in (SUMS, SIGNATURE):
            problems.append(f"{path.name}: not part of the signed report")
    return problems


def signer(directory: Path) -> str:
    """The key id the signature file names (for a message after a successful check)."""
    try:
        return str(json.loads((directory / SIGNATURE).read_text(encoding="utf-8"))["key_id"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def quarter_to_date(
    cfg: Config, engine: Engine, now: datetime, authorisations: Sequence[Any]
) -> tuple[str, tuple[Any, ...], tuple[Indicator, ...]]:
    """For the public page: the start of the current quarter (ISO), its per-type figures so far
    with the follow-up split suppressed (`public_type_figures`), and the evaluation indicators
    (`authorisations`: the register, filtered here to those in force during the quarter)."""
    now = now.astimezone(UTC)
    since = datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=UTC)
    until = now + timedelta(microseconds=1)  # `[since, until)`: an alert starting now counts
    watched = {cam.id: sorted({str(t) for z in cam.zones for t in z.events.enabled()}) for cam in cfg.cameras}
    ops = operations(engine, since, until, watched=watched, times=False)
    in_force = [a for a in authorisations if a.valid_from < until and a.valid_until > since]
    figures = public_type_figures(ops.by_type, cfg.observatory.min_count)
    return _iso(since), figures, evaluation_indicators(cfg, engine, ops, in_force)
