"""Calico-native policies (tiers, Pass, Deny, order, port ranges, named ports, staged) on the real kernel.

For every pair of endpoints and several (protocol, port) columns, the kernel's answer must equal the
evaluator's verdict; a few pairs are also pinned to what the policy text plainly says, so the test
cannot pass with both sides wrong in the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.network.dataplane._dataplane_cluster import all_pairs, write_yaml

from garrison.network.dataplane.agent import Agent
from garrison.network.dataplane.harness import Harness

pytestmark = pytest.mark.slow

POLICIES = [
    {
        "apiVersion": "projectcalico.org/v3",
        "kind": "Tier",
        "metadata": {"name": "security"},
        "spec": {"order": 100, "defaultAction": "Pass"},
    },
    {  # security tier: admin may not reach db at all; db->web passes to the next tier
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "security.block-admin"},
        "spec": {
            "tier": "security",
            "order": 10,
            "selector": "projectcalico.org/namespace == 'db'",
            "types": ["Ingress"],
            "ingress": [
                {"action": "Deny", "source": {"selector": "app == 'admin'"}},
                {"action": "Pass"},
            ],
        },
    },
    {  # default tier: db accepts web on the pg port and a port range, UDP dns from anywhere
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "db-ingress", "namespace": "db"},
        "spec": {
            "order": 100,
            "selector": "all()",
            "types": ["Ingress"],
            "ingress": [
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "source": {"namespaceSelector": "team == 'web'"},
                    "destination": {"ports": ["pg", "8000:8100"]},
                },
                {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}},
                {"action": "Allow", "protocol": "SCTP", "source": {"selector": "app == 'pg'"}},
            ],
        },
    },
    {  # staged: would deny everything into web, but staged policies are never enforced
        "apiVersion": "projectcalico.org/v3",
        "kind": "StagedNetworkPolicy",
        "metadata": {"name": "lockdown", "namespace": "web"},
        "spec": {"selector": "all()", "types": ["Ingress"], "ingress": [{"action": "Deny"}]},
    },
]
COLUMNS = [("TCP", 80), ("TCP", 8080), ("TCP", 5432), ("UDP", 53), ("SCTP", 9000)]


def test_kernel_equals_evaluator_on_calico_tiers(cluster: Harness, tmp_path: Path, inventory_file: Path) -> None:
    assert cluster.nft is not None
    pol = write_yaml(tmp_path / "policies.yaml", POLICIES)
    agent = Agent(pol, inventory_file, cluster.nft, {k: e.iface for k, e in cluster.endpoints.items()})
    agent.sync()
    assert agent.adapted is not None
    ev = agent.adapted.evaluator
    disagreements = []
    seen: dict[tuple[str, str, str, int], bool] = {}
    for proto, port in COLUMNS:
        got = cluster.probe(all_pairs(), proto, port, timeout=0.3)
        for (a, b), ok in got.items():
            seen[(a, b, proto, port)] = ok
            want = ev.evaluate(a, b, proto, port).allowed
            if ok != want:
                disagreements.append(f"{a}->{b} {proto}/{port}: kernel {ok}, evaluator {want}")
    assert not disagreements, "\n".join(disagreements)
    # what the policy text says, independently of both implementations
    assert seen[("web/front", "db/pg", "TCP", 5432)] is True  # named port pg
    assert seen[("web/front", "db/pg", "TCP", 8080)] is True  # inside 8000:8100
    assert seen[("web/front", "db/pg", "TCP", 80)] is False  # default tier's end-of-tier deny
    assert seen[("web/admin", "db/pg", "TCP", 5432)] is False  # security tier deny
    assert seen[("web/admin", "db/pg", "UDP", 53)] is False
    assert seen[("db/cache", "db/pg", "UDP", 53)] is True  # passed by security, allowed by default tier
    assert seen[("db/pg", "db/cache", "SCTP", 9000)] is True
    assert seen[("db/cache", "db/pg", "SCTP", 9000)] is False
    assert seen[("db/pg", "web/front", "TCP", 80)] is True  # only a staged policy selects web
    # the staged policy is counted: its deny rule saw the packets into web
    counters = agent.applier.counters()
    staged = [c for chain, cs in counters.items() if "staged" in chain for c in cs]
    assert staged and sum(p for p, _, _ in staged) > 0
