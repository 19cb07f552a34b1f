"""Calico HostEndpoints on the real kernel: policy on the node namespace's own interface, failsafe ports.

The harness's node namespace gets an address and services (TCP 22, 8080, 9090); an "external"
client namespace reaches it over the node's ``uplink0`` interface, which a HostEndpoint names.
The kernel must agree with the evaluator on the policy-governed ports, and keep the failsafe port
(TCP 22, Felix's default) open although no policy allows it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.network.dataplane._dataplane_cluster import write_yaml

from garrison.network.dataplane.agent import Agent
from garrison.network.dataplane.harness import NODE, Harness, HarnessEndpoint

pytestmark = pytest.mark.slow
NODE_IP, EXT_IP, POD_IP = "10.61.255.1", "192.168.61.2", "10.61.0.2"
PAIRS = [("ext", NODE), ("web/front", NODE)]


def _hep(interface: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"node": "node1", "expectedIPs": [NODE_IP]}
    if interface:
        spec["interfaceName"] = "uplink0"
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "HostEndpoint",
        "metadata": {"name": "node1-uplink", "labels": {"role": "node"}},
        "spec": spec,
    }


POLICY = {
    "apiVersion": "projectcalico.org/v3",
    "kind": "GlobalNetworkPolicy",
    "metadata": {"name": "node-ingress"},
    "spec": {
        "selector": "role == 'node'",
        "types": ["Ingress", "Egress"],
        "ingress": [{"action": "Allow", "protocol": "TCP", "source": {"nets": ["192.168.61.0/24"]},
                     "destination": {"ports": [8080]}}],
        "egress": [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [5353]}}],
    },
}
INVENTORY = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "front", "namespace": "web", "labels": {"app": "front"}},
     "status": {"podIP": POD_IP}},
]


@pytest.fixture(scope="module")
def node() -> Iterator[Harness]:
    eps = [HarnessEndpoint("ext", EXT_IP, [("TCP", 7000), ("UDP", 53), ("UDP", 5353)], iface="uplink0"),
           HarnessEndpoint("web/front", POD_IP)]
    with Harness(eps, node_ip=NODE_IP, node_ports=[("TCP", 22), ("TCP", 8080), ("TCP", 9090)]) as h:
        yield h


def _agent(node: Harness, tmp_path: Path, interface: bool) -> Agent:
    assert node.nft is not None
    pol = write_yaml(tmp_path / "policies.yaml", [_hep(interface), POLICY])
    inv = write_yaml(tmp_path / "inventory.yaml", INVENTORY)
    a = Agent(pol, inv, node.nft, {"web/front": node.endpoints["web/front"].iface})
    a.sync()
    assert a.adapted is not None and not a.adapted.skipped
    return a


def test_host_endpoint_by_interface_name(node: Harness, tmp_path: Path) -> None:
    a = _agent(node, tmp_path, interface=True)
    assert a.applier.applied is not None and "host_in" in a.applier.applied.chains
    ev = a.adapted.evaluator if a.adapted else None
    assert ev is not None
    for port, want in ((8080, True), (9090, False)):
        got = node.probe(PAIRS, "TCP", port, timeout=0.3)
        assert got[("ext", NODE)] is want
        assert ev.evaluate(EXT_IP, "node1-uplink", "TCP", port).allowed is want
        # the pod reaches the node over its own interface, not the host endpoint's: no HEP policy
        assert got[("web/front", NODE)]
    # failsafe: TCP 22 stays open whatever the policy says (the evaluator models policy only)
    assert not ev.evaluate(EXT_IP, "node1-uplink", "TCP", 22).allowed
    assert node.probe([("ext", NODE)], "TCP", 22)[("ext", NODE)]
    counters = a.applier.counters()
    assert any(pkts > 0 for pkts, _, _ in counters["host_in"])
    # egress of the host endpoint: node -> external; UDP 53 is an outbound failsafe port
    out = {(proto, port): node.probe([(NODE, "ext")], proto, port, timeout=0.3)[(NODE, "ext")]
           for proto, port in (("TCP", 7000), ("UDP", 5353), ("UDP", 53))}
    assert out == {("TCP", 7000): False, ("UDP", 5353): True, ("UDP", 53): True}
    assert [ev.evaluate("node1-uplink", EXT_IP, p, n).allowed for p, n in out] == [False, True, False]


def test_host_endpoint_by_expected_ips(node: Harness, tmp_path: Path) -> None:
    a = _agent(node, tmp_path, interface=False)
    assert a.applier.applied is not None and a.applier.applied.maps["h_in_ip"].elements
    got = {port: node.probe([("ext", NODE)], "TCP", port, timeout=0.3)[("ext", NODE)] for port in (8080, 9090, 22)}
    assert got == {8080: True, 9090: False, 22: True}


def test_all_interfaces_host_endpoint_is_reported_not_programmed(node: Harness, tmp_path: Path) -> None:
    hep = _hep(interface=True)
    hep["spec"]["interfaceName"] = "*"
    assert node.nft is not None
    pol = write_yaml(tmp_path / "policies.yaml", [hep, POLICY])
    a = Agent(pol, write_yaml(tmp_path / "inventory.yaml", INVENTORY), node.nft)
    a.sync()
    assert a.adapted is not None and any("interfaceName '*'" in m for m in a.adapted.skipped)
    assert a.applier.applied is not None and "host_in" not in a.applier.applied.chains
