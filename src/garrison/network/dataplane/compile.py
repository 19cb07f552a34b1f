"""Compile the dataplane IR to one nftables table, ``inet garrison``.

Layout (Calico's iptables layout, translated to nftables):

* two base chains on the ``forward`` hook. ``fwd_egress`` (priority filter - 1) dispatches on the
  incoming interface, i.e. the *egress* policy of the sending workload; ``fwd_ingress`` (priority
  filter) dispatches on the outgoing interface, i.e. the *ingress* policy of the receiving one.
  ``accept`` only ends the current base chain, so a packet allowed by egress still meets ingress,
  while ``drop`` is final. Both start with ``ct state established,related accept``.
* dispatch by verdict maps (``m_out``/``m_in`` keyed by interface name, ``m_out_ip``/``m_in_ip``
  keyed by address for endpoints without a known interface), so adding an endpoint is one element.
* one chain per endpoint and direction (``e_*``) that jumps to the chain of every tier with a
  policy applying to it, then accepts (profiles last: Kubernetes' profile allows).
* tier chains (``t_<digest>``, shared by endpoints with the same applicable policies) jump to each
  policy chain in order and end with the tier's default action (drop, or return for Pass).
* one chain per policy and direction (``p_*``); rules in order, each with a counter and an NFLOG
  prefix ``g|<id>|<A|D|P|L|S>|tier|policy|rule`` whose id maps back through :attr:`Ruleset.index`.
  A Pass rule sets mark bit ``PASS_MARK`` and returns; the tier chain sees the bit, clears it and
  returns to the endpoint chain, which goes on with the next tier. The endpoint chain ends in the
  namespace profile's allow, logged as ``__PROFILE__.kns.<ns>``. A staged policy's rules log
  and return without a verdict, so they are counted but never enforced, and a tier holding only
  staged policies for an endpoint has no default action (staged-only tiers pass).
* sets: ``s_*`` (selector matches: ``ipv4_addr``, with the interval flag when NetworkSet CIDRs are in),
  ``np_*`` (named ports: ``ipv4_addr . inet_proto . inet_service`` per endpoint, so a named port
  resolves to each endpoint's own number, as destination, source or ``notPorts``), ``d_*``
  (DNS-learned, with timeouts), ``ps_*``/``c4_*``/``c6_*`` (port and CIDR lists longer than
  :data:`SPLIT_LIMIT`, shared by every rule with the same list; shorter lists become one rule per
  item, so no anonymous set is ever created: the kernel names each anonymous set by scanning every
  set of the table, which made that half of a full programming at 2,000 policies).
* IPv6 (when any endpoint, set member or rule net is IPv6): every set of addresses has an
  ``ipv6_addr`` twin ``<name>_6``, and every rule that matches on addresses gets an ``ip6`` variant
  next to its ``ip`` one (only the families its nets, ``ipVersion`` and ICMP protocol allow). Rules
  without addresses match both families at once. ``icmp``/``icmpv6`` type and code follow the
  rule's protocol; ``notICMP`` type/code becomes two alternatives (type differs, or code differs).
* host endpoints (Calico HostEndpoint): the same endpoint chains, ending in a logged drop (Calico's
  default for host endpoints) instead of the profile's allow, dispatched from ``host_in`` (input
  hook, by ``iifname``, or by destination address when only ``expectedIPs`` is known) and
  ``host_out`` (output hook). Both start with conntrack, loopback and Felix's failsafe ports
  (``failsafe_in``/``failsafe_out``: ``inet_proto . inet_service``), so no policy can cut the node off.

Every chain's last rule carries ``gh:<digest>`` in its comment: the applier diffs the kernel
against the wanted ruleset by reading those digests back, without parsing rule expressions.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import itertools
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from garrison.core.errors import InputError
from garrison.network.dataplane.ir import (
    PROTOCOL_NUMBERS,
    DataplaneInput,
    Endpoint,
    Peer,
    Policy,
    PortRange,
    Rule,
    Tier,
    order_key,
)

TABLE = "garrison"
FAMILY = "inet"
PASS_MARK = 0x40000000
DEFAULT_LOG_GROUP = 17
DNS_LOG_GROUP = 18
SPLIT_LIMIT = 4  # port/CIDR lists up to this long become one rule per item rather than a set
_LETTER = {"allow": "A", "deny": "D", "pass": "P", "log": "L"}


@dataclass(slots=True, frozen=True)
class RuleRef:
    """What a log prefix id stands for: the policy hit as Calico flow logs report it."""

    id: int
    tier: str
    policy: str
    rule_index: int  # -1: the tier's end-of-tier default
    action: str
    direction: str  # "ingress" | "egress"
    staged: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "tier": self.tier,
            "policy": self.policy,
            "rule": self.rule_index,
            "action": self.action,
            "direction": self.direction,
            "staged": self.staged,
        }


@dataclass(slots=True)
class SetDef:
    name: str
    type: str
    flags: tuple[str, ...] = ()
    elements: frozenset[str] = frozenset()
    dynamic: bool = False  # members managed at run time (DNS): never diffed away

    def render_decl(self) -> str:
        flags = f" flags {', '.join(self.flags)};" if self.flags else ""
        return f"set {self.name} {{ type {self.type};{flags} }}"


@dataclass(slots=True)
class MapDef:
    name: str
    key_type: str
    elements: dict[str, str] = field(default_factory=dict)  # key -> target chain


@dataclass(slots=True)
class ChainDef:
    name: str
    rules: list[str]
    hook: str | None = None  # e.g. "type filter hook forward priority filter - 1; policy accept;"
    digest: str = ""

    def finish(self) -> None:
        """Stamp the digest of the rules into the comment of the last rule."""
        body = "\n".join([self.hook or "", *self.rules])
        self.digest = hashlib.sha256(body.encode()).hexdigest()[:12]
        if not self.rules:
            self.rules.append("counter")
        last = self.rules[-1]
        m = re.search(r' comment "([^"]*)"$', last)
        if m:
            self.rules[-1] = last[: m.start()] + f' comment "gh:{self.digest} {m.group(1)}"'
        else:
            self.rules[-1] = last + f' comment "gh:{self.digest}"'


@dataclass(slots=True)
class Ruleset:
    sets: dict[str, SetDef] = field(default_factory=dict)
    maps: dict[str, MapDef] = field(default_factory=dict)
    chains: dict[str, ChainDef] = field(default_factory=dict)
    index: dict[int, RuleRef] = field(default_factory=dict)
    policy_chains: dict[str, list[str]] = field(default_factory=dict)  # policy name -> its chains
    endpoint_chains: dict[str, list[str]] = field(default_factory=dict)
    v6: bool = False  # whether addressed rules have IPv6 variants (and sets IPv6 twins)

    def render(self, replace: bool = True) -> str:
        """The whole table as one nft transaction; ``replace`` drops the previous table first."""
        t = f"{FAMILY} {TABLE}"
        out = [f"add table {t}"]
        if replace:
            out += [f"delete table {t}", f"add table {t}"]
        out += [f"add {s.render_decl()}".replace(f"set {s.name} ", f"set {t} {s.name} ", 1) for s in self.sets.values()]
        out += [f"add map {t} {m.name} {{ type {m.key_type} : verdict; }}" for m in self.maps.values()]
        # every chain is declared before any rule, so jumps always resolve
        out += [f"add chain {t} {c.name}" + (f" {{ {c.hook} }}" if c.hook else "") for c in self.chains.values()]
        out += [
            f"add element {t} {s.name} {{ {', '.join(sorted(s.elements))} }}" for s in self.sets.values() if s.elements
        ]
        for c in self.chains.values():
            out.extend(f"add rule {t} {c.name} {r}" for r in c.rules)
        # maps last: their verdicts jump to chains that now hold their rules
        out += [render_map_elements("add", m.name, m.elements) for m in self.maps.values() if m.elements]
        return "\n".join(out) + "\n"

    def pretty(self) -> str:
        """A human-readable ``table inet garrison { ... }`` (for ``--dry-run``)."""
        out = [f"table {FAMILY} {TABLE} {{"]
        for s in self.sets.values():
            elems = f" elements = {{ {', '.join(sorted(s.elements))} }};" if s.elements else ""
            flags = f" flags {', '.join(s.flags)};" if s.flags else ""
            out.append(f"  set {s.name} {{ type {s.type};{flags}{elems} }}")
        for m in self.maps.values():
            elems = ", ".join(
                f'"{k}" : jump {v}' if m.key_type == "ifname" else f"{k} : jump {v}" for k, v in m.elements.items()
            )
            out.append(
                f"  map {m.name} {{ type {m.key_type} : verdict;"
                + (f" elements = {{ {elems} }};" if elems else "")
                + " }"
            )
        for c in self.chains.values():
            out.append(f"  chain {c.name} {{")
            if c.hook:
                out.append(f"    {c.hook}")
            out.extend(f"    {r}" for r in c.rules)
            out.append("  }")
        out.append("}")
        return "\n".join(out) + "\n"


def render_map_elements(verb: str, name: str, elements: dict[str, str]) -> str:
    items = []
    for k, target in sorted(elements.items()):
        key = f'"{k}"' if not _is_ip(k) else k
        items.append(f"{key} : jump {target}" if verb == "add" else key)
    return f"{verb} element {FAMILY} {TABLE} {name} {{ {', '.join(items)} }}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def ident(*parts: str, limit: int = 48) -> str:
    """A valid nft identifier from arbitrary names, made unique by a short digest."""
    raw = "/".join(parts)
    clean = re.sub(r"[^A-Za-z0-9_]", "_", raw)[:limit]
    return f"{clean}_{hashlib.sha256(raw.encode()).hexdigest()[:6]}"


def endpoint_chain(ep: Endpoint, direction: str) -> str:
    return "e_" + ident(ep.key) + ("_i" if direction == "ingress" else "_o")


def policy_chain(pol: Policy, direction: str) -> str:
    return "p_" + ident(pol.tier, pol.name) + ("_i" if direction == "ingress" else "_o")


def named_port_set(name: str) -> str:
    return "np_" + ident(name, limit=40)


def dns_set(name: str) -> str:
    return name if name.startswith("d_") else "d_" + ident(name, limit=40)


def v6_name(name: str) -> str:
    """The IPv6 twin of an address set or named-port set (``s_x`` -> ``s_x_6``)."""
    return name + "_6"


def _nets(nets: Iterable[str], family: int, where: str) -> list[str]:
    """Members of ``nets`` of one address family (4 or 6), overlaps merged."""
    try:
        return list(_nets_cached(tuple(nets), family))
    except ValueError as e:
        raise InputError(str(e), input_name=where) from e


@functools.lru_cache(maxsize=1 << 16)
def _nets_cached(nets: tuple[str, ...], family: int) -> tuple[str, ...]:
    """Members of one family, overlaps merged (an interval set refuses overlapping elements)."""
    if family == 4 and all("/" not in n for n in nets):  # plain v4 addresses: the common case, no objects
        plain = []
        for n in nets:
            if ":" in n:
                continue
            try:
                socket.inet_pton(socket.AF_INET, n)
            except OSError:
                raise ValueError(f"bad address {n!r}") from None
            plain.append(n)
        return tuple(sorted(set(plain)))
    return tuple(_collapse(nets, family))


def _collapse(nets: Iterable[str], family: int = 4) -> list[str]:
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for text in nets:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"bad CIDR {text!r}") from None
        if net.version == family:
            out.append(net)
    full = 32 if family == 4 else 128
    merged = ipaddress.collapse_addresses(out)  # type: ignore[type-var]
    return [str(n) if n.prefixlen < full else str(n.network_address) for n in merged]


def _merge_ports(ports: Iterable[PortRange]) -> list[str]:
    """Port ranges sorted and merged (adjacent or overlapping ranges become one interval element)."""
    merged: list[list[int]] = []
    for p in sorted(ports, key=lambda p: (p.lo, p.hi)):
        if merged and p.lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], p.hi)
        else:
            merged.append([p.lo, p.hi])
    return [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in merged]


def _has_v6_nets(p: Policy) -> bool:
    return any(":" in n for r in (*p.ingress, *p.egress) for peer in (r.src, r.dst) for n in (*peer.nets, *peer.not_nets))


def wants_ipv6(data: DataplaneInput) -> bool:
    """Whether the ruleset needs IPv6 rules: any endpoint, set member or rule net is IPv6."""
    if any(ep.ip6 for ep in data.endpoints) or any(":" in m for ms in data.sets.values() for m in ms):
        return True
    return any(_has_v6_nets(p) for p in data.policies)


def _addressed(peer: Peer) -> bool:
    """Whether a side matches on addresses (so the rule needs one variant per address family)."""
    return bool(
        peer.sets or peer.not_sets or peer.nets or peer.not_nets or peer.domains or peer.named_ports
        or peer.not_named_ports
    )


def _proto_expr(proto: str | int) -> str:
    if isinstance(proto, int):
        return str(proto)
    num = PROTOCOL_NUMBERS.get(proto.upper())
    if num is None:
        raise InputError(f"unknown protocol {proto!r}", input_name="policy")
    return str(num)


class _Compiler:
    def __init__(self, data: DataplaneInput, log_group: int | None, v6: bool | None = None) -> None:
        self.data = data
        self.log_group = log_group
        self.v6 = wants_ipv6(data) if v6 is None else v6
        self.rs = Ruleset(v6=self.v6)
        self.next_id = 1
        self.tier_has_pass: dict[str, bool] = {}

    def ref(self, tier: str, policy: str, idx: int, action: str, direction: str, staged: bool) -> RuleRef:
        r = RuleRef(self.next_id, tier, policy, idx, action, direction, staged)
        self.rs.index[r.id] = r
        self.next_id += 1
        return r

    def log_stmt(self, r: RuleRef) -> str:
        if self.log_group is None:
            return ""
        letter = "S" if r.staged else _LETTER[r.action]
        prefix = f"g|{r.id}|{letter}|{r.tier}|{r.policy}|{r.rule_index}"[:127].replace('"', "'")
        return f' log group {self.log_group} prefix "{prefix}"'

    # -- rule matches -------------------------------------------------------------------------

    def shared_set(self, items: list[str], set_type: str, prefix: str) -> str:
        """A named interval set holding ``items``, shared by every rule with the same list.

        Anonymous sets (``{ a, b }``) cost the kernel a name search over every set of the table each
        (quadratic at thousands of policies, about half of a full programming); a shared named set
        costs one lookup and exists once per distinct list.
        """
        name = prefix + hashlib.sha256("\n".join(items).encode()).hexdigest()[:12]
        if name not in self.rs.sets:
            self.rs.sets[name] = SetDef(name, set_type, ("interval",), frozenset(items))
        return "@" + name

    def any_of(self, key: str, items: list[str], set_type: str, prefix: str) -> list[str]:
        """Alternatives matching ``key`` against any of ``items``: one rule each for a short list
        (no set at all, so a policy edit never has to create one), one shared set for a long list."""
        if len(items) <= SPLIT_LIMIT:
            return [f"{key} {i}" for i in items]
        return [f"{key} {self.shared_set(items, set_type, prefix)}"]

    def none_of(self, key: str, items: list[str], set_type: str, prefix: str) -> list[str]:
        """Conditions (AND) that ``key`` matches none of ``items``."""
        if len(items) <= SPLIT_LIMIT:
            return [f"{key} != {i}" for i in items]
        return [f"{key} != {self.shared_set(items, set_type, prefix)}"]

    def peer_matches(self, peer: Peer, side: str, where: str, family: int = 4) -> list[list[str]] | None:
        """Alternatives (OR) of match lists (AND) for one side; ``None`` if it can never match ``family``."""
        ip = "ip" if family == 4 else "ip6"
        addr = f"{ip} saddr" if side == "src" else f"{ip} daddr"
        addr_type = "ipv4_addr" if family == 4 else "ipv6_addr"
        sfx = "" if family == 4 else "_6"
        port = "th sport" if side == "src" else "th dport"
        base: list[str] = [f"{addr} @{s}{sfx}" for s in peer.sets]
        base += [f"{addr} != @{s}{sfx}" for s in peer.not_sets]
        groups: list[list[str]] = []  # each group: alternatives (OR); groups combine with AND
        if peer.nets:
            nets = _nets(peer.nets, family, where)
            if not nets:
                return None
            groups.append(self.any_of(addr, nets, addr_type, f"c{family}_"))
        if peer.not_nets:
            base += self.none_of(addr, _nets(peer.not_nets, family, where), addr_type, f"c{family}_")
        if peer.domains:
            if family == 6:
                return None  # DNS-learned sets hold IPv4 answers (A records)
            base.append(f"{addr} @{dns_set(self._domain_set(peer.domains))}")
        if peer.not_ports:
            base += self.none_of(port, _merge_ports(peer.not_ports), "inet_service", "ps_")
        base += [f"{addr} . meta l4proto . {port} != @{self._named_port(n)}{sfx}" for n in peer.not_named_ports]
        if peer.ports or peer.named_ports:
            ports = self.any_of(port, _merge_ports(peer.ports), "inet_service", "ps_") if peer.ports else []
            ports += [f"{addr} . meta l4proto . {port} @{self._named_port(n)}{sfx}" for n in peer.named_ports]
            groups.append(ports)
        return [[*base, *combo] for combo in itertools.product(*groups)]

    def _domain_set(self, domains: tuple[str, ...]) -> str:
        name = dns_set(ident(*sorted(domains)))
        if name not in self.rs.sets:
            self.rs.sets[name] = SetDef(name, "ipv4_addr", ("timeout",), dynamic=True)
        self.data.domains.setdefault(name, tuple(sorted(domains)))
        return name

    def _named_port(self, name: str) -> str:
        """The set of ``address . protocol . port`` of every endpoint's port called ``name`` (and its v6 twin)."""
        sname = named_port_set(name)
        if sname in self.rs.sets:
            return sname
        v4, v6 = set(), set()
        for ep in self.data.endpoints:
            for pname, proto, number in ep.named_ports:
                if pname == name:
                    if ep.ip:
                        v4.add(f"{ep.ip} . {_proto_expr(proto)} . {number}")
                    if ep.ip6:
                        v6.add(f"{ep.ip6} . {_proto_expr(proto)} . {number}")
        self.rs.sets[sname] = SetDef(sname, "ipv4_addr . inet_proto . inet_service", (), frozenset(v4))
        if self.v6:
            self.rs.sets[v6_name(sname)] = SetDef(
                v6_name(sname), "ipv6_addr . inet_proto . inet_service", (), frozenset(v6)
            )
        return sname

    def rule_lines(self, rule: Rule, r: RuleRef, where: str) -> list[str]:
        head: list[str] = []
        proto = rule.protocol
        icmp_fields = (rule.icmp_type, rule.icmp_code, rule.not_icmp_type, rule.not_icmp_code)
        if any(f is not None for f in icmp_fields):
            proto = proto or ("ICMPV6" if rule.ip_version == 6 else "ICMP")
        pnum = _proto_expr(proto) if proto is not None else None
        if pnum is not None:
            head.append(f"meta l4proto {pnum}")
        if rule.not_protocol is not None:
            head.append(f"meta l4proto != {_proto_expr(rule.not_protocol)}")
        icmp = "icmpv6" if pnum == "58" else "icmp"
        if rule.icmp_type is not None:
            head.append(f"{icmp} type {rule.icmp_type}")
        if rule.icmp_code is not None:
            head.append(f"{icmp} code {rule.icmp_code}")
        # notICMP excludes one type (or one type/code pair): NOT(type == T AND code == C) is two alternatives
        icmp_alts: list[list[str]] = [[]]
        if rule.not_icmp_type is not None:
            icmp_alts = [[f"{icmp} type != {rule.not_icmp_type}"]]
            if rule.not_icmp_code is not None:
                icmp_alts.append([f"{icmp} code != {rule.not_icmp_code}"])
        elif rule.not_icmp_code is not None:
            icmp_alts = [[f"{icmp} code != {rule.not_icmp_code}"]]
        has_ports = any(p.ports or p.named_ports or p.not_ports or p.not_named_ports for p in (rule.src, rule.dst))
        if has_ports and proto is None:
            raise InputError("ports need a protocol (TCP, UDP or SCTP)", input_name=where)
        allowed = {4, 6}
        if pnum == "1":
            allowed = {4}
        elif pnum == "58":
            allowed = {6}
        if rule.ip_version is not None:
            allowed &= {rule.ip_version}
        families: list[int | None]
        if _addressed(rule.src) or _addressed(rule.dst):
            families = [f for f in (4, 6) if f in allowed and (f == 4 or self.v6)]
        elif not allowed:
            families = []
        else:
            families = [None]
            if rule.ip_version is not None:
                head.append(f"meta nfproto ipv{rule.ip_version}")
        if r.staged:
            verdict = "return"
        elif rule.action == "allow":
            verdict = "accept"
        elif rule.action == "deny":
            verdict = "drop"
        elif rule.action == "pass":
            verdict = f"meta mark set meta mark | {PASS_MARK:#x} return"
        else:
            verdict = ""
        lines = []
        for fam in families:
            src = self.peer_matches(rule.src, "src", where, fam or 4)
            dst = self.peer_matches(rule.dst, "dst", where, fam or 4)
            if src is None or dst is None:
                continue  # e.g. only IPv6 nets in the IPv4 variant
            for s, d, i in itertools.product(src, dst, icmp_alts):
                body = " ".join([*head, *i, *s, *d, "counter"]) + self.log_stmt(r)
                lines.append(f"{body} {verdict}".strip())
        return lines

    # -- chains ---------------------------------------------------------------------------------

    def policy_chain(self, pol: Policy, direction: str) -> str:
        name = policy_chain(pol, direction)
        if name in self.rs.chains:
            return name
        rules = pol.ingress if direction == "ingress" else pol.egress
        lines: list[str] = []
        where = f"policy {pol.name}"
        for rule in rules:
            if pol.staged and rule.action == "log":
                continue
            r = self.ref(pol.tier, pol.name, rule.index, rule.action, direction, pol.staged)
            lines += self.rule_lines(rule, r, where)
            if rule.action == "pass" and not pol.staged:
                self.tier_has_pass[pol.tier] = True
        self.rs.chains[name] = ChainDef(name, lines)
        self.rs.policy_chains.setdefault(pol.name, []).append(name)
        return name

    def tier_chain(self, tier: Tier, pols: list[Policy], direction: str) -> str:
        names = [self.policy_chain(p, direction) for p in pols]
        lines: list[str] = []
        for p, cname in zip(pols, names, strict=True):
            lines.append(f"jump {cname}")
            if self.tier_has_pass.get(tier.name) and not p.staged:
                lines.append(
                    f"meta mark & {PASS_MARK:#x} == {PASS_MARK:#x} meta mark set meta mark & {~PASS_MARK & 0xFFFFFFFF:#x} return"
                )
        enforced = [p for p in pols if not p.staged]
        if enforced:
            # the end-of-tier hit names the tier's last applicable policy, as Calico's flow logs do
            action = "pass" if tier.default_action == "pass" else "deny"
            key = f"{tier.name}|{direction}|{enforced[-1].name}|{action}"
            r = self.eot.get(key)
            if r is None:
                r = self.eot[key] = self.ref(tier.name, enforced[-1].name, -1, action, direction, False)
            lines.append("counter" + self.log_stmt(r) + (" return" if action == "pass" else " drop"))
        digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:10]
        name = f"t_{re.sub(r'[^A-Za-z0-9_]', '_', tier.name)[:24]}_{digest}"
        if name not in self.rs.chains:
            self.rs.chains[name] = ChainDef(name, lines)
        return name

    def profile_line(self, ep: Endpoint, direction: str) -> str:
        """The end of an endpoint chain: the namespace profile's allow, or for a host endpoint the
        default deny (Calico denies host endpoint traffic no policy allows, failsafe ports aside)."""
        if ep.host:
            key, tier, name, idx, action = f"hep|{direction}", "__PROFILE__", "__PROFILE__.__NO_MATCH__", -1, "deny"
        else:
            ns = ep.key.split("/", 1)[0] if "/" in ep.key else ""
            key, tier, name, idx, action = f"profile|{ns}|{direction}", "__PROFILE__", f"__PROFILE__.kns.{ns}", 0, "allow"
        ref = self.eot.get(key)
        if ref is None:
            ref = self.eot[key] = self.ref(tier, name, idx, action, direction, False)
        return "counter" + self.log_stmt(ref) + (" accept" if action == "allow" else " drop")

    def host_chains(self, maps: list[MapDef]) -> None:
        """Input/output base chains for host endpoints, with Calico's failsafe ports first."""
        rs, data = self.rs, self.data
        for m in maps:
            if m.elements or m.key_type == "ifname":
                rs.maps[m.name] = m
        for name, ports in (("failsafe_in", data.failsafe_in), ("failsafe_out", data.failsafe_out)):
            elems = frozenset(f"{_proto_expr(proto)} . {port}" for proto, port in ports)
            rs.sets[name] = SetDef(name, "inet_proto . inet_service", (), elems)
        for chain, hook, own, sfx, failsafe, mp in (
            ("host_in", "input", "iifname", "daddr", "failsafe_in", "h_in"),
            ("host_out", "output", "oifname", "saddr", "failsafe_out", "h_out"),
        ):
            rs.chains[chain] = ChainDef(
                chain,
                [
                    "ct state established,related accept",
                    "ct state invalid drop",
                    f'{own} "lo" accept',
                    f"meta l4proto . th dport @{failsafe} counter accept",
                    f"{own} vmap @{mp}",
                    *([f"ip {sfx} vmap @{mp}_ip"] if f"{mp}_ip" in rs.maps else []),
                    *([f"ip6 {sfx} vmap @{mp}_ip6"] if f"{mp}_ip6" in rs.maps else []),
                ],
                hook=f"type filter hook {hook} priority filter; policy accept;",
            )

    def run(self) -> Ruleset:
        self.eot: dict[str, RuleRef] = {}
        data = self.data
        rs = self.rs
        for name, members in sorted(data.sets.items()):
            elems = frozenset(_nets(members, 4, f"set {name}"))
            # plain address sets stay hash sets: their members change by one netlink message
            flags = ("interval",) if any("/" in e for e in elems) else ()
            rs.sets[name] = SetDef(name, "ipv4_addr", flags, elems)
            if self.v6:
                elems6 = frozenset(_nets(members, 6, f"set {name}"))
                flags6 = ("interval",) if any("/" in e for e in elems6) else ()
                rs.sets[v6_name(name)] = SetDef(v6_name(name), "ipv6_addr", flags6, elems6)
        tiers = sorted(data.tiers, key=lambda t: order_key(t.order, t.name))
        known = {t.name for t in tiers}
        for p in data.policies:
            if p.tier not in known:
                raise InputError(f"policy {p.name!r} names unknown tier {p.tier!r}", input_name="policies")
        by_tier = {
            t.name: sorted((p for p in data.policies if p.tier == t.name), key=lambda p: order_key(p.order, p.name))
            for t in tiers
        }
        # pass rules first, so tier chains know whether to test the pass mark
        for pol in data.policies:
            for rule in (*pol.ingress, *pol.egress):
                if rule.action == "pass" and not pol.staged:
                    self.tier_has_pass[pol.tier] = True
        m_in = MapDef("m_in", "ifname")
        m_out = MapDef("m_out", "ifname")
        m_in_ip = MapDef("m_in_ip", "ipv4_addr")
        m_out_ip = MapDef("m_out_ip", "ipv4_addr")
        m_in_ip6 = MapDef("m_in_ip6", "ipv6_addr")
        m_out_ip6 = MapDef("m_out_ip6", "ipv6_addr")
        fwd_maps = ((m_in, m_out), (m_in_ip, m_out_ip), (m_in_ip6, m_out_ip6))
        host_maps = tuple(
            (MapDef(f"h_in{sfx}", kind), MapDef(f"h_out{sfx}", kind))
            for sfx, kind in (("", "ifname"), ("_ip", "ipv4_addr"), ("_ip6", "ipv6_addr"))
        )
        # inverted index endpoint -> (tier, direction) -> policies in order: linear in the selections
        rank = {id(p): i for t in tiers for i, p in enumerate(by_tier[t.name])}
        applicable: dict[str, dict[tuple[str, str], list[Policy]]] = {}
        for p in data.policies:
            for key in p.selected:
                per = applicable.setdefault(key, {})
                for direction in p.types:
                    per.setdefault((p.tier, direction), []).append(p)
        for per in applicable.values():
            for pols in per.values():
                pols.sort(key=lambda p: rank[id(p)])
        for ep in sorted(data.endpoints, key=lambda e: e.key):
            mine = applicable.get(ep.key, {})
            for direction in ("ingress", "egress"):
                lines = []
                for t in tiers:
                    pols = mine.get((t.name, direction), [])
                    if not pols:
                        continue
                    lines.append(f"jump {self.tier_chain(t, pols, direction)}")
                lines.append(self.profile_line(ep, direction))
                cname = endpoint_chain(ep, direction)
                rs.chains[cname] = ChainDef(cname, lines)
                rs.endpoint_chains.setdefault(ep.key, []).append(cname)
                maps = host_maps if ep.host else fwd_maps
                i = 0 if direction == "ingress" else 1
                if ep.iface:
                    maps[0][i].elements[ep.iface] = cname
                    continue
                if ep.ip:
                    maps[1][i].elements[ep.ip] = cname
                if ep.ip6 and self.v6:
                    maps[2][i].elements[ep.ip6] = cname
        rs.maps = {m.name: m for m in (m_in, m_out, m_in_ip, m_out_ip)}
        if self.v6:
            rs.maps.update({m.name: m for m in (m_in_ip6, m_out_ip6)})
        if any(ep.host for ep in data.endpoints):
            self.host_chains([m for pair in host_maps for m in pair])
        dns_log = [f'udp sport 53 log group {DNS_LOG_GROUP} snaplen 1500 prefix "gdns"'] if data.domains else []
        rs.chains["fwd_egress"] = ChainDef(
            "fwd_egress",
            [
                *dns_log,
                "ct state established,related accept",
                "ct state invalid drop",
                "iifname vmap @m_out",
                "ip saddr vmap @m_out_ip",
                *(["ip6 saddr vmap @m_out_ip6"] if self.v6 else []),
            ],
            hook="type filter hook forward priority filter - 1; policy accept;",
        )
        rs.chains["fwd_ingress"] = ChainDef(
            "fwd_ingress",
            [
                "ct state established,related accept",
                "ct state invalid drop",
                "oifname vmap @m_in",
                "ip daddr vmap @m_in_ip",
                *(["ip6 daddr vmap @m_in_ip6"] if self.v6 else []),
            ],
            hook="type filter hook forward priority filter; policy accept;",
        )
        # base chains last in the dict: rules referencing chains render after those chains exist
        for c in rs.chains.values():
            c.finish()
        return rs


def compile_ruleset(data: DataplaneInput, log_group: int | None = DEFAULT_LOG_GROUP) -> Ruleset:
    """Compile ``data`` to a :class:`Ruleset`; raises :class:`InputError` on what cannot be expressed."""
    return _Compiler(data, log_group).run()


def _has_pass(p: Policy) -> bool:
    return any(r.action == "pass" for r in (*p.ingress, *p.egress))


def update_ruleset(
    old_rs: Ruleset, old: DataplaneInput, new: DataplaneInput, log_group: int | None = DEFAULT_LOG_GROUP
) -> Ruleset:
    """``new`` compiled, reusing ``old_rs`` when only the rules of some policies changed.

    When endpoints, tiers and the policies' selections, order, types and staging are unchanged (and no
    Pass rule is involved, which shapes the tier chains), only the changed policies' own chains are
    recompiled, which keeps a one-policy edit in the low milliseconds at thousands of policies.
    Anything else falls back to a full :func:`compile_ruleset`.
    """
    if old.endpoints != new.endpoints or old.tiers != new.tiers or len(old.policies) != len(new.policies):
        return compile_ruleset(new, log_group)
    before = {(p.tier, p.name): p for p in old.policies}
    changed: list[tuple[Policy, Policy]] = []
    for p in new.policies:
        q = before.get((p.tier, p.name))
        if q is None:
            return compile_ruleset(new, log_group)
        if q == p:
            continue
        same_shape = (q.selected, q.order, q.types, q.staged) == (p.selected, p.order, p.types, p.staged)
        if not same_shape or _has_pass(p) or _has_pass(q):
            return compile_ruleset(new, log_group)
        if not old_rs.v6 and _has_v6_nets(p):  # every addressed rule would need its IPv6 variant
            return compile_ruleset(new, log_group)
        changed.append((q, p))
    # endpoints and sets are unchanged (checked above and below), so IPv6 stays as it was compiled
    comp = _Compiler(new, log_group, v6=old_rs.v6)
    comp.next_id = max(old_rs.index, default=0) + 1
    comp.rs.sets = dict(old_rs.sets)
    for name, members in new.sets.items():
        if old.sets.get(name) != members:
            return compile_ruleset(new, log_group)
    fresh: dict[str, ChainDef] = {}
    for q, p in changed:
        for direction in sorted(p.types):
            if (q.ingress, q.egress)[direction == "egress"] == (p.ingress, p.egress)[direction == "egress"]:
                continue
            cname = comp.policy_chain(p, direction)
            fresh[cname] = comp.rs.chains[cname]
            fresh[cname].finish()
    if any(name not in old_rs.chains for name in fresh):
        return compile_ruleset(new, log_group)
    rs = Ruleset(
        sets=comp.rs.sets,
        maps=old_rs.maps,
        chains={name: fresh.get(name, c) for name, c in old_rs.chains.items()},
        index={**old_rs.index, **comp.rs.index},
        policy_chains=old_rs.policy_chains,
        endpoint_chains=old_rs.endpoint_chains,
        v6=old_rs.v6,
    )
    return rs
