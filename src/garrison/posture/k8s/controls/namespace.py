"""Namespace controls (``GK-S-0xx``): where objects are placed, and the guard rails a namespace
carries (Pod Security admission labels, LimitRange, ResourceQuota).

Controls about a namespace's guard rails run on the Namespace objects *among the manifests
scanned together* and look for LimitRanges and ResourceQuotas in the same run, so results depend
on the set of manifests given. Objects without ``metadata.namespace`` are placed in ``default``
(where ``kubectl apply`` puts them without a context namespace).
"""

from __future__ import annotations

from typing import Any

from garrison.posture.k8s.controls import Context, Failure, k8s_control
from garrison.posture.k8s.objects import TEMPLATE_PATHS, K8sObject, join_path

FAMILY = "namespace"
WORKLOAD_KINDS = ("Pod", *TEMPLATE_PATHS)
#: the kinds checkov's CKV_K8S_21 looks at: namespaced objects an application ships
DEFAULT_NS_KINDS = (
    *WORKLOAD_KINDS,
    "Service",
    "Secret",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Ingress",
)
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
PSA_PREFIX = "pod-security.kubernetes.io/"
PSA_LEVELS = ("privileged", "baseline", "restricted")


def _labels(obj: K8sObject) -> dict[str, Any]:
    value = obj.metadata.get("labels")
    return value if isinstance(value, dict) else {}


def _in_namespace(ctx: Context, kind: str, namespace: str) -> bool:
    return any((o.namespace or "default") == namespace for o in ctx.of_kind(kind))


@k8s_control("GK-S-001", family=FAMILY, kinds=DEFAULT_NS_KINDS)
def default_namespace(obj: K8sObject, ctx: Context) -> list[Failure]:
    if obj.namespace not in ("", "default"):
        return []
    # the objects Kubernetes itself keeps in default
    if (obj.kind, obj.name) in (("ServiceAccount", "default"), ("Service", "kubernetes")):
        return []
    where = "metadata.namespace" if obj.namespace else "metadata"
    return [Failure(f"{obj.kind} is in the default namespace", (where,))]


@k8s_control("GK-S-002", family=FAMILY, kinds=WORKLOAD_KINDS)
def system_namespace(obj: K8sObject, ctx: Context) -> list[Failure]:
    if obj.namespace in SYSTEM_NAMESPACES:
        return [Failure(f"workload runs in system namespace {obj.namespace}", ("metadata.namespace",))]
    return []


@k8s_control("GK-S-003", family=FAMILY, kinds=("Namespace",))
def no_limit_range(obj: K8sObject, ctx: Context) -> list[Failure]:
    if _in_namespace(ctx, "LimitRange", obj.name):
        return []
    return [Failure(f"namespace {obj.name} has no LimitRange", ("metadata.name",))]


@k8s_control("GK-S-004", family=FAMILY, kinds=("Namespace",))
def no_resource_quota(obj: K8sObject, ctx: Context) -> list[Failure]:
    if _in_namespace(ctx, "ResourceQuota", obj.name):
        return []
    return [Failure(f"namespace {obj.name} has no ResourceQuota", ("metadata.name",))]


def _psa(obj: K8sObject, mode: str) -> tuple[str, str | None]:
    key = f"{PSA_PREFIX}{mode}"
    value = _labels(obj).get(key)
    return join_path("metadata.labels", key), value if isinstance(value, str) else None


@k8s_control("GK-S-005", family=FAMILY, kinds=("Namespace",))
def psa_enforce_missing(obj: K8sObject, ctx: Context) -> list[Failure]:
    _path, level = _psa(obj, "enforce")
    if level is None:
        return [Failure("no pod-security.kubernetes.io/enforce label", ("metadata",))]
    return []


@k8s_control("GK-S-006", family=FAMILY, kinds=("Namespace",))
def psa_enforce_privileged(obj: K8sObject, ctx: Context) -> list[Failure]:
    path, level = _psa(obj, "enforce")
    if level == "privileged":
        return [Failure("Pod Security admission enforces the privileged level (no restrictions)", (path,))]
    if level is not None and level not in PSA_LEVELS:
        return [Failure(f"unknown Pod Security level {level!r}", (path,))]
    return []


@k8s_control("GK-S-007", family=FAMILY, kinds=("Namespace",))
def psa_enforce_not_restricted(obj: K8sObject, ctx: Context) -> list[Failure]:
    path, level = _psa(obj, "enforce")
    if level == "baseline":
        return [Failure("Pod Security admission enforces baseline, not restricted", (path,))]
    return []


@k8s_control("GK-S-008", family=FAMILY, kinds=("Namespace",))
def psa_warn_audit_weaker(obj: K8sObject, ctx: Context) -> list[Failure]:
    _path, enforce = _psa(obj, "enforce")
    strength = {level: i for i, level in enumerate(PSA_LEVELS)}
    floor = strength.get(enforce or "privileged", 0)
    failures = []
    for mode in ("warn", "audit"):
        path, level = _psa(obj, mode)
        if level is None:
            if floor < strength["restricted"]:
                failures.append(Failure(f"no pod-security.kubernetes.io/{mode} label", ("metadata",)))
        elif strength.get(level, 0) < floor:
            failures.append(Failure(f"{mode} level {level} is weaker than enforce level {enforce}", (path,)))
    return failures
