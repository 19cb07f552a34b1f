"""The nftables dataplane against the Kubernetes e2e truth tables: real namespaces, real probes.

Every matrix of the shared conformance data (expanded by :mod:`garrison.network.conformance`) is
loaded by the policy engine, adapted and compiled to nftables, applied as a diff to the previous
step (the way the agent does it) in the node namespace of a harness, and every pair is probed for
real. The kernel's answer must equal the expected pair AND the evaluator's verdict. Every pod is
dual stack (IPv6 in ``status.podIPs``), so the IPv6 rules and sets are always programmed next to
the IPv4 ones; a representative subset of matrices is probed over IPv6 as well and must give the
same table. Four harnesses work in parallel threads so the 65 matrices take seconds, not minutes.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

import pytest

from garrison.network.conformance import ConformanceMatrix, matrices
from garrison.network.dataplane.adapter import from_policy_set
from garrison.network.dataplane.apply import Applier
from garrison.network.dataplane.compile import compile_ruleset
from garrison.network.dataplane.harness import Harness, HarnessEndpoint
from garrison.network.inventory import inventory_from_objects
from garrison.network.loader import load_objects

pytestmark = pytest.mark.slow
WORKERS = 4


@pytest.fixture(scope="module")
def all_matrices(conformance_dir: Path) -> list[ConformanceMatrix]:
    d = conformance_dir / "netpol"
    return matrices(d / "k8s_e2e_netpol.yaml", d / "k8s_e2e_netpol.expanded.json", ip_for=_stable_ip)


def _stable_ip(key: str, pods: list[str]) -> str:
    """One address per pod across all cases, so one harness can serve many cases (all inside one /4)."""
    ns, _, name = key.partition("/")
    return f"10.{'xyz'.index(ns) + 1}.0.{ord(name[0]) - ord('a') + 2}"


def _ip6(ip: str) -> str:
    return "fd00:e2e::" + ip.replace(".", ":")


def _dual_stack(obj: dict[str, Any]) -> dict[str, Any]:
    """A Pod with its IPv6 address added to ``status.podIPs`` (other objects unchanged)."""
    if obj["kind"] == "Pod":
        obj["status"]["podIPs"] = [{"ip": obj["status"]["podIP"]}, {"ip": _ip6(obj["status"]["podIP"])}]
    return obj


def _probe_v6(m: ConformanceMatrix) -> bool:
    """The representative IPv6 subset: every third TCP/UDP matrix without ipBlock (IPv4 CIDRs by design)."""
    return m.protocol != "SCTP" and "ipBlock" not in str(m.policies) and int(m.case[-2:]) % 3 == 0


def _run(chunk: list[ConformanceMatrix]) -> tuple[list[str], int, int]:
    failures: list[str] = []
    ports = sorted({(m.protocol, m.port) for m in chunk})
    pods = {p.key: p.ip for m in chunk for p in m.pods}
    n = n6 = 0
    eps = [HarnessEndpoint(k, ip, list(ports), ip6=_ip6(ip)) for k, ip in sorted(pods.items())]
    with Harness(eps) as h:
        assert h.nft is not None
        applier = Applier(h.nft)
        ifaces = {k: e.iface for k, e in h.endpoints.items()}
        for m in chunk:
            for p in m.pods:  # the harness's pod IPs come from the same deterministic assignment
                assert h.endpoints[p.key].ip == p.ip
            objs = [(f"{m.id}.yaml", i, _dual_stack(o)) for i, o in enumerate(m.objects())]
            pset = load_objects([o for o in objs if o[2]["kind"] == "NetworkPolicy"], strict=True)
            inv = inventory_from_objects([o for o in objs if o[2]["kind"] != "NetworkPolicy"])
            adapted = from_policy_set(pset, inv, ifaces)
            assert not adapted.skipped
            applier.apply(compile_ruleset(adapted.data))
            got = h.probe([(a, b) for a, b, _ in m.expected], m.protocol, m.port, timeout=0.3)
            for a, b, want in m.expected:
                ev = adapted.evaluator.evaluate(a, b, m.protocol, m.port).allowed
                n += 1
                if got[(a, b)] != want or ev != want:
                    failures.append(f"{m.id} {a}->{b}: kernel {got[(a, b)]}, evaluator {ev}, expected {want}")
            if _probe_v6(m):
                got6 = h.probe([(a, b) for a, b, _ in m.expected], m.protocol, m.port, timeout=0.3, family=6)
                for a, b, want in m.expected:
                    n6 += 1
                    if got6[(a, b)] != want:
                        failures.append(f"{m.id} {a}->{b} IPv6: kernel {got6[(a, b)]}, expected {want}")
    return failures, n, n6


def test_dataplane_and_evaluator_agree_with_every_e2e_matrix(all_matrices: list[ConformanceMatrix]) -> None:
    assert len(all_matrices) == 65
    assert {m.protocol for m in all_matrices} == {"TCP", "UDP", "SCTP"}
    # keep each case's steps together and in order: steps build on each other
    by_case: dict[str, list[ConformanceMatrix]] = {}
    for m in all_matrices:
        by_case.setdefault(m.case, []).append(m)
    chunks: list[list[ConformanceMatrix]] = [[] for _ in range(WORKERS)]
    for i, ms in enumerate(by_case.values()):
        chunks[i % WORKERS].extend(ms)
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(_run, chunks))
    failures = [f for part, _, _ in results for f in part]
    assert sum(n for _, n, _ in results) == 506
    v6 = [m for m in all_matrices if _probe_v6(m)]
    assert len(v6) >= 10 and {m.protocol for m in v6} == {"TCP", "UDP"}
    assert sum(n6 for _, _, n6 in results) == sum(len(m.expected) for m in v6)
    assert not failures, f"{len(failures)} of 506 pairs disagree:\n" + "\n".join(failures[:40])
