"""Configuration object controls: a failing and a passing manifest per control, and fuzzing of
every control in this change over mutated manifests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.posture.k8s.controls._cluster_helpers import assert_case, failures

from garrison.core.errors import GarrisonError
from garrison.posture.k8s.controls import registry, run_controls
from garrison.posture.k8s.loader import load_text


def configmap(data: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: shop\ndata:\n{data}"


def test_configmap_credentials() -> None:
    aws = configmap("  LOG_LEVEL: info\n  AWS_ACCESS_KEY_ID: AKIAIOSFODNN7EXAMPLQ\n")
    assert_case("GK-S-020", aws, 8, configmap("  LOG_LEVEL: info\n  TOKEN_TTL: 3600s\n"))
    named = failures("GK-S-020", configmap("  db_password: s3cr3t-v4lue\n"))
    assert [r.location.line for r in named] == [7]


def secret(kind: str, payload: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: shop\ntype: {kind}\n{payload}"


def test_committed_secrets() -> None:
    assert_case("GK-S-021", secret("Opaque", "data:\n  k: dmFsdWU=\n"), 7, secret("Opaque", ""))
    assert_case(
        "GK-S-022",
        secret("kubernetes.io/basic-auth", "stringData:\n  password: pw\n"),
        7,
        secret("kubernetes.io/basic-auth", ""),
    )
    assert_case("GK-S-023", secret("kubernetes.io/service-account-token", ""), 6, secret("Opaque", ""))


def sa(name: str, automount: str = "") -> str:
    return f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: shop\n{automount}"


@pytest.mark.parametrize(("cid", "name"), [("GK-S-024", "web"), ("GK-S-025", "default")])
def test_service_account_automount(cid: str, name: str) -> None:
    assert_case(
        cid, sa(name, "automountServiceAccountToken: true\n"), 6, sa(name, "automountServiceAccountToken: false\n")
    )


DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api:1}]}
"""
PDB = "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: api, namespace: shop}\nspec:\n  selector: {matchLabels: {app: api}}\n  %s\n"


def test_missing_pdb() -> None:
    assert_case("GK-S-026", DEPLOY, 5, DEPLOY + PDB % "maxUnavailable: 1")


def test_pdb_blocking_evictions() -> None:
    assert_case("GK-S-027", PDB % "maxUnavailable: 0", 7, PDB % "maxUnavailable: 1")


def webhook(hook: str) -> str:
    return f"""\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: policy}}
webhooks:
- name: policy.example.com
{hook}"""


def test_webhook_fail_open() -> None:
    svc = "  clientConfig: {service: {name: p, namespace: p}}\n"
    assert_case("GK-S-028", webhook(svc + "  failurePolicy: Ignore\n"), 7, webhook(svc + "  failurePolicy: Fail\n"))


def test_webhook_url_without_ca() -> None:
    url = "  clientConfig:\n    url: https://hooks.example.com/v\n"
    assert_case("GK-S-029", webhook(url), 7, webhook(url + "    caBundle: LS0t\n"))


CORPUS = "\n---\n".join(
    [
        DEPLOY,
        PDB % "maxUnavailable: 0",
        webhook("  failurePolicy: Ignore\n  clientConfig: {url: 'https://x'}\n"),
        configmap("  password: hunter2hunter2\n"),
        secret("Opaque", "data:\n  k: dmFsdWU=\n"),
        sa("default"),
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\n"
        "roleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: ServiceAccount, name: default, namespace: a}]\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n"
        "rules: [{apiGroups: ['*'], resources: [secrets, '*/status'], verbs: [get, '*']}]\n",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\n"
        "spec: {podSelector: {matchExpressions: [{key: a, operator: In, values: [b]}]}, ingress: [{from: [{}]}]}\n",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels: {pod-security.kubernetes.io/enforce: baseline}\n",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {type: LoadBalancer, loadBalancerSourceRanges: [0.0.0.0/0]}\n",
    ]
)
OURS = {cid for cid in registry() if cid.startswith(("GK-R-", "GK-N-", "GK-S-"))}


def test_corpus_fails_many_controls() -> None:
    failed = {r.control.id for r in run_controls(load_text(CORPUS, "c.yaml").objects, only=OURS) if r.verdict == "fail"}
    assert len(failed) >= 15, failed


@given(st.data())
def test_controls_survive_mutated_manifests(data: st.DataObject) -> None:
    text = CORPUS
    cut = data.draw(st.integers(0, len(text)))
    text = text[:cut]
    for _ in range(data.draw(st.integers(0, 4))):
        pos = data.draw(st.integers(0, len(text)))
        junk = data.draw(st.sampled_from(["", "{", "[", ": ", "- ", "\n  ", "*", "null", "0", "~", "{}", "[]", "'x'"]))
        text = text[:pos] + junk + text[pos + data.draw(st.integers(0, 3)) :]
    try:
        objects = load_text(text, "fuzz.yaml").objects
    except GarrisonError:
        return
    for result in run_controls(objects, only=OURS):
        assert result.verdict in ("pass", "fail")
        assert result.location.line >= 0
