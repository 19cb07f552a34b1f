"""Namespace controls: a failing and a passing manifest per control, with the failing line."""

from __future__ import annotations

import pytest
from tests.posture.k8s.controls._cluster_helpers import assert_case, failures, run

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n{ns}data: {{a: b}}\n"


def test_default_namespace() -> None:
    assert_case("GK-S-001", CM.format(ns="  namespace: default\n"), 5, CM.format(ns="  namespace: shop\n"))
    # no namespace: applied to default; the default ServiceAccount and kubernetes Service are exempt
    assert failures("GK-S-001", CM.format(ns=""))
    sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: default\n"
    assert run("GK-S-001", sa) and not failures("GK-S-001", sa)


def test_system_namespace() -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: {ns}\nspec:\n  containers: [{{name: c, image: i}}]\n"
    assert_case("GK-S-002", pod.format(ns="kube-system"), 5, pod.format(ns="shop"))


def namespace(labels: str = "") -> str:
    body = f"  labels:\n{labels}" if labels else ""
    return f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n{body}"


QUOTAS = (
    "---\napiVersion: v1\nkind: LimitRange\nmetadata: {name: l, namespace: shop}\nspec: {limits: []}\n"
    "---\napiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: shop}\nspec: {hard: {pods: '10'}}\n"
)


@pytest.mark.parametrize("cid", ["GK-S-003", "GK-S-004"])
def test_namespace_guard_rails(cid: str) -> None:
    assert_case(cid, namespace(), 4, namespace() + QUOTAS)


RESTRICTED = (
    "    pod-security.kubernetes.io/enforce: restricted\n"
    "    pod-security.kubernetes.io/warn: restricted\n"
    "    pod-security.kubernetes.io/audit: restricted\n"
)


@pytest.mark.parametrize(
    ("cid", "labels", "line"),
    [
        ("GK-S-005", "    team: a\n", 3),
        ("GK-S-006", "    pod-security.kubernetes.io/enforce: privileged\n", 6),
        ("GK-S-006", "    pod-security.kubernetes.io/enforce: strict\n", 6),
        ("GK-S-007", "    pod-security.kubernetes.io/enforce: baseline\n", 6),
        (
            "GK-S-008",
            "    pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/warn: baseline\n",
            7,
        ),
    ],
)
def test_pod_security_labels(cid: str, labels: str, line: int) -> None:
    assert_case(cid, namespace(labels), line, namespace(RESTRICTED))


def test_warn_and_audit_not_needed_when_enforcing_restricted() -> None:
    only_enforce = namespace("    pod-security.kubernetes.io/enforce: restricted\n")
    assert run("GK-S-008", only_enforce) and not failures("GK-S-008", only_enforce)
