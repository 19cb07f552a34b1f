"""Quarantine: cut one workload off the network at once, in both directions, until released.

A separate table, ``inet garrison_quarantine``, holds one address set and drop rules on the
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
add chain {QTABLE} q_forward {{ type filter hook forward priority -300; policy accept; }}
add chain {QTABLE} q_input {{ type filter hook input priority -300; policy accept; }}
add chain {QTABLE} q_output {{ type filter hook output priority -300; policy accept; }}
"""
_RULES = f"""add rule {QTABLE} q_forward ip saddr @addrs counter drop comment "quarantine: from"
add rule {QTABLE} q_forward ip daddr @addrs counter drop comment "quarantine: to"
add rule {QTABLE} q_input ip saddr @addrs counter drop comment "quarantine: to node"
add rule {QTABLE} q_output ip daddr @addrs counter drop comment "quarantine: from node"
"""


def _check(ip: str) -> str:
    try:
        return str(ipaddress.IPv4Address(ip))
    except ValueError as e:
        raise InputError(f"not an IPv4 address: {ip!r}", input_name="quarantine") from e


def _ensure(nft: Nft) -> None:
    have = nft.list_json(f"table {QTABLE}").get("nftables", [])
    rules = sum(1 for item in have if "rule" in item)
    nft.run(_SETUP + ("" if rules else _RULES))


def quarantined(nft: Nft) -> set[str]:
    for item in nft.list_json(f"set {QTABLE} addrs").get("nftables", []):
        if "set" in item:
            return {str(e) for e in item["set"].get("elem", [])}
    return set()


def quarantine(nft: Nft, ip: str) -> bool:
    """Isolate ``ip``; returns False if it already was (nothing changes then)."""
    ip = _check(ip)
    _ensure(nft)
    if ip in quarantined(nft):
        return False
    nft.run(f"add element {QTABLE} addrs {{ {ip} }}\n")
    return True


def release(nft: Nft, ip: str) -> bool:
    """Lift the quarantine of ``ip``; returns False if it was not quarantined."""
    ip = _check(ip)
    if ip not in quarantined(nft):
        return False
    nft.run(f"delete element {QTABLE} addrs {{ {ip} }}\n")
    return True
