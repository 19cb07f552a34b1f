"""The posture vocabulary shared by every input, control family, framework and report.

* :class:`Location` — where something is in a source file (1-based lines), for SARIF.
* :class:`Control` — one check's metadata (id, title, severity, rationale, remediation,
  framework mappings). Metadata is data: control families load it from YAML next to their code.
* :class:`ControlResult` — the verdict of one control on one object: pass, fail, skip or error,
  with the object paths it failed on, a message and the location.
* :class:`Subject` — what a control looked at (a Kubernetes object, a Dockerfile, a node check).

The generic :class:`garrison.model.Finding` of kind ``misconfiguration`` carries a failed
:class:`ControlResult` (see :func:`to_finding`), so posture findings flow through the same
filters, suppressions, gate and renderers as vulnerabilities and secrets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from garrison.model import Severity


class Verdict(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    SKIP = "skip"  # not applicable, manual, or suppressed with a reason
    ERROR = "error"  # the check could not run (bad input, missing file)


@dataclass(frozen=True, slots=True)
class Location:
    file: str = ""
    line: int = 0  # 1-based; 0 = unknown
    end_line: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "end_line": self.end_line}


@dataclass(frozen=True, slots=True)
class Control:
    id: str  # our id, e.g. GK-POD-001, GD-001, CIS-1.12-4.2.1
    title: str
    severity: Severity
    family: str = ""  # module / family name: pod-security, rbac, dockerfile, cis-node, pss ...
    description: str = ""
    rationale: str = ""
    remediation: str = ""
    #: framework id -> control ids in that framework, e.g. {"cis-k8s-1.12": ["5.2.2"], "nsa-cisa": [...]}
    frameworks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: peer ids for the same intent, e.g. {"checkov": ("CKV_K8S_16",), "kubescape": ("C-0057",)}
    references: dict[str, tuple[str, ...]] = field(default_factory=dict)
    manual: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.name,
            "family": self.family,
            "description": self.description,
            "rationale": self.rationale,
            "remediation": self.remediation,
            "frameworks": {k: list(v) for k, v in sorted(self.frameworks.items())},
            "references": {k: list(v) for k, v in sorted(self.references.items())},
            "manual": self.manual,
        }


@dataclass(frozen=True, slots=True)
class Subject:
    """What was checked: ``kind``/``namespace``/``name`` for Kubernetes objects, ``Dockerfile``
    and the stage for Dockerfiles, ``node`` and the component for CIS node checks."""

    kind: str
    name: str
    namespace: str = ""
    api_version: str = ""
    location: Location = Location()

    @property
    def ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "api_version": self.api_version,
            "location": self.location.to_dict(),
        }


@dataclass(slots=True)
class ControlResult:
    control: Control
    subject: Subject
    verdict: Verdict
    message: str = ""  # one line: what is wrong (or why skipped), upstream reason strings for PSS
    #: object paths the control failed on, e.g. ("spec.containers[0].securityContext.privileged",)
    paths: tuple[str, ...] = ()
    location: Location = Location()  # the failing line when known, else the subject's
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.control.id,
            "title": self.control.title,
            "severity": self.control.severity.name,
            "verdict": str(self.verdict),
            "subject": self.subject.to_dict(),
            "message": self.message,
            "paths": list(self.paths),
            "location": self.location.to_dict(),
            "details": self.details,
        }
