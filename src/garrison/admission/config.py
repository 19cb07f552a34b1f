"""Load and validate the admission webhook's configuration (YAML, checked against
``config.schema.json`` beside this module with :mod:`jsonschema`).

The configuration is turned into frozen dataclasses once at startup; the policy engine
precomputes everything it needs from them (compiled CEL programs, image patterns, the
vulnerability index) so a request does no parsing of configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from garrison.core.errors import ConfigError, NotFoundError

MODES = ("enforce", "warn", "audit", "dry-run")
PSS_LABEL_PREFIX = "pod-security.kubernetes.io/"


@cache
def schema() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("config.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True, slots=True)
class CelRule:
    name: str
    expression: str
    message: str
    kinds: tuple[str, ...] = ()
    operations: tuple[str, ...] = ("CREATE", "UPDATE")
    mode: str = ""


@dataclass(frozen=True, slots=True)
class VulnConfig:
    cache: str = ""
    severity: str = "HIGH"
    fixed_only: bool = True
    scan_on_miss: bool = False
    scan_timeout_seconds: float = 3.0
    on_timeout: str = "allow"
    on_miss: str = "allow"
    db_path: str = ""
    mode: str = ""


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    mode: str = "enforce"
    fail_open: bool = False
    max_body_bytes: int = 4 * 1024 * 1024
    log_file: str = ""
    exempt_namespaces: frozenset[str] = frozenset()
    exempt_usernames: frozenset[str] = frozenset()
    exempt_runtime_classes: frozenset[str] = frozenset()
    pss_enabled: bool = True
    #: short keys (enforce, enforce-version, warn, ...) -> value
    pss_defaults: dict[str, str] = field(default_factory=dict)
    pss_namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    controls_enabled: bool = False
    control_ids: frozenset[str] = frozenset()
    control_skip: frozenset[str] = frozenset()
    control_min_severity: str = "UNKNOWN"
    controls_mode: str = ""
    allowed_registries: tuple[str, ...] = ()
    require_digest: bool = False
    images_mode: str = ""
    required_labels: tuple[str, ...] = ()
    required_labels_kinds: tuple[str, ...] = ()
    required_labels_mode: str = ""
    cel_rules: tuple[CelRule, ...] = ()
    vulnerabilities: VulnConfig | None = None
    mutation: dict[str, Any] = field(default_factory=dict)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def config_from_dict(doc: Any, source: str = "config") -> AdmissionConfig:
    """Validate ``doc`` against the schema and build the configuration."""
    if doc is None:
        doc = {}
    try:
        jsonschema.validate(doc, schema())
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ConfigError(f"{where}: {err.message}", input_name=source) from None
    ex = doc.get("exemptions", {})
    pss = doc.get("podSecurity", {})
    ctl = doc.get("controls", {})
    img = doc.get("images", {})
    req = doc.get("requiredLabels", {})
    vul = doc.get("vulnerabilities")
    vuln = None
    if vul is not None:
        vuln = VulnConfig(
            cache=str(vul.get("cache", "")),
            severity=str(vul.get("severity", "HIGH")),
            fixed_only=bool(vul.get("fixedOnly", True)),
            scan_on_miss=bool(vul.get("scanOnMiss", False)),
            scan_timeout_seconds=float(vul.get("scanTimeoutSeconds", 3.0)),
            on_timeout=str(vul.get("onTimeout", "allow")),
            on_miss=str(vul.get("onMiss", "allow")),
            db_path=str(vul.get("dbPath", "")),
            mode=str(vul.get("mode", "")),
        )
    rules = tuple(
        CelRule(
            name=r["name"],
            expression=r["expression"],
            message=r["message"],
            kinds=_strings(r.get("kinds")),
            operations=_strings(r.get("operations")) or ("CREATE", "UPDATE"),
            mode=str(r.get("mode", "")),
        )
        for r in doc.get("celRules", [])
    )
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"celRules: duplicate rule names {', '.join(dupes)}", input_name=source)
    return AdmissionConfig(
        mode=str(doc.get("mode", "enforce")),
        fail_open=bool(doc.get("failOpen", False)),
        max_body_bytes=int(doc.get("maxBodyBytes", 4 * 1024 * 1024)),
        log_file=str(doc.get("log", {}).get("file", "")),
        exempt_namespaces=frozenset(_strings(ex.get("namespaces"))),
        exempt_usernames=frozenset(_strings(ex.get("usernames"))),
        exempt_runtime_classes=frozenset(_strings(ex.get("runtimeClasses"))),
        pss_enabled=bool(pss.get("enabled", True)),
        pss_defaults=dict(pss.get("defaults", {})),
        pss_namespaces={str(k): dict(v) for k, v in pss.get("namespaces", {}).items()},
        controls_enabled=bool(ctl.get("enabled", bool(ctl))),
        control_ids=frozenset(_strings(ctl.get("ids"))),
        control_skip=frozenset(_strings(ctl.get("skip"))),
        control_min_severity=str(ctl.get("minSeverity", "UNKNOWN")),
        controls_mode=str(ctl.get("mode", "")),
        allowed_registries=_strings(img.get("allowedRegistries")),
        require_digest=bool(img.get("requireDigest", False)),
        images_mode=str(img.get("mode", "")),
        required_labels=_strings(req.get("labels")),
        required_labels_kinds=_strings(req.get("kinds")),
        required_labels_mode=str(req.get("mode", "")),
        cel_rules=rules,
        vulnerabilities=vuln,
        mutation=dict(doc.get("mutation", {})),
    )


def load_config(path: str | Path | None) -> AdmissionConfig:
    """Read the YAML configuration at ``path`` (``None``: every default)."""
    if path is None:
        return config_from_dict({})
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError("no such configuration file", input_name=str(p)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read: {err}", input_name=str(p)) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML: {' '.join(str(err).split())}", input_name=str(p)) from None
    return config_from_dict(doc, str(p))
