"""Falco-compatible runtime rule engine.

Loading runs in Falco's stages: :mod:`.reader` (YAML with positions, JSON Schema validation),
:mod:`.collector` (lists, macros, rules with append/override), :mod:`.compiler` (conditions to
Python functions, event-type index), then :mod:`.engine` evaluates events. Every stage appends
coded errors and warnings to one result; :class:`RuleLoadError` carries them all.

Public API::

    ruleset = load_rules([Path(...)], min_priority=Priority.DEBUG, enable_tags=None, disable_tags=None)
    alerts = ruleset.evaluate(event)
    ruleset.event_types(); ruleset.warnings; ruleset.unsupported
"""

from __future__ import annotations

from pathlib import Path

from garrison.runtime.rules.engine import Rule, RuleSet, load_result, load_rules, load_rules_text
from garrison.runtime.rules.errors import LoadMessage, LoadResult, RuleLoadError

PACK_DIR = Path(__file__).parent / "pack"


def default_pack() -> list[Path]:
    """Our rule pack files, in load order."""
    return sorted(PACK_DIR.glob("*.yaml"))


__all__ = [
    "PACK_DIR",
    "LoadMessage",
    "LoadResult",
    "Rule",
    "RuleLoadError",
    "RuleSet",
    "default_pack",
    "load_result",
    "load_rules",
    "load_rules_text",
]
