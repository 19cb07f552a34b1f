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
# Falco's stable rules exactly as upstream ships them (provenance in falco/SOURCE)
FALCO_STABLE = Path(__file__).parent / "falco" / "falco_rules.yaml"


def default_pack() -> list[Path]:
    """Our rule pack files, in load order."""
    return sorted(PACK_DIR.glob("*.yaml"))


def falco_and_pack() -> list[Path]:
    """Falco's stable rules, then our pack (our names are prefixed, so nothing upstream is replaced)."""
    return [FALCO_STABLE, *default_pack()]


__all__ = [
    "FALCO_STABLE",
    "PACK_DIR",
    "LoadMessage",
    "LoadResult",
    "Rule",
    "RuleLoadError",
    "RuleSet",
    "default_pack",
    "falco_and_pack",
    "load_result",
    "load_rules",
    "load_rules_text",
]
