"""Network controls: a failing and a passing manifest per control, with the failing line."""

from __future__ import annotations

import pytest
from tests.posture.k8s.controls._cluster_helpers import assert_case, failures, run


def service(spec: str) -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {{app: web}}
  ports: [{{port: 80}}]
{spec}"""


CLUSTER_IP = service("  type: ClusterIP\n")


@pytest.mark.parametrize(
    ("cid", "spec", "line"),
    [
        ("GK-N-001", "  type: NodePort\n", 9),
        ("GK-N-002", "  type: LoadBalancer\n", 9),
        ("GK-N-002", "  type: LoadBalancer\n  loadBalancerSourceRanges:\n  - 10.0.0.0/8\n  - 0.0.0.0/0\n", 12),
        ("GK-N-003", "  externalIPs: [203.0.113.7]\n", 9),
        ("GK-N-004", "  type: ExternalName\n  externalName: db.example.com\n", 9),
    ],
)
def test_service_controls(cid: str, spec: str, line: int) -> None:
    assert_case(cid, service(spec), line, CLUSTER_IP)


def test_load_balancer_with_source_ranges_passes() -> None:
    lb = service("  type: LoadBalancer\n  loadBalancerSourceRanges: [10.0.0.0/8]\n")
    assert run("GK-N-002", lb) and not failures("GK-N-002", lb)


def ingress(annotations: str = "", tls: str = "", host: str = "shop.example.com") -> str:
    return f"""\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
    kubernetes.io/ingress.class: nginx
{annotations}spec:
{tls}  rules:
  - host: "{host}"
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {{service: {{name: web, port: {{number: 80}}}}}}
"""


TLS = "  tls:\n  - hosts: [shop.example.com, '*.example.com']\n    secretName: web-tls\n"
SAFE_INGRESS = ingress(tls=TLS)


def test_ingress_without_tls() -> None:
    assert_case("GK-N-010", ingress(), 8, SAFE_INGRESS)


def test_ingress_host_not_covered_by_tls() -> None:
    bad = failures("GK-N-010", ingress(tls=TLS, host="admin.example.org"))
    assert [r.location.line for r in bad] == [13]


def test_ingress_wildcard_host() -> None:
    assert_case("GK-N-011", ingress(tls=TLS, host="*.example.com"), 13, SAFE_INGRESS)


SNIPPET = "    nginx.ingress.kubernetes.io/configuration-snippet: |\n      {body}\n"


@pytest.mark.parametrize(
    ("cid", "body"),
    [
        ("GK-N-012", "more_set_headers 'X-Frame-Options: DENY';"),
        ("GK-N-013", "content_by_lua_block { ngx.say('x') }"),
        ("GK-N-014", "location /t { alias /var/run/secrets/; }"),
    ],
)
def test_nginx_snippets(cid: str, body: str) -> None:
    assert_case(cid, ingress(SNIPPET.format(body=body), TLS), 8, SAFE_INGRESS)


def test_plain_snippet_is_not_lua_or_alias() -> None:
    plain = ingress(SNIPPET.format(body="more_set_headers 'X: y';"), TLS)
    assert not failures("GK-N-013", plain)
    assert not failures("GK-N-014", plain)


DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata:
      labels: {app: api, tier: backend}
    spec:
      containers: [{name: api, image: api:1}]
"""


def policy(spec: str, namespace: str = "shop") -> str:
    return f"""\
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: p
  namespace: {namespace}
spec:
{spec}"""


def test_workload_without_policy() -> None:
    selects = policy("  podSelector:\n    matchExpressions:\n    - {key: tier, operator: In, values: [backend]}\n")
    assert_case("GK-N-020", DEPLOY + policy("  podSelector: {matchLabels: {app: web}}\n"), 4, DEPLOY + selects)
    # a policy in another namespace does not cover the workload
    assert failures("GK-N-020", DEPLOY + policy("  podSelector: {}\n", namespace="other"))


NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
DENY_ALL = policy("  podSelector: {}\n  policyTypes: [Ingress, Egress]\n")


@pytest.mark.parametrize("cid", ["GK-N-021", "GK-N-022"])
def test_namespace_default_deny(cid: str) -> None:
    partial = policy("  podSelector: {matchLabels: {app: api}}\n  policyTypes: [Ingress, Egress]\n")
    assert_case(cid, NAMESPACE + partial, 4, NAMESPACE + DENY_ALL)


def test_ingress_only_default_deny_does_not_deny_egress() -> None:
    ingress_only = NAMESPACE + policy("  podSelector: {}\n")
    assert not failures("GK-N-021", ingress_only)
    assert failures("GK-N-022", ingress_only)


def test_namespace_without_any_policy() -> None:
    assert_case("GK-N-025", NAMESPACE, 4, NAMESPACE + DENY_ALL)


@pytest.mark.parametrize(
    ("cid", "rules", "line"),
    [
        ("GK-N-023", "  ingress:\n  - from:\n    - ipBlock: {cidr: 0.0.0.0/0}\n", 11),
        ("GK-N-023", "  ingress:\n  - {}\n", 10),
        ("GK-N-024", "  policyTypes: [Egress]\n  egress:\n  - to:\n    - namespaceSelector: {}\n", 12),
    ],
)
def test_policy_allows_everything(cid: str, rules: str, line: int) -> None:
    narrow = policy(
        "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"
        "  ingress:\n  - from: [{podSelector: {matchLabels: {app: web}}}]\n"
        "  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n"
    )
    assert_case(cid, policy("  podSelector: {}\n" + rules), line, narrow)
