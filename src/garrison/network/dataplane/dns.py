"""DNS policy: learn the addresses of allowed domains from the DNS answers seen on the node.

Rules with ``destination.domains`` compile to a match on a ``d_*`` set with timeouts (see
:mod:`~garrison.network.dataplane.compile`). The compiler also logs every DNS reply crossing the
node (``udp sport 53``, before the conntrack shortcut) to NFLOG group :data:`DNS_LOG_GROUP` with
the whole payload. :class:`DnsLearner` parses each reply, follows CNAME chains back to the name
asked for, and adds every A record whose name (or alias) matches a set's domain patterns to that
set with ``timeout`` = the record's TTL (at least :attr:`DnsLearner.min_ttl`), so an address stays
allowed exactly as long as the resolver may cache it, as Calico does. Patterns follow Calico: exact
names, and ``*`` matching characters inside one label.

The parser is hand-written (RFC 1035 section 4, with name compression) because it only needs
A/CNAME answers from a packet we already hold as bytes; dnspython would add a dependency for that.
"""

from __future__ import annotations

import re
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from garrison.network.dataplane.apply import Applier
from garrison.network.dataplane.compile import DNS_LOG_GROUP
from garrison.network.dataplane.flowlog import LoggedPacket, parse_ipv4

__all__ = ["DNS_LOG_GROUP", "Answer", "DnsLearner", "DnsParseError", "domain_regex", "parse_response"]


class DnsParseError(ValueError):
    """A DNS message that is truncated or malformed."""


@dataclass(slots=True, frozen=True)
class Answer:
    name: str  # the name asked for (CNAMEs followed back)
    ip: str
    ttl: int


def _name(msg: bytes, off: int) -> tuple[str, int]:
    labels: list[str] = []
    end = -1
    jumps = 0
    while True:
        if off >= len(msg):
            raise DnsParseError("name runs past the end")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise DnsParseError("truncated pointer")
            if end < 0:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 32:
                raise DnsParseError("compression loop")
            continue
        if n & 0xC0:
            raise DnsParseError("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise DnsParseError("label runs past the end")
        labels.append(msg[off : off + n].decode("ascii", errors="replace").lower())
        off += n
    return ".".join(labels), (end if end >= 0 else off)


def parse_response(msg: bytes) -> list[Answer]:
    """A records of a DNS response, each attributed to the question name it answers."""
    if len(msg) < 12:
        raise DnsParseError("shorter than a DNS header")
    _, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", msg)
    if not flags & 0x8000:
        return []  # a query, not a response
    off = 12
    questions = []
    for _ in range(qd):
        name, off = _name(msg, off)
        off += 4
        questions.append(name)
    alias: dict[str, str] = {}
    records: list[tuple[str, str, int]] = []
    for _ in range(an):
        owner, off = _name(msg, off)
        if off + 10 > len(msg):
            raise DnsParseError("truncated resource record")
        rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", msg, off)
        off += 10
        if off + rdlen > len(msg):
            raise DnsParseError("truncated record data")
        if rtype == 5:
            target, _ = _name(msg, off)
            alias[target] = owner
        elif rtype == 1 and rclass == 1 and rdlen == 4:
            records.append((owner, socket.inet_ntoa(msg[off : off + 4]), ttl))
        off += rdlen
    out = []
    for owner, ip, ttl in records:
        name, seen = owner, set()
        while name in alias and name not in seen:
            seen.add(name)
            name = alias[name]
        out.append(Answer(name, ip, ttl))
        if owner != name:
            out.append(Answer(owner, ip, ttl))
    return out


def domain_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for pat in patterns:
        pat = pat.lower().rstrip(".")
        parts.append(".".join("[^.]*".join(re.escape(x) for x in label.split("*")) for label in pat.split(".")))
    return re.compile("|".join(f"(?:{p})" for p in parts) or "(?!)")


class DnsLearner:
    """Feed it logged DNS replies; it keeps the ``d_*`` sets filled with the allowed domains' addresses."""

    def __init__(self, applier: Applier, domains: dict[str, tuple[str, ...]], min_ttl: int = 5) -> None:
        self.applier = applier
        self.min_ttl = min_ttl
        self.patterns = {name: domain_regex(pats) for name, pats in domains.items()}
        self.learned: dict[str, dict[str, int]] = {}

    def learn(self, answers: Iterable[Answer]) -> int:
        added = 0
        for set_name, rx in self.patterns.items():
            best: dict[str, int] = {}
            for a in answers:
                if rx.fullmatch(a.name.rstrip(".")):
                    best[a.ip] = max(best.get(a.ip, 0), max(a.ttl, self.min_ttl))
            for ip, ttl in best.items():
                # one element per transaction keeps each its own timeout; re-adding refreshes nothing in
                # nftables, so delete-then-add renews the timeout when the name is resolved again
                if ip in self.learned.get(set_name, {}):
                    self.applier.update_set(set_name, remove={ip})
                self.applier.update_set(set_name, add={ip}, timeout=ttl)
                self.learned.setdefault(set_name, {})[ip] = ttl
                added += 1
        return added

    def feed(self, packets: Iterable[LoggedPacket]) -> int:
        added = 0
        for lp in packets:
            parsed = parse_ipv4(lp.packet)
            if parsed is None or parsed[0] != 17 or parsed[3] != 53:
                continue
            ihl = (lp.packet[0] & 0x0F) * 4
            try:
                answers = parse_response(lp.packet[ihl + 8 :])
            except DnsParseError:
                continue
            added += self.learn(answers)
        return added
