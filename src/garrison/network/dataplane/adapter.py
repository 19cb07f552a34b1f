"""From the policy engine's model (:class:`~garrison.network.ir.PolicySet` + inventory) to the dataplane IR.

The engine already knows how to fold namespaces, namespace selectors and service accounts into one
*effective selector* over endpoint labels (:meth:`EntityMatch.effective_selector`,
:meth:`Policy.applies_selector`) and how to resolve a selector to endpoints
(:meth:`Evaluator.resolve_selector`), so the dataplane reuses exactly that: one nftables set per
distinct canonical selector, filled with the addresses of the endpoints it matches plus the
CIDRs of the NetworkSets whose labels it matches. Because both sides use the same resolution, the
kernel and the evaluator cannot disagree on *who* a selector means, only on evaluation, which the
e2e conformance test checks pair by pair.

Endpoints keep their first IPv4 and first IPv6 address (dual stack); selector sets hold both
families and the compiler splits them. Host endpoints (Calico HostEndpoint) become endpoints with
``host=True``: their node-side interface is ``interfaceName`` (or, without one, their
``expectedIPs`` identify the traffic), and, as in the evaluator, only global policies select them.

Not expressible here (reported through :attr:`AdapterResult.skipped`): all-interfaces host
endpoints (``interfaceName: "*"``) and host endpoints with profiles (user-defined profiles are not
programmed).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from garrison.model.network import Action, EndpointKind
from garrison.network import ir as eng
from garrison.network.dataplane.ir import DataplaneInput, Endpoint, Peer, Policy, PortRange, Rule, Tier, set_name
from garrison.network.evaluator import Evaluator
from garrison.network.inventory import Inventory
from garrison.network.selector import parse


@dataclass(slots=True)
class AdapterResult:
    data: DataplaneInput
    evaluator: Evaluator
    skipped: list[str] = field(default_factory=list)


def _ip(ip: str) -> int:
    """4 or 6 for an address, 0 for anything else."""
    try:
        return ipaddress.ip_address(ip).version
    except ValueError:
        return 0


class _Adapter:
    def __init__(self, pset: eng.PolicySet, inventory: Inventory, ifaces: Mapping[str, str]) -> None:
        self.pset = pset
        self.ev = Evaluator(pset, inventory)
        self.ifaces = ifaces
        self.sets: dict[str, frozenset[str]] = {}
        self.skipped: list[str] = []

    def selector_set(self, selector: str) -> str:
        canon = parse(selector).canonical
        name = set_name(canon)
        if name not in self.sets:
            members = {ip for e in self.ev.resolve_selector(canon) for ip in e.ips if _ip(ip)}
            sel = parse(canon)
            for ns, labels in zip(self.ev.network_sets, self.ev._netset_labels, strict=True):
                if sel.matches(labels):
                    members.update(str(n) for n in ns.nets)
            self.sets[name] = frozenset(members)
        return name

    def peer(self, ent: eng.EntityMatch, namespace: str, where: str) -> Peer:
        eff = ent.effective_selector(namespace)
        if ent.not_selector and eff is None and namespace:
            eff = replace(ent, selector="all()").effective_selector(namespace)
        sets = (self.selector_set(eff),) if eff is not None else ()
        not_sets = (self.selector_set(ent.not_selector),) if ent.not_selector else ()
        nets = tuple(str(n) for n in ent.nets)
        ports = tuple(PortRange(p.first, p.last) for p in ent.ports if not p.name)
        named = tuple(p.name for p in ent.ports if p.name)
        not_ports = tuple(PortRange(p.first, p.last) for p in ent.not_ports if not p.name)
        return Peer(
            not_named_ports=tuple(p.name for p in ent.not_ports if p.name),
            sets=sets,
            not_sets=not_sets,
            nets=nets,
            not_nets=tuple(str(n) for n in ent.not_nets),
            ports=ports,
            named_ports=named,
            not_ports=not_ports,
            domains=tuple(ent.domains),
        )

    def rules(self, pol: eng.Policy, direction: str) -> tuple[Rule, ...]:
        out = []
        for idx, r in enumerate(pol.rules(direction)):
            where = f"{pol.key} {direction} rule {idx}"
            src = self.peer(r.source, pol.namespace, where)
            dst = self.peer(r.destination, pol.namespace, where)
            out.append(
                Rule(
                    action=r.action.value,
                    protocol=r.protocol,
                    not_protocol=r.not_protocol,
                    icmp_type=r.icmp.type if r.icmp else None,
                    icmp_code=r.icmp.code if r.icmp else None,
                    not_icmp_type=r.not_icmp.type if r.not_icmp else None,
                    not_icmp_code=r.not_icmp.code if r.not_icmp else None,
                    ip_version=r.ip_version,
                    src=src,
                    dst=dst,
                    index=idx,
                )
            )
        return tuple(out)

    def run(self) -> DataplaneInput:
        endpoints = []
        heps: set[str] = set()
        for e in self.ev.endpoints:
            ip = next((ip for ip in e.ips if _ip(ip) == 4), "")
            ip6 = next((ip for ip in e.ips if _ip(ip) == 6), "")
            host = e.kind is EndpointKind.HOST
            iface = self.ifaces.get(e.key, e.interface if host else "")
            if host:
                heps.add(e.key)
                if e.interface == "*" or e.profiles:
                    what = "all-interfaces (interfaceName '*')" if e.interface == "*" else "with profiles"
                    self.skipped.append(f"host endpoint {e.key}: {what} host endpoints are not programmed")
                    continue
                if not (iface or ip or ip6):
                    self.skipped.append(f"host endpoint {e.key}: neither interfaceName nor expectedIPs")
                    continue
            elif e.kind is not EndpointKind.POD or not (ip or ip6):
                continue
            endpoints.append(
                Endpoint(
                    key=e.key,
                    ip=ip,
                    ip6=ip6,
                    iface=iface,
                    named_ports=tuple((p.name, p.protocol, p.port) for p in e.ports),
                    labels=tuple(sorted(e.labels.items())),
                    host=host,
                )
            )
        tiers = [
            Tier(t.name, t.order, "pass" if t.default_action is Action.PASS else "deny")
            for t in self.pset.ordered_tiers()
        ]
        policies = []
        for p in self.pset.policies:
            selected = frozenset(e.key for e in self.ev.resolve_selector(p.applies_selector()))
            if not p.global_scope and p.kind not in ("GlobalNetworkPolicy", "StagedGlobalNetworkPolicy"):
                selected -= heps  # as the evaluator: only global policies apply to host endpoints
            policies.append(
                Policy(
                    name=p.flow_log_name,
                    tier=p.tier,
                    order=p.order,
                    selected=selected,
                    ingress=self.rules(p, "ingress"),
                    egress=self.rules(p, "egress"),
                    types=frozenset(t.lower() for t in p.types),
                    staged=p.staged,
                )
            )
        return DataplaneInput(endpoints=endpoints, tiers=tiers, policies=policies, sets=self.sets)


def from_policy_set(
    pset: eng.PolicySet, inventory: Inventory, ifaces: Mapping[str, str] | None = None
) -> AdapterResult:
    """Dataplane IR for ``pset`` over ``inventory``; ``ifaces`` maps endpoint keys to node-side interfaces."""
    a = _Adapter(pset, inventory, ifaces or {})
    data = a.run()
    return AdapterResult(data, a.ev, a.skipped)
