"""From the policy engine's model (:class:`~garrison.network.ir.PolicySet` + inventory) to the dataplane IR.

The engine already knows how to fold namespaces, namespace selectors and service accounts into one
*effective selector* over endpoint labels (:meth:`EntityMatch.effective_selector`,
:meth:`Policy.applies_selector`) and how to resolve a selector to endpoints
(:meth:`Evaluator.resolve_selector`), so the dataplane reuses exactly that: one nftables set per
distinct canonical selector, filled with the IPv4 addresses of the endpoints it matches plus the
CIDRs of the NetworkSets whose labels it matches. Because both sides use the same resolution, the
kernel and the evaluator cannot disagree on *who* a selector means, only on evaluation, which the
e2e conformance test checks pair by pair.

Not expressible here (reported through :attr:`AdapterResult.skipped`): IPv6-only rules (this
dataplane programs IPv4), ``notICMP``, named ports in ``notPorts`` or as source ports, and host
endpoints (their traffic goes through the node's input/output hooks, which this table does not
program).
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


def _v4(ip: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(ip), ipaddress.IPv4Address)
    except ValueError:
        return False


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
            members = {ip for e in self.ev.resolve_selector(canon) for ip in e.ips if _v4(ip)}
            sel = parse(canon)
            for ns, labels in zip(self.ev.network_sets, self.ev._netset_labels, strict=True):
                if sel.matches(labels):
                    members.update(str(n) for n in ns.nets if n.version == 4)
            self.sets[name] = frozenset(members)
        return name

    def peer(self, ent: eng.EntityMatch, namespace: str, where: str) -> Peer | None:
        eff = ent.effective_selector(namespace)
        if ent.not_selector and eff is None and namespace:
            eff = replace(ent, selector="all()").effective_selector(namespace)
        sets = (self.selector_set(eff),) if eff is not None else ()
        not_sets = (self.selector_set(ent.not_selector),) if ent.not_selector else ()
        nets = tuple(str(n) for n in ent.nets)
        if ent.nets and not any(n.version == 4 for n in ent.nets):
            return None
        ports = tuple(PortRange(p.first, p.last) for p in ent.ports if not p.name)
        named = tuple(p.name for p in ent.ports if p.name)
        if any(p.name for p in ent.not_ports):
            self.skipped.append(f"{where}: named ports in notPorts are not supported by the dataplane")
            return None
        not_ports = tuple(PortRange(p.first, p.last) for p in ent.not_ports)
        return Peer(
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
            if r.ip_version == 6:
                continue
            if r.not_icmp is not None:
                self.skipped.append(f"{where}: notICMP is not supported by the dataplane")
                continue
            src = self.peer(r.source, pol.namespace, where)
            dst = self.peer(r.destination, pol.namespace, where)
            if src is None or dst is None:
                continue
            if src.named_ports:
                self.skipped.append(f"{where}: named source ports are not supported by the dataplane")
                continue
            out.append(
                Rule(
                    action=r.action.value,
                    protocol=r.protocol,
                    not_protocol=r.not_protocol,
                    icmp_type=r.icmp.type if r.icmp else None,
                    icmp_code=r.icmp.code if r.icmp else None,
                    src=src,
                    dst=dst,
                    index=idx,
                )
            )
        return tuple(out)

    def run(self) -> DataplaneInput:
        endpoints = []
        for e in self.ev.endpoints:
            ip = next((ip for ip in e.ips if _v4(ip)), "")
            if e.kind is not EndpointKind.POD or not ip:
                continue
            endpoints.append(
                Endpoint(
                    key=e.key,
                    ip=ip,
                    iface=self.ifaces.get(e.key, ""),
                    named_ports=tuple((p.name, p.protocol, p.port) for p in e.ports),
                    labels=tuple(sorted(e.labels.items())),
                )
            )
        tiers = [
            Tier(t.name, t.order, "pass" if t.default_action is Action.PASS else "deny")
            for t in self.pset.ordered_tiers()
        ]
        policies = []
        for p in self.pset.policies:
            selected = frozenset(e.key for e in self.ev.resolve_selector(p.applies_selector()))
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
