"""The impact-assessment draft (`lanterne dpia`): `draft.py` gathers the facts and renders the
prose of `templates/dpia.md.j2`, `pdf.py` lays the same sections out for print, and `write_dpia`
writes both and puts the draft on record (GDPR art. 35, LED art. 27, loi 2023-380 art. 10)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from lanterne.accountability.dpia.draft import TO_COMPLETE, DpiaDraft, Section, Table, dpia_draft
from lanterne.accountability.dpia.pdf import render_pdf
from lanterne.audit import Action, AuditLog
from lanterne.config import Config

MD_FILE = "dpia-draft.md"
PDF_FILE = "dpia-draft.pdf"

__all__ = [
    "MD_FILE",
    "PDF_FILE",
    "TO_COMPLETE",
    "DpiaDraft",
    "Section",
    "Table",
    "dpia_draft",
    "render_pdf",
    "write_dpia",
]


def write_dpia(cfg: Config, engine: Engine, out_dir: Path, user_id: str, now: datetime) -> tuple[Path, Path]:
    """Write `dpia-draft.md` and `dpia-draft.pdf` to `out_dir` and audit it (CONFIG_CHANGE,
    `dpia_draft`): the draft carries the register and the precision figures, so who produced
    one, and from which configuration, is on record."""
    audit = AuditLog.from_config(cfg, engine=engine)
    draft = dpia_draft(cfg, engine, now)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, pdf = out_dir / MD_FILE, out_dir / PDF_FILE
    md.write_text(draft.markdown(), encoding="utf-8")
    pdf.write_bytes(render_pdf(draft))
    audit.append(
        user_id,
        Action.CONFIG_CHANGE,
        object_type="dpia",
        object_id=draft.config_sha256[:16],
        details={
            "event": "dpia_draft",
            "config_sha256": draft.config_sha256,
            "generated_at": draft.generated_at,
        },
    )
    return md, pdf
