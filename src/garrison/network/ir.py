"""The policy IR: what every loader produces and what the evaluator and the dataplane consume.

Shape (all plain slotted dataclasses, no behaviour beyond derived selectors)::

    PolicySet
      tiers:     [Tier(name, order, default_action)]      sorted: order (None = last), then name
      policies:  [Policy]                                  sorted per tier: order (None = last), then key
        Policy(kind, name, namespace, tier, order, selector, types, ingress, egress, staged, ...)
          Rule(action, protocol, not_protocol, icmp, not_icmp, ip_version, source, destination)
            EntityMatch(selector, not_selector, namespace_selector, service_account_names,
                        service_account_selector, nets, not_nets, ports, not_ports, domains)
      profiles, network_sets, host_endpoints, warnings

Evaluation order (Calico): tiers by order then name; inside a tier, policies by order then name;
inside a policy, rules in order and the first matching Allow/Deny/Pass wins (Log is not terminal);
when no rule of a tier's applicable policies matches, the tier's default action applies (Deny, or
Pass when ``default_action`` says so); a tier with no applicable enforced policy is skipped; after
the last tier a pod falls to its namespace profile (``kns.<ns>``: allow), a host endpoint to
deny. Staged policies (``staged=True``) are evaluated only for the pending trace.

Selectors in the IR are Calico selector strings as written. :meth:`Policy.applies_selector` and
:meth:`EntityMatch.effective_selector` fold the namespace, namespace selector and service-account
constraints into one selector over endpoint labels, using the special labels Calico puts on every
workload (``projectcalico.org/namespace``, ``pcns.*`` namespace labels, ``pcsa.*`` service-account
labels); the dataplane turns each distinct effective selector into one nftables set.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from garrison.model.network import Action, Endpoint

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NS_LABEL = "projectcalico.org/namespace"
ORCH_LABEL = "projectcalico.org/orchestrator"
SA_LABEL = "projectcalico.org/serviceaccount"
NAME_LABEL = "projectcalico.org/name"
NS_PREFIX = "pcns."
SA_PREFIX = "pcsa."

DEFAULT_TIER = "default"
DEFAULT_TIER_ORDER = 1_000_000.0
ADMIN_TIER = "adminnetworkpolicy"
BASELINE_TIER = "baselineadminnetworkpolicy"
KUBE_ADMIN_TIER = "kube-admin"
KUBE_BASELINE_TIER = "kube-baseline"
ADMIN_TIER_ORDER = 1_000.0
BASELINE_TIER_ORDER = 10_000_000.0

PROTOCOLS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58, "SCTP": 132, "UDPLITE": 136}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()} | {58: "ICMPv6", 136: "UDPLite"}


def protocol_name(number: int) -> str:
    return PROTOCOL_NAMES.get(number, str(number))


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive port range, or a named port (``name`` set, ``first == last == 0``)."""

    first: int = 0
    last: int = 0
    name: str = ""

    def __str__(self) -> str:
        if self.name:
            return self.name
        return str(self.first) if self.first == self.last else f"{self.first}:{self.last}"

    def covers(self, other: PortRange) -> bool:
        if self.name or other.name:
            return self == other
        return self.first <= other.first and other.last <= self.last


@dataclass(frozen=True, slots=True)
class Icmp:
    type: int | None = None
    code: int | None = None


@dataclass(slots=True)
class EntityMatch:
    """One side (source or destination) of a rule. Empty fields do not constrain."""

    selector: str | None = None
    not_selector: str | None = None
    namespace_selector: str | None = None
    service_account_names: tuple[str, ...] = ()
    service_account_selector: str | None = None
    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()
    ports: tuple[PortRange, ...] = ()
    not_ports: tuple[PortRange, ...] = ()
    domains: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.selector or self.not_selector or self.namespace_selector or self.service_account_names
                    or self.service_account_selector or self.nets or self.not_nets or self.ports or self.not_ports
                    or self.domains)

    def has_endpoint_constraint(self) -> bool:
        return bool(self.selector or self.not_selector or self.namespace_selector or self.service_account_names
                    or self.service_account_selector)

    def effective_selector(self, policy_namespace: str) -> str | None:
        """The positive selector over endpoint labels (``None`` = any endpoint, any address).

        Calico's ``getEndpointSelector``: a ``namespaceSelector`` is rewritten onto the ``pcns.``
        labels, with ``all()`` meaning "any namespaced endpoint" and ``global()`` "any
        non-namespaced entity"; in a namespaced policy without one, the rule is confined to the
        policy's namespace as soon as any selector field (including ``notSelector``) is used;
        service accounts go onto ``projectcalico.org/serviceaccount`` and the ``pcsa.`` labels.
        """
        from garrison.network.selector import parse

        ns_sel = ""
        if self.namespace_selector:
            ns_sel = namespace_selector_expr(self.namespace_selector)
        elif policy_namespace:
            ns_sel = f"{NS_LABEL} == {_q(policy_namespace)}"
        selectors: list[str] = []
        sa = self.service_account_expr()
        if sa:
            selectors.append(sa)
        if self.selector:
            selectors.append(parse(self.selector).canonical)
        selector = ""
        if len(selectors) == 1:
            selector = selectors[0]
        elif selectors:
            selector = "(" + ") && (".join(selectors) + ")"
        if ns_sel and (selector or self.not_selector or self.namespace_selector):
            selector = f"({ns_sel}) && ({selector})" if selector else ns_sel
        return selector or None

    def service_account_expr(self) -> str:
        """Calico's ``parseServiceAccounts``: ``pcsa.``-prefixed selector AND ``serviceaccount in {names}``."""
        from garrison.network.selector import parse

        out = ""
        if self.service_account_selector:
            out = parse(self.service_account_selector).with_prefix(SA_PREFIX).canonical
        if self.service_account_names:
            names = parse(f"{SA_LABEL} in {{{', '.join(_q(n) for n in self.service_account_names)}}}").canonical
            out = f"({out}) && ({names})" if out else names
        return out

    def effective_not_selector(self, policy_namespace: str) -> str | None:
        """The ``notSelector``, used as written (Calico does not namespace it; the positive side is)."""
        return self.not_selector or None


def namespace_selector_expr(namespace_selector: str) -> str:
    """A namespace selector over endpoint labels, exactly as Calico rewrites it (``pcns.`` prefix,
    then ``all()`` -> ``has(projectcalico.org/namespace)``, ``global()`` -> its negation)."""
    from garrison.network.selector import parse

    text = parse(namespace_selector).with_prefix(NS_PREFIX).canonical
    text = text.replace("all()", f"has({NS_LABEL})")
    return text.replace("global()", f"!has({NS_LABEL})")


def _q(value: str) -> str:
    q = "'" if '"' in value else '"'
    return f"{q}{value}{q}"


@dataclass(slots=True)
class Rule:
    action: Action
    protocol: int | None = None
    not_protocol: int | None = None
    icmp: Icmp | None = None
    not_icmp: Icmp | None = None
    ip_version: int | None = None
    source: EntityMatch = field(default_factory=EntityMatch)
    destination: EntityMatch = field(default_factory=EntityMatch)
    name: str = ""


@dataclass(slots=True)
class Tier:
    name: str
    order: float | None = None
    default_action: Action = Action.DENY
    source: str = ""

    def sort_key(self) -> tuple[float, str]:
        return (self.order if self.order is not None else float("inf"), self.name)


@dataclass(slots=True)
class Policy:
    """One policy after conversion to Calico's model.

    ``kind`` is the kind as written (``NetworkPolicy``, ``GlobalNetworkPolicy``,
    ``KubernetesNetworkPolicy`` for networking.k8s.io, ``AdminNetworkPolicy``,
    ``BaselineAdminNetworkPolicy``, ``ClusterNetworkPolicy``); ``name`` is the name Calico gives the
    converted policy (``knp.default.<name>``, ``kanp.adminnetworkpolicy.<name>``, ``<tier>.<name>``
    for Calico policies in a tier).
    """

    kind: str
    name: str
    namespace: str = ""
    tier: str = DEFAULT_TIER
    order: float | None = None
    selector: str = "all()"
    namespace_selector: str | None = None  # GlobalNetworkPolicy spec.namespaceSelector
    service_account_selector: str | None = None
    types: tuple[str, ...] = ("Ingress",)
    ingress: list[Rule] = field(default_factory=list)
    egress: list[Rule] = field(default_factory=list)
    staged: bool = False
    staged_action: str = "Set"
    source: str = ""  # file:document for messages
    original_name: str = ""
    global_scope: bool = False  # applies to host endpoints too

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def sort_key(self) -> tuple[float, str]:
        return (self.order if self.order is not None else float("inf"), self.key)

    @property
    def flow_log_name(self) -> str:
        """The policy name as Calico flow logs print it (``ns/tier.staged:name`` for staged ones)."""
        name = self.name
        if self.staged:
            if name.startswith("knp.default."):
                name = "staged:" + name
            elif name.startswith(self.tier + "."):
                name = f"{self.tier}.staged:{name[len(self.tier) + 1:]}"
            else:
                name = "staged:" + name
        return f"{self.namespace}/{name}" if self.namespace else name

    def applies_selector(self) -> str:
        """Selector over endpoint labels of the endpoints this policy applies to."""
        from garrison.network.selector import parse

        parts: list[str] = []
        if self.namespace:
            parts.append(f"{NS_LABEL} == {_q(self.namespace)}")
        if self.namespace_selector:
            parts.append(namespace_selector_expr(self.namespace_selector))
        if self.service_account_selector:
            parts.append(parse(self.service_account_selector).with_prefix(SA_PREFIX).canonical)
        sel = parse(self.selector).canonical
        if sel not in ("all()", "global()") or not parts:
            parts.append(sel)
        return " && ".join(f"({p})" for p in parts) if len(parts) > 1 else parts[0]

    def rules(self, direction: str) -> list[Rule]:
        return self.ingress if direction == "ingress" else self.egress


@dataclass(slots=True)
class NetworkSet:
    """A (Global)NetworkSet: labelled CIDRs and egress domains that rule selectors can match."""

    name: str
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    nets: tuple[IPNetwork, ...] = ()
    domains: tuple[str, ...] = ()


@dataclass(slots=True)
class Profile:
    """A Calico Profile: rules applied after all tiers, and labels inherited by its endpoints."""

    name: str
    ingress: list[Rule] = field(default_factory=list)
    egress: list[Rule] = field(default_factory=list)
    labels_to_apply: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Problem:
    """A load or check finding; ``level`` is ``error`` or ``warning``."""

    level: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where}: {self.message}"


@dataclass(slots=True)
class PolicySet:
    tiers: dict[str, Tier] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)
    profiles: dict[str, Profile] = field(default_factory=dict)
    network_sets: list[NetworkSet] = field(default_factory=list)
    host_endpoints: list[Endpoint] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def ordered_tiers(self) -> list[Tier]:
        return sorted(self.tiers.values(), key=Tier.sort_key)

    def ordered_policies(self, tier: str) -> list[Policy]:
        return sorted((p for p in self.policies if p.tier == tier), key=Policy.sort_key)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]


def builtin_tiers() -> dict[str, Tier]:
    """Tiers that exist without being declared (Calico creates them)."""
    return {
        DEFAULT_TIER: Tier(DEFAULT_TIER, DEFAULT_TIER_ORDER, Action.DENY, "builtin"),
    }


def implicit_tier(name: str) -> Tier | None:
    """The Kubernetes admin/baseline tiers, created when a policy of that kind is loaded."""
    if name in (ADMIN_TIER, KUBE_ADMIN_TIER):
        return Tier(name, ADMIN_TIER_ORDER, Action.PASS, "builtin")
    if name in (BASELINE_TIER, KUBE_BASELINE_TIER):
        return Tier(name, BASELINE_TIER_ORDER, Action.PASS, "builtin")
    return None
