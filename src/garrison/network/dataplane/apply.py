"""Apply a compiled :class:`Ruleset` to the kernel: atomically, and as a diff against what is there.

Every change is one nft command buffer, which libnftables sends as one netlink batch: the kernel
commits all of it or none of it, so a rejected ruleset leaves the previous one in force.

The diff is computed against the kernel's own view (``list table`` as JSON): chains are compared by
the ``gh:<digest>`` stamped into the comment of their last rule, sets and maps by their elements.
Only what differs is touched: a changed policy flushes and refills its own chains; a selector whose
membership changed becomes ``add element``/``delete element``; new and stale objects are added and
deleted in the same transaction. Reading the kernel back costs time proportional to the table, so
after a successful apply the applier remembers what it wrote and diffs against that memory
(``verify=False``); if the kernel rejects a diff made from memory (someone else changed the table),
it re-reads the kernel and retries once.

A diff that only flushes and refills existing chains (the usual policy change) goes to the kernel
as a hand-built netlink batch (:meth:`Nft.rewrite_chains`), skipping libnftables' cache fill of
the whole ruleset; anything else, or a rule the encoder does not cover, goes through libnftables.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from garrison.network.dataplane.compile import (
    FAMILY,
    TABLE,
    ChainDef,
    MapDef,
    Ruleset,
    SetDef,
    render_map_elements,
    v6_name,
)
from garrison.network.dataplane.nft import Nft, NftError
from garrison.network.dataplane.nlbatch import Unsupported

logger = logging.getLogger(__name__)
_PROTO = {"tcp": "6", "udp": "17", "sctp": "132", "icmp": "1", "udplite": "136", "dccp": "33"}
T = f"{FAMILY} {TABLE}"


@dataclass(slots=True)
class KernelState:
    present: bool = False
    chains: dict[str, str] = field(default_factory=dict)  # name -> digest ("" if unknown)
    hooks: dict[str, str] = field(default_factory=dict)  # base chain name -> "hook/prio"
    sets: dict[str, frozenset[str]] = field(default_factory=dict)
    set_types: dict[str, str] = field(default_factory=dict)  # "type/flag,flag"
    maps: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class ApplyResult:
    mode: str  # "full" | "diff" | "noop"
    commands: int
    seconds: float
    changed_chains: list[str] = field(default_factory=list)
    via: str = "libnftables"  # or "netlink": the hand-built batch of a chains-only diff


def _is_plain_ip(text: str, version: int = 4) -> bool:
    try:
        return ipaddress.ip_address(text).version == version and "/" not in text
    except ValueError:
        return False


def _norm_elem(e: Any) -> str:
    """One set element of ``nft -j`` output in the spelling the compiler renders it."""
    if isinstance(e, dict):
        if "elem" in e:
            return _norm_elem(e["elem"]["val"])
        if "prefix" in e:
            p = e["prefix"]
            full = 128 if ":" in str(p["addr"]) else 32
            return str(p["addr"]) if p["len"] == full else f"{p['addr']}/{p['len']}"
        if "range" in e:
            lo, hi = e["range"]
            if isinstance(lo, int):  # a port range of an inet_service interval set
                return f"{lo}-{hi}"
            a, b = ipaddress.ip_address(lo), ipaddress.ip_address(hi)
            nets = ipaddress.summarize_address_range(a, b)
            return ", ".join(str(n) if n.prefixlen < n.max_prefixlen else str(n.network_address) for n in nets)
        if "concat" in e:
            return " . ".join(_PROTO.get(str(x), str(x)) for x in (_norm_elem(y) for y in e["concat"]))
    return str(e)


def _state_from_json(data: dict[str, Any]) -> KernelState:
    st = KernelState()
    last_comment: dict[str, str] = {}
    for item in data.get("nftables", []):
        if "table" in item:
            st.present = True
        elif "chain" in item:
            c = item["chain"]
            st.chains[c["name"]] = ""
            if "hook" in c:
                st.hooks[c["name"]] = f"{c['hook']}/{c.get('prio')}"
        elif "rule" in item:
            r = item["rule"]
            last_comment[r["chain"]] = r.get("comment", "")
        elif "set" in item:
            s = item["set"]
            elems: set[str] = set()
            for e in s.get("elem", []):
                elems.update(x.strip() for x in _norm_elem(e).split(", "))
            st.sets[s["name"]] = frozenset(elems)
            t = s["type"]
            kind = " . ".join(t) if isinstance(t, list) else str(t)
            flags = s.get("flags", [])
            st.set_types[s["name"]] = kind + "/" + ",".join(sorted([flags] if isinstance(flags, str) else flags))
        elif "map" in item:
            m = item["map"]
            elements: dict[str, str] = {}
            for k, v in m.get("elem", []):
                verdict = v.get("jump") or v.get("goto") or {} if isinstance(v, dict) else {}
                target = str(verdict.get("target", "")) if isinstance(verdict, dict) else str(v)
                elements[_norm_elem(k)] = target
            st.maps[m["name"]] = elements
    for name, comment in last_comment.items():
        if comment.startswith("gh:"):
            st.chains[name] = comment[3:].split(" ", 1)[0]
    return st


def _set_type(s: SetDef) -> str:
    return _type_key(s.type, s.flags)


@functools.lru_cache(maxsize=256)
def _type_key(kind: str, flags: tuple[str, ...]) -> str:
    return kind + "/" + ",".join(sorted(flags))


def _state_from_ruleset(rs: Ruleset) -> KernelState:
    st = KernelState(present=True)
    st.chains = {c.name: c.digest for c in rs.chains.values()}
    st.sets = {s.name: s.elements for s in rs.sets.values()}
    st.set_types = {s.name: _set_type(s) for s in rs.sets.values()}
    st.maps = {m.name: dict(m.elements) for m in rs.maps.values()}
    return st


def plan(rs: Ruleset, st: KernelState) -> tuple[list[str], list[str]]:
    """nft commands that turn kernel state ``st`` into ``rs``, and the names of the chains rewritten."""
    if not st.present:
        return rs.render(replace=False).splitlines(), list(rs.chains)
    if any(st.set_types.get(s.name, t) != t for s in rs.sets.values() for t in (_set_type(s),)):
        # a set changed type (e.g. gained a CIDR member): sets cannot be altered in place, rebuild all
        return rs.render(replace=True).splitlines(), list(rs.chains)
    cmds: list[str] = []
    tail: list[str] = []
    for s in rs.sets.values():
        if s.name not in st.sets:
            cmds.append(f"add {s.render_decl()}".replace(f"set {s.name} ", f"set {T} {s.name} ", 1))
            if s.elements:
                cmds.append(f"add element {T} {s.name} {{ {', '.join(sorted(s.elements))} }}")
        elif not s.dynamic:
            have = st.sets[s.name]
            if have is s.elements:  # unchanged since remembered (the common case of a policy edit)
                continue
            gone, new = have - s.elements, s.elements - have
            if gone:
                cmds.append(f"delete element {T} {s.name} {{ {', '.join(sorted(gone))} }}")
            if new:
                cmds.append(f"add element {T} {s.name} {{ {', '.join(sorted(new))} }}")
    cmds.extend(
        f"add map {T} {m.name} {{ type {m.key_type} : verdict; }}" for m in rs.maps.values() if m.name not in st.maps
    )
    changed: list[str] = []
    cmds.extend(
        f"add chain {T} {c.name}" + (f" {{ {c.hook} }}" if c.hook else "")
        for c in rs.chains.values()
        if c.name not in st.chains
    )
    for c in rs.chains.values():
        digest = st.chains.get(c.name)
        if digest == c.digest:
            continue
        if digest is not None:
            cmds.append(f"flush chain {T} {c.name}")
        cmds.extend(f"add rule {T} {c.name} {r}" for r in c.rules)
        changed.append(c.name)
    for m in rs.maps.values():
        have_map = st.maps.get(m.name, {})
        if have_map == m.elements:
            continue
        gone_keys = {k: v for k, v in have_map.items() if m.elements.get(k) != v}
        new_keys = {k: v for k, v in m.elements.items() if have_map.get(k) != v}
        if gone_keys:
            cmds.append(render_map_elements("delete", m.name, gone_keys))
        if new_keys:
            cmds.append(render_map_elements("add", m.name, new_keys))
    # stale objects: empty chains first (their rules may use stale maps and sets), then maps (their
    # verdicts may jump to stale chains), then the chains and sets themselves
    stale = [n for n in st.chains if n not in rs.chains]
    tail += [f"flush chain {T} {n}" for n in stale]
    tail += [f"delete map {T} {name}" for name in st.maps if name not in rs.maps]
    tail += [f"delete chain {T} {n}" for n in stale]
    tail += [f"delete set {T} {n}" for n in st.sets if n not in rs.sets]
    return cmds + tail, changed


def _chain_rewrites(cmds: list[str]) -> dict[str, list[str]] | None:
    """``{chain: rules}`` when ``cmds`` only flush and refill existing chains (a policy change), else None."""
    flush, add = f"flush chain {T} ", f"add rule {T} "
    chains: dict[str, list[str]] = {}
    for c in cmds:
        if c.startswith(flush):
            chains[c[len(flush) :]] = []
        elif c.startswith(add):
            name, _, rule = c[len(add) :].partition(" ")
            if name not in chains:
                return None
            chains[name].append(rule)
        else:
            return None
    return chains or None


class Applier:
    """Keeps table ``inet garrison`` in one namespace equal to the last ruleset given to :meth:`apply`."""

    def __init__(self, nft: Nft) -> None:
        self.nft = nft
        self.applied: Ruleset | None = None
        self._memory: KernelState | None = None

    def kernel_state(self) -> KernelState:
        return _state_from_json(self.nft.list_json(f"table {T}"))

    def apply(self, rs: Ruleset, *, verify: bool = False, full: bool = False) -> ApplyResult:
        """Make the kernel match ``rs`` in one transaction. On rejection the kernel keeps its ruleset."""
        t0 = time.perf_counter()
        if full:
            text = rs.render(replace=True)
            self.nft.run(text)
            self._remember(rs)
            return ApplyResult("full", text.count("\n"), time.perf_counter() - t0, list(rs.chains))
        st = self._memory if (self._memory is not None and not verify) else self.kernel_state()
        cmds, changed = plan(rs, st)
        via = "libnftables"
        if cmds:
            try:
                via = self._send(cmds)
            except NftError:
                if st is not self._memory:
                    raise
                logger.info("diff from memory rejected; re-reading the kernel")
                st = self.kernel_state()
                cmds, changed = plan(rs, st)
                self.nft.run("\n".join(cmds) + "\n")
        self._remember(rs)
        mode = "noop" if not cmds else ("full" if not st.present else "diff")
        return ApplyResult(mode, len(cmds), time.perf_counter() - t0, changed, via)

    def _send(self, cmds: list[str]) -> str:
        """One transaction: straight over netlink when it only rewrites existing chains, else libnftables."""
        chains = _chain_rewrites(cmds)
        if chains is not None:
            try:
                self.nft.rewrite_chains(TABLE, chains)
                return "netlink"
            except Unsupported as e:
                logger.debug("netlink fast path not applicable (%s); using libnftables", e)
        self.nft.run("\n".join(cmds) + "\n")
        return "libnftables"

    def _remember(self, rs: Ruleset) -> None:
        self.applied = rs
        self._memory = _state_from_ruleset(rs)

    def update_set(
        self,
        name: str,
        add: set[str] | frozenset[str] = frozenset(),
        remove: set[str] | frozenset[str] = frozenset(),
        timeout: int | None = None,
    ) -> float:
        """Add and delete members of one set in one transaction; returns the seconds it took."""
        t0 = time.perf_counter()
        known = self.applied.sets.get(name) if self.applied is not None else None
        twin = self.applied.sets.get(v6_name(name)) if self.applied is not None else None
        if twin is not None and known is not None and known.type == "ipv4_addr":
            # a selector set with an IPv6 twin: each address goes to the set of its family
            add6 = {a for a in add if ":" in a}
            rem6 = {a for a in remove if ":" in a}
            if add6 or rem6:
                self.update_set(twin.name, add6, rem6, timeout)
            add, remove = {a for a in add if ":" not in a}, {a for a in remove if ":" not in a}
            if not add and not remove:
                return time.perf_counter() - t0
        plain = known is not None and known.type in ("ipv4_addr", "ipv6_addr") and "interval" not in known.flags
        version = 6 if known is not None and known.type == "ipv6_addr" else 4
        if plain and all(_is_plain_ip(a, version) for a in (*add, *remove)):
            if remove:
                self.nft.set_elements("delete", TABLE, name, sorted(remove))
            if add:
                self.nft.set_elements("add", TABLE, name, sorted(add), timeout * 1000 if timeout else None)
            self._note_members(name, add, remove, timeout)
            return time.perf_counter() - t0
        cmds = []
        if remove:
            cmds.append(f"delete element {T} {name} {{ {', '.join(sorted(remove))} }}")
        if add:
            tail = f" timeout {timeout}s" if timeout else ""
            cmds.append(f"add element {T} {name} {{ {', '.join(f'{a}{tail}' for a in sorted(add))} }}")
        if cmds:
            self.nft.run("\n".join(cmds) + "\n")
        self._note_members(name, add, remove, timeout)
        return time.perf_counter() - t0

    def _note_members(
        self, name: str, add: set[str] | frozenset[str], remove: set[str] | frozenset[str], timeout: int | None
    ) -> None:
        if self._memory is not None and name in self._memory.sets and not timeout:
            self._memory.sets[name] = (self._memory.sets[name] - frozenset(remove)) | frozenset(add)
        if self.applied is not None and name in self.applied.sets and not timeout:
            s = self.applied.sets[name]
            s.elements = (s.elements - frozenset(remove)) | frozenset(add)

    def remove(self) -> None:
        """Delete the table (idempotent)."""
        self.nft.run(f"add table {T}\ndelete table {T}\n")
        self.applied = None
        self._memory = None

    def counters(self) -> dict[str, list[tuple[int, int, str]]]:
        """Per chain: (packets, bytes, comment) of every rule with a counter."""
        out: dict[str, list[tuple[int, int, str]]] = {}
        for item in self.nft.list_json(f"table {T}").get("nftables", []):
            r = item.get("rule")
            if not r:
                continue
            for e in r.get("expr", []):
                if isinstance(e, dict) and "counter" in e and isinstance(e["counter"], dict):
                    out.setdefault(r["chain"], []).append(
                        (e["counter"]["packets"], e["counter"]["bytes"], r.get("comment", ""))
                    )
        return out


__all__ = ["Applier", "ApplyResult", "ChainDef", "KernelState", "MapDef", "SetDef", "plan"]
