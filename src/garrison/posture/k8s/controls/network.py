"""Network exposure controls (``GK-N-…``): Services, Ingresses, ingress-nginx annotations and
NetworkPolicy coverage.

NetworkPolicy coverage controls are cross-object: a workload is covered when a NetworkPolicy
*among the manifests scanned together* selects its pods, and a Namespace has a default deny when
one of those policies is one. Results therefore depend on the set of manifests given: scan an
application's policies together with its workloads. Objects without ``metadata.namespace`` are
taken to be in ``default`` (where ``kubectl apply`` puts them without a context namespace).
Label selectors are evaluated as the API server does (``matchLabels`` and ``matchExpressions``
with ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``; an empty selector selects everything).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from garrison.posture.k8s.controls import Context, Failure, k8s_control
from garrison.posture.k8s.objects import TEMPLATE_PATHS, K8sObject, join_path, pod_templates

FAMILY = "network"
WORKLOAD_KINDS = ("Pod", *TEMPLATE_PATHS)
_LUA = re.compile(r"\blua_|_lua\b|_lua_|\bkubernetes\.io\b")
_ALIAS = re.compile(r"\balias\b")


def namespace_of(obj: K8sObject) -> str:
    return obj.namespace or "default"


def _spec(obj: K8sObject) -> dict[str, Any]:
    spec = obj.doc.get("spec")
    return spec if isinstance(spec, dict) else {}


def selector_matches(selector: Any, labels: dict[str, Any]) -> bool:
    """Whether a LabelSelector selects an object with ``labels`` (``None`` selects nothing)."""
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, dict) and any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    expressions = selector.get("matchExpressions")
    for expr in expressions if isinstance(expressions, list) else []:
        if not isinstance(expr, dict):
            return False
        key, op = str(expr.get("key")), expr.get("operator")
        raw = expr.get("values")
        values: list[Any] = raw if isinstance(raw, list) else []
        present = key in labels
        if op == "In":
            ok = present and labels[key] in values
        elif op == "NotIn":
            ok = not present or labels[key] not in values
        elif op == "Exists":
            ok = present
        elif op == "DoesNotExist":
            ok = not present
        else:
            return False
        if not ok:
            return False
    return True


def _annotations(obj: K8sObject) -> dict[str, Any]:
    value = obj.metadata.get("annotations")
    return value if isinstance(value, dict) else {}


def _open_cidr(cidr: Any) -> bool:
    try:
        return isinstance(cidr, str) and ipaddress.ip_network(cidr, strict=False).prefixlen == 0
    except ValueError:
        return False


# -- Services ----------------------------------------------------------------------------------


@k8s_control("GK-N-001", family=FAMILY, kinds=("Service",))
def node_port(obj: K8sObject, ctx: Context) -> list[Failure]:
    if _spec(obj).get("type") == "NodePort":
        return [Failure("Service of type NodePort opens a port on every node", ("spec.type",))]
    return []


@k8s_control("GK-N-002", family=FAMILY, kinds=("Service",))
def open_load_balancer(obj: K8sObject, ctx: Context) -> list[Failure]:
    spec = _spec(obj)
    if spec.get("type") != "LoadBalancer":
        return []
    ranges = spec.get("loadBalancerSourceRanges")
    if not isinstance(ranges, list) or not ranges:
        return [
            Failure("LoadBalancer Service without loadBalancerSourceRanges is reachable from anywhere", ("spec.type",))
        ]
    return [
        Failure(f"loadBalancerSourceRanges allows {cidr}", (f"spec.loadBalancerSourceRanges[{i}]",))
        for i, cidr in enumerate(ranges)
        if _open_cidr(cidr)
    ]


@k8s_control("GK-N-003", family=FAMILY, kinds=("Service",))
def external_ips(obj: K8sObject, ctx: Context) -> list[Failure]:
    ips = _spec(obj).get("externalIPs")
    if isinstance(ips, list) and ips:
        return [
            Failure(
                "Service sets externalIPs, which can intercept cluster traffic (CVE-2020-8554)", ("spec.externalIPs",)
            )
        ]
    return []


@k8s_control("GK-N-004", family=FAMILY, kinds=("Service",))
def external_name(obj: K8sObject, ctx: Context) -> list[Failure]:
    if _spec(obj).get("type") == "ExternalName":
        return [
            Failure(
                "ExternalName Service can point ingress controllers at arbitrary hosts (CVE-2021-25740)", ("spec.type",)
            )
        ]
    return []


# -- Ingresses ---------------------------------------------------------------------------------


def _rules(obj: K8sObject) -> list[tuple[int, dict[str, Any]]]:
    rules = _spec(obj).get("rules")
    return [(i, r) for i, r in enumerate(rules) if isinstance(r, dict)] if isinstance(rules, list) else []


@k8s_control("GK-N-010", family=FAMILY, kinds=("Ingress",))
def ingress_tls(obj: K8sObject, ctx: Context) -> list[Failure]:
    tls = _spec(obj).get("tls")
    entries = [t for t in tls if isinstance(t, dict)] if isinstance(tls, list) else []
    if not entries:
        return [Failure("Ingress serves plain HTTP: no spec.tls", ("spec",))]
    covered = {h for t in entries for h in (t.get("hosts") or []) if isinstance(h, str)}
    failures = []
    for i, rule in _rules(obj):
        host = rule.get("host")
        if isinstance(host, str) and host and covered and host not in covered:
            failures.append(Failure(f"host {host} is not covered by spec.tls", (f"spec.rules[{i}].host",)))
    return failures


@k8s_control("GK-N-011", family=FAMILY, kinds=("Ingress",))
def ingress_wildcard_host(obj: K8sObject, ctx: Context) -> list[Failure]:
    return [
        Failure(f"wildcard host {rule['host']}", (f"spec.rules[{i}].host",))
        for i, rule in _rules(obj)
        if isinstance(rule.get("host"), str) and rule["host"].startswith("*")
    ]


def _snippets(obj: K8sObject, pattern: re.Pattern[str] | None, what: str) -> list[Failure]:
    failures = []
    for key, value in _annotations(obj).items():
        if "snippet" not in str(key):
            continue
        if pattern is not None and not (isinstance(value, str) and pattern.search(value)):
            continue
        path = join_path("metadata.annotations", key)
        failures.append(Failure(f"annotation {key} {what} (CVE-2021-25742)", (path,)))
    return failures


@k8s_control("GK-N-012", family=FAMILY, kinds=("Ingress",))
def nginx_snippet(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _snippets(obj, None, "injects raw configuration into ingress-nginx")


@k8s_control("GK-N-013", family=FAMILY, kinds=("Ingress",))
def nginx_snippet_lua(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _snippets(obj, _LUA, "contains Lua or kubernetes.io references")


@k8s_control("GK-N-014", family=FAMILY, kinds=("Ingress",))
def nginx_snippet_alias(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _snippets(obj, _ALIAS, "contains an alias directive (file read on the controller)")


# -- NetworkPolicies ---------------------------------------------------------------------------


def policies_in(ctx: Context, namespace: str) -> list[K8sObject]:
    return [p for p in ctx.of_kind("NetworkPolicy") if namespace_of(p) == namespace]


def _policy_types(policy: K8sObject) -> set[str]:
    spec = _spec(policy)
    types = spec.get("policyTypes")
    if isinstance(types, list) and types:
        return {t for t in types if isinstance(t, str)}
    # the API server's default: Ingress always, Egress when egress rules are given
    return {"Ingress", "Egress"} if "egress" in spec else {"Ingress"}


@k8s_control("GK-N-020", family=FAMILY, kinds=WORKLOAD_KINDS)
def workload_without_policy(obj: K8sObject, ctx: Context) -> list[Failure] | None:
    templates = list(pod_templates(obj))
    if not templates:
        return None
    policies = policies_in(ctx, namespace_of(obj))
    failures = []
    for _prefix, meta, _pod_spec in templates:
        found = meta.get("labels")
        labels: dict[str, Any] = found if isinstance(found, dict) else {}
        if not any(selector_matches(_spec(p).get("podSelector", {}), labels) for p in policies):
            failures.append(
                Failure(f"no NetworkPolicy in namespace {namespace_of(obj)} selects these pods", ("metadata.name",))
            )
    return failures


def _is_default_deny(policy: K8sObject, direction: str) -> bool:
    """A policy selecting every pod of its namespace that applies to ``direction`` with no rules."""
    spec = _spec(policy)
    selector = spec.get("podSelector")
    if selector is not None and not (
        isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions")
    ):
        return False
    key = "ingress" if direction == "Ingress" else "egress"
    return direction in _policy_types(policy) and not spec.get(key)


def _namespace_default_deny(obj: K8sObject, ctx: Context, direction: str) -> list[Failure]:
    if any(_is_default_deny(p, direction) for p in policies_in(ctx, obj.name)):
        return []
    return [Failure(f"no default-deny {direction.lower()} NetworkPolicy in namespace {obj.name}", ("metadata.name",))]


@k8s_control("GK-N-021", family=FAMILY, kinds=("Namespace",))
def namespace_default_deny_ingress(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _namespace_default_deny(obj, ctx, "Ingress")


@k8s_control("GK-N-022", family=FAMILY, kinds=("Namespace",))
def namespace_default_deny_egress(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _namespace_default_deny(obj, ctx, "Egress")


def _peer_is_everything(peer: Any) -> bool:
    if not isinstance(peer, dict):
        return False
    if not peer:
        return True
    block = peer.get("ipBlock")
    if isinstance(block, dict):
        return _open_cidr(block.get("cidr")) and not block.get("except")
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    return namespaces == {} and pods in (None, {})


def _allows_all(obj: K8sObject, key: str, peers_key: str, direction: str) -> list[Failure]:
    rules = _spec(obj).get(key)
    if direction not in _policy_types(obj) or not isinstance(rules, list):
        return []
    failures = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        peers = rule.get(peers_key)
        if not peers:
            failures.append(Failure(f"{key} rule {i} has no '{peers_key}': any peer is allowed", (f"spec.{key}[{i}]",)))
            continue
        if not isinstance(peers, list):
            continue
        for j, peer in enumerate(peers):
            if _peer_is_everything(peer):
                failures.append(Failure(f"{key} rule {i} allows every peer", (f"spec.{key}[{i}].{peers_key}[{j}]",)))
                break
    return failures


@k8s_control("GK-N-023", family=FAMILY, kinds=("NetworkPolicy",))
def policy_allows_all_ingress(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _allows_all(obj, "ingress", "from", "Ingress")


@k8s_control("GK-N-024", family=FAMILY, kinds=("NetworkPolicy",))
def policy_allows_all_egress(obj: K8sObject, ctx: Context) -> list[Failure]:
    return _allows_all(obj, "egress", "to", "Egress")


@k8s_control("GK-N-025", family=FAMILY, kinds=("Namespace",))
def namespace_without_policy(obj: K8sObject, ctx: Context) -> list[Failure]:
    if policies_in(ctx, obj.name):
        return []
    return [Failure(f"namespace {obj.name} has no NetworkPolicy", ("metadata.name",))]
