"""Configuration file support with the usual precedence: flags > environment > file > defaults.

Flags declare their ``GARRISON_*`` environment variable themselves (click reads those). The file
(``--config``, ``$GARRISON_CONFIG``, or ``garrison.yaml`` in the working directory) becomes the
click ``default_map``: top-level keys apply to every command that has an option of that name,
and sections named after command paths (``scan: {image: {...}}``) apply to that command only.
Keys use the option names with ``-`` or ``_`` (``fail-on`` / ``fail_on``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import yaml

from garrison.core.errors import ConfigError

DEFAULT_FILES = ("garrison.yaml", "garrison.yml", ".garrison.yaml")


def find_config(explicit: str | None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError("config file not found", input_name=explicit)
        return path
    env = os.environ.get("GARRISON_CONFIG")
    if env:
        return find_config(env)
    for name in DEFAULT_FILES:
        if Path(name).is_file():
            return Path(name)
    return None


def load_config(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"malformed YAML{where}", input_name=str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config: {err}", input_name=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping", input_name=str(path))
    return data


def _norm(key: str) -> str:
    return key.replace("-", "_")


def build_default_map(command: click.Command, config: dict[str, Any], source: str) -> dict[str, Any]:
    """Turn a config mapping into a click ``default_map`` for ``command``'s whole tree."""
    flat = {_norm(k): v for k, v in config.items() if not isinstance(v, dict)}
    used: set[str] = set()

    def walk(cmd: click.Command, section: dict[str, Any]) -> dict[str, Any]:
        own = {_norm(k): v for k, v in section.items() if not isinstance(v, dict)}
        out: dict[str, Any] = {}
        names = {p.name for p in cmd.params if p.name}
        for name in names:
            if name in own:
                out[name] = own[name]
                used.add(name)
            elif name in flat:
                out[name] = flat[name]
                used.add(name)
        if isinstance(cmd, click.Group):
            for sub_name, sub in cmd.commands.items():
                sub_section = section.get(sub_name) or section.get(_norm(sub_name)) or {}
                if not isinstance(sub_section, dict):
                    raise ConfigError(f"section {sub_name!r} must be a mapping", input_name=source)
                out[sub_name] = walk(sub, sub_section)
        return out

    result = walk(command, config)
    unknown = set(flat) - used - {"config"}
    if unknown:
        raise ConfigError(f"unknown key(s): {', '.join(sorted(unknown))}", input_name=source)
    return result
