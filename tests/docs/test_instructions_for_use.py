"""Instructions for use (DC-02): the template completeness check.

Each docs/events/<type>.md is the instructions for use of one detector. An operator, a supervisor
or an auditor must find the same sections in the same order on every page, and the figures must be
honest: a context named with its counts, a 95 % Wilson interval that follows from those counts,
and a command that reproduces them. `problems` returns what a page lacks, so the negative cases
below can show that each rule of the check fails when a page breaks it.
"""

from __future__ import annotations

import re
from itertools import takewhile
from pathlib import Path

import pytest

from lanterne.accountability.precision import wilson_interval
from lanterne.cli.suspension import suspensions_app
from lanterne.core.types import EventType
from lanterne.rules import RULES
from lanterne.store.tables import DISMISS_REASONS, FOLLOW_UPS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "events"

SECTIONS = (
    "Intended purpose",
    "How it works",
    "Parameters",
    "Operating envelope",
    "Measured precision and recall",
    "Known failure modes",
    "Lifting doubt",
    "Stop procedure",
)
"""The headings every page has, in this order (AI Act art. 13(3) as DC-02 words it)."""

HEADER = (
    "| context | kind | TP | FP | FN | precision (95 % CI) | recall (95 % CI) "
    "| look-alikes alarmed (95 % CI) | reproduce |"
)
NEVER = "**Never measured:**"
# A reproducing command runs a benchmark or a test file of this repository, which must exist.
COMMAND = re.compile(r"^`\.venv/bin/python (?:-m pytest )?((?:benchmarks|tests)/[\w/]+\.py)[^`]*`$")
ALARMED = re.compile(r"^(\d+) of (\d+) [a-z]+ \((\d\.\d\d)–(\d\.\d\d)\)$")


def section(doc: str, title: str) -> str:
    """The text under `## title`, up to the next `## ` heading; empty when there is none."""
    parts = re.split(r"^## (.+)$", doc, flags=re.M)
    for i in range(1, len(parts), 2):
        if parts[i].strip() == title:
            return parts[i + 1]
    return ""


def _ratio(k: int, n: int) -> str:
    if n == 0:
        return "–"
    lo, hi = wilson_interval(k, n) or (0.0, 0.0)
    return f"{k / n:.2f} ({lo:.2f}–{hi:.2f})"


def _row_problems(cells: list[str]) -> list[str]:
    context = cells[0]
    if len(cells) != 9:
        return [f"{context!r}: {len(cells)} cells, the table has 9"]
    _, _, *counts, precision, recall, alarmed, command = cells
    if not all(c.isdigit() for c in counts):
        return [f"{context!r}: a context named without its counts (TP, FP, FN: {counts})"]
    tp, fp, fn = map(int, counts)
    out = []
    if precision != _ratio(tp, tp + fp):
        out.append(f"{context!r}: precision {precision!r}, the counts give {_ratio(tp, tp + fp)!r}")
    if recall != _ratio(tp, tp + fn):
        out.append(f"{context!r}: recall {recall!r}, the counts give {_ratio(tp, tp + fn)!r}")
    if alarmed != "–":
        m = ALARMED.match(alarmed)
        if m is None:
            out.append(f"{context!r}: look-alikes {alarmed!r} is not 'k of n scenes (lo–hi)'")
        else:
            k, n = int(m.group(1)), int(m.group(2))
            lo, hi = wilson_interval(k, n) or (0.0, 0.0)
            if k > n or (m.group(3), m.group(4)) != (f"{lo:.2f}", f"{hi:.2f}"):
                out.append(f"{context!r}: look-alikes {alarmed!r}, {k} of {n} gives {lo:.2f}–{hi:.2f}")
    if "–" == precision == recall == alarmed:
        out.append(f"{context!r}: no interval at all")
    m = COMMAND.match(command)
    if m is None:
        out.append(
            f"{context!r}: no reproducing command (`.venv/bin/python benchmarks/… or -m pytest tests/…`)"
        )
    elif not (ROOT / m.group(1)).is_file():
        out.append(f"{context!r}: the command's {m.group(1)} does not exist")
    return out


def problems(event_type: EventType, doc: str) -> list[str]:
    """What the page lacks to be complete instructions for use; empty when it is complete."""
    found = [h.strip() for h in re.findall(r"^## (.+)$", doc, flags=re.M)]
    missing = [s for s in SECTIONS if s not in found]
    if missing:
        return [f"missing section(s): {', '.join(missing)}"]
    if [h for h in found if h in SECTIONS] != list(SECTIONS):
        return [f"sections out of order: {found}, expected {list(SECTIONS)}"]
    out = [f"section {s!r} is empty" for s in SECTIONS if not section(doc, s).strip()]
    measured = section(doc, "Measured precision and recall")
    if NEVER not in measured:
        out.append(f"the measured section does not say where the detector was never measured ({NEVER})")
    rows = [line for line in measured.splitlines() if line.startswith("|")]
    if event_type not in RULES:
        # A refused type has no rule, hence no figure: any table would be invented.
        if rows:
            out.append("a refused type has no rule, so its page cannot carry measured figures")
        return out
    if HEADER not in measured:
        out.append("the measured section has no table with the standard header")
        return out
    # The standard table only: a subsection may carry other tables (per-scene figures).
    after = measured.split(HEADER, 1)[1].splitlines()[2:]
    body = list(takewhile(lambda line: line.startswith("|"), after))
    if not body:
        out.append("the measured table has no context")
    for line in body:
        out += _row_problems([c.strip() for c in line.strip().strip("|").split(" | ")])
    lifting = section(doc, "Lifting doubt")
    for word in (*DISMISS_REASONS, *FOLLOW_UPS):
        if f"`{word}`" not in lifting:
            out.append(f"lifting doubt does not name the console's `{word}`")
    stop = section(doc, "Stop procedure")
    for scope in ("detector", "camera", "site"):
        if f'"scope": "{scope}"' not in stop:
            out.append(f"the stop procedure does not give the {scope} scope")
    if f'"type": "{event_type}"' not in stop:
        out.append(f"the detector stop does not name {event_type}")
    if f"lanterne suspensions suspend cam1 {event_type} " not in stop:
        out.append(f"the stop procedure does not give `lanterne suspensions suspend CAMERA {event_type}`")
    return out


def read(event_type: EventType) -> str:
    return (DOCS / f"{event_type}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_detector_page_is_complete_instructions_for_use(event_type: EventType) -> None:
    assert problems(event_type, read(event_type)) == []


def test_the_stop_command_the_pages_give_exists() -> None:
    assert {"suspend", "lift", "list"} <= {c.name for c in suspensions_app.registered_commands}


def test_wilson_cells_are_formatted_as_the_pages_write_them() -> None:
    assert _ratio(3, 4) == "0.75 (0.30–0.95)"
    assert _ratio(0, 0) == "–"


DOC = read(EventType.ZONE_INTRUSION)
PETS_ROW = "| 3 | 1 | 0 | 0.75 (0.30–0.95) | 1.00 (0.44–1.00) |"


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        (DOC.replace("## Lifting doubt", "## Remarks"), "missing section(s): Lifting doubt"),
        (DOC.replace("0.75 (0.30–0.95)", "0.75"), "precision '0.75', the counts give"),
        (
            DOC.replace(PETS_ROW, "| 4 | 1 | 0 | 0.75 (0.30–0.95) | 1.00 (0.44–1.00) |"),
            "the counts give '0.80",
        ),
        (DOC.replace(PETS_ROW, "| – | – | – | – | – |"), "a context named without its counts"),
        (DOC.replace(PETS_ROW, "| 0 | 0 | 0 | – | – |"), "no interval at all"),
        (
            DOC.replace("`.venv/bin/python benchmarks/event_accuracy.py -v` |", "see above |"),
            "no reproducing command",
        ),
        (
            DOC.replace("benchmarks/event_accuracy.py -v` |", "benchmarks/gone.py` |"),
            "gone.py does not exist",
        ),
        (DOC.replace("**Never measured:**", "Not yet:"), "never measured"),
        (DOC.replace("`person_at_rest`", "person at rest"), "`person_at_rest`"),
        (DOC.replace('"scope": "site"', '"scope": "all"'), "the site scope"),
        (DOC.replace("suspend cam1 zone_intrusion", "suspend cam1 fire"), "lanterne suspensions suspend"),
    ],
)
def test_an_incomplete_page_fails_the_check(broken: str, complaint: str) -> None:
    assert broken != DOC, "the mutation must change the page"
    found = problems(EventType.ZONE_INTRUSION, broken)
    assert any(complaint in p for p in found), found


def test_a_refused_type_cannot_carry_invented_figures() -> None:
    weapon = read(EventType.WEAPON)
    assert problems(EventType.WEAPON, weapon) == []
    invented = weapon.replace(
        NEVER, f"{NEVER} nothing.\n\n{HEADER}\n|---|\n| CCTV | real | 9 | 1 | 0 | 0.90 |"
    )
    assert "cannot carry measured figures" in " ".join(problems(EventType.WEAPON, invented))
    assert "missing section(s): Stop procedure" in problems(
        EventType.WEAPON, weapon.replace("## Stop", "## Go")
    )
