"""One read path for pixels (issue 11): only `lanterne.video.playback` opens recording segments,
so nothing can turn a recording into a picture without the privacy masks and the anonymiser."""

from __future__ import annotations

import ast
from pathlib import Path

import lanterne

SRC = Path(lanterne.__file__).parent
ALLOWED = {"lanterne.video.playback"}
"""Besides the recording package itself, which writes, recovers and verifies segments."""
SEGMENT_READERS = {"open_segment", "parse"}
SEGMENT_MODULES = {"lanterne.video.recording.reader", "lanterne.video.recording.segment_file"}


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def violations(root: Path) -> list[str]:
    """Modules outside the recording package and the read path that can read a segment."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = _module(path, root)
        if name.startswith(f"{root.name}.video.recording") or name in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {a.name for a in node.names}
                if node.module in SEGMENT_MODULES or (
                    node.module.startswith(f"{root.name}.video.recording") and names & SEGMENT_READERS
                ):
                    found.append(f"{name} imports {', '.join(sorted(names))} from {node.module}")
            elif isinstance(node, ast.Import):
                found += [f"{name} imports {a.name}" for a in node.names if a.name in SEGMENT_MODULES]
    return found


def test_only_the_read_path_opens_segments() -> None:
    assert violations(SRC) == []


def test_a_second_way_to_read_segments_is_named(tmp_path: Path) -> None:
    pkg = tmp_path / "lanterne"
    (pkg / "api").mkdir(parents=True)
    (pkg / "api" / "shortcut.py").write_text("from lanterne.video.recording import open_segment\n")
    (pkg / "cli.py").write_text("import lanterne.video.recording.segment_file\n")
    assert violations(pkg) == [
        "lanterne.api.shortcut imports open_segment from lanterne.video.recording",
        "lanterne.cli imports lanterne.video.recording.segment_file",
    ]
