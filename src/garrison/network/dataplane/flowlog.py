"""Flow logs from the dataplane: NFLOG packets, decoded back to policy hits, aggregated per 5-tuple.

Every rule the compiler emits logs the first packet of a connection to NFLOG group N with the
prefix ``g|<id>|...`` (established packets are accepted before any policy chain, so each verdict
is logged once per connection and direction). :class:`NflogReader` speaks nfnetlink_log directly
(bind the group, copy the first 128 bytes of each packet, no batching); it is ~80 lines of
``struct``, which saves a dependency (pyroute2 has no NFLOG support; libnetfilter_log needs a C
binding). :class:`FlowAggregator` looks each prefix up in :attr:`Ruleset.index` and builds Calico
flow-log records: one per 5-tuple and reporter (``src`` for the sender's egress hits, ``dst`` for
the receiver's ingress hits), with enforced and pending (staged) policy hits in Calico's string
form ``<index>|<tier>|<policy>|<action>|<rule>``, start/end time and the packets and bytes logged.
Records are written as JSON lines.

Byte and packet counts cover the logged (first) packets of each connection; the per-rule nftables
counters and conntrack accounting hold the totals.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

from garrison.model.network import Action, FlowLog, PolicyHit
from garrison.network.dataplane import netns
from garrison.network.dataplane.compile import RuleRef
from garrison.network.dataplane.ir import Endpoint

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFULA_CFG_CMD, NFULA_CFG_MODE, NFULA_CFG_QTHRESH = 1, 2, 5
NFULA_PAYLOAD, NFULA_PREFIX = 9, 10
NFULNL_CFG_CMD_BIND, NFULNL_CFG_CMD_UNBIND = 1, 2
NFULNL_COPY_PACKET = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp"}


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


@dataclass(slots=True, frozen=True)
class LoggedPacket:
    prefix: str
    packet: bytes
    time: float


class NflogReader:
    """Receive the packets logged to NFLOG ``group`` inside network namespace ``ns``."""

    def __init__(self, group: int, ns: str | None = None, copy_range: int = 128) -> None:
        self.group = group
        self.sock = netns.socket_in(ns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._seq = 0
        self._config(_attr(NFULA_CFG_CMD, struct.pack("B", NFULNL_CFG_CMD_BIND)))
        self._config(
            _attr(NFULA_CFG_MODE, struct.pack("!IBB", copy_range, NFULNL_COPY_PACKET, 0))
            + _attr(NFULA_CFG_QTHRESH, struct.pack("!I", 1))
        )

    def _config(self, attrs: bytes) -> None:
        self._seq += 1
        body = struct.pack("!BBH", socket.AF_UNSPEC, 0, self.group) + attrs
        hdr = struct.pack(
            "=IHHII",
            16 + len(body),
            (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG,
            NLM_F_REQUEST | NLM_F_ACK,
            self._seq,
            0,
        )
        self.sock.send(hdr + body)
        reply = self.sock.recv(4096)
        _, kind, _, _, _ = struct.unpack_from("=IHHII", reply)
        if kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", reply, 16)
            if err != 0:
                raise netns.NetnsError(f"NFLOG group {self.group}: {os.strerror(-err)}")

    def read(self, timeout: float = 0.0) -> list[LoggedPacket]:
        """Every packet waiting now, or arriving within ``timeout`` seconds."""
        out: list[LoggedPacket] = []
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        try:
            wait = timeout
            while sel.select(wait):
                data = self.sock.recv(1 << 16)
                out.extend(_parse_messages(data, time.time()))
                wait = 0
        finally:
            sel.close()
        return out

    def close(self) -> None:
        try:
            self._config(_attr(NFULA_CFG_CMD, struct.pack("B", NFULNL_CFG_CMD_UNBIND)))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> NflogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_messages(data: bytes, now: float) -> list[LoggedPacket]:
    out = []
    off = 0
    while off + 16 <= len(data):
        length, kind, _, _, _ = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            prefix, payload = "", b""
            a = off + 16 + 4  # skip nfgenmsg
            end = off + length
            while a + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                value = data[a + 4 : a + alen]
                atype &= 0x3FFF
                if atype == NFULA_PREFIX:
                    prefix = value.split(b"\0", 1)[0].decode(errors="replace")
                elif atype == NFULA_PAYLOAD:
                    payload = value
                a += (alen + 3) & ~3
            out.append(LoggedPacket(prefix, payload, now))
        off += (length + 3) & ~3
    return out


def parse_ipv4(packet: bytes) -> tuple[int, str, str, int | None, int | None, int] | None:
    """(protocol, source, destination, source port, destination port, total length) of an IPv4 packet."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    proto = packet[9]
    src, dst = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
    sport = dport = None
    if proto in (6, 17, 132) and len(packet) >= ihl + 4:
        sport, dport = struct.unpack_from("!HH", packet, ihl)
    return proto, src, dst, sport, dport, total


def parse_ipv6(packet: bytes) -> tuple[int, str, str, int | None, int | None, int] | None:
    """The same for an IPv6 packet (the fixed header's next header; extension headers are not walked)."""
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return None
    total = struct.unpack_from("!H", packet, 4)[0] + 40
    proto = packet[6]
    src, dst = socket.inet_ntop(socket.AF_INET6, packet[8:24]), socket.inet_ntop(socket.AF_INET6, packet[24:40])
    sport = dport = None
    if proto in (6, 17, 132) and len(packet) >= 44:
        sport, dport = struct.unpack_from("!HH", packet, 40)
    return proto, src, dst, sport, dport, total


def parse_ip(packet: bytes) -> tuple[int, str, str, int | None, int | None, int] | None:
    return parse_ipv6(packet) if packet[:1] and packet[0] >> 4 == 6 else parse_ipv4(packet)


@dataclass(slots=True)
class _Flow:
    start: float
    end: float
    packets: int = 0
    bytes: int = 0
    hits: list[RuleRef] = field(default_factory=list)
    seen: set[tuple[int, float]] = field(default_factory=set)


def decode_prefix(prefix: str, index: dict[int, RuleRef]) -> RuleRef | None:
    """The rule a log prefix ``g|<id>|<letter>|<tier>|<policy>|<rule>`` stands for."""
    parts = prefix.split("|")
    if len(parts) < 2 or parts[0] != "g" or not parts[1].isdigit():
        return None
    ref = index.get(int(parts[1]))
    if ref is not None:
        return ref
    if len(parts) >= 6:  # a ruleset replaced since: fall back to the words in the prefix itself
        letter = parts[2]
        action = {"A": "allow", "D": "deny", "P": "pass", "L": "log", "S": "allow"}.get(letter, "allow")
        rule = int(parts[5]) if parts[5].lstrip("-").isdigit() else -1
        return RuleRef(int(parts[1]), parts[3], parts[4], rule, action, "", letter == "S")
    return None


class FlowAggregator:
    """Turn logged packets into Calico-style flow-log records, one per 5-tuple and reporter."""

    def __init__(self, index: dict[int, RuleRef], endpoints: Iterable[Endpoint]) -> None:
        self.index = index
        eps = list(endpoints)
        self.by_ip = {e.ip: e for e in eps if e.ip} | {e.ip6: e for e in eps if e.ip6}
        self.flows: dict[tuple[str, int | None, str, int | None, int, str], _Flow] = {}

    def add(self, packets: Iterable[LoggedPacket]) -> None:
        for lp in packets:
            ref = decode_prefix(lp.prefix, self.index)
            parsed = parse_ip(lp.packet)
            if ref is None or parsed is None:
                continue
            proto, src, dst, sport, dport, length = parsed
            reporter = "src" if ref.direction == "egress" else "dst"
            key = (src, sport, dst, dport, proto, reporter)
            f = self.flows.get(key)
            if f is None:
                f = self.flows[key] = _Flow(lp.time, lp.time)
            f.end = max(f.end, lp.time)
            f.hits.append(ref)
            # one packet crosses several logging rules (staged, pass, verdict): count it once
            ident = (hash(lp.packet), lp.time)
            if ident not in f.seen:
                f.seen.add(ident)
                f.packets += 1
                f.bytes += length

    def records(self) -> list[FlowLog]:
        out = []
        for (src, sport, dst, dport, proto, reporter), f in sorted(self.flows.items(), key=lambda kv: kv[1].start):
            enforced = [h for h in f.hits if not h.staged]
            pending = [h for h in f.hits if h.staged]
            final = next((h.action for h in reversed(enforced) if h.action in ("allow", "deny")), "allow")
            s_ep, d_ep = self.by_ip.get(src), self.by_ip.get(dst)
            out.append(
                FlowLog(
                    start_time=int(f.start),
                    end_time=int(f.end) + 1,
                    source_name=s_ep.key.split("/", 1)[-1] if s_ep else "pvt",
                    source_namespace=s_ep.key.split("/", 1)[0] if s_ep and "/" in s_ep.key else "-",
                    source_ip=src,
                    dest_name=d_ep.key.split("/", 1)[-1] if d_ep else "pvt",
                    dest_namespace=d_ep.key.split("/", 1)[0] if d_ep and "/" in d_ep.key else "-",
                    dest_ip=dst,
                    dest_port=dport,
                    proto=PROTO_NAMES.get(proto, str(proto)),
                    action=final,
                    reporter=reporter,
                    source_port=sport,
                    source_type="wep" if s_ep else "net",
                    dest_type="wep" if d_ep else "net",
                    source_labels=dict(s_ep.labels) if s_ep else {},
                    dest_labels=dict(d_ep.labels) if d_ep else {},
                    bytes_out=f.bytes if reporter == "src" else 0,
                    bytes_in=f.bytes if reporter == "dst" else 0,
                    packets_out=f.packets if reporter == "src" else 0,
                    packets_in=f.packets if reporter == "dst" else 0,
                    enforced_policies=[str(_hit(i, h, reporter)) for i, h in enumerate(enforced)],
                    pending_policies=[str(_hit(i, h, reporter)) for i, h in enumerate(pending)],
                )
            )
        return out


def _hit(i: int, ref: RuleRef, reporter: str) -> PolicyHit:
    return PolicyHit(i, ref.tier, ref.policy, Action.parse(ref.action), ref.rule_index, reporter, ref.staged)


def write_jsonl(records: Iterable[FlowLog], fh: IO[str]) -> int:
    n = 0
    for r in records:
        fh.write(json.dumps(r.to_dict(), sort_keys=True) + "\n")
        n += 1
    return n
