"""docs/architecture.md is the page a newcomer reads first: every path and module it names must
exist, every package must be on it, and the layers it states must be the ones `lint-imports`
enforces. Otherwise a move or a new package would leave the page wrong without anyone noticing."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.support.modules import module_exists

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "src" / "lanterne"

# Where a relative path on the page may start: the repository, or the package (the page says
# `video/analyser.py` for `src/lanterne/video/analyser.py`).
BASES = (ROOT, PACKAGE, ROOT / "docs")


def _prose(text: str) -> str:
    """The page without its fenced blocks (the diagram names packages, checked separately)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def inline_code(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", _prose(text))


def is_path(token: str) -> bool:
    """`store/db.py`, `tests/support/`, `pyproject.toml`; not a command, a URL path, a pattern
    (`rules/<type>.py`) or a layer list."""
    if any(c in token for c in " <>*{}|=(),\"'") or token.startswith(("/", ".", "-")):
        return False
    return "/" in token or token.endswith((".py", ".md", ".toml"))


def is_module(token: str) -> bool:
    return re.fullmatch(r"lanterne(\.\w+)+", token) is not None


def test_every_path_named_exists() -> None:
    tokens = inline_code(PAGE.read_text(encoding="utf-8"))
    paths = [t for t in tokens if is_path(t)]
    modules = [t for t in tokens if is_module(t)]
    assert len(paths) > 50, "the page names its packages and modules in backticks"
    missing = [t for t in paths if not any((base / t.split("::")[0]).exists() for base in BASES)]
    missing += [t for t in modules if not module_exists(t)]
    assert not missing, f"docs/architecture.md names what does not exist: {sorted(set(missing))}"


def test_every_package_is_on_the_page() -> None:
    text = PAGE.read_text(encoding="utf-8")
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert "video" in packages and "core" in packages
    absent = [p for p in packages if f"`{p}/`" not in text]
    assert not absent, f"packages missing from docs/architecture.md: {absent}"


def _contract(contract_id: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["id"] == contract_id)


def test_the_layers_on_the_page_are_the_ones_lint_imports_checks() -> None:
    layers = _contract("layers")["layers"]
    assert isinstance(layers, list)
    stated = " > ".join(" | ".join(f"`{name.strip()}`" for name in layer.split("|")) for layer in layers)
    assert stated in PAGE.read_text(encoding="utf-8"), f"docs/architecture.md should state: {stated}"


def test_the_packages_kept_free_of_frameworks_are_named() -> None:
    text = PAGE.read_text(encoding="utf-8")
    contract = _contract("no-framework-below-the-edges")
    sources = [str(m).removeprefix("lanterne.") for m in contract["source_modules"]]  # type: ignore[union-attr]
    assert all(f"`{m}`" in text for m in sources)
    frameworks = contract["forbidden_modules"]
    assert isinstance(frameworks, list)
    assert all(name in text.lower() for name in frameworks)
