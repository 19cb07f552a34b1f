"""Least-privilege policy recommendation from observed flows, and promotion of staged policies.

:func:`recommend` turns recorded flows into STAGED policies that allow exactly what was observed
and deny the rest (``types``/``policyTypes`` both directions, nothing else allowed, so the tier's
end-of-tier Deny, or Kubernetes' isolation, takes everything unobserved):

* **Who.** Each inventory pod gets an *identity*: the smallest set of its stable labels, tried in
  the order ``app.kubernetes.io/name``, ``app``, ``k8s-app``, ``name``, ``app.kubernetes.io/instance``,
  ``app.kubernetes.io/component``, ``component``, ``role``, ``tier``, then the rest alphabetically,
  that selects exactly the pods of its namespace with the same stable labels (its replicas).
  Generated labels (``pod-template-hash``, ``controller-revision-hash``, ``pod-template-generation``,
  StatefulSet pod names and indices, Job controller UIDs) and Calico's own labels are never used.
  Peers in other namespaces add a namespace selector (``projectcalico.org/name`` in Calico form,
  ``kubernetes.io/metadata.name`` in Kubernetes form); pods without stable labels, host endpoints
  and addresses outside the inventory become ``/32`` (``/128``) nets; egress to a DNS name seen in
  ``dest_domains`` becomes a Calico ``domains`` match.
* **What.** Ports by protocol and number, or by the container port's name when every endpoint the
  port resolves against (the local pods for ingress, the peer pods for egress) names it the same.
  Flows without a port (ICMP) allow the protocol.
* **Scope.** ``workload``: one policy per identity (``spec.selector`` = the identity) plus a
  namespace policy (``all()``) that denies every other pod and carries the rules of pods without
  stable labels, each rule pinned to the pod by a ``/32`` on the local side. ``namespace``: one
  policy per namespace whose every rule is pinned to its local identity with a selector (ingress
  ``destination.selector``, egress ``source.selector``), so it is as tight as the workload form.
  Kubernetes NetworkPolicy has no local-side match: its namespace form (and the rules of unlabeled
  pods) allow a peer to reach every pod of the namespace on the observed ports; a warning says so.
* **Which flows.** Allowed flows only, unless ``include_denied``: a denied flow is usually the
  policy doing its job.

:func:`promote` does what Calico does when a staged policy is enforced
(``ConvertStaged*PolicyToEnforced`` in libcalico-go): the staged kinds become NetworkPolicy,
GlobalNetworkPolicy or ``networking.k8s.io/v1`` NetworkPolicy with the same metadata (minus
``resourceVersion`` and ``uid``) and spec (minus ``stagedAction``), so names, order and tier are
kept; ``stagedAction: Delete`` yields a deletion notice instead of a document. Other documents
pass through unchanged, in order.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from garrison.core.errors import ConfigError
from garrison.model.network import Endpoint, EndpointKind
from garrison.network.flows import PROTO_NAMES, FlowRecord, Peer, Resolver
from garrison.network.inventory import Inventory
from garrison.network.loader import CALICO, K8S_NP

logger = logging.getLogger(__name__)

SCOPES = ("namespace", "workload")
FORMATS = ("calico", "k8s")
PREFERRED = ("app.kubernetes.io/name", "app", "k8s-app", "name", "app.kubernetes.io/instance",
             "app.kubernetes.io/component", "component", "role", "tier")
UNSTABLE = frozenset({"pod-template-hash", "controller-revision-hash", "pod-template-generation",
                      "statefulset.kubernetes.io/pod-name", "apps.kubernetes.io/pod-index", "controller-uid",
                      "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-completion-index",
                      "job-name", "batch.kubernetes.io/job-name"})
_SPECIAL_PREFIXES = ("projectcalico.org/", "pcns.", "pcsa.")
_K8S_PROTOCOLS = {6: "TCP", 17: "UDP", 132: "SCTP"}
_CALICO_PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP", 136: "UDPLite"}
_RECOMMENDED_LABEL = "policy.garrison.dev/recommended"

# A peer or local constraint: ("sel", namespace, ((key, value), ...)) | ("net", cidr) | ("dom", name)
Spec = tuple[str, str, tuple[tuple[str, str], ...]] | tuple[str, str]


def stable_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels a policy may select on: user labels minus generated and Calico-internal ones."""
    return {k: v for k, v in labels.items() if k not in UNSTABLE and not k.startswith(_SPECIAL_PREFIXES)}


def _key_order(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    return [k for k in PREFERRED if k in keys] + sorted(k for k in keys if k not in PREFERRED)


class Identities:
    """The identity labels of every pod, chosen against the other pods of its namespace."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self.by_ns: dict[str, list[tuple[Endpoint, dict[str, str]]]] = {}
        for e in endpoints:
            if e.kind is EndpointKind.POD:
                self.by_ns.setdefault(e.namespace, []).append((e, stable_labels(e.labels)))
        self._cache: dict[str, tuple[tuple[str, str], ...]] = {}
        self._by_shape: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[tuple[str, str], ...]] = {}

    def of(self, ep: Endpoint) -> tuple[tuple[str, str], ...]:
        """``(key, value)`` pairs in preference order; empty when the pod has no stable labels."""
        found = self._cache.get(ep.key)
        if found is not None:
            return found
        labels = stable_labels(ep.labels)
        shape = (ep.namespace, tuple(sorted(labels.items())))
        found = self._by_shape.get(shape)
        if found is not None:  # a replica of a workload already seen
            self._cache[ep.key] = found
            return found
        members = self.by_ns.get(ep.namespace, [])
        group = {e.key for e, lab in members if lab == labels}
        chosen: dict[str, str] = {}
        for k in _key_order(labels):
            chosen[k] = labels[k]
            matched = {e.key for e, lab in members if all(lab.get(ck) == cv for ck, cv in chosen.items())}
            if matched <= group or not members:
                break
        ident = tuple(chosen.items())  # in preference order: the selector reads app first
        self._cache[ep.key] = self._by_shape[shape] = ident
        return ident

    def members(self, namespace: str, ident: tuple[tuple[str, str], ...]) -> list[Endpoint]:
        return [e for e, lab in self.by_ns.get(namespace, []) if all(lab.get(k) == v for k, v in ident)]


@dataclass(slots=True)
class Recommendation:
    documents: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    flows_used: int = 0
    flows_skipped: int = 0
    unknown: dict[str, int] = field(default_factory=dict)

    def yaml(self) -> str:
        return yaml.safe_dump_all(self.documents, sort_keys=False, default_flow_style=False, width=4096)


@dataclass(slots=True)
class _Policy:
    namespace: str
    name: str
    selector: tuple[tuple[str, str], ...] | None  # None = every pod of the namespace
    ingress: dict[tuple[Spec | None, Spec, int], set[int | None]] = field(default_factory=dict)
    egress: dict[tuple[Spec | None, Spec, int], set[int | None]] = field(default_factory=dict)
    order: int = 100


def _net(ip: str) -> Spec:
    addr = ipaddress.ip_address(ip)
    return ("net", f"{addr}/{addr.max_prefixlen}")


def _dns1123(text: str) -> str:
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return out[:50].strip("-") or "workload"


class _Builder:
    def __init__(self, inv: Inventory, *, scope: str, fmt: str, tier: str, namespaces: set[str] | None) -> None:
        self.inv = inv
        self.scope = scope
        self.fmt = fmt
        self.tier = tier
        self.namespaces = namespaces
        self.ids = Identities(inv.endpoints)
        self.policies: dict[tuple[str, tuple[tuple[str, str], ...] | None], _Policy] = {}
        self.warnings: list[str] = []
        self._warned: set[str] = set()

    def warn(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            self.warnings.append(text)

    def in_scope(self, ep: Endpoint | None) -> bool:
        return ep is not None and ep.kind is EndpointKind.POD and (
            self.namespaces is None or ep.namespace in self.namespaces)

    def peer_spec(self, peer: Peer) -> Spec | None:
        ep = peer.endpoint or peer.fallback
        if ep is not None and ep.kind is EndpointKind.POD:
            ident = self.ids.of(ep) if peer.endpoint is not None else tuple(
                (k, ep.labels[k]) for k in _key_order(stable_labels(ep.labels)))
            if ident:
                return ("sel", ep.namespace, ident)
        ips = ep.ips if ep is not None else ()
        if ips:
            return _net(ips[0])
        try:
            return _net(peer.ref)
        except ValueError:
            pass
        if ep is None and peer.known:  # a DNS name from dest_domains (no address recorded)
            return ("dom", peer.ref)
        return None

    def policy_for(self, ep: Endpoint) -> tuple[_Policy, Spec | None]:
        """The policy that carries ``ep``'s rules and the local-side constraint its rules need."""
        ident = self.ids.of(ep)
        if self.scope == "workload" and ident:
            key: tuple[str, tuple[tuple[str, str], ...] | None] = (ep.namespace, ident)
            local: Spec | None = None
        else:
            key = (ep.namespace, None)
            local = ("sel", ep.namespace, ident) if ident else _net(ep.ips[0])
        pol = self.policies.get(key)
        if pol is None:
            pol = self.policies[key] = self._new_policy(ep.namespace, key[1])
        return pol, local

    def _new_policy(self, namespace: str, ident: tuple[tuple[str, str], ...] | None) -> _Policy:
        if ident is None:
            name = "recommended-namespace" if self.scope == "namespace" else "recommended-default-deny"
            return _Policy(namespace, name, None, order=200 if self.scope == "workload" else 100)
        base = "recommended-" + _dns1123("-".join(v for _, v in ident))
        name, n = base, 2
        taken = {p.name for p in self.policies.values() if p.namespace == namespace}
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        return _Policy(namespace, name, ident)

    def ensure_all(self) -> None:
        """Every pod in scope gets a policy even without flows (so it is denied everything)."""
        for ep in self.inv.endpoints:
            if self.in_scope(ep):
                self.policy_for(ep)
        if self.scope == "workload":
            for ns in sorted({e.namespace for e in self.inv.endpoints if self.in_scope(e)}):
                if (ns, None) not in self.policies:
                    self.policies[(ns, None)] = self._new_policy(ns, None)

    def add(self, src: Peer, dst: Peer, proto: int, port: int | None) -> bool:
        used = False
        if self.in_scope(src.endpoint):
            assert src.endpoint is not None
            peer = self.peer_spec(dst)
            if peer is not None:
                pol, local = self.policy_for(src.endpoint)
                pol.egress.setdefault((local, peer, proto), set()).add(port)
                used = True
        if self.in_scope(dst.endpoint):
            assert dst.endpoint is not None
            peer = self.peer_spec(src)
            if peer is not None and peer[0] != "dom":
                pol, local = self.policy_for(dst.endpoint)
                pol.ingress.setdefault((local, peer, proto), set()).add(port)
                used = True
        return used

    # ------------------------------------------------------------------ rendering
    def _ports(self, ports: set[int | None], proto: int, endpoints: list[Endpoint]) -> list[int | str] | None:
        if None in ports:
            return None
        proto_name = _K8S_PROTOCOLS.get(proto, "")
        out: list[int | str] = []
        for port in sorted(p for p in ports if p is not None):
            names = {next((np.name for np in e.ports if np.port == port and np.protocol == proto_name and np.name),
                          "") for e in endpoints}
            name = names.pop() if len(names) == 1 else ""
            out.append(name if name and endpoints else port)
        return list(dict.fromkeys(out))

    def _endpoints_of(self, spec: Spec | None, fallback: list[Endpoint]) -> list[Endpoint]:
        if spec is None:
            return fallback
        if spec[0] == "sel":
            assert len(spec) == 3
            return self.ids.members(spec[1], spec[2])
        return []

    def _calico_entity(self, spec: Spec, namespace: str) -> dict[str, Any]:
        if spec[0] == "net":
            return {"nets": [spec[1]]}
        if spec[0] == "dom":
            return {"domains": [spec[1]]}
        assert len(spec) == 3
        out: dict[str, Any] = {"selector": " && ".join(f"{k} == {_q(v)}" for k, v in spec[2])}
        if spec[1] != namespace:
            out["namespaceSelector"] = f"projectcalico.org/name == {_q(spec[1])}"
        return out

    def _k8s_peer(self, spec: Spec, namespace: str) -> dict[str, Any] | None:
        if spec[0] == "net":
            return {"ipBlock": {"cidr": spec[1]}}
        if spec[0] == "dom":
            return None
        assert len(spec) == 3
        out: dict[str, Any] = {"podSelector": {"matchLabels": dict(spec[2])}}
        if spec[1] != namespace:
            out["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": spec[1]}}
        return out

    def render(self) -> list[dict[str, Any]]:
        docs: list[dict[str, Any]] = []
        if self.fmt == "calico" and self.tier != "default":
            docs.append({"apiVersion": CALICO, "kind": "Tier", "metadata": {"name": self.tier},
                         "spec": {"order": 100}})
        render = self._calico if self.fmt == "calico" else self._k8s
        docs.extend(render(pol) for pol in sorted(self.policies.values(), key=lambda p: (p.namespace, p.order, p.name)))
        return docs

    def _subject(self, pol: _Policy) -> list[Endpoint]:
        if pol.selector is None:
            return [e for e, _ in self.ids.by_ns.get(pol.namespace, [])]
        return self.ids.members(pol.namespace, pol.selector)

    def _calico(self, pol: _Policy) -> dict[str, Any]:
        subject = self._subject(pol)
        ingress, egress = [], []
        for (local, peer, proto), ports in sorted(pol.ingress.items(), key=_rule_sort):
            rule: dict[str, Any] = {"action": "Allow", "protocol": _CALICO_PROTOCOLS.get(proto, proto),
                                    "source": self._calico_entity(peer, pol.namespace)}
            dest: dict[str, Any] = self._calico_entity(local, pol.namespace) if local is not None else {}
            plist = self._ports(ports, proto, self._endpoints_of(local, subject))
            if plist is not None:
                dest["ports"] = plist
            if dest:
                rule["destination"] = dest
            ingress.append(rule)
        for (local, peer, proto), ports in sorted(pol.egress.items(), key=_rule_sort):
            rule = {"action": "Allow", "protocol": _CALICO_PROTOCOLS.get(proto, proto)}
            if local is not None:
                rule["source"] = self._calico_entity(local, pol.namespace)
            dest = self._calico_entity(peer, pol.namespace)
            plist = self._ports(ports, proto, self._endpoints_of(peer, []))
            if plist is not None:
                dest["ports"] = plist
            rule["destination"] = dest
            egress.append(rule)
        name = pol.name if self.tier == "default" else f"{self.tier}.{pol.name}"
        selector = "all()" if pol.selector is None else " && ".join(f"{k} == {_q(v)}" for k, v in pol.selector)
        spec: dict[str, Any] = {"tier": self.tier, "order": pol.order, "selector": selector,
                                "types": ["Ingress", "Egress"]}
        if ingress:
            spec["ingress"] = ingress
        if egress:
            spec["egress"] = egress
        return {"apiVersion": CALICO, "kind": "StagedNetworkPolicy",
                "metadata": {"name": name, "namespace": pol.namespace, "labels": {_RECOMMENDED_LABEL: "true"}},
                "spec": spec}

    def _k8s(self, pol: _Policy) -> dict[str, Any]:
        subject = self._subject(pol)
        rules: dict[str, list[dict[str, Any]]] = {"ingress": [], "egress": []}
        for direction, entries in (("ingress", pol.ingress), ("egress", pol.egress)):
            merged: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
            for (local, peer, proto), ports in sorted(entries.items(), key=_rule_sort):
                if local is not None:
                    self.warn(f"{pol.namespace}: Kubernetes NetworkPolicy cannot pin a rule to one pod of the "
                              "namespace; the namespace-wide rules allow the observed peers to every pod")
                proto_name = _K8S_PROTOCOLS.get(proto)
                if proto_name is None:
                    self.warn(f"{pol.namespace}/{pol.name}: protocol {PROTO_NAMES.get(proto, proto)} has no "
                              "Kubernetes NetworkPolicy form; those flows are not allowed")
                    continue
                k8s_peer = self._k8s_peer(peer, pol.namespace)
                if k8s_peer is None:
                    self.warn(f"{pol.namespace}/{pol.name}: DNS-name destinations have no Kubernetes form; "
                              "use --format calico")
                    continue
                targets = self._endpoints_of(local, subject) if direction == "ingress" else \
                    self._endpoints_of(peer, [])
                plist = self._ports(ports, proto, targets)
                port_items = [{"protocol": proto_name}] if plist is None else [
                    {"protocol": proto_name, "port": p} for p in plist]
                key = yaml.safe_dump(k8s_peer, sort_keys=True)
                if key not in merged:
                    merged[key] = (k8s_peer, [])
                merged[key][1].extend(port_items)
            for k8s_peer, port_items in merged.values():
                # egress: one port per rule (the loader currently gives every port of a multi-port egress
                # rule with a peer the last port; one port per rule loads right everywhere)
                chunks = [port_items] if direction == "ingress" else [[p] for p in port_items]
                rules[direction].extend({"from" if direction == "ingress" else "to": [k8s_peer], "ports": chunk}
                                        for chunk in chunks)
        spec: dict[str, Any] = {
            "podSelector": {} if pol.selector is None else {"matchLabels": dict(pol.selector)},
            "policyTypes": ["Ingress", "Egress"]}
        if rules["ingress"]:
            spec["ingress"] = rules["ingress"]
        if rules["egress"]:
            spec["egress"] = rules["egress"]
        return {"apiVersion": CALICO, "kind": "StagedKubernetesNetworkPolicy",
                "metadata": {"name": pol.name, "namespace": pol.namespace, "labels": {_RECOMMENDED_LABEL: "true"}},
                "spec": spec}


def _rule_sort(item: tuple[tuple[Spec | None, Spec, int], set[int | None]]) -> tuple[str, str, int]:
    (local, peer, proto), _ = item
    return (repr(local), repr(peer), proto)


def _q(value: str) -> str:
    return f"'{value}'" if '"' in value else f'"{value}"'


def recommend(inv: Inventory, records: Iterable[FlowRecord], *, scope: str = "namespace", fmt: str = "calico",
              tier: str = "default", namespace: str | None = None, include_denied: bool = False) -> Recommendation:
    """Staged least-privilege policies that allow exactly the observed flows (see module docstring)."""
    if scope not in SCOPES:
        raise ConfigError(f"unknown scope {scope!r}; choose from {', '.join(SCOPES)}")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "k8s" and tier != "default":
        raise ConfigError("Kubernetes NetworkPolicy lives in the default tier; --tier needs --format calico")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", tier):
        raise ConfigError(f"--tier {tier!r}: expected a DNS-1123 label")
    namespaces = {namespace} if namespace else None
    if namespace and not any(e.namespace == namespace for e in inv.endpoints):
        raise ConfigError(f"--namespace {namespace!r}: no pods of that namespace in the inventory")
    b = _Builder(inv, scope=scope, fmt=fmt, tier=tier, namespaces=namespaces)
    out = Recommendation()
    resolver = Resolver(inv.endpoints)
    seen: set[tuple[str, str, int, int | None]] = set()
    for rec in records:
        if rec.action != "allow" and not include_denied:
            out.flows_skipped += 1
            continue
        src, dst = resolver.resolve(rec, "source"), resolver.resolve(rec, "dest")
        if src is None or dst is None:
            out.flows_skipped += 1
            continue
        for peer in (src, dst):
            if not peer.known:
                out.unknown[peer.display] = out.unknown.get(peer.display, 0) + 1
        key = (src.display, dst.display, rec.proto_number, rec.dest_port)
        if key in seen:
            out.flows_used += 1
            continue
        seen.add(key)
        if b.add(src, dst, rec.proto_number, rec.dest_port):
            out.flows_used += 1
        else:
            out.flows_skipped += 1
    b.ensure_all()
    out.documents = b.render()
    out.warnings = b.warnings
    return out


# ---------------------------------------------------------------------------------------------- promote
_PROMOTE = {"StagedNetworkPolicy": (CALICO, "NetworkPolicy"),
            "StagedGlobalNetworkPolicy": (CALICO, "GlobalNetworkPolicy"),
            "StagedKubernetesNetworkPolicy": (K8S_NP, "NetworkPolicy")}


@dataclass(slots=True)
class Promotion:
    documents: list[dict[str, Any]] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        return yaml.safe_dump_all(self.documents, sort_keys=False, default_flow_style=False, width=4096)


def promote(objects: Iterable[Mapping[str, Any]]) -> Promotion:
    """Staged policies -> enforced kinds (Calico's conversion); other documents unchanged."""
    out = Promotion()
    for obj in objects:
        target = _PROMOTE.get(str(obj.get("kind", ""))) if obj.get("apiVersion") == CALICO else None
        if target is None:
            out.documents.append(dict(obj))
            continue
        meta = {k: v for k, v in dict(obj.get("metadata") or {}).items() if k not in ("resourceVersion", "uid")}
        spec = {k: v for k, v in dict(obj.get("spec") or {}).items() if k != "stagedAction"}
        ref = f"{target[1]} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta.get('name', '')}"
        if str((obj.get("spec") or {}).get("stagedAction", "Set")) == "Delete":
            out.deletions.append(ref)
            continue
        out.documents.append({"apiVersion": target[0], "kind": target[1], "metadata": meta, "spec": spec})
        out.promoted.append(ref)
    return out
