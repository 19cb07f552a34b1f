"""Read one YAML configuration file: a one-line :class:`ConfigError` naming the file for an
unreadable file or invalid YAML (with the line and column PyYAML reports), never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import ConfigError


def read_yaml_file(path: Path) -> Any:
    """The document in ``path`` (``yaml.safe_load``)."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", input_name=str(path)) from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}{problem}", input_name=str(path)) from e
