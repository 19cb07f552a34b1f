"""RBAC controls: a failing and a passing manifest per control, with the failing line."""

from __future__ import annotations

import pytest
from tests.posture.k8s.controls._cluster_helpers import assert_case, failures, run


def role(rule: str, kind: str = "ClusterRole") -> str:
    return f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: {kind}
metadata:
  name: r
  namespace: app
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
{rule}"""


SAFE = role("")

ROLE_CASES = [
    ("GK-R-001", '- apiGroups: [""]\n  resources: ["pods"]\n  verbs: ["get", "*"]\n', 12),
    ("GK-R-002", '- apiGroups: [""]\n  resources: ["*"]\n  verbs: ["get"]\n', 11),
    ("GK-R-003", '- apiGroups: ["*"]\n  resources: ["pods"]\n  verbs: ["get"]\n', 10),
    (
        "GK-R-004",
        '- apiGroups: ["rbac.authorization.k8s.io"]\n  resources: ["clusterroles"]\n  verbs: ["escalate"]\n',
        10,
    ),
    ("GK-R-005", '- apiGroups: ["rbac.authorization.k8s.io"]\n  resources: ["roles"]\n  verbs: ["bind"]\n', 10),
    ("GK-R-006", '- apiGroups: [""]\n  resources: ["users", "groups"]\n  verbs: ["impersonate"]\n', 10),
    ("GK-R-007", '- apiGroups: [""]\n  resources: ["secrets"]\n  verbs: ["list"]\n', 10),
    ("GK-R-008", '- apiGroups: [""]\n  resources: ["pods"]\n  verbs: ["create"]\n', 10),
    ("GK-R-009", '- apiGroups: [""]\n  resources: ["pods/exec"]\n  verbs: ["create"]\n', 10),
    ("GK-R-010", '- apiGroups: [""]\n  resources: ["pods/attach"]\n  verbs: ["get"]\n', 10),
    ("GK-R-011", '- apiGroups: [""]\n  resources: ["pods/portforward"]\n  verbs: ["create"]\n', 10),
    ("GK-R-012", '- apiGroups: [""]\n  resources: ["nodes/proxy"]\n  verbs: ["get"]\n', 10),
    ("GK-R-014", '- apiGroups: [""]\n  resources: ["serviceaccounts/token"]\n  verbs: ["create"]\n', 10),
    (
        "GK-R-015",
        '- apiGroups: ["admissionregistration.k8s.io"]\n  resources: ["validatingwebhookconfigurations"]\n  verbs: ["patch"]\n',
        10,
    ),
    ("GK-R-016", '- apiGroups: [""]\n  resources: ["persistentvolumes"]\n  verbs: ["create"]\n', 10),
    ("GK-R-018", '- apiGroups: [""]\n  resources: ["*/status"]\n  verbs: ["update"]\n', 10),
    (
        "GK-R-019",
        '- apiGroups: ["rbac.authorization.k8s.io"]\n  resources: ["rolebindings"]\n  verbs: ["create"]\n',
        10,
    ),
    ("GK-R-020", '- apiGroups: ["apps"]\n  resources: ["deployments"]\n  verbs: ["create"]\n', 10),
    ("GK-R-021", '- apiGroups: [""]\n  resources: ["nodes"]\n  verbs: ["patch"]\n', 10),
]


@pytest.mark.parametrize(("cid", "rule", "line"), ROLE_CASES, ids=[c[0] for c in ROLE_CASES])
def test_role_controls(cid: str, rule: str, line: int) -> None:
    assert_case(cid, role(rule), line, SAFE)


def test_subresource_is_not_granted_by_its_resource() -> None:
    # "pods" does not reach pods/exec; resourceNames limit a rule to named objects
    assert not failures("GK-R-009", role('- apiGroups: [""]\n  resources: ["pods"]\n  verbs: ["*"]\n'))
    named = '- apiGroups: [""]\n  resources: ["secrets"]\n  resourceNames: ["tls"]\n  verbs: ["get"]\n'
    assert not failures("GK-R-007", role(named))


def test_csr_approval_needs_both_permissions() -> None:
    both = (
        '- apiGroups: ["certificates.k8s.io"]\n  resources: ["certificatesigningrequests/approval"]\n  verbs: ["update"]\n'
        '- apiGroups: ["certificates.k8s.io"]\n  resources: ["signers"]\n  verbs: ["approve"]\n'
    )
    one = '- apiGroups: ["certificates.k8s.io"]\n  resources: ["signers"]\n  verbs: ["approve"]\n'
    assert_case("GK-R-013", role(both), 10, role(one))


def test_aggregated_cluster_role() -> None:
    failing = """\
    apiVersion: rbac.authorization.k8s.io/v1
    kind: ClusterRole
    metadata:
      name: monitoring
    aggregationRule:
      clusterRoleSelectors:
      - matchLabels: {rbac.example.com/aggregate-to-monitoring: "true"}
    rules: []
    """
    assert_case("GK-R-017", failing, 5, SAFE)


def binding(subjects: str, ref: str = "view", kind: str = "ClusterRoleBinding") -> str:
    return f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: {kind}
metadata:
  name: b
  namespace: app
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {ref}
subjects:
{subjects}"""


SA = "- kind: ServiceAccount\n  name: app\n  namespace: kube-system\n"


@pytest.mark.parametrize(
    ("cid", "failing", "line"),
    [
        ("GK-R-030", binding(SA, ref="cluster-admin"), 9),
        ("GK-R-031", binding("- kind: Group\n  name: system:unauthenticated\n"), 12),
        ("GK-R-032", binding("- kind: Group\n  name: system:authenticated\n"), 12),
        ("GK-R-033", binding("- kind: ServiceAccount\n  name: default\n  namespace: app\n", kind="RoleBinding"), 12),
        ("GK-R-034", binding("- kind: ServiceAccount\n  name: web\n  namespace: shop\n"), 11),
    ],
)
def test_binding_controls(cid: str, failing: str, line: int) -> None:
    assert_case(cid, failing, line, binding(SA))


SECRETS_ROLE = role('- apiGroups: [""]\n  resources: ["secrets"]\n  verbs: ["get"]\n').replace(
    "name: r", "name: reader"
)


@pytest.mark.parametrize(
    ("cid", "rule"),
    [
        ("GK-R-040", '- apiGroups: [""]\n  resources: ["secrets"]\n  verbs: ["watch"]\n'),
        ("GK-R-041", '- apiGroups: [""]\n  resources: ["nodes/proxy"]\n  verbs: ["*"]\n'),
        ("GK-R-042", '- apiGroups: [""]\n  resources: ["serviceaccounts"]\n  verbs: ["impersonate"]\n'),
        ("GK-R-043", '- apiGroups: [""]\n  resources: ["services/status"]\n  verbs: ["patch"]\n'),
        ("GK-R-044", '- apiGroups: ["rbac.authorization.k8s.io"]\n  resources: ["*"]\n  verbs: ["bind"]\n'),
    ],
)
def test_binding_grant_controls(cid: str, rule: str) -> None:
    granting = role(rule).replace("name: r", "name: granting")
    failing = binding(SA, ref="granting") + "---\n" + granting
    passing = binding(SA, ref="safe") + "---\n" + SAFE.replace("name: r", "name: safe")
    assert_case(cid, failing, 6, passing)


def test_binding_grant_controls_need_the_role_in_the_run() -> None:
    # the referenced role is not among the manifests: nothing to judge
    assert run("GK-R-040", binding(SA, ref="reader")) == []
    assert failures("GK-R-040", binding(SA, ref="reader") + "---\n" + SECRETS_ROLE)


def test_role_reference_is_resolved_in_the_binding_namespace() -> None:
    other_ns = role('- apiGroups: [""]\n  resources: ["secrets"]\n  verbs: ["get"]\n', kind="Role").replace(
        "namespace: app", "namespace: other"
    )
    rb = binding(SA, ref="r", kind="RoleBinding").replace("kind: ClusterRole\n  name: r", "kind: Role\n  name: r")
    assert run("GK-R-040", rb + "---\n" + other_ns) == []
    same_ns = other_ns.replace("namespace: other", "namespace: app")
    assert failures("GK-R-040", rb + "---\n" + same_ns)
