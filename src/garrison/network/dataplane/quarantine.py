"""Quarantine: cut one workload off the network at once, in both directions, until released.

A separate table, ``inet garrison_quarantine``, holds one address set per family and drop rules on the
forward, input and output hooks at priority -300: before conntrack (-200), so established
connections die too, and before every chain of ``inet garrison``, so no policy can allow around
it. Being its own table, it survives any re-programming of the policy table, and quarantining is
a single ``add element`` (idempotent: adding a present element is not an error). Release deletes
the element if present.
"""

from __future__ import annotations

import ipaddress

from garrison.core.errors import InputError
from garrison.network.dataplane.nft import Nft

QTABLE = "inet garrison_quarantine"
_SETUP = f"""add table {QTABLE}
add set {QTABLE} addrs {{ type ipv4_addr; }}
add set {QTABLE} addrs6 {{ type ipv6_addr; }}
add chain {QTABLE} q_forward {{ type filter hook forward priority -300; policy accept; }}
add chain {QTABLE} q_input {{ type filter hook input priority -300; policy accept; }}
add chain {QTABLE} q_output {{ type filter hook output priority -300; policy accept; }}
"""
_RULES = "".join(
    f"""add rule {QTABLE} q_forward {ip} saddr @{s} counter drop comment "quarantine: from"
add rule {QTABLE} q_forward {ip} daddr @{s} counter drop comment "quarantine: to"
add rule {QTABLE} q_input {ip} saddr @{s} counter drop comment "quarantine: to node"
add rule {QTABLE} q_output {ip} daddr @{s} counter drop comment "quarantine: from node"
"""
    for ip, s in (("ip", "addrs"), ("ip6", "addrs6"))
)
_N_RULES = _RULES.count("\n")


def _check(ip: str) -> tuple[str, str]:
    """The address in canonical form and the set that holds its family."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError as e:
        raise InputError(f"not an IP address: {ip!r}", input_name="quarantine") from e
    return str(addr), ("addrs" if addr.version == 4 else "addrs6")


def _ensure(nft: Nft) -> None:
    have = nft.list_json(f"table {QTABLE}").get("nftables", [])
    rules = sum(1 for item in have if "rule" in item)
    if rules == _N_RULES:
        nft.run(_SETUP)
        return
    # new table, or one from a version without the IPv6 rules: rewrite the rules, keep the members
    flush = "".join(f"flush chain {QTABLE} {c}\n" for c in ("q_forward", "q_input", "q_output"))
    nft.run(_SETUP + flush + _RULES)


def quarantined(nft: Nft) -> set[str]:
    out: set[str] = set()
    for name in ("addrs", "addrs6"):
        for item in nft.list_json(f"set {QTABLE} {name}").get("nftables", []):
            if "set" in item:
                out |= {str(e) for e in item["set"].get("elem", [])}
    return out


def quarantine(nft: Nft, ip: str) -> bool:
    """Isolate ``ip`` (IPv4 or IPv6); returns False if it already was (nothing changes then)."""
    ip, name = _check(ip)
    _ensure(nft)
    if ip in quarantined(nft):
        return False
    nft.run(f"add element {QTABLE} {name} {{ {ip} }}\n")
    return True


def release(nft: Nft, ip: str) -> bool:
    """Lift the quarantine of ``ip``; returns False if it was not quarantined."""
    ip, name = _check(ip)
    if ip not in quarantined(nft):
        return False
    nft.run(f"delete element {QTABLE} {name} {{ {ip} }}\n")
    return True
