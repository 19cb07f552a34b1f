"""ICMP type/code rules, notICMP, named notPorts, ipVersion and IPv6 on the real kernel (dual-stack harness).

Live ICMP probes are real echo / timestamp requests from the client namespace; the kernel's answer
must equal the evaluator's verdict (which gets the same ICMP type and code) on every pair, and a
few pairs are pinned to what the policy text plainly says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.network.dataplane._dataplane_cluster import all_pairs, inventory_docs, write_yaml

from garrison.network.dataplane.agent import Agent
from garrison.network.dataplane.compile import compile_ruleset
from garrison.network.dataplane.flowlog import parse_ip
from garrison.network.dataplane.harness import Harness
from garrison.network.dataplane.ir import DataplaneInput, Endpoint, Peer, Policy, PortRange, Rule, Tier

pytestmark = pytest.mark.slow


def _gnp(name: str, selector: str, ingress: list[dict[str, Any]], order: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name},
        "spec": {"order": order, "selector": selector, "types": ["Ingress"], "ingress": ingress},
    }


# db: echo allowed (v4 and v6), every other ICMP type denied, TCP to anything but the named port pg,
# UDP only over IPv6; web: ICMP allowed except echo requests (notICMP), TCP from front only
POLICIES = [
    _gnp(
        "db-icmp",
        "projectcalico.org/namespace == 'db'",
        [
            {"action": "Allow", "protocol": "ICMP", "icmp": {"type": 8, "code": 0}},
            {"action": "Allow", "protocol": "ICMPv6", "icmp": {"type": 128}},
            {"action": "Deny", "protocol": "ICMP"},
            {"action": "Allow", "protocol": "TCP", "destination": {"notPorts": ["pg"]}},
            {"action": "Allow", "protocol": "UDP", "ipVersion": 6},
        ],
    ),
    _gnp(
        "web-icmp",
        "projectcalico.org/namespace == 'web'",
        [
            {"action": "Allow", "protocol": "ICMP", "notICMP": {"type": 8}},
            {"action": "Allow", "protocol": "TCP", "source": {"selector": "app == 'front'"}},
        ],
    ),
]


@pytest.fixture
def agent(cluster: Harness, tmp_path: Path) -> Agent:
    d = tmp_path
    pol = write_yaml(d / "policies.yaml", POLICIES)
    inv = write_yaml(d / "inventory.yaml", inventory_docs())
    assert cluster.nft is not None
    a = Agent(pol, inv, cluster.nft, {k: e.iface for k, e in cluster.endpoints.items()})
    a.sync()
    assert a.adapted is not None and not a.adapted.skipped
    return a


@pytest.mark.parametrize(
    ("icmp_type", "pinned_allowed", "pinned_denied"),
    [
        pytest.param(8, ("web/front", "db/pg"), ("db/pg", "web/admin"), id="echo"),
        pytest.param(13, ("db/pg", "web/admin"), ("web/front", "db/cache"), id="timestamp"),
    ],
)
def test_icmp_probes_agree_with_the_evaluator(
    agent: Agent, cluster: Harness, icmp_type: int, pinned_allowed: tuple[str, str], pinned_denied: tuple[str, str]
) -> None:
    assert agent.adapted is not None
    pairs = all_pairs()
    got = cluster.probe(pairs, "ICMP", icmp_type, timeout=0.4)
    ev = agent.adapted.evaluator
    wrong = [
        (a, b, got[(a, b)])
        for a, b in pairs
        if got[(a, b)] != ev.evaluate(a, b, "ICMP", None, icmp_type=icmp_type, icmp_code=0).allowed
    ]
    assert not wrong
    assert got[pinned_allowed] and not got[pinned_denied]


def test_icmpv6_echo_and_ipv6_tcp_udp_follow_the_policy(agent: Agent, cluster: Harness) -> None:
    pairs = all_pairs()
    assert agent.adapted is not None
    echo6 = cluster.probe(pairs, "ICMPV6", 128, timeout=0.4, family=6)
    ev = agent.adapted.evaluator
    assert all(echo6[(a, b)] == ev.evaluate(a, b, "ICMPv6", None, icmp_type=128, icmp_code=0).allowed for a, b in pairs)
    assert echo6[("web/front", "db/pg")] and not echo6[("db/pg", "web/front")]  # web has no ICMPv6 rule
    tcp4 = cluster.probe(pairs, "TCP", 80)
    tcp6 = cluster.probe(pairs, "TCP", 80, family=6)
    assert tcp4 == tcp6  # no rule names an address family: both stacks give the same answer
    assert tcp6[("web/admin", "db/pg")] and not tcp6[("db/pg", "web/admin")]
    pg4 = cluster.probe([("web/front", "db/pg"), ("web/front", "db/cache")], "TCP", 5432)
    pg6 = cluster.probe([("web/front", "db/pg")], "TCP", 5432, family=6)
    assert not any(pg4.values()) and not any(pg6.values())  # notPorts: [pg] names port 5432
    udp4 = cluster.probe([("web/front", "db/pg")], "UDP", 53)
    udp6 = cluster.probe([("web/front", "db/pg")], "UDP", 53, family=6)
    assert not udp4[("web/front", "db/pg")] and udp6[("web/front", "db/pg")]  # ipVersion: 6


def _one(rule: Rule, ip6: str = "") -> DataplaneInput:
    ep = Endpoint("ns/a", "10.0.0.2", "gv0", (("http", "TCP", 8080),), ip6=ip6)
    pol = Policy("ns/p", "default", 1.0, frozenset({"ns/a"}), (rule,))
    return DataplaneInput([ep], [Tier("default", 1.0, "deny")], [pol], {"s_x": frozenset({"10.0.0.2", ip6} - {""})})


def _rules(data: DataplaneInput) -> list[str]:
    return next(c.rules for n, c in compile_ruleset(data).chains.items() if n.startswith("p_"))


def test_compile_named_source_ports_named_not_ports_and_not_icmp() -> None:
    [src_named] = _rules(_one(Rule("allow", "TCP", src=Peer(named_ports=("http",)))))
    assert "ip saddr . meta l4proto . th sport @np_http_" in src_named
    [not_named] = _rules(_one(Rule("allow", "TCP", dst=Peer(not_named_ports=("http",), not_ports=(PortRange(1, 2),)))))
    assert "th dport != 1-2" in not_named and "ip daddr . meta l4proto . th dport != @np_http_" in not_named
    both = _rules(_one(Rule("allow", "ICMP", not_icmp_type=8, not_icmp_code=0)))
    assert len(both) == 2 and "icmp type != 8" in both[0] and "icmp code != 0" in both[1]
    [v6] = _rules(_one(Rule("allow", "ICMPV6", icmp_type=128)))
    assert "meta l4proto 58 icmpv6 type 128" in v6


def test_compile_dual_stack_variants_and_shared_port_sets() -> None:
    many = (443, 1000, 2000, 3000)
    ports = Peer(ports=(*(PortRange(p, p) for p in many), PortRange(80, 80), PortRange(81, 90), PortRange(85, 100)))
    rs = compile_ruleset(_one(Rule("allow", "TCP", src=Peer(sets=("s_x",)), dst=ports), ip6="fd00::2"))
    rules = next(c.rules for n, c in rs.chains.items() if n.startswith("p_"))
    assert [r.split(" ")[:3] for r in rules] == [["meta", "l4proto", "6"]] * 2
    assert "ip saddr @s_x " in rules[0] and "ip6 saddr @s_x_6 " in rules[1]
    assert rs.sets["s_x_6"].elements == {"fd00::2"} and rs.sets["s_x_6"].type == "ipv6_addr"
    port_sets = [s for n, s in rs.sets.items() if n.startswith("ps_")]
    assert len(port_sets) == 1 and port_sets[0].elements == {"80-100", "443", "1000", "2000", "3000"}  # merged (no overlaps)
    # a short list is one rule per item, no set at all (a policy edit then never creates a set)
    few = Peer(ports=(PortRange(443, 443), PortRange(80, 90)))
    rules = _rules(_one(Rule("allow", "TCP", dst=few, src=Peer(nets=("10.0.0.0/8", "10.9.0.0/16")))))
    assert len(rules) == 2 and "ip saddr 10.0.0.0/8 th dport 80-90 " in rules[0] and "th dport 443 " in rules[1]
    # an ipVersion 4 rule without addresses gets a family match, an ICMP rule no IPv6 variant
    [fam] = _rules(_one(Rule("deny", "UDP", ip_version=4), ip6="fd00::2"))
    assert "meta nfproto ipv4" in fam
    [icmp] = _rules(_one(Rule("allow", "ICMP", src=Peer(sets=("s_x",))), ip6="fd00::2"))
    assert icmp.startswith("meta l4proto 1 ip saddr @s_x ")


def test_ipv6_nets_in_the_kernel(cluster: Harness, tmp_path: Path) -> None:
    """An IPv6 CIDR rule (and its except) on real traffic: web/front reaches db only over IPv6."""
    nets = {"nets": ["fd00:10:60::/48"], "notNets": ["fd00:10:60::3/128"]}
    pol = _gnp("v6-nets", "projectcalico.org/namespace == 'db'", [{"action": "Allow", "protocol": "TCP", "source": nets}])
    assert cluster.nft is not None
    ifaces = {k: e.iface for k, e in cluster.endpoints.items()}
    inv = write_yaml(tmp_path / "i.yaml", inventory_docs())
    a = Agent(write_yaml(tmp_path / "p.yaml", [pol]), inv, cluster.nft, ifaces)
    a.sync()
    pairs = [("web/front", "db/pg"), ("web/admin", "db/pg")]
    assert cluster.probe(pairs, "TCP", 80, family=6) == {pairs[0]: True, pairs[1]: False}
    assert cluster.probe(pairs, "TCP", 80) == {pairs[0]: False, pairs[1]: False}


def test_flow_log_packet_parser_reads_ipv6() -> None:
    import socket
    import struct

    hdr = struct.pack("!IHBB", 6 << 28, 20, 6, 64)
    hdr += socket.inet_pton(socket.AF_INET6, "fd00::2") + socket.inet_pton(socket.AF_INET6, "fd00::3")
    assert parse_ip(hdr + struct.pack("!HH", 4000, 80) + b"\0" * 16) == (6, "fd00::2", "fd00::3", 4000, 80, 60)


@given(st.binary(max_size=80))
def test_flow_log_packet_parser_never_crashes(data: bytes) -> None:
    parsed = parse_ip(data)
    assert parsed is None or parsed[0] in range(256)
