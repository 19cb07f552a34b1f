"""Load policy documents (YAML files or directories) into the IR of :mod:`garrison.network.ir`.

Supported kinds:

* ``projectcalico.org/v3``: NetworkPolicy, GlobalNetworkPolicy, StagedNetworkPolicy,
  StagedGlobalNetworkPolicy, StagedKubernetesNetworkPolicy, Tier, NetworkSet, GlobalNetworkSet,
  HostEndpoint, Profile;
* ``networking.k8s.io/v1`` NetworkPolicy, converted as Calico converts it (``knp.default.<name>``
  in the default tier, order 1000, one Allow rule per peer x port);
* ``policy.networking.k8s.io/v1alpha1`` AdminNetworkPolicy / BaselineAdminNetworkPolicy (tiers
  ``adminnetworkpolicy`` / ``baselineadminnetworkpolicy``) and ``v1alpha2`` ClusterNetworkPolicy
  (tiers ``kube-admin`` / ``kube-baseline``), all with a Pass end-of-tier default.

Loading never stops at the first problem (like Falco's staged rule loader): every document is
converted, and problems are collected in ``PolicySet.problems`` with the file, document index and
field path; unknown fields are warnings, bad selectors / CIDRs / ports are errors (the document is
skipped). ``load_policies(..., strict=True)`` turns the first error into an :class:`InputError`.
Inventory kinds (Pod, Namespace, workloads...) are ignored here and read by
:mod:`garrison.network.inventory`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import InputError
from garrison.model.network import Action, Endpoint, EndpointKind, NamedPort
from garrison.network import ir
from garrison.network.ir import EntityMatch, Icmp, IPNetwork, Policy, PolicySet, PortRange, Problem, Rule, Tier
from garrison.network.selector import SelectorError, k8s_label_selector, parse

logger = logging.getLogger(__name__)

CALICO = "projectcalico.org/v3"
K8S_NP = "networking.k8s.io/v1"
NPAPI1 = "policy.networking.k8s.io/v1alpha1"
NPAPI2 = "policy.networking.k8s.io/v1alpha2"

INVENTORY_KINDS = {"Namespace", "Pod", "ServiceAccount", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
                   "Job", "CronJob", "Service", "ConfigMap", "Node"}

_META = {"name", "namespace", "labels", "annotations", "uid", "resourceVersion", "creationTimestamp", "generation",
         "managedFields", "generateName", "ownerReferences", "finalizers", "selfLink"}
_CALICO_SPEC = {"tier", "order", "selector", "serviceAccountSelector", "types", "ingress", "egress",
                "performanceHints", "stagedAction"}
_CALICO_GLOBAL_SPEC = _CALICO_SPEC | {"namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward"}
_CALICO_RULE = {"action", "protocol", "notProtocol", "icmp", "notICMP", "ipVersion", "source", "destination", "http",
                "metadata"}
_CALICO_ENTITY = {"nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports", "notPorts",
                  "serviceAccounts", "services", "domains"}


class _Doc:
    """Where a document came from, for messages: ``file.yaml#2 NetworkPolicy ns/name``."""

    def __init__(self, source: str, index: int, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self.obj = obj
        self.kind = str(obj.get("kind", ""))
        self.api = str(obj.get("apiVersion", ""))
        self.name = str(meta.get("name", "")) if isinstance(meta, Mapping) else ""
        self.namespace = str(meta.get("namespace", "") or "") if isinstance(meta, Mapping) else ""
        ident = f"{self.namespace}/{self.name}" if self.namespace else self.name
        self.where = f"{source}#{index} {self.kind} {ident}".strip()


class _Loader:
    def __init__(self, pset: PolicySet, default_namespace: str) -> None:
        self.pset = pset
        self.default_ns = default_namespace

    # ------------------------------------------------------------------ problems and fields
    def warn(self, doc: _Doc, path: str, message: str) -> None:
        self.pset.problems.append(Problem("warning", f"{doc.where}: {path}" if path else doc.where, message))

    def fields(self, doc: _Doc, obj: Any, allowed: set[str], path: str) -> Mapping[str, Any]:
        if obj is None:
            return {}
        if not isinstance(obj, Mapping):
            raise _Bad(path, f"expected a mapping, got {type(obj).__name__}")
        for key in obj:
            if key not in allowed:
                self.warn(doc, f"{path}.{key}", "unknown field (ignored)")
        return obj

    # ------------------------------------------------------------------ dispatch
    def load(self, doc: _Doc) -> None:
        obj = doc.obj
        if not doc.name and doc.kind not in INVENTORY_KINDS:
            raise _Bad("metadata.name", "missing")
        self.fields(doc, obj, {"apiVersion", "kind", "metadata", "spec", "status"}, "")
        self.fields(doc, obj.get("metadata"), _META, "metadata")
        spec = obj.get("spec") or {}
        if not isinstance(spec, Mapping):
            raise _Bad("spec", "expected a mapping")
        kind, api = doc.kind, doc.api
        if api == CALICO:
            handler = {
                "NetworkPolicy": self.calico_policy, "GlobalNetworkPolicy": self.calico_policy,
                "StagedNetworkPolicy": self.calico_policy, "StagedGlobalNetworkPolicy": self.calico_policy,
                "StagedKubernetesNetworkPolicy": self.k8s_policy, "Tier": self.tier,
                "NetworkSet": self.network_set, "GlobalNetworkSet": self.network_set,
                "HostEndpoint": self.host_endpoint, "Profile": self.profile,
            }.get(kind)
        elif api == K8S_NP and kind == "NetworkPolicy":
            handler = self.k8s_policy
        elif api == NPAPI1 and kind in ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy"):
            handler = self.admin_policy
        elif api == NPAPI2 and kind == "ClusterNetworkPolicy":
            handler = self.cluster_policy
        elif kind in INVENTORY_KINDS or kind == "List":
            return
        else:
            handler = None
        if handler is None:
            self.warn(doc, "", f"unsupported kind {kind!r} of {api!r} (ignored)")
            return
        handler(doc, spec)

    # ------------------------------------------------------------------ Calico
    def tier(self, doc: _Doc, spec: Mapping[str, Any]) -> None:
        self.fields(doc, spec, {"order", "defaultAction"}, "spec")
        order = _order(spec.get("order"), "spec.order")
        action = str(spec.get("defaultAction", "Deny"))
        if action not in ("Deny", "Pass"):
            raise _Bad("spec.defaultAction", f"must be Deny or Pass, got {action!r}")
        existing = self.pset.tiers.get(doc.name)
        if existing is not None and existing.source != "builtin":
            self.pset.problems.append(Problem("error", doc.where, f"tier {doc.name!r} defined twice"))
        if doc.name == ir.DEFAULT_TIER and order not in (None, ir.DEFAULT_TIER_ORDER):
            self.pset.problems.append(Problem("error", doc.where, "the default tier's order cannot be changed"))
            order = ir.DEFAULT_TIER_ORDER
        self.pset.tiers[doc.name] = Tier(doc.name, order, Action.parse(action), doc.where)

    def calico_policy(self, doc: _Doc, spec: Mapping[str, Any]) -> None:
        glob = "Global" in doc.kind
        staged = doc.kind.startswith("Staged")
        self.fields(doc, spec, _CALICO_GLOBAL_SPEC if glob else _CALICO_SPEC, "spec")
        for flag in ("doNotTrack", "preDNAT"):
            if spec.get(flag):
                self.warn(doc, f"spec.{flag}", "host-endpoint raw/pre-DNAT policies are not evaluated here")
        namespace = "" if glob else (doc.namespace or self.default_ns)
        tier = str(spec.get("tier") or ir.DEFAULT_TIER)
        name = doc.name if doc.name.startswith(tier + ".") else f"{tier}.{doc.name}"
        selector = self.selector(spec.get("selector"), "spec.selector") or "all()"
        ingress = [self.calico_rule(doc, r, f"spec.ingress[{i}]") for i, r in enumerate(_list(spec, "ingress"))]
        egress = [self.calico_rule(doc, r, f"spec.egress[{i}]") for i, r in enumerate(_list(spec, "egress"))]
        types = spec.get("types")
        if types is None:
            types = (["Ingress"] if ingress or not egress else []) + (["Egress"] if egress else [])
        types = _types(types)
        for r in egress:
            if r.source.domains:
                raise _Bad("spec.egress", "domains are only allowed in destination")
        for i, r in enumerate(ingress):
            if r.destination.domains or r.source.domains:
                raise _Bad(f"spec.ingress[{i}]", "domains are only allowed in egress rules' destination")
        staged_action = str(spec.get("stagedAction", "Set"))
        if staged_action not in ("Set", "Delete"):
            raise _Bad("spec.stagedAction", f"must be Set or Delete, got {staged_action!r}")
        self.pset.policies.append(Policy(
            kind=doc.kind, name=name, namespace=namespace, tier=tier, order=_order(spec.get("order"), "spec.order"),
            selector=selector, namespace_selector=self.selector(spec.get("namespaceSelector"), "spec.namespaceSelector"),
            service_account_selector=self.selector(spec.get("serviceAccountSelector"), "spec.serviceAccountSelector"),
            types=types, ingress=ingress, egress=egress, staged=staged, staged_action=staged_action,
            source=doc.where, original_name=doc.name, global_scope=glob))

    def calico_rule(self, doc: _Doc, raw: Any, path: str) -> Rule:
        obj = self.fields(doc, raw, _CALICO_RULE, path)
        if obj.get("http"):
            self.warn(doc, f"{path}.http", "HTTP matches are not evaluated (the rule is evaluated without them)")
        action_word = str(obj.get("action", ""))
        if action_word not in ("Allow", "Deny", "Log", "Pass"):
            raise _Bad(f"{path}.action", f"must be Allow, Deny, Log or Pass, got {action_word!r}")
        protocol = _protocol(obj.get("protocol"), f"{path}.protocol")
        not_protocol = _protocol(obj.get("notProtocol"), f"{path}.notProtocol")
        ip_version = obj.get("ipVersion")
        if ip_version not in (None, 4, 6):
            raise _Bad(f"{path}.ipVersion", f"must be 4 or 6, got {ip_version!r}")
        rule = Rule(
            action=Action.parse(action_word), protocol=protocol, not_protocol=not_protocol,
            icmp=self.icmp(doc, obj.get("icmp"), f"{path}.icmp"),
            not_icmp=self.icmp(doc, obj.get("notICMP"), f"{path}.notICMP"),
            ip_version=ip_version,
            source=self.entity(doc, obj.get("source"), f"{path}.source"),
            destination=self.entity(doc, obj.get("destination"), f"{path}.destination"),
            name=str((obj.get("metadata") or {}).get("annotations", {}).get("name", ""))
            if isinstance(obj.get("metadata"), Mapping) else "",
        )
        if (rule.icmp or rule.not_icmp) and protocol not in (1, 58):
            raise _Bad(f"{path}.icmp", "icmp requires protocol ICMP or ICMPv6")
        for side_name, ent in (("source", rule.source), ("destination", rule.destination)):
            if (ent.ports or ent.not_ports) and protocol not in (6, 17, 132, 136):
                raise _Bad(f"{path}.{side_name}.ports", "ports require protocol TCP, UDP, SCTP or UDPLite")
            if ent.domains and (ent.nets or ent.selector or ent.not_nets):
                raise _Bad(f"{path}.{side_name}.domains", "domains cannot be combined with nets or selector")
        if rule.ip_version:
            for ent in (rule.source, rule.destination):
                for net in ent.nets + ent.not_nets:
                    if net.version != rule.ip_version:
                        raise _Bad(path, f"net {net} does not match ipVersion {rule.ip_version}")
        return rule

    def icmp(self, doc: _Doc, raw: Any, path: str) -> Icmp | None:
        if raw is None:
            return None
        obj = self.fields(doc, raw, {"type", "code"}, path)
        t, c = obj.get("type"), obj.get("code")
        for value, what in ((t, "type"), (c, "code")):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255):
                raise _Bad(f"{path}.{what}", f"must be an integer 0-255, got {value!r}")
        if c is not None and t is None:
            raise _Bad(f"{path}.code", "code requires type")
        return Icmp(t, c)

    def entity(self, doc: _Doc, raw: Any, path: str) -> EntityMatch:
        obj = self.fields(doc, raw, _CALICO_ENTITY, path)
        sa = self.fields(doc, obj.get("serviceAccounts"), {"names", "selector"}, f"{path}.serviceAccounts")
        if obj.get("services"):
            self.warn(doc, f"{path}.services", "service matches are not evaluated (ignored)")
        domains = tuple(str(d) for d in _seq(obj.get("domains"), f"{path}.domains"))
        for d in domains:
            _check_domain(d, f"{path}.domains")
        return EntityMatch(
            selector=self.selector(obj.get("selector"), f"{path}.selector"),
            not_selector=self.selector(obj.get("notSelector"), f"{path}.notSelector"),
            namespace_selector=self.selector(obj.get("namespaceSelector"), f"{path}.namespaceSelector"),
            service_account_names=tuple(str(n) for n in _seq(sa.get("names"), f"{path}.serviceAccounts.names")),
            service_account_selector=self.selector(sa.get("selector"), f"{path}.serviceAccounts.selector"),
            nets=tuple(_net(n, f"{path}.nets") for n in _seq(obj.get("nets"), f"{path}.nets")),
            not_nets=tuple(_net(n, f"{path}.notNets") for n in _seq(obj.get("notNets"), f"{path}.notNets")),
            ports=tuple(_port(p, f"{path}.ports") for p in _seq(obj.get("ports"), f"{path}.ports")),
            not_ports=tuple(_port(p, f"{path}.notPorts") for p in _seq(obj.get("notPorts"), f"{path}.notPorts")),
            domains=domains,
        )

    def selector(self, raw: Any, path: str) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise _Bad(path, f"selector must be a string, got {type(raw).__name__}")
        try:
            parse(raw)
        except SelectorError as err:
            raise _Bad(path, f"invalid selector {raw!r} at character {err.position}: {err.reason}") from err
        return raw

    def network_set(self, doc: _Doc, spec: Mapping[str, Any]) -> None:
        self.fields(doc, spec, {"nets", "allowedEgressDomains"}, "spec")
        labels = _labels(doc.obj)
        namespace = "" if doc.kind.startswith("Global") else (doc.namespace or self.default_ns)
        nets = tuple(_net(n, "spec.nets") for n in _seq(spec.get("nets"), "spec.nets"))
        domains = tuple(str(d) for d in _seq(spec.get("allowedEgressDomains"), "spec.allowedEgressDomains"))
        for d in domains:
            _check_domain(d, "spec.allowedEgressDomains")
        self.pset.network_sets.append(ir.NetworkSet(doc.name, namespace, labels, nets, domains))

    def host_endpoint(self, doc: _Doc, spec: Mapping[str, Any]) -> None:
        self.fields(doc, spec, {"node", "interfaceName", "expectedIPs", "profiles", "ports"}, "spec")
        ips = tuple(str(_ip(i, "spec.expectedIPs")) for i in _seq(spec.get("expectedIPs"), "spec.expectedIPs"))
        ports = []
        for i, p in enumerate(_seq(spec.get("ports"), "spec.ports")):
            p = self.fields(doc, p, {"name", "port", "protocol"}, f"spec.ports[{i}]")
            proto = str(p.get("protocol", "TCP")).upper()
            ports.append(NamedPort(str(p.get("name", "")), proto, _port_number(p.get("port"), f"spec.ports[{i}].port")))
        self.pset.host_endpoints.append(Endpoint(
            name=doc.name, kind=EndpointKind.HOST, labels=_labels(doc.obj), ips=ips, ports=tuple(ports),
            node=str(spec.get("node", "")), profiles=tuple(str(x) for x in _seq(spec.get("profiles"), "spec.profiles")),
            interface=str(spec.get("interfaceName") or "")))

    def profile(self, doc: _Doc, spec: Mapping[str, Any]) -> None:
        self.fields(doc, spec, {"ingress", "egress", "labelsToApply"}, "spec")
        self.pset.profiles[doc.name] = ir.Profile(
            doc.name,
            [self.calico_rule(doc, r, f"spec.ingress[{i}]") for i, r in enumerate(_list(spec, "ingress"))],
            [self.calico_rule(doc, r, f"spec.egress[{i}]") for i, r in enumerate(_list(spec, "egress"))],
            {str(k): str(v) for k, v in (spec.get("labelsToApply") or {}).items()})

    # ------------------------------------------------------------------ Kubernetes NetworkPolicy
    def k8s_policy(self, doc: _Doc, spec: Mapping[str, Any]) -> None:
        staged = doc.kind.startswith("Staged")
        allowed = {"podSelector", "policyTypes", "ingress", "egress"} | ({"stagedAction"} if staged else set())
        self.fields(doc, spec, allowed, "spec")
        namespace = doc.namespace or self.default_ns
        pod_sel = k8s_label_selector(spec.get("podSelector") or {}, where="spec.podSelector")
        k8s = f"{ir.ORCH_LABEL} == 'k8s'"
        selector = k8s if pod_sel == "all()" else f"{k8s} && {pod_sel}"
        ingress: list[Rule] = []
        egress: list[Rule] = []
        for i, raw in enumerate(_list(spec, "ingress")):
            ingress += self.k8s_rule(doc, raw, f"spec.ingress[{i}]", "from", namespace)
        for i, raw in enumerate(_list(spec, "egress")):
            egress += self.k8s_rule(doc, raw, f"spec.egress[{i}]", "to", namespace)
        types = spec.get("policyTypes")
        if types is None:
            types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
        self.pset.policies.append(Policy(
            kind="StagedKubernetesNetworkPolicy" if staged else "KubernetesNetworkPolicy",
            name=f"knp.default.{doc.name}", namespace=namespace, tier=ir.DEFAULT_TIER, order=1000.0,
            selector=selector, types=_types(types), ingress=ingress, egress=egress, staged=staged,
            staged_action=str(spec.get("stagedAction", "Set")), source=doc.where, original_name=doc.name))

    def k8s_rule(self, doc: _Doc, raw: Any, path: str, peers_key: str, namespace: str) -> list[Rule]:
        obj = self.fields(doc, raw, {peers_key, "ports"}, path)
        peers: list[EntityMatch | None] = []
        raw_peers = obj.get(peers_key)
        if raw_peers is None or raw_peers == []:
            peers = [None]
        else:
            for j, peer in enumerate(_seq(raw_peers, f"{path}.{peers_key}")):
                peers.append(self.k8s_peer(doc, peer, f"{path}.{peers_key}[{j}]"))
        ports: list[tuple[int | None, PortRange | None]] = []
        raw_ports = obj.get("ports")
        if not raw_ports:
            ports = [(None, None)]
        else:
            for j, port in enumerate(_seq(raw_ports, f"{path}.ports")):
                ports.append(self.k8s_port(doc, port, f"{path}.ports[{j}]"))
        rules: list[Rule] = []
        for proto, port in ports:
            for peer in peers:
                dest = EntityMatch(ports=(port,) if port else ())
                rule = Rule(Action.ALLOW, protocol=proto)
                if peers_key == "from":
                    rule.source = peer or EntityMatch()
                    rule.destination = dest
                else:
                    # a copy per port: the peer object is shared by every port of the rule
                    rule.destination = dataclasses.replace(peer or EntityMatch(), ports=dest.ports)
                rules.append(rule)
        return rules

    def k8s_peer(self, doc: _Doc, raw: Any, path: str) -> EntityMatch:
        obj = self.fields(doc, raw, {"podSelector", "namespaceSelector", "ipBlock"}, path)
        if "ipBlock" in obj:
            if "podSelector" in obj or "namespaceSelector" in obj:
                raise _Bad(path, "ipBlock cannot be combined with podSelector or namespaceSelector")
            block = self.fields(doc, obj["ipBlock"], {"cidr", "except"}, f"{path}.ipBlock")
            cidr = _net(block.get("cidr"), f"{path}.ipBlock.cidr")
            excepts = tuple(_net(e, f"{path}.ipBlock.except") for e in _seq(block.get("except"), f"{path}.ipBlock.except"))
            for e in excepts:
                if e.version != cidr.version or not e.subnet_of(cidr):  # type: ignore[arg-type]
                    raise _Bad(f"{path}.ipBlock.except", f"{e} is not inside {cidr}")
            return EntityMatch(nets=(cidr,), not_nets=excepts)
        if "podSelector" not in obj and "namespaceSelector" not in obj:
            raise _Bad(path, "a peer needs podSelector, namespaceSelector or ipBlock")
        k8s = f"{ir.ORCH_LABEL} == 'k8s'"
        pod = k8s_label_selector(obj.get("podSelector") or {}, where=f"{path}.podSelector")
        selector = k8s if pod == "all()" else f"{k8s} && {pod}"
        ns_sel = None
        if "namespaceSelector" in obj:
            ns_sel = k8s_label_selector(obj.get("namespaceSelector") or {}, where=f"{path}.namespaceSelector")
        return EntityMatch(selector=selector, namespace_selector=ns_sel)

    def k8s_port(self, doc: _Doc, raw: Any, path: str) -> tuple[int | None, PortRange | None]:
        obj = self.fields(doc, raw, {"protocol", "port", "endPort"}, path)
        proto_word = str(obj.get("protocol") or "TCP")
        if proto_word not in ("TCP", "UDP", "SCTP"):
            raise _Bad(f"{path}.protocol", f"must be TCP, UDP or SCTP, got {proto_word!r}")
        proto = ir.PROTOCOLS[proto_word]
        port = obj.get("port")
        end = obj.get("endPort")
        if port is None:
            if end is not None:
                raise _Bad(f"{path}.endPort", "endPort requires port")
            return proto, None
        if isinstance(port, str) and not port.isdigit():
            if end is not None:
                raise _Bad(f"{path}.endPort", "endPort cannot be used with a named port")
            _check_port_name(port, f"{path}.port")
            return proto, PortRange(name=port)
        first = _port_number(port, f"{path}.port")
        last = first if end is None else _port_number(end, f"{path}.endPort")
        if last < first:
            raise _Bad(f"{path}.endPort", f"endPort {last} is below port {first}")
        return proto, PortRange(first, last)

    # ------------------------------------------------------------------ network-policy-api
    def admin_policy(self, doc: _Doc, spec: Mapping[str, Any]) -> None:
        baseline = doc.kind.startswith("Baseline")
        self.fields(doc, spec, {"subject", "ingress", "egress"} | (set() if baseline else {"priority"}), "spec")
        if baseline and doc.name != "default":
            self.pset.problems.append(Problem("error", doc.where, "a BaselineAdminNetworkPolicy must be named 'default'"))
        tier = ir.BASELINE_TIER if baseline else ir.ADMIN_TIER
        prefix = "kbanp.baselineadminnetworkpolicy." if baseline else "kanp.adminnetworkpolicy."
        order = None if baseline else _order(spec.get("priority"), "spec.priority")
        if order is not None and not 0 <= order <= 1000:
            raise _Bad("spec.priority", f"must be 0-1000, got {order:g}")
        actions = ("Allow", "Deny") if baseline else ("Allow", "Deny", "Pass")
        self.npapi_policy(doc, spec, tier, prefix + doc.name, order, actions, "ports")

    def cluster_policy(self, doc: _Doc, spec: Mapping[str, Any]) -> None:
        self.fields(doc, spec, {"tier", "priority", "subject", "ingress", "egress"}, "spec")
        tier_word = spec.get("tier")
        if tier_word not in ("Admin", "Baseline"):
            raise _Bad("spec.tier", f"must be Admin or Baseline, got {tier_word!r}")
        tier = ir.KUBE_ADMIN_TIER if tier_word == "Admin" else ir.KUBE_BASELINE_TIER
        order = _order(spec.get("priority"), "spec.priority")
        if order is None or not 0 <= order <= 1000:
            raise _Bad("spec.priority", f"must be 0-1000, got {spec.get('priority')!r}")
        self.npapi_policy(doc, spec, tier, f"kcnp.{tier}.{doc.name}", order, ("Accept", "Deny", "Pass"), "protocols")

    def npapi_policy(self, doc: _Doc, spec: Mapping[str, Any], tier: str, name: str, order: float | None,
                     actions: tuple[str, ...], ports_key: str) -> None:
        if tier not in self.pset.tiers:
            implicit = ir.implicit_tier(tier)
            assert implicit is not None
            self.pset.tiers[tier] = implicit
        subject = self.fields(doc, spec.get("subject"), {"namespaces", "pods"}, "spec.subject")
        if len(subject) != 1:
            raise _Bad("spec.subject", "exactly one of namespaces or pods must be set")
        k8s = f"{ir.ORCH_LABEL} == 'k8s'"
        if "namespaces" in subject:
            selector, ns_sel = k8s, k8s_label_selector(subject["namespaces"] or {}, where="spec.subject.namespaces")
        else:
            pods = self.fields(doc, subject["pods"], {"namespaceSelector", "podSelector"}, "spec.subject.pods")
            pod = k8s_label_selector(pods.get("podSelector") or {}, where="spec.subject.pods.podSelector")
            selector = k8s if pod == "all()" else f"{k8s} && {pod}"
            ns_sel = k8s_label_selector(pods.get("namespaceSelector") or {}, where="spec.subject.pods.namespaceSelector")
        ingress: list[Rule] = []
        egress: list[Rule] = []
        for direction, peers_key, out in (("ingress", "from", ingress), ("egress", "to", egress)):
            for i, raw in enumerate(_list(spec, direction)):
                path = f"spec.{direction}[{i}]"
                obj = self.fields(doc, raw, {"name", "action", peers_key, ports_key}, path)
                word = str(obj.get("action", ""))
                if word not in actions:
                    raise _Bad(f"{path}.action", f"must be one of {', '.join(actions)}, got {word!r}")
                action = Action.parse(word)
                ports = (self.npapi_ports(doc, obj.get(ports_key), f"{path}.{ports_key}", ports_key)
                         if obj.get(ports_key) else [(None, None)])
                peers = _seq(obj.get(peers_key), f"{path}.{peers_key}")
                if not peers:
                    raise _Bad(f"{path}.{peers_key}", "at least one peer is required")
                for proto, port in ports:
                    for j, peer in enumerate(peers):
                        ent = self.npapi_peer(doc, peer, f"{path}.{peers_key}[{j}]", direction)
                        rule = Rule(action, protocol=proto, name=str(obj.get("name", "")))
                        if direction == "ingress":
                            rule.source = ent
                            rule.destination = EntityMatch(ports=(port,) if port else ())
                        else:
                            ent.ports = (port,) if port else ()
                            rule.destination = ent
                        out.append(rule)
        types = tuple(t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules)
        self.pset.policies.append(Policy(
            kind=doc.kind, name=name, tier=tier, order=order, selector=selector, namespace_selector=ns_sel,
            types=types or ("Ingress",), ingress=ingress, egress=egress, source=doc.where, original_name=doc.name))

    def npapi_peer(self, doc: _Doc, raw: Any, path: str, direction: str) -> EntityMatch:
        allowed = {"namespaces", "pods"} | ({"networks", "nodes", "domainNames"} if direction == "egress" else set())
        obj = self.fields(doc, raw, allowed, path)
        if len(obj) != 1:
            raise _Bad(path, "exactly one peer field must be set")
        k8s = f"{ir.ORCH_LABEL} == 'k8s'"
        if "namespaces" in obj:
            return EntityMatch(selector=k8s, namespace_selector=k8s_label_selector(obj["namespaces"] or {},
                                                                                   where=f"{path}.namespaces"))
        if "pods" in obj:
            pods = self.fields(doc, obj["pods"], {"namespaceSelector", "podSelector"}, f"{path}.pods")
            pod = k8s_label_selector(pods.get("podSelector") or {}, where=f"{path}.pods.podSelector")
            return EntityMatch(selector=k8s if pod == "all()" else f"{k8s} && {pod}",
                               namespace_selector=k8s_label_selector(pods.get("namespaceSelector") or {},
                                                                     where=f"{path}.pods.namespaceSelector"))
        if "networks" in obj:
            return EntityMatch(nets=tuple(_net(n, f"{path}.networks") for n in _seq(obj["networks"], path)))
        if "domainNames" in obj:
            domains = tuple(str(d) for d in _seq(obj["domainNames"], f"{path}.domainNames"))
            for d in domains:
                _check_domain(d, f"{path}.domainNames")
            return EntityMatch(domains=domains)
        self.warn(doc, f"{path}.nodes", "node peers are not evaluated; the rule matches no traffic")
        return EntityMatch(selector="has(garrison.invalid/no-match) && !has(garrison.invalid/no-match)")

    def npapi_ports(self, doc: _Doc, raw: Any, path: str, key: str) -> list[tuple[int | None, PortRange | None]]:
        out: list[tuple[int | None, PortRange | None]] = []
        for j, item in enumerate(_seq(raw, path)):
            where = f"{path}[{j}]"
            if key == "ports":
                obj = self.fields(doc, item, {"portNumber", "namedPort", "portRange"}, where)
                if "namedPort" in obj:
                    _check_port_name(str(obj["namedPort"]), f"{where}.namedPort")
                    out.append((None, PortRange(name=str(obj["namedPort"]))))
                elif "portNumber" in obj:
                    pn = self.fields(doc, obj["portNumber"], {"protocol", "port"}, f"{where}.portNumber")
                    n = _port_number(pn.get("port"), f"{where}.portNumber.port")
                    out.append((_k8s_proto(pn.get("protocol"), f"{where}.portNumber"), PortRange(n, n)))
                elif "portRange" in obj:
                    pr = self.fields(doc, obj["portRange"], {"protocol", "start", "end"}, f"{where}.portRange")
                    a = _port_number(pr.get("start"), f"{where}.portRange.start")
                    b = _port_number(pr.get("end"), f"{where}.portRange.end")
                    if b < a:
                        raise _Bad(f"{where}.portRange", f"end {b} is below start {a}")
                    out.append((_k8s_proto(pr.get("protocol"), f"{where}.portRange"), PortRange(a, b)))
                else:
                    raise _Bad(where, "one of portNumber, namedPort or portRange is required")
            else:
                obj = self.fields(doc, item, {"tcp", "udp", "sctp", "destinationNamedPort"}, where)
                if len(obj) != 1:
                    raise _Bad(where, "exactly one of tcp, udp, sctp or destinationNamedPort must be set")
                if "destinationNamedPort" in obj:
                    _check_port_name(str(obj["destinationNamedPort"]), f"{where}.destinationNamedPort")
                    out.append((None, PortRange(name=str(obj["destinationNamedPort"]))))
                    continue
                word = next(iter(obj))
                proto = ir.PROTOCOLS[word.upper()]
                body = self.fields(doc, obj[word], {"destinationPort"}, f"{where}.{word}")
                dp = body.get("destinationPort")
                if dp is None:
                    out.append((proto, None))
                    continue
                dp = self.fields(doc, dp, {"number", "range"}, f"{where}.{word}.destinationPort")
                if "number" in dp:
                    n = _port_number(dp["number"], f"{where}.{word}.destinationPort.number")
                    out.append((proto, PortRange(n, n)))
                else:
                    rg = self.fields(doc, dp.get("range"), {"start", "end"}, f"{where}.{word}.destinationPort.range")
                    a = _port_number(rg.get("start"), f"{where}.range.start")
                    b = _port_number(rg.get("end"), f"{where}.range.end")
                    if b <= a:
                        raise _Bad(f"{where}.{word}.destinationPort.range", "start must be less than end")
                    out.append((proto, PortRange(a, b)))
        return out


class _Bad(Exception):
    """A problem that invalidates the document being converted."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# ---------------------------------------------------------------------------------- value parsers


def _list(spec: Mapping[str, Any], key: str) -> list[Any]:
    return _seq(spec.get(key), f"spec.{key}")


def _seq(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(path, f"expected a list, got {type(value).__name__}")
    return value


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {} if isinstance(meta, Mapping) else {}
    if not isinstance(labels, Mapping):
        raise _Bad("metadata.labels", "expected a mapping")
    return {str(k): str(v) for k, v in labels.items()}


def _order(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(path, f"must be a number, got {value!r}")
    return float(value)


def _types(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or any(t not in ("Ingress", "Egress") for t in value):
        raise _Bad("spec.types", f"must be a list of Ingress/Egress, got {value!r}")
    return tuple(dict.fromkeys(str(t) for t in value))


def _protocol(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Bad(path, f"unknown protocol {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= 255:
            raise _Bad(path, f"protocol number must be 1-255, got {value}")
        return value
    word = str(value).upper()
    if word in ir.PROTOCOLS:
        return ir.PROTOCOLS[word]
    if word.isdigit() and 1 <= int(word) <= 255:
        return int(word)
    raise _Bad(path, f"unknown protocol {value!r}")


def _k8s_proto(value: Any, path: str) -> int:
    word = str(value or "TCP")
    if word not in ("TCP", "UDP", "SCTP"):
        raise _Bad(f"{path}.protocol", f"must be TCP, UDP or SCTP, got {word!r}")
    return ir.PROTOCOLS[word]


def _net(value: Any, path: str) -> IPNetwork:
    if not isinstance(value, str):
        raise _Bad(path, f"expected a CIDR string, got {value!r}")
    try:
        if "/" not in value:
            return ipaddress.ip_network(value)
        return ipaddress.ip_network(value, strict=False)
    except ValueError as err:
        raise _Bad(path, f"bad CIDR {value!r}") from err


def _ip(value: Any, path: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError as err:
        raise _Bad(path, f"bad IP address {value!r}") from err


def _port_number(value: Any, path: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise _Bad(path, f"port must be 0-65535, got {value!r}")
    return value


def _port(value: Any, path: str) -> PortRange:
    """Calico port syntax: ``80``, ``"80"``, ``"1000:2000"`` or a port name."""
    if isinstance(value, int) and not isinstance(value, bool):
        n = _port_number(value, path)
        return PortRange(n, n)
    if not isinstance(value, str) or not value:
        raise _Bad(path, f"bad port {value!r}")
    if ":" in value:
        a, _, b = value.partition(":")
        first, last = _port_number(a, path), _port_number(b, path)
        if last < first:
            raise _Bad(path, f"bad port range {value!r}")
        return PortRange(first, last)
    if value.isdigit():
        n = _port_number(int(value), path)
        return PortRange(n, n)
    _check_port_name(value, path)
    return PortRange(name=value)


def _check_port_name(name: str, path: str) -> None:
    import re

    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", name) or "--" in name or name.isdigit():
        raise _Bad(path, f"bad port name {name!r} (IANA_SVC_NAME: 1-15 lower-case letters, digits, '-')")


def _check_domain(domain: str, path: str) -> None:
    import re

    if not re.fullmatch(r"(\*\.)?([a-zA-Z0-9*]([-a-zA-Z0-9_*]*[a-zA-Z0-9*])?\.)*[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?",
                        domain):
        raise _Bad(path, f"bad domain {domain!r}")


# ---------------------------------------------------------------------------------- public API


def iter_documents(path: Path) -> Iterator[tuple[str, int, Mapping[str, Any]]]:
    """Yield ``(source, index, object)`` for every YAML/JSON document under ``path`` (``List`` expanded)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".yaml", ".yml", ".json"))
    elif path.is_file():
        files = [path]
    else:
        raise InputError("no such file or directory", input_name=str(path))
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
            docs = list(yaml.safe_load_all(text))
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"cannot read: {err}", input_name=str(file)) from err
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or "invalid YAML"
            raise InputError(f"not valid YAML{where}: {problem}", input_name=str(file)) from err
        n = 0
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, Mapping):
                raise InputError(f"document {n} is not a mapping", input_name=str(file))
            items = doc.get("items") if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List") else None
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, Mapping):
                        yield str(file), n, item
                    n += 1
            else:
                yield str(file), n, doc
                n += 1


def load_objects(objects: list[tuple[str, int, Mapping[str, Any]]], *, default_namespace: str = "default",
                 strict: bool = False) -> PolicySet:
    """Convert already parsed documents to a :class:`PolicySet` (used by tests and the conformance helper)."""
    pset = PolicySet(tiers=ir.builtin_tiers())
    loader = _Loader(pset, default_namespace)
    for source, index, obj in objects:
        doc = _Doc(source, index, obj)
        try:
            loader.load(doc)
        except _Bad as bad:
            where = f"{doc.where}: {bad.path}" if bad.path else doc.where
            pset.problems.append(Problem("error", where, bad.message))
        except InputError as err:
            pset.problems.append(Problem("error", doc.where, str(err)))
        if strict and pset.errors:
            raise InputError(str(pset.errors[0]))
    _finish(pset, strict)
    return pset


def load_policies(path: str | Path, *, default_namespace: str = "default", strict: bool = False) -> PolicySet:
    """Load every policy document under ``path`` (a file or a directory of YAML)."""
    return load_objects(list(iter_documents(Path(path))), default_namespace=default_namespace, strict=strict)


def _finish(pset: PolicySet, strict: bool) -> None:
    """Cross-document checks: unknown tiers, duplicates, conflicting orders, overlapping tiers."""
    for pol in pset.policies:
        if pol.tier not in pset.tiers:
            implicit = ir.implicit_tier(pol.tier)
            if implicit is not None:
                pset.tiers[pol.tier] = implicit
            else:
                pset.problems.append(Problem("error", pol.source, f"tier {pol.tier!r} does not exist"))
    missing = {p.tier for p in pset.policies if p.tier not in pset.tiers}
    pset.policies = [p for p in pset.policies if p.tier not in missing]
    seen: dict[tuple[str, bool], Policy] = {}
    for pol in pset.policies:
        key = (pol.key, pol.staged)
        if key in seen:
            pset.problems.append(Problem("error", pol.source, f"policy {pol.key!r} also defined at {seen[key].source}"))
        seen[key] = pol
    by_order: dict[tuple[str, float], list[Policy]] = {}
    for pol in pset.policies:
        if pol.order is not None and not pol.staged:
            by_order.setdefault((pol.tier, pol.order), []).append(pol)
    for (tier, order), pols in sorted(by_order.items()):
        # the order of tied policies only matters when one of them can deny or pass
        decisive = any(r.action in (Action.DENY, Action.PASS) for p in pols for r in p.ingress + p.egress)
        if len(pols) > 1 and decisive:
            names = ", ".join(sorted(p.key for p in pols))
            pset.problems.append(Problem("warning", f"tier {tier}",
                                         f"policies {names} share order {order:g}; they are evaluated by name"))
    tier_orders: dict[float, list[str]] = {}
    for t in pset.tiers.values():
        if t.order is not None:
            tier_orders.setdefault(t.order, []).append(t.name)
    for t_order, t_names in sorted(tier_orders.items()):
        if len(t_names) > 1:
            pset.problems.append(Problem("warning", "tiers", f"tiers {', '.join(sorted(t_names))} overlap at order "
                                                             f"{t_order:g}; they are evaluated by name"))
    if strict and pset.errors:
        raise InputError(str(pset.errors[0]))
