"""The impact-assessment draft (`lanterne dpia`): a Markdown and a PDF pre-filled from the
configuration, the authorisation register and the measured figures, for the controller and the
DPO to complete (GDPR art. 35, LED art. 27, loi 2023-380 art. 10; AI Act art. 27 taken on
voluntarily).

It is a draft on purpose. Lanterne knows what it runs (cameras, detectors, retention, safeguards,
how often the alerts were right); it cannot know why this deployment is necessary, who is
affected, or which risks the controller accepts. Those parts are written out as sections marked
"TO BE COMPLETED BY THE CONTROLLER" instead of being guessed.

This module gathers the facts; the words are in `templates/dpia.md.j2`. The Markdown it renders
is the draft itself, and the PDF (`pdf.py`) is laid out from the sections read back from it, so
both say the same thing and the prose is edited in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from sqlalchemy import Engine, select

from lanterne.accountability.precision import Precision, precision_table
from lanterne.accountability.transparency.data import PublicData, public_data
from lanterne.config import Config, config_hash
from lanterne.core.types import EventType
from lanterne.rules import EVENT_TITLES
from lanterne.store.tables import NoticeRecord

TO_COMPLETE = "TO BE COMPLETED BY THE CONTROLLER"


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    to_complete: tuple[str, ...] = ()
    """Questions only the controller can answer, printed under a visible marker."""


@dataclass(frozen=True)
class DpiaDraft:
    title: str
    generated_at: str
    config_sha256: str
    sections: tuple[Section, ...]
    text: str
    """The Markdown, as rendered from the template."""

    def markdown(self) -> str:
        return self.text


# --- the Markdown shapes the template writes and `_sections` reads back ---------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]] | list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _md_to_complete(questions: list[str]) -> str:
    return "\n".join([f"> **{TO_COMPLETE}**", ">"] + [f"> - {q}" for q in questions])


def _table_cells(line: str) -> tuple[str, ...]:
    # Every "|" inside a cell was escaped, so " | " only ever separates cells.
    inner = line.removeprefix("| ").removesuffix(" |")
    return tuple(c.replace("\\|", "|") for c in inner.split(" | "))


def _bullets(lines: list[str]) -> tuple[str, ...]:
    items: list[str] = []
    for line in lines:
        if line.startswith("- "):
            items.append(line[2:])
        else:  # a configured text with a line break: the rest of the bullet above
            items[-1] += "\n" + line
    return tuple(items)


def _sections(markdown: str) -> tuple[Section, ...]:
    """The sections of a rendered draft, read back for the PDF. Blocks are separated by a blank
    line; what precedes the first section (the title and the italic line) the PDF sets itself."""
    sections: list[Section] = []
    for block in markdown.split("\n\n"):
        lines = block.strip("\n").split("\n")
        first = lines[0]
        if first.startswith("## "):
            sections.append(Section(first.split(". ", 1)[1]))
            continue
        if not sections or not first:
            continue
        s = sections[-1]
        if first.startswith("> **"):
            s = replace(s, to_complete=s.to_complete + tuple(q.removeprefix("> - ") for q in lines[2:]))
        elif first.startswith("| "):
            table = Table(_table_cells(first), tuple(_table_cells(row) for row in lines[2:]))
            s = replace(s, tables=(*s.tables, table))
        elif first.startswith("- "):
            s = replace(s, bullets=s.bullets + _bullets(lines))
        else:
            s = replace(s, paragraphs=(*s.paragraphs, block.strip("\n")))
        sections[-1] = s
    return tuple(sections)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lanterne.accountability.dpia", "templates"),
        autoescape=False,  # Markdown, not HTML; table cells are escaped by `table`
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals.update(table=_md_table, to_complete=_md_to_complete, TO_COMPLETE=TO_COMPLETE)
    env.filters["percent"] = lambda v: f"{v:.0%}"
    return env


# --- the facts ------------------------------------------------------------------------------


def _share(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.0f} %"


def _interval(v: tuple[float, float] | None) -> str:
    return "–" if v is None else f"{100 * v[0]:.0f}–{100 * v[1]:.0f} %"


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{r}: {n}" for r, n in reasons.items()) or "–"


def _notice(cfg: Config, engine: Engine) -> Any:
    """The latest publication of the public notice for this configuration, or None."""
    with engine.connect() as conn:
        return conn.execute(
            select(NoticeRecord.published_at, NoticeRecord.location)
            .where(NoticeRecord.config_sha256 == config_hash(cfg))
            .order_by(NoticeRecord.id.desc())
            .limit(1)
        ).first()


def _register_rows(d: PublicData) -> list[tuple[str, ...]]:
    return [
        (
            r.reference,
            r.legal_basis,
            r.authority,
            r.valid_from[:10],
            r.valid_until[:10],
            ", ".join(r.cameras),
            ", ".join(r.event_types),
            r.state,
            ", ".join(r.impact_assessments) or "–",
        )
        for r in d.register
    ]


def _camera_rows(d: PublicData) -> list[tuple[str, ...]]:
    return [
        (
            c.id,
            c.name,
            f"{c.lat:.5f}, {c.lon:.5f}",
            ", ".join(c.zones) or "–",
            ", ".join(c.watched) or "none",
            c.status,
            "; ".join(f"{a.reference} ({a.valid_from[:10]} – {a.valid_until[:10]})" for a in c.authorisations)
            or "none",
        )
        for c in d.cameras
    ]


def _precision_rows(engine: Engine, now: datetime) -> list[tuple[str, ...]]:
    """Per camera and event type over the last 30 days, with the precision since the start."""
    recent: dict[tuple[str | None, Any], Precision] = {
        (p.camera, p.type): p for p in precision_table(engine, now, days=30)
    }
    overall = {(p.camera, p.type): p for p in precision_table(engine, now, days=None)}
    return [
        (
            cam or "all",
            str(t),
            str(p.alerts),
            str(p.confirmed),
            str(p.dismissed),
            _share(p.precision),
            _interval(p.interval),
            _share(overall[(cam, t)].precision if (cam, t) in overall else None),
            _reasons(p.reasons),
        )
        for (cam, t), p in sorted(recent.items(), key=lambda kv: (kv[0][0] or "", str(kv[0][1])))
    ]


def dpia_draft(cfg: Config, engine: Engine, now: datetime) -> DpiaDraft:
    """The draft as of `now`: configuration, register and figures read live."""
    d = public_data(cfg, engine, now)
    watched = sorted(
        {t for c in d.cameras for t in c.watched}, key=lambda t: list(EventType).index(EventType(t))
    )
    text = (
        _env()
        .get_template("dpia.md.j2")
        .render(
            d=d,
            audit=cfg.audit,
            suspension=cfg.suspension,
            notice=_notice(cfg, engine),
            register_rows=_register_rows(d),
            camera_rows=_camera_rows(d),
            precision_rows=_precision_rows(engine, now),
            model_rows=[(m.name, m.role, m.sha256, m.origin, m.licence) for m in d.models],
            watched_titles=[EVENT_TITLES[EventType(t)] for t in watched],
        )
    )
    return DpiaDraft(
        title=text.split("\n", 1)[0].removeprefix("# "),
        generated_at=d.generated_at,
        config_sha256=d.config_sha256,
        sections=_sections(text),
        text=text,
    )
