"""Parsers and encoders of the dataplane: NFLOG messages, IPv4/SCTP packets, log prefixes, compile errors."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.core.errors import InputError
from garrison.network.dataplane.compile import compile_ruleset
from garrison.network.dataplane.flowlog import _parse_messages, decode_prefix, parse_ipv4
from garrison.network.dataplane.ir import DataplaneInput, Endpoint, Peer, Policy, PortRange, Rule, Tier
from garrison.network.dataplane.probe import crc32c, parse_sctp_init, sctp_init


def test_crc32c_known_vectors() -> None:
    # RFC 3720 appendix B.4 test vectors
    assert crc32c(b"\x00" * 32) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E


def test_sctp_init_round_trip() -> None:
    pkt = sctp_init(40000, 80, 0xDEADBEEF)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(pkt),
        0,
        0,
        64,
        132,
        0,
        socket.inet_aton("10.0.0.1"),
        socket.inet_aton("10.0.0.2"),
    )
    assert parse_sctp_init(ip + pkt) == ("10.0.0.1", 40000, 80, 0xDEADBEEF)
    # the checksum field verifies: zero it, recompute, compare (little-endian on the wire)
    zeroed = pkt[:8] + b"\0\0\0\0" + pkt[12:]
    assert struct.unpack("<I", pkt[8:12])[0] == crc32c(zeroed)


@given(st.binary(max_size=200))
def test_packet_parsers_never_crash(data: bytes) -> None:
    parse_ipv4(data)
    parse_sctp_init(data)


@given(st.binary(max_size=400))
def test_nflog_message_parser_never_crashes(data: bytes) -> None:
    for lp in _parse_messages(data, 0.0):
        assert isinstance(lp.prefix, str)


@given(st.text(max_size=80))
def test_prefix_decoder_never_crashes(text: str) -> None:
    decode_prefix(text, {})


def test_nflog_message_round_trip() -> None:
    def attr(kind: int, value: bytes) -> bytes:
        n = 4 + len(value)
        return struct.pack("=HH", n, kind) + value + b"\0" * ((4 - n % 4) % 4)

    payload = (
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, socket.inet_aton("10.1.0.2"), socket.inet_aton("10.2.0.3")
        )
        + struct.pack("!HH", 5555, 80)
        + b"\0" * 16
    )
    body = b"\0\0\0\x11" + attr(10, b"g|4|A|default|x/p|0\0") + attr(9, payload)
    msg = struct.pack("=IHHII", 16 + len(body), 4 << 8, 0, 1, 0) + body
    [lp] = _parse_messages(msg, 1.0)
    assert lp.prefix == "g|4|A|default|x/p|0"
    assert parse_ipv4(lp.packet) == (6, "10.1.0.2", "10.2.0.3", 5555, 80, 40)


def _input(rule: Rule) -> DataplaneInput:
    ep = Endpoint("ns/a", "10.0.0.2", "gv0", (("http", "TCP", 8080),))
    pol = Policy("ns/p", "default", 1.0, frozenset({"ns/a"}), (rule,))
    return DataplaneInput([ep], [Tier("default", 1.0, "deny")], [pol])


def test_compile_rejects_what_cannot_be_expressed() -> None:
    with pytest.raises(InputError, match="bad CIDR"):
        compile_ruleset(_input(Rule("allow", src=Peer(nets=("10.0.0.300/8",)))))
    with pytest.raises(InputError, match="ports need a protocol"):
        compile_ruleset(_input(Rule("allow", dst=Peer(ports=(PortRange(80, 80),)))))
    with pytest.raises(InputError, match="unknown protocol"):
        compile_ruleset(_input(Rule("allow", protocol="GRE")))


def test_compile_icmp_ranges_named_ports_and_ipv6_only_rules() -> None:
    rs = compile_ruleset(_input(Rule("deny", icmp_type=8, icmp_code=0)))
    text = rs.pretty()
    assert "meta l4proto 1 icmp type 8 icmp code 0 counter" in text and " drop" in text
    rs = compile_ruleset(_input(Rule("allow", "TCP", dst=Peer(ports=(PortRange(1000, 2000),), named_ports=("http",)))))
    text = rs.pretty()
    assert "th dport 1000-2000" in text and "ip daddr . meta l4proto . th dport @np_" in text
    assert "10.0.0.2 . 6 . 8080" in text
    rs = compile_ruleset(_input(Rule("allow", src=Peer(nets=("2001:db8::/32",)))))
    rules = [r for c in rs.chains.values() for r in c.rules if "2001" in r]
    assert len(rules) == 1 and rules[0].startswith("ip6 saddr 2001:db8::/32 ")  # IPv6-only net: no IPv4 rule


def test_stale_namespaces_of_dead_runs_are_removed() -> None:
    import subprocess

    from garrison.network.dataplane import netns
    from garrison.network.dataplane.harness import cleanup_stale

    pid = subprocess.Popen(["true"])  # its pid belongs to no process once it has exited
    pid.wait()
    name = f"gdp-{pid.pid}-dead-n"
    live = f"gdp-{__import__('os').getpid()}-live-n"
    netns.ip_batch([f"netns add {name}", f"netns add {live}"])
    try:
        assert name in cleanup_stale()
        assert name not in netns.list_netns("gdp-") and live in netns.list_netns("gdp-")
    finally:
        netns.delete_netns([name, live])
