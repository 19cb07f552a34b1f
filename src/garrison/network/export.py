"""Render the policy IR as Kubernetes NetworkPolicy or Calico ``projectcalico.org/v3`` YAML.

* ``calico``: every policy is expressible. Tiers (except ``default``) become ``Tier`` objects, namespaced
  policies ``NetworkPolicy``, cluster-wide ones ``GlobalNetworkPolicy``, staged ones their
  ``Staged*`` kinds; converted Kubernetes / admin policies keep their converted selectors (with
  ``projectcalico.org/orchestrator == 'k8s'``) so the re-loaded set selects the same endpoints.
  Names drop the ``<tier>.`` prefix (Calico adds it back).
* ``k8s``: a policy is expressible as ``networking.k8s.io/v1`` NetworkPolicy when it is namespaced,
  enforced, in the default tier, has only Allow rules, and its selectors are conjunctions of
  ``==``, ``in``, ``not in``, ``has``, ``!has`` (plus the namespace / orchestrator terms Calico
  adds); rules may use one protocol, destination ports, nets with notNets (``ipBlock`` /
  ``except``). The default tier must then contain only Allow rules, since Kubernetes policies are
  an unordered union. Anything else is skipped with a warning naming the policy and the reason.

Each IR rule becomes its own Kubernetes rule (one peer, one port), which keeps the union semantics.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from garrison.model.network import Action
from garrison.network import ir
from garrison.network.ir import EntityMatch, Policy, PolicySet, PortRange, Rule
from garrison.network.selector import AllNode, AndNode, GlobalNode, HasNode, InSetNode, LabelOpNode, Node, NotNode, Op
from garrison.network.selector import parse as parse_selector

_K8S_ORCH = f"{ir.ORCH_LABEL} == \"k8s\""


class NotExpressible(Exception):
    """The policy has no equivalent in the target format."""


# ---------------------------------------------------------------------------------------- Calico


def _ports(ports: tuple[PortRange, ...]) -> list[Any]:
    return [p.name if p.name else (p.first if p.first == p.last else f"{p.first}:{p.last}") for p in ports]


def _entity(ent: EntityMatch) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ent.selector:
        out["selector"] = ent.selector
    if ent.not_selector:
        out["notSelector"] = ent.not_selector
    if ent.namespace_selector is not None:
        out["namespaceSelector"] = ent.namespace_selector
    if ent.service_account_names or ent.service_account_selector:
        sa: dict[str, Any] = {}
        if ent.service_account_names:
            sa["names"] = list(ent.service_account_names)
        if ent.service_account_selector:
            sa["selector"] = ent.service_account_selector
        out["serviceAccounts"] = sa
    if ent.nets:
        out["nets"] = [str(n) for n in ent.nets]
    if ent.not_nets:
        out["notNets"] = [str(n) for n in ent.not_nets]
    if ent.ports:
        out["ports"] = _ports(ent.ports)
    if ent.not_ports:
        out["notPorts"] = _ports(ent.not_ports)
    if ent.domains:
        out["domains"] = list(ent.domains)
    return out


def _calico_rule(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"action": rule.action.value.capitalize()}
    if rule.protocol is not None:
        out["protocol"] = ir.protocol_name(rule.protocol) if rule.protocol in ir.PROTOCOL_NAMES else rule.protocol
    if rule.not_protocol is not None:
        out["notProtocol"] = (ir.protocol_name(rule.not_protocol) if rule.not_protocol in ir.PROTOCOL_NAMES
                              else rule.not_protocol)
    if rule.ip_version is not None:
        out["ipVersion"] = rule.ip_version
    for key, icmp in (("icmp", rule.icmp), ("notICMP", rule.not_icmp)):
        if icmp is not None:
            out[key] = {k: v for k, v in (("type", icmp.type), ("code", icmp.code)) if v is not None}
    for key, ent in (("source", rule.source), ("destination", rule.destination)):
        body = _entity(ent)
        if body:
            out[key] = body
    return out


def _short_name(pol: Policy) -> str:
    name = pol.name
    return name[len(pol.tier) + 1:] if name.startswith(pol.tier + ".") else name


def to_calico(pset: PolicySet) -> tuple[list[dict[str, Any]], list[str]]:
    """Calico v3 objects for every tier (but ``default``), policy, network set and profile."""
    docs: list[dict[str, Any]] = []
    for tier in pset.ordered_tiers():
        if tier.name == ir.DEFAULT_TIER:
            continue
        spec: dict[str, Any] = {"defaultAction": tier.default_action.value.capitalize()}
        if tier.order is not None:
            spec["order"] = tier.order if tier.order != int(tier.order) else int(tier.order)
        docs.append({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": tier.name},
                     "spec": spec})
    for pol in sorted(pset.policies, key=lambda p: (p.tier, p.key, p.staged)):
        namespaced = bool(pol.namespace)
        kind = "NetworkPolicy" if namespaced else "GlobalNetworkPolicy"
        if pol.staged:
            kind = "Staged" + kind
        meta: dict[str, Any] = {"name": _short_name(pol).replace("_", "-")}
        if namespaced:
            meta["namespace"] = pol.namespace
        spec = {"tier": pol.tier, "selector": pol.selector, "types": list(pol.types)}
        if pol.order is not None:
            spec["order"] = pol.order if pol.order != int(pol.order) else int(pol.order)
        if pol.namespace_selector is not None and not namespaced:
            spec["namespaceSelector"] = pol.namespace_selector
        if pol.service_account_selector is not None:
            spec["serviceAccountSelector"] = pol.service_account_selector
        if pol.ingress:
            spec["ingress"] = [_calico_rule(r) for r in pol.ingress]
        if pol.egress:
            spec["egress"] = [_calico_rule(r) for r in pol.egress]
        if pol.staged and pol.staged_action != "Set":
            spec["stagedAction"] = pol.staged_action
        docs.append({"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec})
    for ns in pset.network_sets:
        meta = {"name": ns.name, "labels": dict(ns.labels)}
        if ns.namespace:
            meta["namespace"] = ns.namespace
        body: dict[str, Any] = {"nets": [str(n) for n in ns.nets]}
        if ns.domains:
            body["allowedEgressDomains"] = list(ns.domains)
        docs.append({"apiVersion": "projectcalico.org/v3", "kind": "NetworkSet" if ns.namespace else "GlobalNetworkSet",
                     "metadata": meta, "spec": body})
    for prof in pset.profiles.values():
        pspec: dict[str, Any] = {}
        if prof.ingress:
            pspec["ingress"] = [_calico_rule(r) for r in prof.ingress]
        if prof.egress:
            pspec["egress"] = [_calico_rule(r) for r in prof.egress]
        if prof.labels_to_apply:
            pspec["labelsToApply"] = dict(prof.labels_to_apply)
        docs.append({"apiVersion": "projectcalico.org/v3", "kind": "Profile", "metadata": {"name": prof.name},
                     "spec": pspec})
    return docs, []


# ---------------------------------------------------------------------------------------- Kubernetes


def _terms(node: Node) -> list[Node]:
    if isinstance(node, AndNode):
        out: list[Node] = []
        for op in node.operands:
            out += _terms(op)
        return out
    if isinstance(node, AllNode | GlobalNode):
        return []
    return [node]


def label_selector(selector: str | None, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A Calico selector as a Kubernetes LabelSelector; raises :class:`NotExpressible`."""
    if selector is None:
        return {}
    labels: dict[str, str] = {}
    exprs: list[dict[str, Any]] = []
    for term in _terms(parse_selector(selector).root):
        if term.text() in drop:
            continue
        if isinstance(term, LabelOpNode) and term.op is Op.EQ and term.label not in labels:
            labels[term.label] = term.value
        elif isinstance(term, InSetNode):
            exprs.append({"key": term.label, "operator": "NotIn" if term.negated else "In",
                          "values": list(term.values)})
        elif isinstance(term, HasNode):
            exprs.append({"key": term.label, "operator": "Exists"})
        elif isinstance(term, NotNode) and isinstance(term.operand, HasNode):
            exprs.append({"key": term.operand.label, "operator": "DoesNotExist"})
        else:
            raise NotExpressible(f"selector term {term.text()!r} has no Kubernetes label-selector form")
    out: dict[str, Any] = {}
    if labels:
        out["matchLabels"] = labels
    if exprs:
        out["matchExpressions"] = exprs
    return out


def _k8s_peer(ent: EntityMatch) -> dict[str, Any] | None:
    if ent.not_selector or ent.service_account_names or ent.service_account_selector or ent.domains \
            or ent.not_ports or ent.ports:
        raise NotExpressible("rule peer uses notSelector, service accounts, domains or source ports")
    if ent.nets:
        if ent.selector or ent.namespace_selector is not None or len(ent.nets) != 1:
            raise NotExpressible("a peer with several nets, or nets and a selector")
        net = ent.nets[0]
        block: dict[str, Any] = {"cidr": str(net)}
        if ent.not_nets:
            block["except"] = [str(n) for n in ent.not_nets]
        return {"ipBlock": block}
    if ent.not_nets:
        raise NotExpressible("notNets without nets")
    if ent.selector is None and ent.namespace_selector is None:
        return None
    peer: dict[str, Any] = {}
    peer["podSelector"] = label_selector(ent.selector, drop=(_K8S_ORCH,))
    if ent.namespace_selector is not None:
        peer["namespaceSelector"] = label_selector(ent.namespace_selector)
    return peer


def _k8s_rule(rule: Rule, direction: str) -> dict[str, Any]:
    if rule.action is not Action.ALLOW:
        raise NotExpressible(f"{rule.action.value} rules have no Kubernetes form")
    if rule.not_protocol is not None or rule.icmp or rule.not_icmp or rule.ip_version is not None:
        raise NotExpressible("notProtocol, ICMP or ipVersion matches have no Kubernetes form")
    local, remote = (rule.destination, rule.source) if direction == "ingress" else (rule.source, rule.destination)
    if not local.is_empty() and direction == "ingress" and (local.has_endpoint_constraint() or local.nets
                                                            or local.not_nets or local.not_ports):
        raise NotExpressible("constraints on the policy's own endpoint inside a rule")
    if direction == "egress" and not local.is_empty():
        raise NotExpressible("constraints on the policy's own endpoint inside a rule")
    dports = rule.destination.ports
    if rule.destination.not_ports:
        raise NotExpressible("notPorts has no Kubernetes form")
    out: dict[str, Any] = {}
    if rule.protocol is not None:
        name = ir.protocol_name(rule.protocol)
        if name not in ("TCP", "UDP", "SCTP"):
            raise NotExpressible(f"protocol {name} has no Kubernetes form")
        ports: list[dict[str, Any]] = []
        for p in dports or (None,):
            entry: dict[str, Any] = {"protocol": name}
            if p is not None:
                if p.name:
                    entry["port"] = p.name
                else:
                    entry["port"] = p.first
                    if p.last != p.first:
                        entry["endPort"] = p.last
            ports.append(entry)
        out["ports"] = ports
    elif dports:
        raise NotExpressible("ports without a protocol")
    peer = _k8s_peer(dataclasses.replace(remote, ports=()) if direction == "egress" else remote)
    if peer is not None:
        out["from" if direction == "ingress" else "to"] = [peer]
    return out


def to_k8s(pset: PolicySet) -> tuple[list[dict[str, Any]], list[str]]:
    """Kubernetes NetworkPolicy objects for every expressible policy, and warnings for the rest."""
    docs: list[dict[str, Any]] = []
    warnings: list[str] = []
    default_ok = all(r.action is Action.ALLOW for p in pset.policies
                     if p.tier == ir.DEFAULT_TIER and not p.staged for r in p.ingress + p.egress)
    for pol in sorted(pset.policies, key=lambda p: (p.tier, p.key)):
        try:
            if pol.staged:
                raise NotExpressible("staged policies have no Kubernetes form")
            if not pol.namespace:
                raise NotExpressible("cluster-wide policies have no Kubernetes NetworkPolicy form")
            if pol.tier != ir.DEFAULT_TIER:
                raise NotExpressible(f"tier {pol.tier!r}: Kubernetes policies live in the default tier only")
            if not default_ok:
                raise NotExpressible("the default tier has Deny/Pass/Log rules, so policy order matters")
            if pol.namespace_selector or pol.service_account_selector:
                raise NotExpressible("namespaceSelector / serviceAccountSelector on the policy")
            spec: dict[str, Any] = {
                "podSelector": label_selector(pol.selector, drop=(_K8S_ORCH,)),
                "policyTypes": list(pol.types),
            }
            if "Ingress" in pol.types:
                spec["ingress"] = [_k8s_rule(r, "ingress") for r in pol.ingress]
            if "Egress" in pol.types:
                spec["egress"] = [_k8s_rule(r, "egress") for r in pol.egress]
            name = pol.original_name or _short_name(pol)
            docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": name, "namespace": pol.namespace}, "spec": spec})
        except NotExpressible as why:
            warnings.append(f"{pol.key}: not exported to Kubernetes: {why}")
    return docs, warnings


def render(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False) if docs else ""


def export(pset: PolicySet, target: str) -> tuple[str, list[str]]:
    """YAML text and warnings for ``target`` (``k8s`` or ``calico``)."""
    if target == "k8s":
        docs, warnings = to_k8s(pset)
    elif target == "calico":
        docs, warnings = to_calico(pset)
    else:
        raise ValueError(target)
    return render(docs), warnings
