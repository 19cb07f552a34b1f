"""Where command output goes: stdout or ``--output``, with colour only on a terminal."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def use_color(output: Path | None) -> bool:
    """Colour only on a TTY and never into a file; ``NO_COLOR`` and ``FORCE_COLOR`` win."""
    if output is not None or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout.isatty()


def emit(text: str, output: Path | None) -> None:
    """Write ``text`` (newline-terminated) to stdout or to ``output``."""
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
