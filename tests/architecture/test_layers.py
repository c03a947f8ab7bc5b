"""The layers contract (pyproject.toml [tool.importlinter], run by scripts/test) must bite: the same
contract over a copy of the package with one deliberate wrong-way import fails and names it. A
contract that passes whatever the code does would protect nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import lanterne

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(lanterne.__file__).resolve().parent
LINT = Path(sys.executable).with_name("lint-imports")


def contract_text() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return text[text.index("\n[tool.importlinter]\n") :]


def lint(tmp_path: Path, edit: tuple[str, str] | None) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's contract over a copy of the package, `edit` appending one
    line to one module of the copy."""
    src = tmp_path / "src"
    shutil.copytree(
        SRC, src / "lanterne", ignore=shutil.ignore_patterns("__pycache__", "static", "templates")
    )
    if edit is not None:
        module, line = edit
        path = src / "lanterne" / module
        path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text(contract_text(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_package_keeps_its_layers(tmp_path: Path) -> None:
    result = lint(tmp_path, None)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


def test_a_wrong_way_import_is_named(tmp_path: Path) -> None:
    result = lint(
        tmp_path, ("core/types.py", "import lanterne.api.app  # deliberate: core must not reach up")
    )
    assert result.returncode == 1
    assert "lanterne.core is not allowed to import lanterne.api" in result.stdout
    assert "lanterne.core.types -> lanterne.api.app" in result.stdout


def test_a_framework_in_a_service_is_named(tmp_path: Path) -> None:
    result = lint(
        tmp_path, ("accountability/alerts.py", "import fastapi  # deliberate: services stay HTTP-free")
    )
    assert result.returncode == 1
    assert "lanterne.accountability is not allowed to import fastapi" in result.stdout
