"""The hand-built netlink path for policy changes: same kernel objects as libnftables, atomic, with fallback."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.network.dataplane import netns
from garrison.network.dataplane.apply import Applier, _chain_rewrites
from garrison.network.dataplane.compile import compile_ruleset, update_ruleset
from garrison.network.dataplane.ir import DataplaneInput, Endpoint, Peer, Policy, PortRange, Rule, Tier
from garrison.network.dataplane.nft import Nft, NftError
from garrison.network.dataplane.nlbatch import Unsupported, encode_rule

# every shape of rule the compiler emits into policy chains (and a few from tier/endpoint chains)
RULES = [
    'meta l4proto 6 ip saddr @s th dport 80 counter log group 17 prefix "g|1|A|x|ns/y|0" accept comment "gh:abc"',
    "meta l4proto 6 ip6 saddr != @s_6 ip6 daddr @s_6 th dport != @ps th sport 1000-2000 counter drop",
    "meta l4proto 17 ip saddr 10.0.0.0/8 ip daddr != 10.1.2.3 ip daddr != 10.64.0.0/10 th dport 53 counter"
    " meta mark set meta mark | 0x40000000 return",
    "meta l4proto 6 ip daddr . meta l4proto . th dport != @np ip saddr . meta l4proto . th sport @np counter return",
    "meta l4proto 6 ip6 daddr . meta l4proto . th dport @np_6 counter return",
    "meta l4proto 1 icmp type 8 icmp code != 0 counter accept",
    "meta l4proto 58 icmpv6 type != 128 ip6 saddr fd00::/64 ip6 daddr fd00:1:2::/50 th dport != 5-6 counter jump t",
    'meta l4proto != 6 meta nfproto ipv6 counter log group 17 prefix "g|2|L|x|y|1"',
    'counter log group 17 prefix "g|10|A|__PROFILE__|__PROFILE__.kns.ns0|0" accept comment "gh:4838b0792867"',
    "jump t",
]
TABLE_SETUP = """add table inet garrison
add set inet garrison s { type ipv4_addr; }
add set inet garrison s_6 { type ipv6_addr; }
add set inet garrison ps { type inet_service; flags interval; }
add set inet garrison np { type ipv4_addr . inet_proto . inet_service; }
add set inet garrison np_6 { type ipv6_addr . inet_proto . inet_service; }
add chain inet garrison a
add chain inet garrison b
add chain inet garrison t
"""


@pytest.fixture(scope="module")
def nft() -> Iterator[Nft]:
    name = f"gdp-{os.getpid()}-nl"
    netns.ip_batch([f"netns add {name}"])
    try:
        with Nft(name) as n:
            yield n
    finally:
        netns.delete_netns([name])


def _rules(nft: Nft, chain: str) -> list[dict[str, Any]]:
    out = []
    for item in nft.list_json(f"chain inet garrison {chain}")["nftables"]:
        if "rule" in item:
            r = dict(item["rule"])
            del r["handle"], r["chain"]
            out.append(r)
    return out


def test_netlink_chain_equals_the_libnftables_chain(nft: Nft) -> None:
    nft.run("add table inet garrison\ndelete table inet garrison\n" + TABLE_SETUP)
    nft.run("".join(f"add rule inet garrison a {r}\n" for r in RULES))
    nft.rewrite_chains("garrison", {"b": RULES})
    a, b = _rules(nft, "a"), _rules(nft, "b")
    assert len(a) == len(RULES) and a == b


def test_netlink_rewrite_is_atomic(nft: Nft) -> None:
    nft.run("add table inet garrison\ndelete table inet garrison\n" + TABLE_SETUP)
    nft.rewrite_chains("garrison", {"b": RULES[:3], "a": RULES[3:5]})
    before = (_rules(nft, "a"), _rules(nft, "b"))
    with pytest.raises(NftError, match="rejected"):  # the second chain's rule names a missing set
        nft.rewrite_chains("garrison", {"b": RULES[:1], "a": ["ip saddr @no_such_set accept"]})
    assert (_rules(nft, "a"), _rules(nft, "b")) == before
    with pytest.raises(Unsupported):
        nft.rewrite_chains("garrison", {"b": ["ct state established accept"]})
    assert _rules(nft, "b") == before[1]


@given(st.text(max_size=80))
def test_encoder_never_crashes_on_arbitrary_text(text: str) -> None:
    try:
        assert encode_rule(text)
    except Unsupported:
        pass


@given(st.lists(st.sampled_from(RULES), max_size=6), st.sampled_from(["flush chain inet garrison x", "add chain"]))
def test_chain_rewrite_detection(rules: list[str], other: str) -> None:
    cmds = ["flush chain inet garrison x", *(f"add rule inet garrison x {r}" for r in rules)]
    assert _chain_rewrites(cmds) == {"x": rules}
    assert _chain_rewrites([f"add rule inet garrison y {r}" for r in rules]) is None  # not flushed: a new chain
    assert _chain_rewrites([*cmds, "add chain inet garrison z"]) is None
    assert (_chain_rewrites([other]) is None) == (other == "add chain")


def test_policy_change_goes_over_netlink_and_matches_a_full_apply(nft: Nft) -> None:
    eps = [Endpoint(f"ns/p{i}", f"10.9.0.{i + 2}", f"gv{i}", (("http", "TCP", 80),), ip6=f"fd00::{i + 2}")
           for i in range(4)]
    sets = {"s_a": frozenset({"10.9.0.2", "fd00::2"})}
    ports = Peer(ports=(PortRange(80, 80), PortRange(90, 99)))
    pol = Policy("ns/p", "default", 1.0, frozenset({"ns/p1"}), (
        Rule("allow", "TCP", src=Peer(sets=("s_a",)), dst=ports),
        Rule("deny", "ICMP", not_icmp_type=8, src=Peer(nets=("10.0.0.0/9",)), index=1),
    ))
    data = DataplaneInput(eps, [Tier("default", 1.0, "deny")], [pol], sets)
    applier = Applier(nft)
    applier.remove()
    applier.apply(compile_ruleset(data))
    calls: list[str] = []
    run = nft.run
    nft.run = lambda text: calls.append(text) or run(text)  # type: ignore[method-assign]
    # 1: new ports and a new net: only the policy chain changes, sent over netlink
    rule0 = dataclasses.replace(pol.ingress[0], dst=Peer(ports=(PortRange(443, 443), PortRange(8000, 8100))))
    rule1 = dataclasses.replace(pol.ingress[1], src=Peer(nets=("10.128.0.0/9", "fd00::/120")))
    # 2: a named port: its set does not exist yet, so that change goes through libnftables
    rule2 = dataclasses.replace(pol.ingress[0], dst=Peer(named_ports=("http",)))
    try:
        for rules, via_netlink in (((rule0, rule1), True), ((rule2, rule1), False)):
            calls.clear()
            new = dataclasses.replace(data, policies=[dataclasses.replace(pol, ingress=rules)])
            assert applier.applied is not None
            rs = update_ruleset(applier.applied, data, new)
            res = applier.apply(rs)
            assert res.mode == "diff" and len(res.changed_chains) == 1
            assert (not calls) == via_netlink and (res.via == "netlink") == via_netlink
            fast = {c: _rules(nft, c) for c in rs.chains}
            applier.apply(rs, full=True)  # the same ruleset, all through libnftables
            assert {c: _rules(nft, c) for c in rs.chains} == fast
            data = new
    finally:
        del nft.run


def test_set_member_update_routes_each_family_to_its_set(nft: Nft) -> None:
    eps = [Endpoint("ns/a", "10.9.0.2", "gv0", ip6="fd00::2")]
    pol = Policy("ns/p", "default", 1.0, frozenset({"ns/a"}), (Rule("allow", src=Peer(sets=("s_a",))),))
    data = DataplaneInput(eps, [Tier("default", 1.0, "deny")], [pol], {"s_a": frozenset({"10.9.0.2", "fd00::2"})})
    applier = Applier(nft)
    applier.remove()
    applier.apply(compile_ruleset(data))
    applier.update_set("s_a", add={"10.9.0.7", "fd00::7"}, remove={"fd00::2"})
    st = applier.kernel_state()
    assert st.sets["s_a"] == {"10.9.0.2", "10.9.0.7"} and st.sets["s_a_6"] == {"fd00::7"}
    assert applier.apply(applier.applied, verify=True).mode == "noop"  # memory and kernel agree
