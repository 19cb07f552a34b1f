"""Policy evaluator: verdict and Calico-style policy hits for a flow, compiled for speed.

Compile once, then answer each flow with bit lookups:

1. Endpoints (pods and host endpoints of the inventory) are numbered ``0..N-1``. Every distinct
   effective selector (see :mod:`garrison.network.ir`) is resolved ONCE to a bitset (a Python
   int) of the endpoints it matches: the endpoint's own labels, or its IP inside a NetworkSet whose
   labels match (Calico's IP-set semantics). Candidates are narrowed with the selector's label
   restrictions through an inverted ``(label, value)`` index, so a selector like
   ``projectcalico.org/namespace == "x" && app == "web"`` only runs its predicate on pods in ``x``.
   Nets / notNets are resolved to bitsets over endpoint IPs the same way.
2. Every rule side folds to one bitset (selector AND NOT notSelector AND nets AND NOT notNets ...),
   turned into a ``bytes`` of 0/1 so a flow checks ``side[i]`` (one C-level index).
3. Per endpoint and direction a *program* lists the tiers that have applicable policies, each with
   its policies in order and their compiled rules; programs are built by walking each policy's
   applied-endpoint bitset. Each program is then partially evaluated into a *plan*: everything
   that depends only on the local endpoint (its side of every rule, ingress named ports resolved
   against its container ports) is decided at compile time, leaving per rule a protocol compare, a
   port frozenset and ``lookup[peer]``. A flow walks two plans; rules that need more (ICMP
   type/code, source ports, egress named ports, ipVersion) are re-checked with the full matcher.
   :meth:`Evaluator.reference` walks the unplanned programs and is what the plans are tested against.

``evaluate`` walks the egress program of the source, then the ingress program of the destination
(exactly Calico's order: tiers by order, policies by order then name, first terminal rule wins,
end-of-tier default Deny or Pass, tiers without applicable enforced policies skipped, namespace
profile last), and returns a :class:`~garrison.model.network.Verdict` whose hits render as Calico
flow-log policy strings. The pending (staged) trace is computed from a second program in which
staged policies replace their enforced namesakes; it never changes the enforced verdict.

Peers outside the inventory (an arbitrary IP, a DNS name) are handled on a slower path that runs
the rule's predicates directly.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from garrison.core.errors import InputError
from garrison.model.network import Action, Endpoint, EndpointKind, PolicyHit, Verdict
from garrison.network import ir
from garrison.network.inventory import Inventory, calico_labels
from garrison.network.ir import EntityMatch, IPNetwork, Policy, PolicySet, PortRange, Rule
from garrison.network.selector import parse

INGRESS = "ingress"
EGRESS = "egress"
_TERMINAL = (Action.ALLOW, Action.DENY, Action.PASS)


def _ip_int(ip: str) -> tuple[int, int]:
    a = ipaddress.ip_address(ip)
    return a.version, int(a)


def _domain_regex(patterns: Iterable[str], npapi: bool) -> re.Pattern[str] | None:
    """Calico: ``*`` matches characters within one label; network-policy-api: ``*.`` = one or more labels."""
    parts = []
    for pat in patterns:
        pat = pat.lower().rstrip(".")
        if npapi and pat.startswith("*."):
            parts.append(r"(?:[^.]+\.)+" + re.escape(pat[2:]))
        else:
            parts.append(".".join("[^.]*".join(re.escape(x) for x in label.split("*")) for label in pat.split(".")))
    return re.compile("|".join(f"(?:{p})" for p in parts)) if parts else None


@dataclass(slots=True)
class _Ports:
    """A compiled port list: a frozenset for small numeric sets, ranges, and names."""

    numbers: frozenset[int]
    ranges: tuple[tuple[int, int], ...]
    names: tuple[str, ...]

    @classmethod
    def build(cls, ports: Iterable[PortRange]) -> _Ports | None:
        nums: set[int] = set()
        ranges: list[tuple[int, int]] = []
        names: list[str] = []
        for p in ports:
            if p.name:
                names.append(p.name)
            elif p.last - p.first < 64:
                nums.update(range(p.first, p.last + 1))
            else:
                ranges.append((p.first, p.last))
        if not (nums or ranges or names):
            return None
        return cls(frozenset(nums), tuple(ranges), tuple(names))

    def match(self, port: int | None, proto_name: str, ep: Endpoint | None) -> bool:
        if port is None:
            return False
        if port in self.numbers:
            return True
        for a, b in self.ranges:
            if a <= port <= b:
                return True
        if self.names and ep is not None:
            for np in ep.ports:
                if np.port == port and np.name in self.names and np.protocol == proto_name:
                    return True
        return False


@dataclass(slots=True)
class _Side:
    """A compiled rule side: ``lookup[i]`` for inventory endpoints, ``slow(ep)`` for others."""

    lookup: bytes | None
    slow: Callable[[Endpoint], bool] | None


@dataclass(slots=True)
class CompiledRule:
    policy: Policy
    index: int  # index in the policy's ingress/egress list
    action: Action
    protocol: int | None
    not_protocol: int | None
    icmp: ir.Icmp | None
    not_icmp: ir.Icmp | None
    ip_version: int | None
    src: _Side
    dst: _Side
    dports: _Ports | None
    not_dports: _Ports | None
    sports: _Ports | None
    not_sports: _Ports | None
    domains: re.Pattern[str] | None


@dataclass(slots=True)
class _TierProgram:
    name: str
    default_action: Action
    policies: list[tuple[Policy, list[CompiledRule]]] = field(default_factory=list)


Program = list[_TierProgram]
_PlanEntry = tuple[int | None, int | None, bytes | None, frozenset[int] | None, frozenset[int] | None, bool,
                   "CompiledRule", tuple[str, bool]]
_PlanTier = tuple[str, Action, tuple[str, bool], tuple[_PlanEntry, ...]]
Plan = tuple[_PlanTier, ...]


_UNRESOLVED: frozenset[int] = frozenset({-1})
_MAX_PORT_SET = 4096


def _shape(program: Program) -> list[tuple[str, list[int]]]:
    return [(t.name, [id(p) for p, _ in t.policies]) for t in program]


@dataclass(slots=True)
class _Flow:
    src_i: int
    dst_i: int
    src: Endpoint
    dst: Endpoint
    protocol: int
    proto_name: str
    port: int | None
    src_port: int | None
    icmp_type: int | None
    icmp_code: int | None
    ip_version: int


class Evaluator:
    """Compiled policy set + endpoints; :meth:`evaluate` answers one flow."""

    def __init__(self, pset: PolicySet, inventory: Inventory) -> None:
        self.pset = pset
        self.inventory = inventory
        self.endpoints: list[Endpoint] = list(inventory.endpoints)
        keys = {e.key for e in self.endpoints}
        self.endpoints.extend(h for h in pset.host_endpoints if h.key not in keys)
        self.n = len(self.endpoints)
        self.index = {e.key: i for i, e in enumerate(self.endpoints)}
        self.ip_index: dict[str, int] = {}
        for i, e in enumerate(self.endpoints):
            for ip in e.ips:
                self.ip_index.setdefault(ip, i)
        net_sets = list(inventory.network_sets)
        names = {(s.namespace, s.name) for s in net_sets}
        net_sets += [s for s in pset.network_sets if (s.namespace, s.name) not in names]
        self.network_sets = net_sets
        self._netset_labels = [self._netset_label_map(s) for s in net_sets]
        # sorted endpoint IPs per family for range queries: (int, endpoint index)
        self._ips: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for i, e in enumerate(self.endpoints):
            for ip in e.ips:
                v, n = _ip_int(ip)
                self._ips[v].append((n, i))
        for lst in self._ips.values():
            lst.sort()
        # inverted label index
        self._by_label: dict[str, int] = {}
        self._by_value: dict[tuple[str, str], int] = {}
        for i, e in enumerate(self.endpoints):
            bit = 1 << i
            for lk, lv in e.labels.items():
                self._by_label[lk] = self._by_label.get(lk, 0) | bit
                self._by_value[(lk, lv)] = self._by_value.get((lk, lv), 0) | bit
        self._all = (1 << self.n) - 1
        self._sel_cache: dict[str, int] = {}
        self._net_cache: dict[tuple[IPNetwork, ...], int] = {}
        self._lookup_cache: dict[int, bytes] = {}
        self._heps: int | None = None
        self._eplans: dict[str, list[Plan | None]] = {INGRESS: [None] * self.n, EGRESS: [None] * self.n}
        self._pplans: dict[tuple[str, int], Plan] = {}
        self._port_sets: dict[tuple[int, tuple[int, ...]], tuple[_Ports, frozenset[int]]] = {}
        self.enforced: dict[str, list[Program]] = {INGRESS: [[] for _ in range(self.n)],
                                                   EGRESS: [[] for _ in range(self.n)]}
        self.pending: dict[str, list[Program]] = {INGRESS: [[] for _ in range(self.n)],
                                                  EGRESS: [[] for _ in range(self.n)]}
        self._compile()

    # ------------------------------------------------------------------ resolution
    def _netset_label_map(self, s: ir.NetworkSet) -> dict[str, str]:
        if not s.namespace:
            return dict(s.labels)
        ns_labels = self.inventory.namespaces.get(s.namespace, {"kubernetes.io/metadata.name": s.namespace})
        labels = {f"{ir.NS_PREFIX}{k}": v for k, v in ns_labels.items()}
        labels[f"{ir.NS_PREFIX}{ir.NAME_LABEL}"] = s.namespace
        labels.update(s.labels)
        labels[ir.NS_LABEL] = s.namespace
        return labels

    def selector_bits(self, selector: str) -> int:
        """Bitset of endpoints matched by ``selector`` (labels, or IP inside a matching NetworkSet)."""
        sel = parse(selector)
        key = sel.canonical
        cached = self._sel_cache.get(key)
        if cached is not None:
            return cached
        if sel.is_all:
            bits = self._all
        else:
            candidates = self._all
            for label, r in (sel.label_restrictions() or {}).items():
                if r.must_have_one_of_values is not None:
                    vb = 0
                    for v in r.must_have_one_of_values:
                        vb |= self._by_value.get((label, v), 0)
                    candidates &= vb
                elif r.must_be_present:
                    candidates &= self._by_label.get(label, 0)
                elif r.must_be_absent:
                    candidates &= ~self._by_label.get(label, 0)
            pred = sel.predicate
            bits = 0
            c = candidates & self._all
            while c:
                low = c & -c
                i = low.bit_length() - 1
                if pred(self.endpoints[i].labels):
                    bits |= low
                c ^= low
            for s, labels in zip(self.network_sets, self._netset_labels, strict=True):
                if s.nets and pred(labels):
                    bits |= self.net_bits(s.nets)
        self._sel_cache[key] = bits
        return bits

    def net_bits(self, nets: tuple[IPNetwork, ...]) -> int:
        cached = self._net_cache.get(nets)
        if cached is not None:
            return cached
        bits = 0
        for net in nets:
            lst = self._ips[net.version]
            lo = int(net.network_address)
            hi = int(net.broadcast_address)
            j = bisect.bisect_left(lst, (lo, -1))
            while j < len(lst) and lst[j][0] <= hi:
                bits |= 1 << lst[j][1]
                j += 1
        self._net_cache[nets] = bits
        return bits

    def _lookup(self, bits: int) -> bytes:
        cached = self._lookup_cache.get(bits)
        if cached is None:
            text = format(bits, "b").zfill(self.n)[::-1] if self.n else ""
            cached = text.encode().translate(_BIN)
            self._lookup_cache[bits] = cached
        return cached

    def resolve_selector(self, selector: str) -> list[Endpoint]:
        """Endpoints a selector matches, in inventory order (what the dataplane turns into a set)."""
        bits = self.selector_bits(selector)
        return [e for i, e in enumerate(self.endpoints) if bits >> i & 1]

    def resolve_selector_nets(self, selector: str) -> list[IPNetwork]:
        """CIDRs of the NetworkSets a selector matches (the other half of a selector's IP set)."""
        pred = parse(selector).predicate
        return [n for s, labels in zip(self.network_sets, self._netset_labels, strict=True) if pred(labels)
                for n in s.nets]

    @property
    def network_set_labels(self) -> list[dict[str, str]]:
        """Labels selectors see on each of :attr:`network_sets` (namespace labels included)."""
        return self._netset_labels

    # ------------------------------------------------------------------ compilation
    def _side(self, ent: EntityMatch, namespace: str, *, local_any: bool = False) -> _Side:
        bits = self._all
        constrained = False
        eff = ent.effective_selector(namespace)
        if eff is not None:
            bits &= self.selector_bits(eff)
            constrained = True
        not_sel = ent.effective_not_selector(namespace)
        if not_sel is not None:
            bits &= ~self.selector_bits(not_sel)
            constrained = True
        if ent.nets:
            bits &= self.net_bits(ent.nets)
            constrained = True
        if ent.not_nets:
            bits &= ~self.net_bits(ent.not_nets)
            constrained = True
        if ent.domains:
            bits = 0  # inventory endpoints have no DNS names: only the slow path can match
            constrained = True
        if not constrained:
            return _Side(None, None)
        return _Side(self._lookup(bits & self._all), self._slow_side(ent, namespace))

    def _slow_side(self, ent: EntityMatch, namespace: str) -> Callable[[Endpoint], bool]:
        eff = ent.effective_selector(namespace)
        pred = parse(eff).predicate if eff else None
        not_sel = ent.effective_not_selector(namespace)
        not_pred = parse(not_sel).predicate if not_sel is not None else None
        nets, not_nets = ent.nets, ent.not_nets
        domains = _domain_regex(ent.domains, False) if ent.domains else None
        sets = list(zip(self.network_sets, self._netset_labels, strict=True))

        def in_nets(ep: Endpoint, ns: tuple[IPNetwork, ...]) -> bool:
            for ip in ep.ips:
                a = ipaddress.ip_address(ip)
                if any(a.version == n.version and a in n for n in ns):
                    return True
            return False

        def matches_sel(ep: Endpoint, p: Callable[[Mapping[str, str]], bool]) -> bool:
            if p(ep.labels):
                return True
            for s, labels in sets:
                if p(labels) and ((s.nets and in_nets(ep, s.nets)) or (
                        s.domains and ep.domains and _domain_regex(s.domains, False) is not None
                        and any(_domain_regex(s.domains, False).fullmatch(d.lower()) for d in ep.domains))):  # type: ignore[union-attr]
                    return True
            return False

        def check(ep: Endpoint) -> bool:
            if domains is not None and not any(domains.fullmatch(d.lower().rstrip(".")) for d in ep.domains):
                return False
            if pred is not None and not matches_sel(ep, pred):
                return False
            if not_pred is not None and matches_sel(ep, not_pred):
                return False
            if nets and not in_nets(ep, nets):
                return False
            return not (not_nets and in_nets(ep, not_nets))

        return check

    def _compile_rule(self, pol: Policy, index: int, rule: Rule) -> CompiledRule:
        npapi = pol.kind in ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterNetworkPolicy")
        dst = self._side(rule.destination, pol.namespace)
        if rule.destination.domains and npapi and dst.slow is not None:
            rx = _domain_regex(rule.destination.domains, True)
            assert rx is not None
            dst = _Side(dst.lookup, lambda ep: any(rx.fullmatch(d.lower().rstrip(".")) for d in ep.domains))
        return CompiledRule(
            policy=pol, index=index, action=rule.action, protocol=rule.protocol, not_protocol=rule.not_protocol,
            icmp=rule.icmp, not_icmp=rule.not_icmp, ip_version=rule.ip_version,
            src=self._side(rule.source, pol.namespace), dst=dst,
            dports=_Ports.build(rule.destination.ports), not_dports=_Ports.build(rule.destination.not_ports),
            sports=_Ports.build(rule.source.ports), not_sports=_Ports.build(rule.source.not_ports),
            domains=None)

    def _compile(self) -> None:
        tiers = self.pset.ordered_tiers()
        enforced_by_key = {(p.tier, p.namespace, p.name): p for p in self.pset.policies if not p.staged}
        pending_pols: dict[tuple[str, str, str], Policy] = dict(enforced_by_key)
        for p in self.pset.policies:
            if p.staged:
                k = (p.tier, p.namespace, p.name)
                if p.staged_action == "Delete":
                    pending_pols.pop(k, None)
                else:
                    pending_pols[k] = p
        compiled: dict[int, dict[str, list[CompiledRule]]] = {}
        applies: dict[int, int] = {}
        for p in self.pset.policies:
            compiled[id(p)] = {
                INGRESS: [self._compile_rule(p, i, r) for i, r in enumerate(p.ingress)],
                EGRESS: [self._compile_rule(p, i, r) for i, r in enumerate(p.egress)],
            }
            bits = self.selector_bits(p.applies_selector())
            if not p.global_scope and p.kind not in ("GlobalNetworkPolicy", "StagedGlobalNetworkPolicy"):
                bits &= ~self._hep_bits()
            applies[id(p)] = bits
        for target, pols in ((self.enforced, list(enforced_by_key.values())),
                             (self.pending, list(pending_pols.values()))):
            for tier in tiers:
                tier_pols = sorted((p for p in pols if p.tier == tier.name), key=Policy.sort_key)
                for direction, word in ((INGRESS, "Ingress"), (EGRESS, "Egress")):
                    programs = target[direction]
                    for p in tier_pols:
                        if word not in p.types:
                            continue
                        rules = compiled[id(p)][direction]
                        bits = applies[id(p)]
                        while bits:
                            low = bits & -bits
                            i = low.bit_length() - 1
                            prog = programs[i]
                            if not prog or prog[-1].name != tier.name:
                                prog.append(_TierProgram(tier.name, tier.default_action))
                            prog[-1].policies.append((p, rules))
                            bits ^= low
        self._same_pending = {
            d: [_shape(self.enforced[d][i]) == _shape(self.pending[d][i]) for i in range(self.n)]
            for d in (INGRESS, EGRESS)}
        self._profile_rules: dict[str, dict[str, list[CompiledRule]]] = {}
        for direction in (INGRESS, EGRESS):
            for i in range(self.n):
                self._plan(direction, i, False)
                if not self._same_pending[direction][i]:
                    self._plan(direction, i, True)
        for name, prof in self.pset.profiles.items():
            pseudo = Policy(kind="Profile", name=name)
            self._profile_rules[name] = {
                INGRESS: [self._compile_rule(pseudo, i, r) for i, r in enumerate(prof.ingress)],
                EGRESS: [self._compile_rule(pseudo, i, r) for i, r in enumerate(prof.egress)],
            }

    def _hep_bits(self) -> int:
        if self._heps is None:
            bits = 0
            for i, e in enumerate(self.endpoints):
                if e.kind is EndpointKind.HOST:
                    bits |= 1 << i
            self._heps = bits
        return self._heps

    # ------------------------------------------------------------------ evaluation
    def endpoint(self, ref: str | Endpoint) -> tuple[int, Endpoint]:
        """Resolve ``ns/name``, a host endpoint name, an IP or a DNS name to ``(index or -1, Endpoint)``."""
        if isinstance(ref, Endpoint):
            i = self.index.get(ref.key, -1)
            return i, (self.endpoints[i] if i >= 0 else ref)
        i = self.index.get(ref, -1)
        if i >= 0:
            return i, self.endpoints[i]
        try:
            ip = str(ipaddress.ip_address(ref))
        except ValueError as err:
            if "/" in ref or not re.fullmatch(r"[A-Za-z0-9*_.-]+", ref):
                raise InputError(
                    f"no endpoint {ref!r} in the inventory (expected NAMESPACE/POD, an IP or a DNS name)"
                ) from err
            return -1, Endpoint(name=ref, kind=EndpointKind.EXTERNAL, domains=(ref.lower(),))
        j = self.ip_index.get(ip, -1)
        if j >= 0:
            return j, self.endpoints[j]
        return -1, Endpoint(name=ip, kind=EndpointKind.EXTERNAL, ips=(ip,))

    def evaluate(self, src: str | Endpoint, dst: str | Endpoint, protocol: str | int = "TCP", port: int | None = None,
                 *, src_port: int | None = None, icmp_type: int | None = None, icmp_code: int | None = None,
                 pending: bool = True) -> Verdict:
        """Verdict for one flow: egress policy of ``src``, then ingress policy of ``dst``."""
        si = self.index.get(src, -1) if isinstance(src, str) else -1
        di = self.index.get(dst, -1) if isinstance(dst, str) else -1
        proto = _PROTO_WORDS.get(protocol) if isinstance(protocol, str) else None
        if proto is None:
            proto = _protocol(protocol)
        if si >= 0 and di >= 0 and src_port is None and icmp_type is None and icmp_code is None:
            # both ends in the inventory: the planned path, no flow object unless a rule needs one
            raw = (si, di, proto, port)
            hits: list[PolicyHit] = []
            action = self._planned(si, di, proto, port, False, hits, raw)
            verdict = Verdict(action, hits)
            if pending:
                if self._same_pending[EGRESS][si] and self._same_pending[INGRESS][di]:
                    verdict.pending = list(hits)
                    verdict.pending_action = action
                else:
                    p_hits: list[PolicyHit] = []
                    verdict.pending_action = self._planned(si, di, proto, port, True, p_hits, raw)
                    verdict.pending = p_hits
            return verdict
        si, s = self.endpoint(src)
        di, d = self.endpoint(dst)
        version = 6 if (d.ips and ":" in d.ips[0]) or (s.ips and ":" in s.ips[0]) else 4
        flow = _Flow(si, di, s, d, proto, ir.protocol_name(proto), port, src_port, icmp_type, icmp_code, version)
        planned = si >= 0 and di >= 0
        hits = []
        verdict = Verdict(self._flow(flow, False, hits, planned), hits)
        if pending:
            p_hits = []
            verdict.pending_action = self._flow(flow, True, p_hits, planned)
            verdict.pending = p_hits
        return verdict

    def _planned(self, si: int, di: int, proto: int, port: int | None, staged: bool, hits: list[PolicyHit],
                 raw: tuple[int, int, int, int | None]) -> Action:
        staged_here = staged and not self._same_pending[EGRESS][si]
        plan = None if staged_here else self._eplans[EGRESS][si]
        if plan is None:
            plan = self._plan(EGRESS, si, staged_here)
        action = self._run(plan, di, proto, port, self.endpoints[si], "src", hits, None, raw)
        if action is not Action.ALLOW:
            return action
        staged_here = staged and not self._same_pending[INGRESS][di]
        plan = None if staged_here else self._eplans[INGRESS][di]
        if plan is None:
            plan = self._plan(INGRESS, di, staged_here)
        return self._run(plan, si, proto, port, self.endpoints[di], "dst", hits, None, raw)

    def _flow(self, flow: _Flow, staged: bool, hits: list[PolicyHit] | None, planned: bool) -> Action:
        programs = self.pending if staged else self.enforced
        action = Action.ALLOW
        if flow.src_i >= 0:
            if planned:
                action = self._run(self._plan(EGRESS, flow.src_i, staged), flow.dst_i, flow.protocol, flow.port,
                                   flow.src, "src", hits, flow, None)
            else:
                action = self._direction(programs[EGRESS][flow.src_i], flow, flow.src, "src", staged, hits)
        if action is Action.ALLOW and flow.dst_i >= 0:
            if planned:
                action = self._run(self._plan(INGRESS, flow.dst_i, staged), flow.src_i, flow.protocol, flow.port,
                                   flow.dst, "dst", hits, flow, None)
            else:
                action = self._direction(programs[INGRESS][flow.dst_i], flow, flow.dst, "dst", staged, hits)
        return action

    def allowed(self, src: int, dst: int, protocol: int, port: int | None) -> bool:
        """Fast path for matrices and benchmarks: inventory indices in, bool out, no hits recorded."""
        raw = (src, dst, protocol, port)
        plan = self._eplans[EGRESS][src]
        if plan is None:
            plan = self._plan(EGRESS, src, False)
        if self._run(plan, dst, protocol, port, self.endpoints[src], "src", None, None, raw) is not Action.ALLOW:
            return False
        plan = self._eplans[INGRESS][dst]
        if plan is None:
            plan = self._plan(INGRESS, dst, False)
        return self._run(plan, src, protocol, port, self.endpoints[dst], "dst", None, None, raw) is Action.ALLOW

    def _plan(self, direction: str, local_i: int, staged: bool) -> Plan:
        """Partially evaluate an endpoint's program: what depends only on the local endpoint is decided.

        The local side's selector and, for ingress, named ports (resolved against the local endpoint's
        container ports) are settled here once; each remaining candidate rule keeps its protocol, a
        frozenset of destination ports and the peer-side lookup, which is all a flow checks. Rules that
        need more (ICMP type/code, source ports, ipVersion, egress named ports, very wide port ranges)
        are kept with ``full=True`` and re-checked with the complete matcher.
        """
        if not staged:
            cached = self._eplans[direction][local_i]
            if cached is not None:
                return cached
        else:
            hit = self._pplans.get((direction, local_i))
            if hit is not None:
                return hit
        local = self.endpoints[local_i]
        program = (self.pending if staged else self.enforced)[direction][local_i]
        tiers: list[_PlanTier] = []
        for tier in program:
            entries: list[_PlanEntry] = []
            for pol, rules in tier.policies:
                for rule in rules:
                    if rule.action not in _TERMINAL:
                        continue
                    local_side, peer_side = (rule.dst, rule.src) if direction == INGRESS else (rule.src, rule.dst)
                    if local_side.lookup is not None and not local_side.lookup[local_i]:
                        continue
                    full = rule.ip_version is not None or rule.sports is not None or rule.not_sports is not None \
                        or (rule.icmp is not None and (rule.icmp.type is not None or rule.icmp.code is not None)) \
                        or rule.not_icmp is not None
                    ports = self._port_set(rule.dports, local if direction == INGRESS else None, rule.protocol)
                    not_ports = self._port_set(rule.not_dports, local if direction == INGRESS else None,
                                               rule.protocol)
                    if ports is _UNRESOLVED or not_ports is _UNRESOLVED:
                        full = True
                        ports = not_ports = None
                    if ports is not None and not ports:
                        continue  # a named port this endpoint does not have: the rule cannot match
                    entries.append((rule.protocol, rule.not_protocol, peer_side.lookup, ports, not_ports, full, rule,
                                    (pol.flow_log_name, pol.staged)))
            last = tier.policies[-1][0]
            tiers.append((tier.name, tier.default_action, (last.flow_log_name, last.staged), tuple(entries)))
        plan = tuple(tiers)
        if staged:
            self._pplans[(direction, local_i)] = plan
        else:
            self._eplans[direction][local_i] = plan
        return plan

    def _port_set(self, ports: _Ports | None, local: Endpoint | None, protocol: int | None) -> frozenset[int] | None:
        """Ports as one frozenset (named ports resolved against ``local``); ``_UNRESOLVED`` if impossible.

        Sets are shared between endpoints (keyed by the rule's port list and the resolved named
        ports), so a wide range costs memory once per rule, not once per endpoint.
        """
        if ports is None:
            return None
        if ports.names and (local is None or protocol is None):
            return _UNRESOLVED
        if sum(b - a + 1 for a, b in ports.ranges) > _MAX_PORT_SET:
            return _UNRESOLVED
        proto_name = ir.protocol_name(protocol) if protocol is not None else ""
        named = tuple(sorted(p.port for p in local.ports if p.name in ports.names and p.protocol == proto_name)) \
            if local is not None and ports.names else ()
        key = (id(ports), named)
        found = self._port_sets.get(key)
        if found is None:
            out = set(ports.numbers)
            for a, b in ports.ranges:
                out.update(range(a, b + 1))
            out.update(named)
            found = (ports, frozenset(out))
            self._port_sets[key] = found
        return found[1]

    def _run(self, plan: Plan, peer_i: int, proto: int, port: int | None, local: Endpoint, reporter: str,
             hits: list[PolicyHit] | None, flow: _Flow | None, raw: tuple[int, int, int, int | None] | None) -> Action:
        for name, default, last, entries in plan:
            decided: Action | None = None
            for pr, npr, lk, ports, nports, full, rule, pol in entries:
                if pr is not None and pr != proto:
                    continue
                if npr is not None and npr == proto:
                    continue
                if lk is not None and not lk[peer_i]:
                    continue
                if ports is not None and port not in ports:
                    continue
                if nports is not None and port in nports:
                    continue
                if full:
                    if flow is None:
                        flow = self._flow_of(raw)
                    if not _match(rule, flow):
                        continue
                decided = rule.action
                if hits is not None:
                    hits.append(PolicyHit(len(hits), name, pol[0], decided, rule.index, reporter, pol[1]))
                break
            if decided is None:
                decided = default
                if hits is not None:
                    hits.append(PolicyHit(len(hits), name, last[0], decided, -1, reporter, last[1]))
            if decided is not Action.PASS:
                return decided
        if local.kind is EndpointKind.POD and not self._profile_rules:
            if hits is not None:
                hits.append(PolicyHit(len(hits), "__PROFILE__", f"__PROFILE__.kns.{local.namespace}", Action.ALLOW, 0,
                                      reporter))
            return Action.ALLOW
        if flow is None:
            flow = self._flow_of(raw)
        return self._profiles(flow, local, reporter, hits)

    def _flow_of(self, raw: tuple[int, int, int, int | None] | None) -> _Flow:
        assert raw is not None
        si, di, proto, port = raw
        s, d = self.endpoints[si], self.endpoints[di]
        version = 6 if d.ips and ":" in d.ips[0] else 4
        return _Flow(si, di, s, d, proto, ir.protocol_name(proto), port, None, None, None, version)

    def reference(self, src: str, dst: str, protocol: str | int, port: int | None) -> Action:
        """The verdict from the unplanned program walk (no plans, no lookups folded per endpoint).

        Slower; kept as the reference the planned fast paths are property-tested against.
        """
        si, s = self.endpoint(src)
        di, d = self.endpoint(dst)
        proto = _protocol(protocol)
        version = 6 if (d.ips and ":" in d.ips[0]) or (s.ips and ":" in s.ips[0]) else 4
        flow = _Flow(si, di, s, d, proto, ir.protocol_name(proto), port, None, None, None, version)
        return self._flow(flow, False, None, False)

    def _direction(self, program: Program, flow: _Flow, local: Endpoint, reporter: str, staged_view: bool,
                   hits: list[PolicyHit] | None) -> Action:
        for tier in program:
            last: Policy | None = None
            decided: Action | None = None
            for pol, rules in tier.policies:
                last = pol
                for rule in rules:
                    if rule.action in _TERMINAL and _match(rule, flow):
                        if hits is not None:
                            hits.append(PolicyHit(len(hits), tier.name, pol.flow_log_name, rule.action, rule.index,
                                                  reporter, pol.staged))
                        decided = rule.action
                        break
                if decided is not None:
                    break
            if decided is None:
                decided = tier.default_action
                if hits is not None and last is not None:
                    hits.append(PolicyHit(len(hits), tier.name, last.flow_log_name, decided, -1, reporter,
                                          last.staged))
            if decided is not Action.PASS:
                return decided
        return self._profiles(flow, local, reporter, hits)

    def _profiles(self, flow: _Flow, local: Endpoint, reporter: str, hits: list[PolicyHit] | None) -> Action:
        direction = EGRESS if reporter == "src" else INGRESS
        for name in local.profiles:
            rules = self._profile_rules.get(name, {}).get(direction)
            if rules is None:
                continue
            for rule in rules:
                if rule.action in _TERMINAL and rule.action is not Action.PASS and _match(rule, flow):
                    if hits is not None:
                        hits.append(PolicyHit(len(hits), "__PROFILE__", f"__PROFILE__.{name}", rule.action,
                                              rule.index, reporter))
                    return rule.action
        if local.kind is EndpointKind.POD:
            kns = f"kns.{local.namespace}"
            if kns in self._profile_rules:  # user-supplied namespace profile without a matching rule
                if hits is not None:
                    hits.append(PolicyHit(len(hits), "__PROFILE__", "__PROFILE__.__NO_MATCH__", Action.DENY, -1,
                                          reporter))
                return Action.DENY
            if hits is not None:
                hits.append(PolicyHit(len(hits), "__PROFILE__", f"__PROFILE__.{kns}", Action.ALLOW, 0, reporter))
            return Action.ALLOW
        if hits is not None:
            hits.append(PolicyHit(len(hits), "__PROFILE__", "__PROFILE__.__NO_MATCH__", Action.DENY, -1, reporter))
        return Action.DENY

    # ------------------------------------------------------------------ helpers for other modules
    def applicable_policies(self, ref: str | Endpoint, direction: str, *, pending: bool = False) -> list[Policy]:
        i, _ = self.endpoint(ref)
        if i < 0:
            return []
        programs = (self.pending if pending else self.enforced)[direction]
        return [p for t in programs[i] for p, _ in t.policies]


_BIN = bytes.maketrans(b"01", b"\x00\x01")
_PROTO_WORDS = {**ir.PROTOCOLS, **{k.lower(): v for k, v in ir.PROTOCOLS.items()}, "ICMPv6": 58, "UDPLite": 136}


def _protocol(value: str | int) -> int:
    if isinstance(value, int):
        if not 1 <= value <= 255:
            raise InputError(f"protocol number must be 1-255, got {value}")
        return value
    word = value.strip().upper()
    if word in ir.PROTOCOLS:
        return ir.PROTOCOLS[word]
    if word.isdigit() and 1 <= int(word) <= 255:
        return int(word)
    raise InputError(f"unknown protocol {value!r} (expected TCP, UDP, SCTP, ICMP, ICMPv6 or a number)")


def _match(rule: CompiledRule, f: _Flow) -> bool:
    if rule.protocol is not None and rule.protocol != f.protocol:
        return False
    if rule.not_protocol is not None and rule.not_protocol == f.protocol:
        return False
    if rule.ip_version is not None and rule.ip_version != f.ip_version:
        return False
    if rule.icmp is not None:
        if rule.icmp.type is not None and rule.icmp.type != f.icmp_type:
            return False
        if rule.icmp.code is not None and rule.icmp.code != f.icmp_code:
            return False
    if rule.not_icmp is not None and rule.not_icmp.type == f.icmp_type and (
            rule.not_icmp.code is None or rule.not_icmp.code == f.icmp_code):
        return False
    side = rule.src
    if side.lookup is not None:
        if f.src_i >= 0:
            if not side.lookup[f.src_i]:
                return False
        elif side.slow is not None and not side.slow(f.src):
            return False
    side = rule.dst
    if side.lookup is not None:
        if f.dst_i >= 0:
            if not side.lookup[f.dst_i]:
                return False
        elif side.slow is not None and not side.slow(f.dst):
            return False
    if rule.dports is not None and not rule.dports.match(f.port, f.proto_name, f.dst):
        return False
    if rule.not_dports is not None and rule.not_dports.match(f.port, f.proto_name, f.dst):
        return False
    if rule.sports is not None and not rule.sports.match(f.src_port, f.proto_name, f.src):
        return False
    return not (rule.not_sports is not None and rule.not_sports.match(f.src_port, f.proto_name, f.src))


def resolve_selectors(pset: PolicySet, inventory: Inventory) -> dict[str, list[str]]:
    """For every effective selector the policy set uses, the keys of the endpoints it matches.

    The nftables dataplane makes one set per entry (keyed by the canonical selector string; the
    set's name can be derived from :attr:`Selector.uid`).
    """
    ev = Evaluator(pset, inventory)
    out: dict[str, list[str]] = {}
    for pol in pset.policies:
        sels = [pol.applies_selector()]
        for rule in pol.ingress + pol.egress:
            for ent in (rule.source, rule.destination):
                sels.extend(eff for eff in (ent.effective_selector(pol.namespace),
                                            ent.effective_not_selector(pol.namespace)) if eff is not None)
        for s in sels:
            canon = parse(s).canonical
            if canon not in out:
                out[canon] = [e.key for e in ev.resolve_selector(s)]
    return out


def select(selector: str, endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """Endpoints whose labels match ``selector`` (no NetworkSet expansion; see ``Evaluator.resolve_selector``)."""
    pred = parse(selector).predicate
    return [e for e in endpoints if pred(e.labels)]


def endpoint_for(name: str, namespace: str, labels: Mapping[str, str], ips: Iterable[str]) -> Endpoint:
    """A pod endpoint with Calico's labels, for callers building endpoints by hand."""
    ns_labels = {"kubernetes.io/metadata.name": namespace}
    return Endpoint(name=name, namespace=namespace, labels=calico_labels(labels, namespace, ns_labels, "default"),
                    ips=tuple(ips), profiles=(f"kns.{namespace}",))
