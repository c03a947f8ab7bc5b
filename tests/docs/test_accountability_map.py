"""docs/accountability.md maps every requirement of the legal file to the code and the test that
checks it. These checks keep the map whole (each requirement exactly once, none invented) and
true (each cited test exists, each cited module imports), so that a renamed test or a new
requirement shows up here rather than in an audit."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support.modules import module_exists

ROOT = Path(__file__).resolve().parents[2]
MAP = ROOT / "docs" / "accountability.md"
# The legal file lives beside the repository, with the shared data (never shipped with the code).
LEGAL = ROOT.parent / "shared" / "research" / "legal-requirements.md"

ROW = re.compile(r"^\| ([A-Z]{2}-\d{2}) \|(.*)\|\s*$", re.M)
CITED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
STATUSES = ("**done**", "**partly**", "**not done**")


def requirement_ids() -> list[str]:
    return [m.group(1) for m in ROW.finditer(LEGAL.read_text(encoding="utf-8"))]


def map_rows() -> dict[str, list[str]]:
    """Requirement id → its cells (requirement, status, where, checked by); repeated ids keep
    the last row, `test_every_requirement_appears_exactly_once` counts them."""
    rows = {}
    for m in ROW.finditer(MAP.read_text(encoding="utf-8")):
        rows[m.group(1)] = [c.strip() for c in m.group(2).split(" | ")]
    return rows


def test_every_requirement_appears_exactly_once() -> None:
    legal = requirement_ids()
    assert len(legal) >= 85, "the legal file's requirement tables were read"
    cited = [m.group(1) for m in ROW.finditer(MAP.read_text(encoding="utf-8"))]
    missing = sorted(set(legal) - set(cited))
    repeated = sorted({i for i in cited if cited.count(i) > 1})
    unknown = sorted(set(cited) - set(legal))
    assert not missing, f"requirements without a row: {missing}"
    assert not repeated, f"requirements with more than one row: {repeated}"
    assert not unknown, f"rows for requirements the legal file does not have: {unknown}"


def test_every_row_has_a_status_and_says_what_checks_it() -> None:
    for rid, cells in map_rows().items():
        assert len(cells) == 4, f"{rid}: requirement | status | where | checked by"
        _, status, _, checked = cells
        assert status.startswith(STATUSES), f"{rid}: status is one of {STATUSES}"
        if status.startswith("**not done**"):
            assert re.search(r"issue \d+|[Nn]o open issue", status), f"{rid}: say which issue covers it"
        else:
            assert CITED_TEST.search(checked), f"{rid}: a done or partly requirement names its test"


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
    }


def test_every_cited_test_exists() -> None:
    cited = CITED_TEST.findall(MAP.read_text(encoding="utf-8"))
    assert len(cited) > 100
    missing = []
    for file, name in sorted(set(cited)):
        path = ROOT / file
        if not path.is_file() or name not in _test_names(path):
            missing.append(f"{file}::{name}")
    assert not missing, f"docs/accountability.md cites tests that do not exist: {missing}"


def test_every_cited_module_exists() -> None:
    modules = set(re.findall(r"`(lanterne(?:\.\w+)+)`", MAP.read_text(encoding="utf-8")))
    assert len(modules) > 30
    missing = sorted(m for m in modules if not module_exists(m))
    assert not missing, f"docs/accountability.md names modules that do not exist: {missing}"


def test_the_requirements_script_counts_what_the_map_says() -> None:
    """`scripts/requirements` prints the figure issue reports quote; it must agree with the
    statuses of the rows, one by one."""
    import subprocess
    import sys

    rows = map_rows()
    done = sorted(r for r, cells in rows.items() if cells[1].startswith("**done**"))
    script = ROOT / "scripts" / "requirements"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"{len(done)} of {len(rows)} requirements implemented and tested")
    listed = subprocess.run(
        [sys.executable, str(script), "--list", "done"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed == done
