"""Secret rules as data: loading, validation and merging of the built-in set with a user's config.

The built-in rules live in ``rules.yaml`` next to this module and a user's ``--secret-config``
file has the same shape; both are validated against ``rules.schema.json`` (JSON Schema 2020-12)
before any regex is compiled, so a bad file fails with one line naming the file and the entry.

The rule set follows Trivy's built-in secret rules and allow rules (aquasecurity/trivy,
``pkg/fanal/secret/builtin-rules.go`` and ``builtin-allow-rules.go``): the same rule ids and
categories, so Trivy users' ignore files carry over. gitleaks' default config (gitleaks/gitleaks,
``config/gitleaks.toml``) contributed the GCP, GitLab, Slack, Vault, JWT, Kubernetes and generic
assignment rules and the idea of per-rule entropy thresholds and placeholder allow-lists.

A user config may add rules (a rule with a built-in id replaces it), restrict the built-in rules
(``enable-builtin-rules``), disable rules (``disable-rules``), and add or disable allow rules
(``allow-rules``, ``disable-allow-rules``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import yaml

from garrison.core.errors import ConfigError, NotFoundError
from garrison.model import Severity

logger = logging.getLogger(__name__)

#: a --secret-config larger than this is refused (it is a hand-written YAML file)
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: name of the regex group holding the secret
SECRET_GROUP = "secret"  # noqa: S105 - a regex group name, not a password


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule. ``keywords`` are lower-cased; the regex runs over raw file bytes."""

    id: str
    category: str
    title: str
    severity: Severity
    regex: re.Pattern[bytes]
    keywords: tuple[bytes, ...] = ()
    allow: tuple[re.Pattern[bytes], ...] = ()
    entropy: float = 0.0
    path: re.Pattern[str] | None = None
    line_scope: bool = False  # the regex runs only over lines holding a keyword
    exclude_blocks: tuple[re.Pattern[bytes], ...] = ()

    @property
    def generic(self) -> bool:
        """Generic assignment rules lose to a vendor rule that matched the same text."""
        return self.category == "Generic"


@dataclass(frozen=True, slots=True)
class AllowRule:
    """Drops secrets in which ``regex`` is found, or skips files whose path matches ``path``."""

    id: str
    description: str = ""
    regex: re.Pattern[bytes] | None = None
    path: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules and allow rules a scanner applies; ``fingerprint`` changes with any of them."""

    rules: tuple[Rule, ...]
    allow_rules: tuple[AllowRule, ...]
    fingerprint: str

    def allows_path(self, path: str) -> bool:
        """True when a global allow rule exempts the file (path relative to the root)."""
        return any(a.path is not None and a.path.search(path) for a in self.allow_rules)

    def allows_secret(self, secret: bytes) -> bool:
        """True when a global allow rule says the candidate is a placeholder, not a secret."""
        return any(a.regex is not None and a.regex.search(secret) for a in self.allow_rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


# ----------------------------------------------------------------------------- severity registry

_SEVERITIES: dict[str, Severity] = {}


def severity_of(rule_id: str) -> Severity:
    """Severity of a rule by id: built-in rules and every rule loaded from a config so far."""
    if not _SEVERITIES:
        builtin_rules()
    return _SEVERITIES.get(rule_id, Severity.UNKNOWN)


def _register(rules: Iterable[Rule]) -> None:
    for rule in rules:
        _SEVERITIES[rule.id] = rule.severity


# ----------------------------------------------------------------------------- loading


@functools.cache
def _schema_validator() -> Any:
    from jsonschema import Draft202012Validator  # only user configs are validated at run time

    text = resources.files(__package__).joinpath("rules.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.cache
def _builtin_document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("rules.yaml").read_text(encoding="utf-8")
    # libyaml's loader when present (10x faster); the built-in document is schema-checked by the
    # test suite, not on every run
    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    assert isinstance(doc, dict)
    return doc


@functools.cache
def builtin_rules() -> RuleSet:
    """The built-in rule set (parsed once per process)."""
    doc = _builtin_document()
    source = "built-in secret rules"
    rules = tuple(_compile_rule(r, source, i, lazy=True) for i, r in enumerate(doc.get("rules", [])))
    allows = tuple(_compile_allow(a, source, i) for i, a in enumerate(doc.get("allow-rules", [])))
    _register(rules)
    return RuleSet(rules, allows, _fingerprint(doc.get("rules", []), doc.get("allow-rules", [])))


def load_config(path: str | Path) -> RuleSet:
    """The built-in rules merged with a user's secret config file (Trivy's semantics)."""
    source = str(path)
    doc = _read_config(Path(path))
    return merge_config(doc, source)


def merge_config(doc: Mapping[str, Any], source: str = "secret config") -> RuleSet:
    """Merge an already-parsed config document (same schema as rules.yaml) into the built-ins."""
    _validate(doc, source)
    builtin = _builtin_document()
    raw_rules: list[dict[str, Any]] = list(builtin.get("rules", []))
    raw_allows: list[dict[str, Any]] = list(builtin.get("allow-rules", []))

    enable = doc.get("enable-builtin-rules")
    if enable:
        _warn_unknown(enable, {r["id"] for r in raw_rules}, "enable-builtin-rules", source)
        raw_rules = [r for r in raw_rules if r["id"] in set(enable)]
    custom = [dict(r) for r in doc.get("rules", [])]
    custom_ids = {r["id"] for r in custom}
    raw_rules = [r for r in raw_rules if r["id"] not in custom_ids] + custom
    disable = set(doc.get("disable-rules", []))
    _warn_unknown(disable, {r["id"] for r in raw_rules}, "disable-rules", source)
    raw_rules = [r for r in raw_rules if r["id"] not in disable]

    custom_allows = [dict(a) for a in doc.get("allow-rules", [])]
    custom_allow_ids = {a["id"] for a in custom_allows}
    raw_allows = [a for a in raw_allows if a["id"] not in custom_allow_ids] + custom_allows
    disable_allows = set(doc.get("disable-allow-rules", []))
    _warn_unknown(disable_allows, {a["id"] for a in raw_allows}, "disable-allow-rules", source)
    raw_allows = [a for a in raw_allows if a["id"] not in disable_allows]

    compiled = {r.id: r for r in builtin_rules().rules}
    compiled.update((r["id"], _compile_rule(r, source, i)) for i, r in enumerate(custom))
    rules = tuple(compiled[r["id"]] for r in raw_rules)
    compiled_allows = {a.id: a for a in builtin_rules().allow_rules}
    compiled_allows.update((a["id"], _compile_allow(a, source, i)) for i, a in enumerate(custom_allows))
    allows = tuple(compiled_allows[a["id"]] for a in raw_allows)
    _register(r for r in rules if r.id in custom_ids)
    return RuleSet(rules, allows, _fingerprint(raw_rules, raw_allows))


def rules_from_document(doc: Mapping[str, Any], source: str = "secret rules") -> tuple[Rule, ...]:
    """Only the rules a document defines (no built-ins), validated and compiled."""
    _validate(doc, source)
    rules = tuple(_compile_rule(r, source, i) for i, r in enumerate(doc.get("rules", [])))
    _register(rules)
    return rules


def _read_config(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFoundError("secret config file not found", input_name=str(path)) from None
    except OSError as err:
        raise ConfigError(f"cannot read secret config: {err.strerror}", input_name=str(path)) from None
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"secret config is {size} bytes, over the {MAX_CONFIG_BYTES} byte limit", input_name=str(path)
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("secret config is not UTF-8 text", input_name=str(path)) from None
    except OSError as err:
        raise ConfigError(f"cannot read secret config: {err.strerror}", input_name=str(path)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"secret config is not valid YAML{where}", input_name=str(path)) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError("secret config must be a mapping (rules, disable-rules, ...)", input_name=str(path))
    return doc


def _validate(doc: object, source: str) -> None:
    error = next(iter(sorted(_schema_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    if error is None:
        assert isinstance(doc, Mapping)
        for field in ("rules", "allow-rules"):
            ids = [entry["id"] for entry in doc.get(field, [])]
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                raise ConfigError(f"{field}: duplicate id(s) {', '.join(duplicates)}", input_name=source)
        return
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    raise ConfigError(f"{where}: {message}", input_name=source)


class _LazyPattern:
    """A built-in regex compiled on first use: most rules never run in a scan (the keyword
    prefilter rules them out), and compiling all of them costs a quarter of a second per process.
    The built-in rules are compiled and checked by the test suite."""

    __slots__ = ("_compiled", "_pattern")

    def __init__(self, pattern: str | bytes) -> None:
        self._pattern = pattern
        self._compiled: re.Pattern[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            self._compiled = re.compile(self._pattern)
        return getattr(self._compiled, name)


def _compile_rule(raw: Mapping[str, Any], source: str, index: int, *, lazy: bool = False) -> Rule:
    rid = str(raw["id"])
    where = f"rules[{index}] ({rid})"
    if lazy:
        regex = cast("re.Pattern[bytes]", _LazyPattern(str(raw["regex"]).encode("utf-8")))
    else:
        regex = _compile_bytes(raw["regex"], source, f"{where}.regex")
        if SECRET_GROUP not in regex.groupindex:
            raise ConfigError(f"{where}.regex: has no named group (?P<{SECRET_GROUP}>...)", input_name=source)
    return Rule(
        id=rid,
        category=str(raw["category"]),
        title=str(raw["title"]),
        severity=Severity.parse(str(raw["severity"])),
        regex=regex,
        keywords=tuple(dict.fromkeys(k.lower().encode("ascii") for k in raw.get("keywords", []))),
        allow=tuple(_compile_bytes(a, source, f"{where}.allow[{i}]") for i, a in enumerate(raw.get("allow", []))),
        entropy=float(raw.get("entropy", 0.0)),
        path=_compile_str(raw["path"], source, f"{where}.path") if "path" in raw else None,
        line_scope=raw.get("scope", "file") == "line" and bool(raw.get("keywords")),
        exclude_blocks=tuple(
            _compile_bytes(b, source, f"{where}.exclude-block[{i}]") for i, b in enumerate(raw.get("exclude-block", []))
        ),
    )


def _compile_allow(raw: Mapping[str, Any], source: str, index: int) -> AllowRule:
    where = f"allow-rules[{index}] ({raw['id']})"
    return AllowRule(
        id=str(raw["id"]),
        description=str(raw.get("description", "")),
        regex=_compile_bytes(raw["regex"], source, f"{where}.regex") if "regex" in raw else None,
        path=_compile_str(raw["path"], source, f"{where}.path") if "path" in raw else None,
    )


def _compile_bytes(pattern: str, source: str, where: str) -> re.Pattern[bytes]:
    try:
        return re.compile(pattern.encode("utf-8"))
    except (re.error, OverflowError, RecursionError) as err:
        raise ConfigError(f"{where}: bad regex: {err}", input_name=source) from None


def _compile_str(pattern: str, source: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as err:
        raise ConfigError(f"{where}: bad regex: {err}", input_name=source) from None


def _warn_unknown(ids: Iterable[str], known: set[str], field: str, source: str) -> None:
    unknown = sorted(set(ids) - known)
    if unknown:
        logger.warning("%s: %s names unknown id(s): %s", source, field, ", ".join(unknown))


def _fingerprint(rules: Sequence[Mapping[str, Any]], allows: Sequence[Mapping[str, Any]]) -> str:
    blob = json.dumps({"rules": list(rules), "allow": list(allows)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
