"""Secret scanning of image layers and directory trees.

Rules are data (``rules.yaml``, validated by ``rules.schema.json``), derived from Trivy's
built-in secret rules and gitleaks' default config; see :mod:`garrison.secrets.rules`. The
scanner (:mod:`garrison.secrets.scanner`) gates each rule's regex behind a keyword prefilter
(:mod:`garrison.secrets.keywords`) and reports each secret with its line redacted
(:mod:`garrison.secrets.redact`).
"""

from __future__ import annotations

from garrison.secrets.redact import MAX_LINE, MAX_REVEALED, redact_line, revealed
from garrison.secrets.rules import (
    AllowRule,
    Rule,
    RuleSet,
    builtin_rules,
    load_config,
    merge_config,
    rules_from_document,
    severity_of,
)
from garrison.secrets.scanner import DEFAULT_MAX_FILE_SIZE, SecretScanner, normalize_path, shannon_entropy

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "MAX_LINE",
    "MAX_REVEALED",
    "AllowRule",
    "Rule",
    "RuleSet",
    "SecretScanner",
    "builtin_rules",
    "load_config",
    "merge_config",
    "normalize_path",
    "redact_line",
    "revealed",
    "rules_from_document",
    "severity_of",
    "shannon_entropy",
]
