"""Policy versions and evaluation, following pod-security-admission's ``policy/registry.go``.

Each check has revisions that apply from a minimum policy version; evaluating level L at
version V runs, for every check of level <= L, the newest revision whose minimum is <= V.
At ``restricted`` a restricted revision can override baseline checks (restrictedVolumes
overrides hostPathVolumes, seccompProfile_restricted overrides seccompProfile_baseline, ...),
so one problem is reported once. From v1.35 ``procMount_baseline`` lets user-namespaced pods
(``hostUsers: false``) unmask /proc, and ``procMount_restricted`` (upstream
``check_procMount_restricted.go``) overrides it at ``restricted`` with the unconditional block,
so the restricted profile never relaxes. ``latest`` and versions newer than the newest known revision
evaluate as the newest; versions before v1.0 are an error. Results are ordered by check id,
and :func:`aggregate_reason` formats them as PSA's ``ForbiddenDetail()`` does.

Control metadata (titles, severities, remediation) is data in ``controls.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from garrison.core.errors import ConfigError
from garrison.model import Severity
from garrison.posture.k8s.objects import K8sObject, pod_templates
from garrison.posture.k8s.pss import checks as c
from garrison.posture.model import Control, ControlResult, Verdict

Version = tuple[int, int]
LEVELS = ("baseline", "restricted")


@dataclass(frozen=True, slots=True)
class Revision:
    minimum: Version
    fn: c.CheckFn
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    level: str
    revisions: tuple[Revision, ...]

    def at(self, version: Version) -> Revision | None:
        chosen = None
        for rev in self.revisions:
            if rev.minimum <= version:
                chosen = rev
        return chosen


CHECKS: tuple[Check, ...] = (
    Check("allowPrivilegeEscalation", "restricted", (
        Revision((1, 8), c.allow_privilege_escalation_1_8),
        Revision((1, 25), c.allow_privilege_escalation_1_25),
    )),
    Check("appArmorProfile", "baseline", (Revision((1, 0), c.app_armor_profile_1_0),)),
    Check("capabilities_baseline", "baseline", (Revision((1, 0), c.capabilities_baseline_1_0),)),
    Check("capabilities_restricted", "restricted", (
        Revision((1, 22), c.capabilities_restricted_1_22, ("capabilities_baseline",)),
        Revision((1, 25), c.capabilities_restricted_1_25, ("capabilities_baseline",)),
    )),
    Check("hostNamespaces", "baseline", (Revision((1, 0), c.host_namespaces_1_0),)),
    Check("hostPathVolumes", "baseline", (Revision((1, 0), c.host_path_volumes_1_0),)),
    Check("hostPorts", "baseline", (Revision((1, 0), c.host_ports_1_0),)),
    Check("hostProbesAndHostLifecycle", "baseline", (Revision((1, 34), c.host_probes_and_host_lifecycle_1_34),)),
    Check("privileged", "baseline", (Revision((1, 0), c.privileged_1_0),)),
    Check("procMount_baseline", "baseline", (
        Revision((1, 0), c.proc_mount_1_0),
        Revision((1, 35), c.proc_mount_baseline_1_35),
    )),
    Check("procMount_restricted", "restricted", (
        Revision((1, 35), c.proc_mount_restricted_1_35, ("procMount_baseline",)),
    )),
    Check("restrictedVolumes", "restricted", (
        Revision((1, 0), c.restricted_volumes_1_0, ("hostPathVolumes",)),
    )),
    Check("runAsNonRoot", "restricted", (Revision((1, 0), c.run_as_non_root_1_0),)),
    Check("runAsUser", "restricted", (Revision((1, 23), c.run_as_user_1_23),)),
    Check("seLinuxOptions", "baseline", (
        Revision((1, 0), c.se_linux_options_1_0),
        Revision((1, 31), c.se_linux_options_1_31),
    )),
    Check("seccompProfile_baseline", "baseline", (
        Revision((1, 0), c.seccomp_profile_baseline_1_0),
        Revision((1, 19), c.seccomp_profile_baseline_1_19),
    )),
    Check("seccompProfile_restricted", "restricted", (
        Revision((1, 19), c.seccomp_profile_restricted_1_19, ("seccompProfile_baseline",)),
        Revision((1, 25), c.seccomp_profile_restricted_1_25, ("seccompProfile_baseline",)),
    )),
    Check("sysctls", "baseline", (
        Revision((1, 0), c.sysctls_1_0),
        Revision((1, 27), c.sysctls_1_27),
        Revision((1, 29), c.sysctls_1_29),
        Revision((1, 32), c.sysctls_1_32),
    )),
    Check("windowsHostProcess", "baseline", (Revision((1, 0), c.windows_host_process_1_0),)),
)  # fmt: skip

#: the newest policy version any check revision introduces
KNOWN_LATEST: Version = max(rev.minimum for check in CHECKS for rev in check.revisions)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)$")


def parse_version(text: str) -> Version:
    """``latest`` or ``vX.Y`` (``X.Y`` accepted). Newer than known -> latest; before v1.0 -> error."""
    value = text.strip()
    if value == "latest":
        return KNOWN_LATEST
    m = _VERSION.match(value)
    if not m:
        raise ConfigError(f"invalid Pod Security Standards version {text!r}; use latest or vX.Y, e.g. v1.30")
    version = (int(m.group(1)), int(m.group(2)))
    if version < (1, 0):
        raise ConfigError(f"Pod Security Standards version {text!r} is older than v1.0")
    if version[0] > 1:
        raise ConfigError(f"invalid Pod Security Standards version {text!r}; only v1.x versions exist")
    return min(version, KNOWN_LATEST)


def format_version(version: Version) -> str:
    return f"v{version[0]}.{version[1]}"


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigError(f"unknown Pod Security Standards level {level!r}; use {' or '.join(LEVELS)}")
    return level


@cache
def _plan(level: str, version: Version) -> tuple[tuple[Check, Revision], ...]:
    wanted = ("baseline",) if level == "baseline" else LEVELS
    chosen = [(chk, rev) for chk in CHECKS if chk.level in wanted for rev in (chk.at(version),) if rev is not None]
    overridden = (
        {o for chk, rev in chosen if chk.level == level for o in rev.overrides} if level == "restricted" else set()
    )
    return tuple((chk, rev) for chk, rev in chosen if chk.id not in overridden)


@dataclass(frozen=True, slots=True)
class CheckResult:
    check_id: str
    check_level: str
    reason: str
    detail: str
    paths: tuple[str, ...] = ()

    @property
    def control_id(self) -> str:
        return f"PSS-{self.check_level}-{self.check_id}"


@dataclass(slots=True)
class PodVerdict:
    """The failed checks of one pod spec (``prefix`` is its path in the object)."""

    prefix: str
    failures: list[CheckResult] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.failures


def evaluate_pod(
    metadata: dict[str, Any],
    spec: dict[str, Any],
    level: str = "restricted",
    version: Version | str = "latest",
    options: c.Options | None = None,
) -> list[CheckResult]:
    """Run the checks of ``level`` at ``version`` on one pod; return the failures (by check id)."""
    ver = parse_version(version) if isinstance(version, str) else min(version, KNOWN_LATEST)
    opts = options or c.Options()
    out: list[CheckResult] = []
    for chk, rev in _plan(_check_level(level), ver):
        res = rev.fn(metadata, spec, opts)
        if res is not None:
            out.append(CheckResult(chk.id, chk.level, res.reason or "unknown forbidden reason", res.detail, res.paths))
    return out


def aggregate_reason(failures: list[CheckResult]) -> str:
    """PSA's aggregated message: ``reason (detail), reason, ...``."""
    return ", ".join(f"{f.reason} ({f.detail})" if f.detail else f.reason for f in failures)


@cache
def _control_data() -> dict[str, Any]:
    text = resources.files("garrison.posture.k8s.pss").joinpath("controls.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return data if isinstance(data, dict) else {}


@cache
def control_for(check_id: str, check_level: str) -> Control:
    entry = _control_data().get("checks", {}).get(check_id, {})
    return Control(
        id=f"PSS-{check_level}-{check_id}",
        title=str(entry.get("title", check_id)),
        severity=Severity.parse(str(entry.get("severity", "MEDIUM"))),
        family="pss",
        description=str(entry.get("description", "")),
        remediation=str(entry.get("remediation", "")),
        frameworks={"pss": (f"{check_level}:{check_id}",)},
        references={k: tuple(v) for k, v in dict(entry.get("references", {})).items()},
    )


def _absolute(prefix: str, path: str) -> str:
    if path.startswith("spec"):
        return prefix + path[len("spec") :]
    if path.startswith("metadata"):
        base = prefix[: -len("spec")] if prefix.endswith("spec") else ""
        return base + path
    return path


def evaluate_object(
    obj: K8sObject,
    level: str = "restricted",
    version: Version | str = "latest",
    options: c.Options | None = None,
) -> list[ControlResult]:
    """Failed PSS checks of every pod spec in ``obj`` as :class:`ControlResult` (empty when all pass
    or when ``obj`` runs no pods)."""
    results: list[ControlResult] = []
    subject = obj.subject()
    for prefix, meta, spec in pod_templates(obj):
        for failure in evaluate_pod(meta, spec, level, version, options):
            paths = tuple(_absolute(prefix, p) for p in failure.paths) or (prefix,)
            results.append(
                ControlResult(
                    control=control_for(failure.check_id, failure.check_level),
                    subject=subject,
                    verdict=Verdict.FAIL,
                    message=f"{failure.reason}: {failure.detail}" if failure.detail else failure.reason,
                    paths=paths,
                    location=obj.location_of(paths[0]),
                    details={"reason": failure.reason, "detail": failure.detail, "check": failure.check_id},
                )
            )
    return results
