"""Network model types, inventory robustness and the benchmark's world generator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.core.errors import InputError
from garrison.model import Action, FlowLog, PolicyHit, Verdict
from garrison.network.evaluator import Evaluator
from garrison.network.inventory import inventory_from_objects
from garrison.network.loader import load_objects

REPO = Path(__file__).resolve().parents[2]


def test_policy_hit_string_and_verdict_dict() -> None:
    hit = PolicyHit(0, "tier1", "ns1/tier1.policy1", Action.DENY, -1, "dst")
    assert str(hit) == "0|tier1|ns1/tier1.policy1|deny|-1"
    v = Verdict(Action.DENY, [hit])
    data = v.to_dict()
    assert data["verdict"] == "deny" and data["pending_verdict"] == "deny"
    assert data["policies"]["enforced_policies"] == ["0|tier1|ns1/tier1.policy1|deny|-1"]
    assert Action.parse("Accept") is Action.ALLOW and Action.parse("Drop") is Action.DENY


def test_flow_log_round_trips_as_json_line() -> None:
    rec = FlowLog(start_time=1, end_time=2, source_name="web", source_namespace="shop", source_ip="10.0.0.1",
                  dest_name="api", dest_namespace="shop", dest_ip="10.0.0.2", dest_port=9090, proto="tcp",
                  action="allow", reporter="dst", bytes_in=10, packets_in=1,
                  enforced_policies=["0|default|shop/knp.default.api|allow|0"])
    line = json.dumps(rec.to_dict())
    data = json.loads(line)
    assert data["policies"]["enforced_policies"] == ["0|default|shop/knp.default.api|allow|0"]
    assert FlowLog.from_dict(data) == rec


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 70000), st.text(max_size=10))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["name", "namespace", "labels", "containers", "ports", "containerPort",
                                     "protocol", "podIP", "podIPs", "ip", "template", "metadata", "spec",
                                     "annotations", "serviceAccountName"]), inner, max_size=4)), max_leaves=14)


@given(st.sampled_from(["Pod", "Namespace", "ServiceAccount", "Deployment", "CronJob", "HostEndpoint"]), _values,
       _values, _values)
def test_inventory_never_crashes(kind: str, meta: object, spec: object, status: object) -> None:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": spec, "status": status}
    try:
        inv = inventory_from_objects([("fuzz.yaml", 0, obj)])
    except InputError as err:
        assert "\n" not in str(err)
        return
    for e in inv.endpoints:
        assert e.ips and e.key


@pytest.mark.parametrize("spec", [
    {"containers": [{"ports": 5}]}, {"containers": "x"}, {"initContainers": 5, "containers": []},
    {"serviceAccountName": {}}, {"containers": [{"ports": [{"containerPort": "80"}]}]},
])
def test_inventory_bad_pod_specs_are_input_errors(spec: dict) -> None:
    with pytest.raises(InputError) as err:
        inventory_from_objects([("f.yaml", 0, {"kind": "Pod", "metadata": {"name": "a"}, "spec": spec})])
    assert str(err.value).startswith("f.yaml#0 Pod a: ")


def test_inventory_bad_metadata_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"metadata\.namespace: expected a string"):
        inventory_from_objects([("f.yaml", 0, {"kind": "Pod", "metadata": {"name": "a", "namespace": ["x"]}})])
    with pytest.raises(InputError, match=r"status\.podIPs: expected a list"):
        inventory_from_objects([("f.yaml", 0, {"kind": "Pod", "metadata": {"name": "a"}, "status": {"podIPs": 5}})])


def test_benchmark_world_is_deterministic_and_evaluates() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import netpol_bench
    finally:
        sys.path.pop(0)
    small = netpol_bench.world(40, 200)
    assert small == netpol_bench.world(40, 200)
    objs = [("bench", i, o) for i, o in enumerate(small)]
    ev = Evaluator(load_objects(objs, strict=True), inventory_from_objects(objs))
    keys = [e.key for e in ev.endpoints]
    for i in range(0, 200, 7):
        for j in range(0, 200, 11):
            for proto, port in ((6, 8080), (17, 53), (6, 5100)):
                name = {6: "TCP", 17: "UDP"}[proto]
                assert ev.allowed(i, j, proto, port) is ev.evaluate(keys[i], keys[j], name, port).allowed
