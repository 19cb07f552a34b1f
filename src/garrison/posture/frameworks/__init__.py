"""Compliance frameworks as data: which posture checks implement which framework control, and scores.

Each framework is one YAML file in this package, validated on load::

    framework:
      id: cis-k8s-1.12            # the id used by --framework and by controls' `frameworks:` metadata
      title: CIS Kubernetes Benchmark v1.12
      version: "1.12"
      url: https://...            # optional
      controls:
        - id: "5.2.2"             # unique within the framework
          title: Minimize the admission of privileged containers
          section: 5.2 Pod Security Standards   # optional, for grouping
          severity: HIGH          # optional (default MEDIUM)
          manual: false           # optional: true = assessed by a person, never scored
          aliases: [pod-security] # optional: other ids controls' metadata may use for this control
          checks:                 # the checks implementing it
            - GK-W-001            # our control id (Kubernetes, PSS-<level>-<check>, GD-..., CIS-1.12-<id>)
            - checkov:CKV_K8S_16  # or a peer id, resolved through the controls' `references`
            - trivy:KSV017        # (Trivy AVD ids compare by number: AVD-KSV-0017 == KSV017)

A framework control is also implemented by every control whose own metadata names it
(``frameworks: {cis-k8s-1.12: ["5.2.2"]}``), so both directions of the mapping count. Peer references
keep a mapping valid when our ids change; references nothing resolves are kept in
:attr:`Resolved.unresolved` (reported by the tests, never dropped silently).

Scoring (:func:`score`): a framework control *fails* when any of its checks failed, *passes* when
checks ran and none failed, is *manual* when it has no resolvable check (or says ``manual: true``),
and *not assessed* when its checks produced no results (nothing in the input they apply to).
Framework score = passed / (passed + failed) over automated controls; the same per namespace.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from garrison.core.errors import InputError
from garrison.model import Severity
from garrison.posture.model import Control, ControlResult, Verdict

#: peer tools whose ids may appear as ``tool:ID`` in a framework's checks
PEER_TOOLS = frozenset({"checkov", "checkov-graph", "kubescape", "trivy", "hadolint", "buildkit"})
STATUSES = ("pass", "fail", "manual", "not-assessed")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:()/&-]*$")
_AVD = re.compile(r"^(?:AVD-)?([A-Z]+)-?0*(\d+)$")


class FrameworkError(InputError):
    """A framework file is malformed, or a framework id is unknown."""


@dataclass(frozen=True, slots=True)
class FrameworkControl:
    id: str
    title: str
    section: str = ""
    severity: Severity = Severity.MEDIUM
    manual: bool = False
    aliases: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Framework:
    id: str
    title: str
    version: str
    url: str = ""
    controls: tuple[FrameworkControl, ...] = ()

    def control(self, cid: str) -> FrameworkControl | None:
        for ctl in self.controls:
            if ctl.id == cid or cid in ctl.aliases:
                return ctl
        return None


def normalize_peer(tool: str, ident: str) -> str:
    """Canonical form of a peer id for comparison (Trivy AVD ids by prefix and number)."""
    ident = ident.strip().upper()
    if tool == "trivy":
        m = _AVD.match(ident)
        if m:
            return f"{m.group(1)}{int(m.group(2))}"
    return ident


def _require(cond: bool, message: str, name: str) -> None:
    if not cond:
        raise FrameworkError(message, input_name=name)


def _text(raw: dict[str, Any], key: str, name: str, *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    _require(isinstance(value, (str, int, float)) and str(value).strip() != "", f"'{key}' must be a string", name)
    return " ".join(str(value).split())


def _strings(raw: dict[str, Any], key: str, name: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    _require(isinstance(value, list), f"'{key}' must be a list of strings", name)
    out = []
    for item in value:
        _require(isinstance(item, str) and item.strip() != "", f"'{key}' must be a list of strings", name)
        out.append(item.strip())
    return tuple(out)


def parse_framework(text: str, name: str) -> Framework:
    """Parse and validate one framework document; :class:`FrameworkError` names ``name`` on bad input."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise FrameworkError(f"invalid YAML{where}", input_name=name) from None
    _require(isinstance(doc, dict) and isinstance(doc.get("framework"), dict), "missing 'framework' mapping", name)
    raw = doc["framework"]
    fid = _text(raw, "id", name)
    _require(bool(_ID.match(fid)), f"invalid framework id {fid!r}", name)
    controls_raw = raw.get("controls")
    _require(isinstance(controls_raw, list) and bool(controls_raw), "'controls' must be a non-empty list", name)
    controls: list[FrameworkControl] = []
    seen: set[str] = set()
    for i, item in enumerate(controls_raw):
        where = f"{name}: controls[{i}]"
        _require(isinstance(item, dict), "a control must be a mapping", where)
        cid = _text(item, "id", where)
        _require(cid not in seen, f"duplicate control id {cid!r}", where)
        aliases = _strings(item, "aliases", where)
        seen.update((cid, *aliases))
        severity_text = _text(item, "severity", where, required=False) or "MEDIUM"
        severity = Severity.parse(severity_text)
        _require(severity.name == severity_text.upper(), f"unknown severity {severity_text!r}", where)
        manual = item.get("manual", False)
        _require(isinstance(manual, bool), "'manual' must be true or false", where)
        checks = _strings(item, "checks", where)
        for check in checks:
            tool, sep, ident = check.partition(":")
            _require(not sep or (tool in PEER_TOOLS and bool(ident)), f"unknown peer tool in {check!r}", where)
        controls.append(
            FrameworkControl(
                id=cid,
                title=_text(item, "title", where),
                section=_text(item, "section", where, required=False),
                severity=severity,
                manual=manual,
                aliases=aliases,
                checks=checks,
            )
        )
    return Framework(
        id=fid,
        title=_text(raw, "title", name),
        version=_text(raw, "version", name),
        url=_text(raw, "url", name, required=False),
        controls=tuple(controls),
    )


@cache
def available() -> dict[str, Framework]:
    """Every packaged framework by id."""
    out: dict[str, Framework] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            fw = parse_framework(entry.read_text(encoding="utf-8"), entry.name)
            if fw.id in out:
                raise FrameworkError(f"framework {fw.id!r} defined twice", input_name=entry.name)
            out[fw.id] = fw
    return out


def load(ids: Iterable[str] | None = None) -> list[Framework]:
    """The frameworks named by ``ids`` (all when ``None``); unknown ids are an error."""
    every = available()
    if ids is None:
        return list(every.values())
    wanted = [i.strip() for i in ids if i.strip()]
    unknown = [i for i in wanted if i not in every]
    if unknown:
        raise FrameworkError(f"unknown framework(s) {', '.join(unknown)}; available: {', '.join(every)}")
    return [every[i] for i in dict.fromkeys(wanted)]


# --- the control catalog ----------------------------------------------------------------------


@cache
def catalog() -> dict[str, Control]:
    """Every control the posture engines can report, by id: the Kubernetes control registry, the Pod
    Security Standards checks, the Dockerfile controls and the CIS node checks."""
    from garrison.posture.cis.definitions import load_benchmark
    from garrison.posture.cis.runner import load_severities
    from garrison.posture.dockerfile.controls import load_controls
    from garrison.posture.k8s.controls import registry
    from garrison.posture.k8s.pss.engine import CHECKS, control_for

    out: dict[str, Control] = {cid: reg.control for cid, reg in registry().items()}
    for chk in CHECKS:
        ctl = control_for(chk.id, chk.level)
        out[ctl.id] = ctl
    out.update(load_controls())
    severities = load_severities()
    for controls in load_benchmark("cis-1.12").values():
        for group in controls.groups:
            for check in group.checks:
                cid = f"CIS-1.12-{check.id}"
                out[cid] = Control(
                    id=cid,
                    title=" ".join(check.text.split()),
                    severity=severities.of(check),
                    family="cis-node",
                    remediation=check.remediation,
                    frameworks={"cis-k8s-1.12": (check.id,)},
                    manual=check.type == "manual",
                )
    return out


@dataclass(frozen=True, slots=True)
class Resolved:
    """A framework control's checks as our control ids, and the references nothing resolved."""

    control: FrameworkControl
    checks: frozenset[str]
    unresolved: tuple[str, ...] = ()

    @property
    def automated(self) -> bool:
        return bool(self.checks) and not self.control.manual


def resolve(framework: Framework, controls: dict[str, Control] | None = None) -> list[Resolved]:
    """Resolve every framework control's checks against ``controls`` (default: :func:`catalog`)."""
    known = catalog() if controls is None else controls
    peers: dict[tuple[str, str], set[str]] = {}
    declared: dict[str, set[str]] = {}
    for cid, ctl in known.items():
        for tool, idents in ctl.references.items():
            for ident in idents:
                peers.setdefault((tool, normalize_peer(tool, ident)), set()).add(cid)
        for fw_cid in ctl.frameworks.get(framework.id, ()):
            declared.setdefault(fw_cid, set()).add(cid)
    out: list[Resolved] = []
    for fctl in framework.controls:
        ids: set[str] = set()
        missing: list[str] = []
        for check in fctl.checks:
            tool, sep, ident = check.partition(":")
            if sep:
                hits = peers.get((tool, normalize_peer(tool, ident)), set())
            else:
                hits = {check} if check in known else set()
            if hits:
                ids |= hits
            else:
                missing.append(check)
        for key in (fctl.id, *fctl.aliases):
            ids |= declared.get(key, set())
        out.append(Resolved(fctl, frozenset(ids), tuple(missing)))
    return out


def undeclared_mappings(framework: Framework, controls: dict[str, Control] | None = None) -> list[str]:
    """``control id -> framework control`` declarations in control metadata that name no control of
    ``framework`` (typos or renamed sections)."""
    known = catalog() if controls is None else controls
    return [
        f"{cid} -> {fw_cid}"
        for cid, ctl in sorted(known.items())
        for fw_cid in ctl.frameworks.get(framework.id, ())
        if framework.control(fw_cid) is None
    ]


# --- scoring ------------------------------------------------------------------------------------


@dataclass(slots=True)
class ControlStatus:
    control: FrameworkControl
    status: str  # one of STATUSES
    checks: tuple[str, ...]
    passed: int = 0  # results
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.control.id,
            "title": self.control.title,
            "section": self.control.section,
            "severity": self.control.severity.name,
            "status": self.status,
            "checks": list(self.checks),
            "passed_results": self.passed,
            "failed_results": self.failed,
        }


@dataclass(slots=True)
class Score:
    passed: int = 0
    failed: int = 0
    manual: int = 0
    not_assessed: int = 0

    @property
    def score(self) -> float | None:
        """passed / (passed + failed) as a percentage with one decimal, ``None`` when nothing was scored."""
        scored = self.passed + self.failed
        return round(100.0 * self.passed / scored, 1) if scored else None

    def add(self, status: str) -> None:
        if status == "pass":
            self.passed += 1
        elif status == "fail":
            self.failed += 1
        elif status == "manual":
            self.manual += 1
        else:
            self.not_assessed += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": self.failed,
            "manual": self.manual,
            "not_assessed": self.not_assessed,
            "score": self.score,
        }


@dataclass(slots=True)
class FrameworkScore:
    framework: Framework
    controls: list[ControlStatus]
    total: Score
    namespaces: dict[str, Score] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.framework.id,
            "title": self.framework.title,
            "version": self.framework.version,
            **self.total.to_dict(),
            "namespaces": {ns: s.to_dict() for ns, s in sorted(self.namespaces.items())},
            "controls": [c.to_dict() for c in self.controls],
        }


#: the namespace label for cluster-scoped objects, Dockerfiles and node checks
NO_NAMESPACE = "(none)"


def _status(res: Resolved, by_control: dict[str, list[ControlResult]]) -> tuple[str, int, int]:
    if not res.automated:
        return "manual", 0, 0
    passed = failed = 0
    for cid in res.checks:
        for r in by_control.get(cid, ()):
            if r.verdict is Verdict.FAIL or r.verdict is Verdict.ERROR:
                failed += 1
            elif r.verdict is Verdict.PASS:
                passed += 1
    if failed:
        return "fail", passed, failed
    return ("pass" if passed else "not-assessed"), passed, failed


def score(
    framework: Framework, results: Iterable[ControlResult], controls: dict[str, Control] | None = None
) -> FrameworkScore:
    """Score ``framework`` over ``results`` (suppressed results are SKIP and count for neither side)."""
    resolved = resolve(framework, controls)
    all_results = list(results)
    by_control: dict[str, list[ControlResult]] = {}
    by_ns: dict[str, dict[str, list[ControlResult]]] = {}
    for r in all_results:
        by_control.setdefault(r.control.id, []).append(r)
        ns = r.subject.namespace or NO_NAMESPACE
        by_ns.setdefault(ns, {}).setdefault(r.control.id, []).append(r)
    statuses: list[ControlStatus] = []
    total = Score()
    for res in resolved:
        status, passed, failed = _status(res, by_control)
        statuses.append(ControlStatus(res.control, status, tuple(sorted(res.checks)), passed, failed))
        total.add(status)
    namespaces: dict[str, Score] = {}
    for ns, ns_results in sorted(by_ns.items()):
        s = Score()
        for res in resolved:
            s.add(_status(res, ns_results)[0])
        namespaces[ns] = s
    return FrameworkScore(framework, statuses, total, namespaces)
