"""The font every Lanterne PDF (the DPIA draft, the observatory report) is written in.

DejaVu Sans when it can be found, because French accents, dashes and symbols are then real glyphs;
otherwise fpdf's core Helvetica, whose Latin-1 still covers French accents but not every character,
so each document says how to spell the rest in Latin-1 rather than print "?".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

FONT_DIRS: tuple[Path, ...] = (Path("/usr/share/fonts/truetype/dejavu"),)
"""Debian's fonts-dejavu-core. OpenCV's wheel (a dependency already) ships the same DejaVu Sans in
`cv2/qt/fonts`, which is looked up next; only without either does a PDF fall back to the core
Helvetica."""


def font_files() -> tuple[Path, Path] | None:
    """(regular, bold) DejaVu Sans, from Debian or from OpenCV's wheel, or None."""
    dirs = list(FONT_DIRS)
    try:
        import cv2

        dirs.append(Path(cv2.__file__).parent / "qt" / "fonts")
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass
    for d in dirs:
        regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return None


def set_up_fonts(pdf: Any, latin1_spelling: Mapping[str, str]) -> tuple[str, Callable[[str], str]]:
    """Register DejaVu Sans (regular and bold) on `pdf` when it is there; returns the font family to
    use and the function every text goes through before it is written.

    With DejaVu the text is written as it is. With the Helvetica fallback each key of
    `latin1_spelling` is replaced by its value (in order) and whatever Latin-1 still lacks becomes "?".
    """
    fonts = font_files()
    if fonts is not None:
        pdf.add_font("DejaVu", "", str(fonts[0]))
        pdf.add_font("DejaVu", "B", str(fonts[1]))
        return "DejaVu", str

    def latin1(s: str) -> str:
        for character, spelling in latin1_spelling.items():
            s = s.replace(character, spelling)
        return s.encode("latin-1", "replace").decode("latin-1")

    return "Helvetica", latin1
