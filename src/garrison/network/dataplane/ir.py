"""The dataplane's input: policies after selector evaluation, ready to become nftables objects.

The policy engine speaks selectors and label maps; the kernel speaks IP addresses. This IR is the
seam between them: every selector is already resolved to the set of endpoint addresses it matches
(:attr:`DataplaneInput.sets`, keyed by a stable name derived from the selector's canonical text),
named ports are kept by name (the compiler resolves them per destination endpoint), and the order
of evaluation is explicit (tiers in order, policies in order inside a tier, rules in order).

Anything that produces this IR can drive the dataplane: the adapter over the policy engine
(:mod:`garrison.network.dataplane.adapter`, every policy format the engine loads), or a test.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["allow", "deny", "pass", "log"]
TierDefault = Literal["deny", "pass"]
PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "SCTP": 132, "ICMP": 1, "ICMPV6": 58, "UDPLITE": 136}


# Felix's defaults (FailsafeInboundHostPorts / FailsafeOutboundHostPorts): SSH, DHCP, BGP, etcd, Typha,
# the Kubernetes API server; DNS and DHCP out
FAILSAFE_INBOUND: tuple[tuple[str, int], ...] = (
    ("TCP", 22), ("UDP", 68), ("TCP", 179), ("TCP", 2379), ("TCP", 2380), ("TCP", 5473), ("TCP", 6443),
    ("TCP", 6666), ("TCP", 6667),
)
FAILSAFE_OUTBOUND: tuple[tuple[str, int], ...] = (
    ("UDP", 53), ("UDP", 67), ("TCP", 179), ("TCP", 2379), ("TCP", 2380), ("TCP", 5473), ("TCP", 6443),
    ("TCP", 6666), ("TCP", 6667),
)


@dataclass(slots=True, frozen=True)
class PortRange:
    """An inclusive port range; a single port has ``lo == hi``."""

    lo: int
    hi: int


@dataclass(slots=True, frozen=True)
class Peer:
    """One side of a rule (Calico EntityRule). Empty fields match anything.

    ``sets`` must all contain the address (AND), ``not_sets`` none of them. ``nets`` is an OR of
    CIDRs, ``not_nets`` excludes CIDRs. Ports apply to the transport header of this side; named
    ports (and named ``notPorts``) resolve against this side's endpoint, so a named source port
    means the source workload's port of that name, as in Calico.
    """

    sets: tuple[str, ...] = ()
    not_sets: tuple[str, ...] = ()
    nets: tuple[str, ...] = ()
    not_nets: tuple[str, ...] = ()
    ports: tuple[PortRange, ...] = ()
    named_ports: tuple[str, ...] = ()
    not_ports: tuple[PortRange, ...] = ()
    domains: tuple[str, ...] = ()
    not_named_ports: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class Rule:
    action: Action
    protocol: str | int | None = None  # "TCP" | "UDP" | "SCTP" | "ICMP" | number | None (any)
    not_protocol: str | int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    not_icmp_type: int | None = None
    not_icmp_code: int | None = None
    ip_version: int | None = None  # 4 | 6 | None (both)
    src: Peer = field(default_factory=Peer)
    dst: Peer = field(default_factory=Peer)
    index: int = 0  # the rule's index in its policy, as flow logs report it


@dataclass(slots=True, frozen=True)
class Policy:
    """A policy of one tier, already resolved to the endpoints it selects (by endpoint key)."""

    name: str  # "ns/name" for namespaced policies, "name" for global ones
    tier: str = "default"
    order: float | None = None
    selected: frozenset[str] = frozenset()
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    types: frozenset[str] = frozenset({"ingress"})  # which directions the policy applies to
    staged: bool = False


@dataclass(slots=True, frozen=True)
class Tier:
    name: str
    order: float | None = None
    default_action: TierDefault = "deny"


@dataclass(slots=True, frozen=True)
class Endpoint:
    """A workload endpoint: key ``ns/name``, its IPv4 and/or IPv6 address, and the node-side interface."""

    key: str
    ip: str  # IPv4 ("" for an IPv6-only endpoint)
    iface: str = ""
    named_ports: tuple[tuple[str, str, int], ...] = ()  # (name, PROTO, port)
    labels: tuple[tuple[str, str], ...] = ()
    ip6: str = ""
    host: bool = False  # a host endpoint: enforced on the node's own traffic (input/output hooks)


@dataclass(slots=True)
class DataplaneInput:
    endpoints: list[Endpoint]
    tiers: list[Tier]
    policies: list[Policy]
    sets: dict[str, frozenset[str]] = field(default_factory=dict)  # set name -> member IPs/CIDRs (v4 and v6)
    domains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # DNS set name -> allowed patterns
    # host endpoints: traffic always allowed whatever the policy, as (PROTO, port) to the host / from it
    failsafe_in: tuple[tuple[str, int], ...] = FAILSAFE_INBOUND
    failsafe_out: tuple[tuple[str, int], ...] = FAILSAFE_OUTBOUND


def set_name(key: str) -> str:
    """A stable nftables set name for a selector (or any resolution key): ``s_`` + 12 hex chars."""
    return "s_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def order_key(order: float | None, name: str) -> tuple[int, float, str]:
    """Calico's ordering: by order ascending, absent order last, then by name."""
    return (1, 0.0, name) if order is None else (0, order, name)
