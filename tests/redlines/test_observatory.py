"""The observatory's red lines, shown by tests: aggregates about places and periods, never a
person; no individual risk score; no link with the video store or any other personal-data file
(OB-01, OB-02, OB-03).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import lanterne
from lanterne.observatory.store import SCHEMA, ObservatoryStore

SRC = Path(lanterne.__file__).resolve().parent
OBSERVATORY_CODE = [*sorted((SRC / "observatory").rglob("*.py")), SRC / "api" / "routes" / "observatory.py"]

ALLOWED_COLUMNS = {
    "datasets": {
        "id", "title", "kind", "origin", "licence", "source_file", "sha256", "mapping_sha256",
        "mapping_json", "time_zone", "time_precision", "rows_read", "rows_loaded", "rows_rejected",
        "ingested_by", "ingested_at", "lanterne_version",
    },
    "incidents": {"dataset", "ts", "category", "channel", "h3", "area_layer", "area_code", "n"},
    "measures": {"dataset", "ts", "variable", "site", "h3", "area_layer", "area_code", "value"},
    "rejects": {"dataset", "row_number", "field", "reason"},
    "layer_cells": {"layer", "layer_sha256", "h3", "area_code"},
}  # fmt: skip
"""Every column the observatory can hold. A new one is a decision to review against OB-02 (no
name, no person id, no address, no exact point), not a refactoring: this list changes with it."""


@pytest.fixture
def store(tmp_path: Path) -> ObservatoryStore:
    s = ObservatoryStore.open(tmp_path / "observatory.duckdb")
    yield s
    s.close()


def test_tables_hold_only_place_time_category_channel_and_count(store: ObservatoryStore) -> None:
    rows = store.query("SELECT table_name, column_name FROM information_schema.columns")
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    assert found == ALLOWED_COLUMNS


def test_no_table_refers_to_another(store: ObservatoryStore) -> None:
    """No foreign key, to the video store's alerts or anything else (OB-01: no interconnection)."""
    kinds = {r[0] for r in store.query("SELECT constraint_type FROM duckdb_constraints()")}
    assert "FOREIGN KEY" not in kinds
    assert not any("REFERENCES" in statement.upper() for statement in SCHEMA)


def test_a_url_store_is_refused(tmp_path: Path) -> None:
    """The observatory store is its own file; pointing it at the console's database (where alerts
    live) is refused rather than sharing tables with it."""
    from lanterne.observatory.store import ObservatoryError

    with pytest.raises(ObservatoryError, match="not supported"):
        ObservatoryStore.open(f"sqlite:///{tmp_path / 'lanterne.db'}")


PERSON_WORDS = {"person", "people", "individual", "offender", "suspect", "victim", "citizen", "resident"}
SCORE_WORDS = {"score", "scores", "risk", "risks", "dangerousness", "propensity", "likelihood"}


def _identifiers(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            out.append((node.lineno, node.name))
        elif isinstance(node, ast.arg):
            out.append((node.lineno, node.arg))
        elif isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
    return out


def _words(identifier: str) -> set[str]:
    return {p.lower() for p in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", identifier)}


def test_no_individual_risk_score_anywhere_in_the_observatory() -> None:
    """OB-03 / AI Act art. 5(1)(d): no code names a score about a person. A robust anomaly score
    of a period's count is about a place and a week, and is named so."""
    assert OBSERVATORY_CODE[0].is_file()
    hits = []
    for path in OBSERVATORY_CODE:
        if not path.is_file():
            continue
        for line, name in _identifiers(path):
            w = _words(name)
            if w & PERSON_WORDS and w & SCORE_WORDS:
                hits.append(f"{path.name}:{line}: {name}")
    assert not hits, hits


def test_the_word_check_catches_a_person_score() -> None:
    assert _words("personRiskScore") & PERSON_WORDS and _words("personRiskScore") & SCORE_WORDS
    assert not (_words("anomaly_score") & PERSON_WORDS)


def test_observatory_never_reads_the_video_store_tables() -> None:
    """Incidents and alerts stay apart (OB-01): the observatory's modules import nothing of the
    video store's tables except the aggregate camera counts (`zone_counts`), copied as counts."""
    offenders = []
    for path in OBSERVATORY_CODE:
        if not path.is_file() or (SRC / "observatory") not in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "lanterne.store.tables":
                bad = [a.name for a in node.names if a.name != "ZoneCountRecord"]
                if bad:
                    offenders.append(f"{path.name}: {bad}")
    assert not offenders, offenders
