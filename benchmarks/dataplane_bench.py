#!/usr/bin/env python3
"""nftables dataplane: full programming, one policy change, one set-member change, at 10/1000/2000 policies.

Runs in a network namespace of its own (nothing touches the host's ruleset). For each scale it
builds a synthetic policy set straight in the dataplane IR: N policies in two tiers, each policy
with its own selector set (so N policies also means N sets of 5 members), ingress rules with ports,
ranges and nets, egress rules to its set, over 1,000 endpoints. It measures

* full programming: compile + one atomic transaction of the whole table (goal < 5 s at 2,000);
* one policy change visible in the kernel: edit one policy, recompile, diff, apply (the agent's
  path; p50/p99, goal p99 < 100 ms; how many went through the hand-built netlink batch);
* one set-member change: one ``add element`` / ``delete element`` transaction (goal < 10 ms);
* peak RSS of the process.

``--dual-stack`` gives every endpoint and set member an IPv6 address too (each addressed rule then
has an IPv6 variant and each selector set an IPv6 twin).

Usage: benchmarks/dataplane_bench.py [--scales 10,1000,2000] [--repeat N] [--dual-stack] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from garrison.network.dataplane import netns  # noqa: E402
from garrison.network.dataplane.apply import Applier  # noqa: E402
from garrison.network.dataplane.compile import compile_ruleset, update_ruleset  # noqa: E402
from garrison.network.dataplane.ir import (  # noqa: E402
    DataplaneInput,
    Endpoint,
    Peer,
    Policy,
    PortRange,
    Rule,
    Tier,
    set_name,
)
from garrison.network.dataplane.nft import Nft  # noqa: E402

ENDPOINTS = 1000


def ip(i: int) -> str:
    return f"10.{100 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"


def ip6(i: int) -> str:
    return f"fd00:64::{i:x}"


def synthetic(n: int, dual_stack: bool = False) -> DataplaneInput:
    eps = [
        Endpoint(f"ns{i % 20}/pod{i}", ip(i), f"cali{i:08x}", (("http", "TCP", 8080),), ip6=ip6(i) if dual_stack else "")
        for i in range(ENDPOINTS)
    ]
    sets: dict[str, frozenset[str]] = {}
    policies = []
    for i in range(n):
        sname = set_name(f"bench-selector-{i}")
        members = [(i * 13 + k * 7) % ENDPOINTS for k in range(5)]
        sets[sname] = frozenset([ip(m) for m in members] + ([ip6(m) for m in members] if dual_stack else []))
        src = Peer(sets=(sname,))
        ingress = (
            Rule("allow", "TCP", src=src, dst=Peer(ports=(PortRange(80, 80), PortRange(8000, 8100))), index=0),
            Rule("allow", "TCP", src=src, dst=Peer(named_ports=("http",)), index=1),
            Rule("deny", "UDP", src=Peer(nets=(f"172.{16 + i % 16}.0.0/16",)), index=2),
            Rule("allow", "UDP", dst=Peer(ports=(PortRange(53, 53),)), index=3),
        )
        egress = (Rule("allow", "TCP", dst=Peer(sets=(sname,), ports=(PortRange(443, 443),)), index=0),)
        tier = "security" if i % 10 == 0 else "default"
        selected = frozenset(eps[(i * k) % ENDPOINTS].key for k in (1, 3))
        policies.append(
            Policy(f"ns{i % 20}/pol{i}", tier, float(i), selected, ingress, egress, frozenset({"ingress", "egress"}))
        )
    tiers = [Tier("security", 10.0, "pass"), Tier("default", 1000.0, "deny")]
    return DataplaneInput(eps, tiers, policies, sets)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def bench(nft: Nft, n: int, repeat: int, dual_stack: bool = False) -> dict[str, Any]:
    applier = Applier(nft)
    applier.remove()
    data = synthetic(n, dual_stack)
    t0 = time.perf_counter()
    rs = compile_ruleset(data)
    t_compile = time.perf_counter() - t0
    res = applier.apply(rs, full=True)
    full = time.perf_counter() - t0
    counts = {"chains": len(rs.chains), "sets": len(rs.sets), "rules": sum(len(c.rules) for c in rs.chains.values())}
    change: list[float] = []
    change_compile: list[float] = []
    via_netlink = 0
    for k in range(repeat):
        i = (k * 37) % n
        pol = data.policies[i]
        new_rule = dataclasses.replace(
            pol.ingress[0], dst=Peer(ports=(PortRange(80, 80), PortRange(9000 + k, 9000 + k)))
        )
        new_data = dataclasses.replace(data, policies=list(data.policies))
        new_data.policies[i] = dataclasses.replace(pol, ingress=(new_rule, *pol.ingress[1:]))
        t = time.perf_counter()
        assert applier.applied is not None
        rs2 = update_ruleset(applier.applied, data, new_data)
        tc = time.perf_counter() - t
        r = applier.apply(rs2)
        data = new_data
        change.append(time.perf_counter() - t)
        change_compile.append(tc)
        assert r.mode == "diff" and len(r.changed_chains) == 1, r
        via_netlink += r.via == "netlink"
    members: list[float] = []
    sname = next(iter(data.sets))
    for k in range(repeat * 2):
        extra = {f"10.250.{k // 250}.{k % 250 + 1}"}
        members.append(applier.update_set(sname, add=extra))
        members.append(applier.update_set(sname, remove=extra))
    applier.remove()
    ms = 1000.0
    return {
        "policies": n,
        "ipv6": dual_stack,
        "sets": len(data.sets),
        **counts,
        "full_compile_ms": round(t_compile * ms, 1),
        "full_apply_ms": round(res.seconds * ms, 1),
        "full_total_ms": round(full * ms, 1),
        "policy_change_p50_ms": round(statistics.median(change) * ms, 2),
        "policy_change_p99_ms": round(pct(change, 99) * ms, 2),
        "policy_change_compile_p50_ms": round(statistics.median(change_compile) * ms, 2),
        "policy_change_via_netlink": f"{via_netlink}/{repeat}",
        "set_member_p50_ms": round(statistics.median(members) * ms, 3),
        "set_member_p99_ms": round(pct(members, 99) * ms, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="10,1000,2000")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--dual-stack", action="store_true", help="endpoints and sets with IPv6 addresses too")
    args = ap.parse_args()
    ns = f"gdp-{os.getpid()}-bench"
    netns.ip_batch([f"netns add {ns}"])
    rows = []
    try:
        with Nft(ns) as nft:
            for n in (int(x) for x in args.scales.split(",")):
                rows.append(bench(nft, n, args.repeat, args.dual_stack))
    finally:
        netns.delete_netns([ns])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cols = [
        "policies",
        "sets",
        "rules",
        "full_total_ms",
        "policy_change_p50_ms",
        "policy_change_p99_ms",
        "set_member_p50_ms",
        "set_member_p99_ms",
    ]
    print(" ".join(f"{c:>22}" for c in cols))
    for r in rows:
        print(" ".join(f"{r[c]!s:>22}" for c in cols))
    print(f"peak RSS: {rss_mb:.0f} MiB")
    out = {
        "results": rows,
        "peak_rss_mib": round(rss_mb, 1),
        "goals": {"full_total_ms": 5000, "policy_change_p99_ms": 100, "set_member_p99_ms": 10},
    }
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
