"""The admission policy engine: every policy of the configuration, precomputed once, evaluated
on one :class:`~garrison.admission.review.AdmissionRequest`.

Policies:

* **Pod Security** as the Kubernetes Pod Security Admission controller applies it: the level
  and version per namespace come from ``pod-security.kubernetes.io/enforce|warn|audit`` and
  ``-version`` labels (the config's ``podSecurity.namespaces``, else labels learned from
  Namespace objects sent to the webhook, else ``podSecurity.defaults``). Pods failing the
  enforce level are denied with PSA's message (``pods "x" is forbidden: violates PodSecurity
  "restricted:latest": ...``); workloads failing it and pods failing the warn level get PSA's
  ``would violate PodSecurity`` warning; audit failures are logged.
* **controls**: the Kubernetes control library on the single object, by id and severity.
* **images**: allowed registries (prefixes or globs) and digest pinning.
* **required labels**, **CEL rules** (``object``, ``oldObject``, ``request``; a rule admits
  when its expression is true) and the **vulnerability gate**.

Each policy has a mode (its own, else the global one): ``enforce`` denies, ``warn`` allows with
a warning, ``audit`` allows and logs, ``dry-run`` evaluates and logs what would be denied.
A global ``dry-run`` never denies. Exempt namespaces, usernames and runtime classes skip
every policy, as PSA exemptions do.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from garrison.admission.config import PSS_LABEL_PREFIX, AdmissionConfig
from garrison.admission.mutate import Patch, mutation_patch
from garrison.admission.review import AdmissionRequest
from garrison.admission.vulngate import VulnGate
from garrison.core.errors import ConfigError
from garrison.model import Severity
from garrison.posture.k8s.objects import TEMPLATE_PATHS, K8sObject, pod_templates
from garrison.posture.k8s.pss import aggregate_reason, evaluate_pod, parse_version
from garrison.posture.model import Location, Verdict

PSS_LEVELS = ("privileged", "baseline", "restricted")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_GLOB = re.compile(r"[*?\[]")
WORKLOAD_KINDS = frozenset(TEMPLATE_PATHS)


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class Violation:
    policy: str  # pss, controls:GK-001, images, required-labels, cel:NAME, vulnerabilities
    mode: str
    message: str


@dataclass(slots=True)
class Decision:
    allowed: bool = True
    message: str = ""
    code: int = 0
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    would_deny: bool = False  # dry-run: a denial that was not made
    exempt: str = ""
    patch: Patch = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.exempt:
            return "exempt"
        if not self.allowed:
            return "denied"
        return "dry-run-denied" if self.would_deny else "allowed"


def _pss_key(label: str) -> str:
    return label[len(PSS_LABEL_PREFIX) :] if label.startswith(PSS_LABEL_PREFIX) else label


def _level_version(labels: dict[str, str], mode: str) -> tuple[str, str]:
    level = labels.get(mode, "privileged")
    version = labels.get(f"{mode}-version", "latest")
    return level, version


def _version_text(version: str) -> str:
    if version == "latest":
        return "latest"
    v = parse_version(version)
    return f"v{v[0]}.{v[1]}"


def validate_pss_labels(labels: dict[str, str], source: str) -> None:
    for key, value in labels.items():
        if key.endswith("-version"):
            parse_version(value)
        elif value not in PSS_LEVELS:
            raise ConfigError(f"{key}: level must be one of {', '.join(PSS_LEVELS)}, not {value!r}", input_name=source)


def normalize_image(ref: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx``; ``acme/app`` -> ``docker.io/acme/app``."""
    first, sep, _rest = ref.partition("/")
    if not sep:
        return f"docker.io/library/{ref}"
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"


def registry_allowed(ref: str, patterns: tuple[str, ...]) -> bool:
    for candidate in {ref, normalize_image(ref)}:
        for pat in patterns:
            if _GLOB.search(pat):
                if fnmatch.fnmatchcase(candidate, pat):
                    return True
            elif candidate == pat or candidate.startswith(pat if pat.endswith("/") else pat + "/"):
                return True
    return False


def images_of(obj: K8sObject) -> Iterator[tuple[str, str]]:
    """``(path, image)`` of every container of every pod spec in ``obj``."""
    for prefix, _meta, spec in pod_templates(obj):
        for field_name in ("initContainers", "containers", "ephemeralContainers"):
            containers = spec.get(field_name)
            if not isinstance(containers, list):
                continue
            for i, container in enumerate(containers):
                if isinstance(container, dict) and isinstance(container.get("image"), str):
                    yield f"{prefix}.{field_name}[{i}].image", container["image"]


class _Cel:
    """A compiled CEL rule."""

    def __init__(self, name: str, expression: str) -> None:
        import celpy

        env = celpy.Environment()
        try:
            self.program = env.program(env.compile(expression))
        except Exception as err:  # celpy raises its own parse errors, not one base class
            first = " ".join(str(err).split())
            raise ConfigError(f"celRules[{name}]: expression does not compile: {first}", input_name="config") from None
        self.name = name

    def evaluate(self, activation: dict[str, Any]) -> tuple[bool, str]:
        """``(admit, error)``: error is non-empty when the expression could not be evaluated."""
        from celpy import celtypes
        from celpy.adapter import json_to_cel

        try:
            result = self.program.evaluate({k: json_to_cel(v) for k, v in activation.items()})
        except Exception as err:  # an evaluation error of any kind fails the rule closed
            return False, " ".join(str(err).split())[:200]
        if not isinstance(result, celtypes.BoolType | bool):
            return False, f"expression returned {type(result).__name__}, not bool"
        return bool(result), ""


class Engine:
    """Evaluate admission requests against a configuration (precomputed at construction)."""

    def __init__(self, cfg: AdmissionConfig) -> None:
        self.cfg = cfg
        self.pss_defaults = {_pss_key(k): v for k, v in cfg.pss_defaults.items()}
        validate_pss_labels(self.pss_defaults, "podSecurity.defaults")
        self.pss_configured: dict[str, dict[str, str]] = {}
        for ns, labels in cfg.pss_namespaces.items():
            short = {_pss_key(k): v for k, v in labels.items()}
            validate_pss_labels(short, f"podSecurity.namespaces.{ns}")
            self.pss_configured[ns] = short
        #: namespace -> PSS labels, learned from Namespace objects sent to the webhook
        self.pss_learned: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self.min_control_severity = Severity.parse(cfg.control_min_severity)
        if cfg.controls_enabled:
            from garrison.posture.k8s.controls import registry

            known = registry()
            unknown = sorted(cfg.control_ids - set(known))
            if unknown:
                raise ConfigError(f"controls.ids: unknown control ids {', '.join(unknown)}", input_name="config")
            self.control_ids = {
                cid
                for cid, reg in known.items()
                if (not cfg.control_ids or cid in cfg.control_ids)
                and cid not in cfg.control_skip
                and reg.control.severity >= self.min_control_severity
            }
        else:
            self.control_ids = set()
        self.cel = [(rule, _Cel(rule.name, rule.expression)) for rule in cfg.cel_rules]
        self.vuln = VulnGate(cfg.vulnerabilities) if cfg.vulnerabilities is not None else None

    @property
    def may_block(self) -> bool:
        """True when evaluation can wait (a scan on a cache miss): run it off the event loop."""
        return self.vuln is not None and self.vuln.may_block

    def close(self) -> None:
        if self.vuln is not None:
            self.vuln.close()

    # -- namespace policy ---------------------------------------------------------------------

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        labels = dict(self.pss_defaults)
        learned = self.pss_learned.get(namespace)
        if learned is not None:
            # a labelled namespace replaces the defaults for the modes it sets, as in PSA
            labels.update(learned)
        labels.update(self.pss_configured.get(namespace, {}))
        return labels

    def _learn_namespace(self, req: AdmissionRequest) -> Violation | None:
        obj = req.object or {}
        meta = _map(obj.get("metadata"))
        raw = _map(meta.get("labels"))
        labels = {_pss_key(k): str(v) for k, v in raw.items() if str(k).startswith(PSS_LABEL_PREFIX)}
        try:
            validate_pss_labels(labels, f"namespace {req.object_name}")
        except ConfigError as err:
            return Violation("pss", "enforce", str(err))
        with self._lock:
            self.pss_learned[req.object_name or req.name] = labels
        return None

    # -- evaluation -----------------------------------------------------------------------------

    def _mode(self, own: str) -> str:
        return "dry-run" if self.cfg.mode == "dry-run" else (own or self.cfg.mode)

    def _exempt(self, req: AdmissionRequest) -> str:
        cfg = self.cfg
        if req.namespace and req.namespace in cfg.exempt_namespaces:
            return f"namespace {req.namespace}"
        if req.user.username and req.user.username in cfg.exempt_usernames:
            return f"user {req.user.username}"
        if cfg.exempt_runtime_classes and req.object:
            for _prefix, _meta, spec in pod_templates(K8sObject(req.object, Location())):
                rc = spec.get("runtimeClassName")
                if isinstance(rc, str) and rc in cfg.exempt_runtime_classes:
                    return f"runtimeClass {rc}"
        return ""

    def _pss(self, req: AdmissionRequest, obj: K8sObject, warnings: list[str]) -> list[Violation]:
        if not self.cfg.pss_enabled:
            return []
        if req.sub_resource and req.sub_resource != "ephemeralcontainers":
            return []
        templates = list(pod_templates(obj))
        if not templates:
            return []
        # PSA ignores pod updates that leave the spec as it was (label or annotation edits)
        if (
            req.operation == "UPDATE"
            and req.old_object is not None
            and obj.kind == "Pod"
            and not req.sub_resource
            and req.old_object.get("spec") == obj.doc.get("spec")
        ):
            return []
        labels = self.namespace_labels(req.namespace)
        out: list[Violation] = []
        is_pod = obj.kind == "Pod"
        seen: set[str] = set()
        for mode in ("enforce", "warn", "audit"):
            level, version = _level_version(labels, mode)
            if level == "privileged":
                continue
            failures = [f for _p, meta, spec in templates for f in evaluate_pod(meta, spec, level, version)]
            if not failures:
                continue
            policy = f"{level}:{_version_text(version)}"
            reason = aggregate_reason(failures)
            if mode == "enforce" and is_pod:
                message = f'pods "{req.object_name}" is forbidden: violates PodSecurity "{policy}": {reason}'
                out.append(Violation("pss", self._mode("enforce"), message))
            elif mode in ("enforce", "warn"):
                text = f'would violate PodSecurity "{policy}": {reason}'
                if text not in seen:
                    seen.add(text)
                    warnings.append(text)
                    out.append(Violation("pss", "warn", text))
            else:
                out.append(Violation("pss", "audit", f'would violate PodSecurity "{policy}": {reason}'))
        return out

    def _controls(self, obj: K8sObject) -> list[Violation]:
        if not self.control_ids:
            return []
        from garrison.posture.k8s.controls import run_controls

        mode = self._mode(self.cfg.controls_mode)
        return [
            Violation(f"controls:{r.control.id}", mode, f"{r.control.id} {r.control.title}: {r.message}")
            for r in run_controls([obj], only=self.control_ids)
            if r.verdict is Verdict.FAIL
        ]

    def _images(self, obj: K8sObject) -> list[Violation]:
        cfg = self.cfg
        if not (cfg.allowed_registries or cfg.require_digest):
            return []
        mode = self._mode(cfg.images_mode)
        out: list[Violation] = []
        for path, image in images_of(obj):
            if cfg.allowed_registries and not registry_allowed(image, cfg.allowed_registries):
                out.append(Violation("images", mode, f"{path}: image {image!r} is not from an allowed registry"))
            if cfg.require_digest and not _DIGEST.search(image):
                out.append(Violation("images", mode, f"{path}: image {image!r} is not pinned by digest (@sha256:...)"))
        return out

    def _labels(self, obj: K8sObject) -> list[Violation]:
        cfg = self.cfg
        if not cfg.required_labels or (cfg.required_labels_kinds and obj.kind not in cfg.required_labels_kinds):
            return []
        labels = obj.metadata.get("labels")
        present = labels if isinstance(labels, dict) else {}
        missing = [name for name in cfg.required_labels if name not in present]
        if not missing:
            return []
        text = ", ".join(missing)
        return [Violation("required-labels", self._mode(cfg.required_labels_mode), f"missing required labels: {text}")]

    def _cel(self, req: AdmissionRequest) -> list[Violation]:
        out: list[Violation] = []
        if not self.cel:
            return out
        activation = {
            "object": req.object,
            "oldObject": req.old_object,
            "request": {
                k: v for k, v in req.raw.items() if k not in ("object", "oldObject")
            },
        }
        for rule, program in self.cel:
            if req.operation not in rule.operations or (rule.kinds and req.object_kind not in rule.kinds):
                continue
            ok, error = program.evaluate(activation)
            if ok:
                continue
            message = f"{rule.name}: {rule.message}" + (f" (evaluation error: {error})" if error else "")
            out.append(Violation(f"cel:{rule.name}", self._mode(rule.mode), message))
        return out

    def _vulns(self, obj: K8sObject, warnings: list[str]) -> list[Violation]:
        gate = self.vuln
        if gate is None:
            return []
        mode = self._mode(gate.cfg.mode)
        out: list[Violation] = []
        for _path, image in images_of(obj):
            answer = gate.check(image)
            if answer.verdict == "fail":
                shown = ", ".join(
                    f"{h.id} ({h.package} {h.installed}" + (f" -> {h.fixed[0]})" if h.fixed else ")")
                    for h in answer.hits[:5]
                )
                more = f" and {len(answer.hits) - 5} more" if len(answer.hits) > 5 else ""
                out.append(
                    Violation(
                        "vulnerabilities",
                        mode,
                        f"image {image!r} has {len(answer.hits)} fixable vulnerabilities at or above "
                        f"{gate.threshold.name}: {shown}{more}",
                    )
                )
            elif answer.verdict in ("miss", "timeout"):
                if answer.action == "deny":
                    out.append(Violation("vulnerabilities", mode, answer.message))
                elif answer.action == "warn":
                    warnings.append(answer.message)
                    out.append(Violation("vulnerabilities", "warn", answer.message))
        return out

    def validate(self, req: AdmissionRequest) -> Decision:
        decision = Decision()
        exempt = self._exempt(req)
        if exempt:
            decision.exempt = exempt
            return decision
        warnings: list[str] = []
        violations: list[Violation] = []
        if req.object_kind == "Namespace" and req.operation in ("CREATE", "UPDATE"):
            bad = self._learn_namespace(req)
            if bad is not None:
                violations.append(bad)
        if req.operation in ("CREATE", "UPDATE") and req.object is not None:
            obj = K8sObject(req.object, Location(file=f"admission:{req.uid}"))
            violations += self._pss(req, obj, warnings)
            if not req.sub_resource:
                violations += self._controls(obj)
                violations += self._images(obj)
                violations += self._labels(obj)
                violations += self._vulns(obj, warnings)
        violations += self._cel(req)
        return self.resolve(violations, warnings)

    def resolve(self, violations: list[Violation], warnings: list[str]) -> Decision:
        decision = Decision(warnings=warnings, violations=violations)
        denials: list[str] = []
        for v in violations:
            if v.mode == "enforce":
                denials.append(v.message)
            elif v.mode == "warn":
                if v.message not in decision.warnings:
                    decision.warnings.append(v.message)
            elif v.mode == "dry-run":
                decision.would_deny = True
        if denials:
            decision.allowed = False
            decision.code = 403
            decision.reason = "Forbidden"
            decision.message = "; ".join(denials)
        return decision

    def mutate(self, req: AdmissionRequest) -> Decision:
        decision = Decision()
        exempt = self._exempt(req)
        if exempt:
            decision.exempt = exempt
            return decision
        if req.operation == "CREATE" and req.object is not None and not req.sub_resource:
            decision.patch = mutation_patch(req.object, self.cfg.mutation)
        return decision
