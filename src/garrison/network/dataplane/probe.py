"""Connectivity probes between namespaces: TCP connect, UDP echo, SCTP INIT, all in one event loop.

Every client socket is created inside its source namespace (:func:`netns.socket_in`) and then
driven from a single ``selectors`` loop, so a 9x9 matrix on three protocols is a few hundred
non-blocking sockets that all finish within one timeout window.

* TCP: allowed when the non-blocking ``connect`` completes (the SYN-ACK came back).
* UDP: allowed when the echo listener's reply to our token arrives.
* ICMP/ICMPv6: a raw socket sends an echo (or timestamp) request with a random identifier; allowed
  when the matching reply from the destination arrives. The kernel answers queries itself, so no
  listener is needed, and conntrack tracks query and reply like a connection.
* IPv6 (TCP, UDP, ICMPv6): the same probes on ``AF_INET6`` sockets; listeners are dual-stack.
* SCTP: this kernel has no SCTP stack, so the client sends a hand-built INIT chunk through a raw
  ``IPPROTO_SCTP`` socket and the server namespace's raw socket reports its arrival. A raw socket
  also sees the packet without a listener, so arrival alone is the verdict; the verification tag of
  each INIT is unique, which tells concurrent probes apart. Conntrack checks the SCTP CRC32c, so
  the checksum must be right; :func:`crc32c` is the 20-line table version because no library we
  depend on exposes CRC32c and the packets are tiny.
"""

from __future__ import annotations

import errno
import os
import secrets
import selectors
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from garrison.network.dataplane import netns

IPPROTO_SCTP = 132


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC32c (Castagnoli), as SCTP (RFC 9260 appendix A) uses it."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def sctp_init(sport: int, dport: int, tag: int) -> bytes:
    """An SCTP packet holding one INIT chunk with initiate tag ``tag`` (checksum filled in)."""
    chunk = struct.pack("!BBHIIHHI", 1, 0, 20, tag, 65535, 1, 1, tag)
    hdr = struct.pack("!HHII", sport, dport, 0, 0)
    crc = crc32c(hdr + chunk)
    # the checksum goes on the wire little-endian (RFC 9260 appendix A)
    return struct.pack("!HHI", sport, dport, 0) + struct.pack("<I", crc) + chunk


def parse_sctp_init(packet: bytes) -> tuple[str, int, int, int] | None:
    """(source IP, source port, destination port, initiate tag) of an IPv4 SCTP INIT, else None."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if packet[9] != IPPROTO_SCTP or len(packet) < ihl + 12 + 20:
        return None
    src = socket.inet_ntoa(packet[12:16])
    sport, dport = struct.unpack("!HH", packet[ihl : ihl + 4])
    ctype = packet[ihl + 12]
    if ctype != 1:
        return None
    (tag,) = struct.unpack("!I", packet[ihl + 16 : ihl + 20])
    return src, sport, dport, tag


def icmp_packet(kind: int, code: int, ident: int, seq: int, v6: bool) -> bytes:
    """An ICMP (or ICMPv6) query with an 8-byte body; the v4 checksum is computed here (the kernel
    fills in the ICMPv6 one, which covers a pseudo-header only it knows)."""
    body = struct.pack("!HH", ident, seq) + b"garrison"
    if v6:
        return struct.pack("!BBH", kind, code, 0) + body
    raw = struct.pack("!BBH", kind, code, 0) + body
    total = sum(struct.unpack(f"!{len(raw) // 2}H", raw))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return struct.pack("!BBH", kind, code, ~total & 0xFFFF) + body


# ICMP queries and the reply type that answers each (RFC 792, RFC 4443)
ICMP_REPLY = {8: 0, 13: 14}
ICMPV6_REPLY = {128: 129}


def parse_icmp_reply(data: bytes, v6: bool) -> tuple[int, int] | None:
    """(type, identifier) of an ICMP reply as a raw socket returns it (IPv4 with its IP header)."""
    if not v6:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8:
        return None
    kind, _, _, ident = struct.unpack_from("!BBHH", data)
    return kind, ident


@dataclass(slots=True, frozen=True)
class Probe:
    src_ns: str
    src_ip: str
    dst_ip: str  # IPv4 or IPv6
    protocol: str  # TCP | UDP | SCTP | ICMP | ICMPV6
    port: int  # for ICMP and ICMPv6: the query type (8 echo, 13 timestamp; 128 echo)


def run_probes(
    probes: Sequence[Probe],
    sctp_receivers: dict[str, socket.socket],
    timeout: float = 0.6,
    socket_factory: Callable[[str, int, int, int], socket.socket] = netns.socket_in,
) -> list[bool]:
    """Run ``probes`` concurrently; ``sctp_receivers`` maps destination IP to its namespace's raw socket."""
    sel = selectors.DefaultSelector()
    result = [False] * len(probes)
    pending: dict[int, int] = {}  # fd -> probe index
    socks: list[socket.socket] = []
    sctp_wait: dict[tuple[str, int, int], int] = {}  # (src ip, dport, tag) -> probe index
    recv_seen: set[int] = set()
    for rs in sctp_receivers.values():  # drain stale INITs from earlier rounds
        rs.setblocking(False)
        try:
            while rs.recv(2048):
                pass
        except BlockingIOError:
            pass
    raw_by_ns: dict[str, socket.socket] = {}
    icmp_wait: dict[tuple[str, int], int] = {}  # (destination ip, identifier) -> probe index
    try:
        for i, p in enumerate(probes):
            fam = socket.AF_INET6 if ":" in p.dst_ip else socket.AF_INET
            if p.protocol in ("ICMP", "ICMPV6"):
                v6 = fam == socket.AF_INET6
                replies = ICMPV6_REPLY if v6 else ICMP_REPLY
                if p.port not in replies:
                    raise ValueError(f"no ICMP probe for type {p.port}")
                s = socket_factory(p.src_ns, fam, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
                socks.append(s)
                s.setblocking(False)
                ident = secrets.randbits(16)
                s.sendto(icmp_packet(p.port, 0, ident, i & 0xFFFF, v6), (p.dst_ip, 0))
                sel.register(s, selectors.EVENT_READ, i)
                pending[s.fileno()] = i
                icmp_wait[(socket.inet_ntop(fam, socket.inet_pton(fam, p.dst_ip)), ident)] = i
                continue
            if p.protocol == "TCP":
                s = socket_factory(p.src_ns, fam, socket.SOCK_STREAM, 0)
                socks.append(s)
                s.setblocking(False)
                rc = s.connect_ex((p.dst_ip, p.port))
                if rc not in (0, errno.EINPROGRESS):
                    continue
                sel.register(s, selectors.EVENT_WRITE, i)
                pending[s.fileno()] = i
            elif p.protocol == "UDP":
                s = socket_factory(p.src_ns, fam, socket.SOCK_DGRAM, 0)
                socks.append(s)
                s.setblocking(False)
                s.connect((p.dst_ip, p.port))
                s.send(b"probe-%d" % i)
                sel.register(s, selectors.EVENT_READ, i)
                pending[s.fileno()] = i
            elif p.protocol == "SCTP":
                if fam == socket.AF_INET6:
                    raise ValueError("SCTP probes are IPv4 only")
                raw = raw_by_ns.get(p.src_ns)
                if raw is None:
                    raw = raw_by_ns[p.src_ns] = socket_factory(p.src_ns, socket.AF_INET, socket.SOCK_RAW, IPPROTO_SCTP)
                    socks.append(raw)
                tag = secrets.randbits(32) | 1
                sport = 20000 + secrets.randbelow(40000)
                raw.sendto(sctp_init(sport, p.port, tag), (p.dst_ip, 0))
                sctp_wait[(p.src_ip, p.port, tag)] = i
            else:
                raise ValueError(f"unknown probe protocol {p.protocol}")
        for dst_ip, rs in sctp_receivers.items():
            if any(p.protocol == "SCTP" and p.dst_ip == dst_ip for p in probes):
                sel.register(rs, selectors.EVENT_READ, -1)
                recv_seen.add(rs.fileno())
        deadline = time.monotonic() + timeout
        while (pending or sctp_wait) and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                obj = key.fileobj
                assert isinstance(obj, socket.socket)
                s = obj
                if key.data == -1:
                    try:
                        while True:
                            got = parse_sctp_init(s.recv(2048))
                            if got:
                                idx = sctp_wait.pop((got[0], got[2], got[3]), None)
                                if idx is not None:
                                    result[idx] = True
                    except BlockingIOError:
                        pass
                    continue
                idx = key.data
                if probes[idx].protocol in ("ICMP", "ICMPV6"):
                    # a raw socket sees every ICMP message of its namespace: wait for our own reply
                    v6 = ":" in probes[idx].dst_ip
                    want = (ICMPV6_REPLY if v6 else ICMP_REPLY)[probes[idx].port]
                    try:
                        while True:
                            data, addr = s.recvfrom(2048)
                            reply = parse_icmp_reply(data, v6)
                            if reply and reply[0] == want and icmp_wait.get((addr[0], reply[1])) == idx:
                                result[idx] = True
                                sel.unregister(s)
                                pending.pop(s.fileno(), None)
                                break
                    except BlockingIOError:
                        pass
                    continue
                sel.unregister(s)
                pending.pop(s.fileno(), None)
                if probes[idx].protocol == "TCP":
                    result[idx] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                else:
                    try:
                        result[idx] = s.recv(64) == b"probe-%d" % idx
                    except OSError:
                        result[idx] = False
    finally:
        sel.close()
        for s in socks:
            s.close()
    return result


def serve_forever(listeners: list[socket.socket], stop_fd: int) -> None:
    """Accept-and-close for TCP listeners, echo for UDP sockets, until ``stop_fd`` becomes readable."""
    sel = selectors.DefaultSelector()
    for s in listeners:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    sel.register(stop_fd, selectors.EVENT_READ)
    try:
        while True:
            for key, _ in sel.select():
                if key.fileobj == stop_fd:
                    os.read(stop_fd, 1)
                    return
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                s = sock
                try:
                    if s.type == socket.SOCK_STREAM:
                        conn, _ = s.accept()
                        conn.close()
                    else:
                        data, addr = s.recvfrom(2048)
                        s.sendto(data, addr)
                except OSError:
                    pass
    finally:
        sel.close()
