"""DNS policy: addresses of allowed domains are learned from real DNS replies crossing the node."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.network.dataplane._dataplane_cluster import write_yaml

from garrison.network.dataplane import netns
from garrison.network.dataplane.agent import Agent
from garrison.network.dataplane.dns import DNS_LOG_GROUP, DnsLearner, DnsParseError, domain_regex, parse_response
from garrison.network.dataplane.flowlog import NflogReader
from garrison.network.dataplane.harness import Harness


def _qname(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def dns_response(qname: str, answers: list[tuple[str, int, str]], cname: str | None = None) -> bytes:
    """A response for ``qname``: optional CNAME qname -> cname, then A records (owner, ttl, ip)."""
    body = _qname(qname) + struct.pack("!HH", 1, 1)
    count = 0
    if cname:
        target = _qname(cname)
        body += b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(target)) + target
        count += 1
    for owner, ttl, ip in answers:
        body += _qname(owner) + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_aton(ip)
        count += 1
    return struct.pack("!HHHHHH", 0x1234, 0x8180, 1, count, 0, 0) + body


def test_parse_follows_cname_to_the_question() -> None:
    msg = dns_response("api.example.com", [("edge.cdn.net", 30, "192.0.2.7")], cname="edge.cdn.net")
    got = {(a.name, a.ip, a.ttl) for a in parse_response(msg)}
    assert ("api.example.com", "192.0.2.7", 30) in got and ("edge.cdn.net", "192.0.2.7", 30) in got
    query = bytearray(msg)
    query[2] &= 0x7F  # clear QR: a query carries no answers to learn
    assert parse_response(bytes(query)) == []


def test_domain_patterns_follow_calico() -> None:
    rx = domain_regex(["*.example.com", "exact.org"])
    assert rx.fullmatch("api.example.com") and rx.fullmatch("exact.org")
    assert not rx.fullmatch("a.b.example.com") and not rx.fullmatch("example.com") and not rx.fullmatch("x.exact.org")


@given(st.binary(max_size=300))
def test_parse_never_crashes_on_garbage(data: bytes) -> None:
    try:
        parse_response(data)
    except DnsParseError:
        pass


@given(st.binary(min_size=12, max_size=120))
def test_parse_never_crashes_on_mutated_responses(tail: bytes) -> None:
    msg = dns_response("a.example.com", [("a.example.com", 5, "192.0.2.1")])
    try:
        parse_response(msg[:12] + tail)
    except DnsParseError:
        pass


POLICIES = [
    {  # front may resolve through db/cache and reach *.example.com on TCP 80, nothing else
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "front-egress", "namespace": "web"},
        "spec": {
            "selector": "app == 'front'",
            "types": ["Egress"],
            "egress": [
                {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}},
                {"action": "Allow", "protocol": "TCP", "destination": {"domains": ["*.example.com"], "ports": [80]}},
            ],
        },
    }
]


@pytest.mark.slow
def test_learned_addresses_open_the_policy_for_their_ttl(
    cluster: Harness, tmp_path: Path, inventory_file: Path
) -> None:
    assert cluster.nft is not None
    agent = Agent(
        write_yaml(tmp_path / "p.yaml", POLICIES),
        inventory_file,
        cluster.nft,
        {k: e.iface for k, e in cluster.endpoints.items()},
    )
    agent.applier.remove()
    agent.sync()
    assert agent.adapted is not None and agent.adapted.data.domains
    front, pg, cache = (cluster.endpoints[k] for k in ("web/front", "db/pg", "db/cache"))
    assert cluster.probe([("web/front", "db/pg")], "TCP", 80, timeout=0.3) == {("web/front", "db/pg"): False}
    learner = DnsLearner(agent.applier, agent.adapted.data.domains)
    with NflogReader(DNS_LOG_GROUP, cluster.node, copy_range=1500) as reader:
        # db/cache echoes UDP on port 53: the "reply" that crosses the node is a real DNS response
        s = netns.socket_in(front.ns, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(2)
            s.sendto(
                dns_response("api.example.com", [("api.example.com", 30, pg.ip), ("evil.org", 30, cache.ip)]),
                (cache.ip, 53),
            )
            assert s.recv(2048)
        finally:
            s.close()
        assert learner.feed(reader.read(1.0)) == 1
    [dset] = agent.adapted.data.domains
    elems = agent.applier.nft.list_json(f"set inet garrison {dset}")["nftables"][1]["set"]["elem"]
    assert [e["elem"]["val"] for e in elems] == [pg.ip]
    assert 0 < elems[0]["elem"]["expires"] <= 30 and elems[0]["elem"]["timeout"] == 30
    assert cluster.probe([("web/front", "db/pg")], "TCP", 80, timeout=0.3) == {("web/front", "db/pg"): True}
    assert cluster.probe([("web/front", "db/cache")], "TCP", 80, timeout=0.3) == {("web/front", "db/cache"): False}
