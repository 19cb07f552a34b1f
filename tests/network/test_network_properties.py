"""Property tests: the planned fast paths agree with the reference walk, and Calico export round-trips.

Random policy sets are drawn over a small label / port alphabet so that rules overlap and every
action, tier default, protocol, port list, named port, net and selector kind gets exercised.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.network._netfixtures import inventory

from garrison.network.evaluator import Evaluator
from garrison.network.export import export
from garrison.network.loader import load_objects

SELECTORS = ["app == 'web'", "app != 'db'", "has(app)", "app in {'api', 'db'}", "all()", "!has(app)",
             "app starts with 'a'"]
NS_SELECTORS = ["team == 'ops'", "all()", "env == 'prod'", "global()"]
PORTS = [8080, 9090, 53, 5432, "http", "grpc", "dns", "5000:9000"]
FLOWS = [("TCP", 8080), ("TCP", 9090), ("UDP", 53), ("TCP", 5432), ("TCP", 22)]


@st.composite
def entity(draw: st.DrawFn, with_ports: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["selector"] = draw(st.sampled_from(SELECTORS))
    if draw(st.integers(0, 4)) == 0:
        out["notSelector"] = draw(st.sampled_from(SELECTORS))
    if draw(st.integers(0, 3)) == 0:
        out["namespaceSelector"] = draw(st.sampled_from(NS_SELECTORS))
    if draw(st.integers(0, 4)) == 0:
        out["nets"] = [draw(st.sampled_from(["10.1.0.0/24", "10.2.0.0/16", "10.1.0.12/32"]))]
    if draw(st.integers(0, 5)) == 0:
        out["notNets"] = ["10.1.0.10/32"]
    if draw(st.integers(0, 5)) == 0:
        out["serviceAccounts"] = {"names": ["api"]}
    if with_ports and draw(st.booleans()):
        out["ports"] = draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=3, unique=True))
    if with_ports and draw(st.integers(0, 5)) == 0:
        out["notPorts"] = [draw(st.sampled_from([53, 9090, "1:100"]))]
    return out


@st.composite
def rule(draw: st.DrawFn) -> dict[str, Any]:
    proto = draw(st.sampled_from([None, "TCP", "UDP", 6]))
    out: dict[str, Any] = {"action": draw(st.sampled_from(["Allow", "Deny", "Pass", "Log"]))}
    if proto is not None:
        out["protocol"] = proto
    src, dst = draw(entity(False)), draw(entity(proto is not None))
    if src:
        out["source"] = src
    if dst:
        out["destination"] = dst
    return out


@st.composite
def policy_set(draw: st.DrawFn) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [{"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t1"},
                                   "spec": {"order": 10, "defaultAction": draw(st.sampled_from(["Deny", "Pass"]))}}]
    for i in range(draw(st.integers(1, 5))):
        namespaced = draw(st.booleans())
        kind = "NetworkPolicy" if namespaced else "GlobalNetworkPolicy"
        if draw(st.integers(0, 5)) == 0:
            kind = "Staged" + kind
        meta: dict[str, Any] = {"name": f"p{i}"}
        if namespaced:
            meta["namespace"] = draw(st.sampled_from(["shop", "ops"]))
        spec: dict[str, Any] = {"tier": draw(st.sampled_from(["t1", "default"])), "order": draw(st.integers(1, 4)),
                                "selector": draw(st.sampled_from(SELECTORS)),
                                "types": draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]))}
        spec["ingress"] = draw(st.lists(rule(), max_size=3))
        spec["egress"] = draw(st.lists(rule(), max_size=3))
        docs.append({"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec})
    if draw(st.booleans()):
        docs.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                     "metadata": {"name": "k", "namespace": "shop"},
                     "spec": {"podSelector": {"matchLabels": {"app": draw(st.sampled_from(["web", "api", "db"]))}},
                              "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": "grpc"}]}]}})
    return docs


INVENTORY = inventory()
KEYS = [e.key for e in INVENTORY.endpoints] + ["10.2.9.9", "192.0.2.1"]


@settings(max_examples=60)
@given(policy_set())
def test_planned_paths_agree_with_reference_walk(docs: list[dict[str, Any]]) -> None:
    pset = load_objects([("prop", i, d) for i, d in enumerate(docs)])
    assert not pset.errors, pset.errors
    ev = Evaluator(pset, INVENTORY)
    for src in KEYS:
        for dst in KEYS:
            for proto, port in FLOWS:
                ref = ev.reference(src, dst, proto, port)
                verdict = ev.evaluate(src, dst, proto, port)
                assert verdict.action is ref, (src, dst, proto, port)
                if src in ev.index and dst in ev.index:
                    fast = ev.allowed(ev.index[src], ev.index[dst], {"TCP": 6, "UDP": 17}[proto], port)
                    assert fast is (ref.value == "allow"), (src, dst, proto, port)
                if src in ev.index or dst in ev.index:
                    assert verdict.hits and verdict.hits[-1].action is ref


@settings(max_examples=30)
@given(policy_set())
def test_calico_export_reloads_to_the_same_verdicts(docs: list[dict[str, Any]]) -> None:
    pset = load_objects([("prop", i, d) for i, d in enumerate(docs)])
    text, warnings = export(pset, "calico")
    assert not warnings
    again = load_objects([("export", i, d) for i, d in enumerate(yaml.safe_load_all(text)) if d])
    assert not again.errors, again.errors
    before, after = Evaluator(pset, INVENTORY), Evaluator(again, INVENTORY)
    for src in KEYS:
        for dst in KEYS:
            for proto, port in FLOWS:
                a = before.evaluate(src, dst, proto, port)
                b = after.evaluate(src, dst, proto, port)
                assert (a.action, a.pending_action) == (b.action, b.pending_action), (src, dst, proto, port)
