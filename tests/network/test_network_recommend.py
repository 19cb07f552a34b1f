"""Least-privilege recommendation and promotion, checked by the loader and the evaluator themselves.

Property: for a generated inventory and set of observed flows, the recommended staged policies load
without errors, their pending verdict allows every observed flow and denies the unobserved ones
(other pairs, other ports), preview of the observed flows shows no change, and the promoted
policies load as enforced kinds with the same verdicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.network.test_network_flows import INVENTORY, record, run_cli, write_jsonl

from garrison.core.errors import ConfigError
from garrison.network.evaluator import Evaluator
from garrison.network.flows import parse_record
from garrison.network.inventory import inventory_from_objects
from garrison.network.loader import load_objects
from garrison.network.preview import preview
from garrison.network.recommend import promote, recommend, stable_labels

PORTS = [("http", "TCP", 80), ("dns", "UDP", 53), ("", "TCP", 8443), ("sig", "SCTP", 9000)]
EXTERNAL = ["192.0.2.10", "198.51.100.7"]


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[tuple[str, str, str, int]], list[Any]]:
    namespaces = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma"]), min_size=1, max_size=3, unique=True))
    n = draw(st.integers(2, 6))
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                                  for ns in namespaces]
    pods = []
    for i in range(n):
        ns = draw(st.sampled_from(namespaces))
        ports = draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=3, unique=True))
        labelled = draw(st.booleans()) or i == 0
        labels = {"app": f"svc{i}", "pod-template-hash": f"h{i}abc"} if labelled else {}
        objs.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"p{i}", "namespace": ns, "labels": labels},
                     "spec": {"containers": [{"name": "c", "image": "x", "ports": [
                         {"containerPort": port, "protocol": proto, **({"name": name} if name else {})}
                         for name, proto, port in ports]}]},
                     "status": {"podIP": f"10.{i + 1}.0.5"}})
        pods.append((f"{ns}/p{i}", ports))
    candidates: list[tuple[str, str, str, int]] = []
    for src, _ in pods:
        for dst, ports in pods:
            if src != dst:
                candidates += [(src, dst, proto, port) for _, proto, port in ports]
        candidates += [(src, ip, "TCP", 443) for ip in EXTERNAL] + [(src, EXTERNAL[0], "UDP", 53)]
    for dst, ports in pods:
        candidates += [(ip, dst, proto, port) for ip in EXTERNAL for _, proto, port in ports]
    observed = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=12, unique=True))
    return objs, observed, candidates


def _records(observed: list[tuple[str, str, str, int]], objs: list[dict[str, Any]]) -> list[Any]:
    ips = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["status"]["podIP"]
           for o in objs if o["kind"] == "Pod"}
    out = []
    for src, dst, proto, port in observed:
        for reporter in ("src", "dst"):
            out.append(parse_record(record(src, dst, proto.lower(), port, reporter=reporter,
                                           src_ip=ips.get(src, ""), dst_ip=ips.get(dst, ""))))
    return out


def _evaluator(objs: list[dict[str, Any]], docs: list[dict[str, Any]]) -> Evaluator:
    items = [("inv.yaml", i, o) for i, o in enumerate(objs)]
    pset = load_objects([("rec.yaml", i, d) for i, d in enumerate(docs)], strict=True)
    assert not pset.errors
    return Evaluator(pset, inventory_from_objects(items))


def _pending(ev: Evaluator, flow: tuple[str, str, str, int]) -> str:
    v = ev.evaluate(flow[0], flow[1], flow[2], flow[3])
    return (v.pending_action or v.action).value


@pytest.mark.parametrize(("scope", "fmt"), [("workload", "calico"), ("namespace", "calico"), ("workload", "k8s"),
                                             ("namespace", "k8s")])
@settings(max_examples=50)
@given(world=worlds())
def test_recommendation_allows_observed_and_denies_the_rest(scope: str, fmt: str, world: Any) -> None:
    objs, observed, candidates = world
    inv = inventory_from_objects([("inv.yaml", i, o) for i, o in enumerate(objs)])
    rec = recommend(inv, _records(observed, objs), scope=scope, fmt=fmt)
    docs = yaml.safe_load_all(rec.yaml())
    docs = [d for d in docs if d]
    ev = _evaluator(objs, docs)
    assert all(p.staged for p in ev.pset.policies)
    for flow in observed:
        assert _pending(ev, flow) == "allow", flow
    unlabelled = any(not o["metadata"]["labels"] for o in objs if o["kind"] == "Pod")
    exact = fmt == "calico" or (scope == "workload" and not unlabelled)
    if exact:
        unobserved = [c for c in candidates if c not in observed]
        unobserved += [(s, d, "TCP", 81) for s, d, _, _ in observed]  # a port never seen
        for flow in unobserved[:40]:
            assert _pending(ev, flow) == "deny", flow
    # the same flows through preview: staged == observed, so nothing changes
    result = preview(ev, _records(observed, objs))
    assert result.changed == [] and result.unknown == {}
    # promoted, the policies are enforced and give the same verdicts
    promoted = promote(docs)
    ev2 = _evaluator(objs, promoted.documents)
    assert not any(p.staged for p in ev2.pset.policies)
    for flow in observed:
        assert ev2.evaluate(flow[0], flow[1], flow[2], flow[3]).action.value == "allow"
    if exact:
        for flow in [c for c in candidates if c not in observed][:20]:
            assert ev2.evaluate(flow[0], flow[1], flow[2], flow[3]).action.value == "deny"


DEPLOY = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-6d4cf56db6-abcde
  namespace: shop
  labels: {app.kubernetes.io/name: web, app.kubernetes.io/instance: web-prod, pod-template-hash: 6d4cf56db6}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-6d4cf56db6-vwxyz
  namespace: shop
  labels: {app.kubernetes.io/name: web, app.kubernetes.io/instance: web-prod, pod-template-hash: 6d4cf56db6}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-canary-0
  namespace: shop
  labels: {app.kubernetes.io/name: web, app.kubernetes.io/instance: web-canary, controller-revision-hash: abc}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.9}
"""


def _inv(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(DEPLOY, encoding="utf-8")
    return path


def test_stable_labels_select_replicas_not_generated_hashes(tmp_path: Path) -> None:
    assert stable_labels({"app": "a", "pod-template-hash": "x", "projectcalico.org/namespace": "n"}) == {"app": "a"}
    inv_path = _inv(tmp_path)
    flows = write_jsonl(tmp_path / "f.jsonl", [
        record("shop/client", "shop/web-6d4cf56db6-abcde", port=8080, dst_ip="10.0.0.1"),
        record("shop/client", "shop/web-6d4cf56db6-vwxyz", port=8080, dst_ip="10.0.0.2"),
    ])
    res = run_cli("recommend", "--flows", flows, "--inventory", inv_path, "--scope", "workload")
    assert res.returncode == 0, res.stderr
    docs = [d for d in yaml.safe_load_all(res.stdout) if d]
    selectors = {d["metadata"]["name"]: d["spec"]["selector"] for d in docs}
    # the two replicas share one policy; the canary differs only by instance, so the instance label is kept
    assert selectors["recommended-web-web-prod"] == 'app.kubernetes.io/name == "web" && ' \
                                                    'app.kubernetes.io/instance == "web-prod"'
    assert "recommended-web-web-canary" in selectors and "recommended-default-deny" in selectors
    assert "hash" not in res.stdout
    client = next(d for d in docs if d["metadata"]["name"] == "recommended-client")
    (rule,) = client["spec"]["egress"]
    assert rule["destination"]["ports"] == ["http"]  # the named port all replicas share


def test_namespace_scope_pins_rules_to_the_local_workload(tmp_path: Path) -> None:
    flows = write_jsonl(tmp_path / "f.jsonl", [record("shop/client", "shop/web-canary-0", port=8080)])
    res = run_cli("recommend", "--flows", flows, "--inventory", _inv(tmp_path), "--tier", "recommended")
    assert res.returncode == 0, res.stderr
    docs = [d for d in yaml.safe_load_all(res.stdout) if d]
    assert docs[0]["kind"] == "Tier" and docs[0]["metadata"]["name"] == "recommended"
    (pol,) = docs[1:]
    assert pol["metadata"]["name"] == "recommended.recommended-namespace"
    assert pol["spec"]["tier"] == "recommended" and pol["spec"]["selector"] == "all()"
    (ing,) = pol["spec"]["ingress"]
    assert ing["destination"]["selector"].endswith('app.kubernetes.io/instance == "web-canary"')
    assert ing["source"] == {"selector": 'app == "client"'}
    assert not load_objects([("r", i, d) for i, d in enumerate(docs)]).errors


def test_cli_recommend_then_preview_round_trip_and_promote(tmp_path: Path) -> None:
    flows = write_jsonl(tmp_path / "f.jsonl", [
        record("shop/web", "shop/api", port=9090), record("shop/api", "shop/db-7d9f8c6b5-x2k8p", port=5432),
        record("ops/monitor", "shop/web", port=8080), record("shop/api", "8.8.8.8", "udp", 53, reporter="src"),
        record("shop/web", "shop/db", port=5432, action="deny"),
    ])
    for fmt in ("calico", "k8s"):
        staged = tmp_path / f"rec-{fmt}.yaml"
        res = run_cli("recommend", "--flows", flows, "--inventory", INVENTORY, "--format", fmt, "--output", staged)
        assert res.returncode == 0, res.stderr
        res = run_cli("preview", "--staged", staged, "--inventory", INVENTORY, "--flows", flows, "--format", "json")
        assert res.returncode == 1, res.stderr  # the gate: a currently allowed flow would be denied
        summary = json.loads(res.stdout)["summary"]
        # observed allowed flows stay allowed; the one recorded as denied is what least privilege denies
        assert summary["allowed_to_denied"] == 1 and summary["denied_to_allowed"] == 0
        assert json.loads(res.stdout)["changed"][0]["src"] == "shop/web"
        res = run_cli("promote", staged)
        assert res.returncode == 0, res.stderr
        docs = [d for d in yaml.safe_load_all(res.stdout) if d]
        kinds = {d["kind"] for d in docs}
        assert kinds == {"NetworkPolicy"} and all("stagedAction" not in d["spec"] for d in docs)
        pset = load_objects([("p", i, d) for i, d in enumerate(docs)], strict=True)
        assert pset.policies and not any(p.staged for p in pset.policies)
    include = run_cli("recommend", "--flows", flows, "--inventory", INVENTORY, "--include-denied",
                      "--namespace", "shop")
    assert include.returncode == 0 and "ops" not in {d["metadata"]["namespace"]
                                                       for d in yaml.safe_load_all(include.stdout) if d}


def test_promote_keeps_names_order_tier_and_honours_delete() -> None:
    staged = [
        {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "sec"}, "spec": {"order": 5}},
        {"apiVersion": "projectcalico.org/v3", "kind": "StagedGlobalNetworkPolicy",
         "metadata": {"name": "sec.g", "resourceVersion": "7", "uid": "u"},
         "spec": {"tier": "sec", "order": 3, "selector": "all()", "stagedAction": "Set", "types": ["Ingress"]}},
        {"apiVersion": "projectcalico.org/v3", "kind": "StagedNetworkPolicy",
         "metadata": {"name": "sec.old", "namespace": "x"}, "spec": {"tier": "sec", "stagedAction": "Delete"}},
        {"apiVersion": "projectcalico.org/v3", "kind": "StagedKubernetesNetworkPolicy",
         "metadata": {"name": "k", "namespace": "x"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
    ]
    out = promote(staged)
    assert [d["kind"] for d in out.documents] == ["Tier", "GlobalNetworkPolicy", "NetworkPolicy"]
    g = out.documents[1]
    assert g["metadata"] == {"name": "sec.g"} and g["spec"]["order"] == 3 and g["spec"]["tier"] == "sec"
    assert out.documents[2]["apiVersion"] == "networking.k8s.io/v1"
    assert out.deletions == ["NetworkPolicy x/sec.old"]
    pset = load_objects([("p", i, d) for i, d in enumerate(out.documents)], strict=True)
    assert {p.kind for p in pset.policies} == {"GlobalNetworkPolicy", "KubernetesNetworkPolicy"}


def test_recommend_bad_flags_and_inputs(tmp_path: Path) -> None:
    inv = inventory_from_objects([])
    for kwargs in ({"scope": "pod"}, {"fmt": "cilium"}, {"fmt": "k8s", "tier": "sec"}, {"tier": "Bad Tier"},
                   {"namespace": "nowhere"}):
        with pytest.raises(ConfigError):
            recommend(inv, [], **kwargs)
    flows = tmp_path / "f.jsonl"
    flows.write_text("\n" + json.dumps(record("shop/a", "shop/b", action="nope")) + "\n")
    res = run_cli("recommend", "--flows", flows, "--inventory", INVENTORY)
    assert res.returncode == 2 and f"{flows}: line 2: action must be allow or deny" in res.stderr
    res = run_cli("promote", tmp_path / "missing.yaml")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_unknown_endpoints_are_reported_and_still_recommended(tmp_path: Path) -> None:
    flows = write_jsonl(tmp_path / "f.jsonl", [
        record("shop/ghost-7c9d-abcde", "shop/web", port=8080, source_labels={"labels": ["app=ghost"]})])
    res = run_cli("recommend", "--flows", flows, "--inventory", INVENTORY)
    assert res.returncode == 0, res.stderr
    assert "shop/ghost-7c9d-abcde is not in the inventory" in res.stderr
    assert 'selector: app == "ghost"' in res.stdout


def test_egress_to_a_dns_name_becomes_a_domains_rule(tmp_path: Path) -> None:
    flows = write_jsonl(tmp_path / "f.jsonl", [
        record("shop/api", "203.0.113.1", port=443, reporter="src", dest_ip=None, dest_type="net",
               dest_name="-", dest_name_aggr="pub", dest_domains=["api.example.com"])])
    inv = inventory_from_objects([("i", i, o) for i, o in enumerate(yaml.safe_load_all(INVENTORY.read_text()))])
    rec = recommend(inv, [parse_record(json.loads(line)) for line in flows.read_text().splitlines()])
    pol = next(d for d in rec.documents if d["metadata"]["namespace"] == "shop")
    (rule,) = pol["spec"]["egress"]
    assert rule["destination"] == {"domains": ["api.example.com"], "ports": [443]}
    ev = Evaluator(load_objects([("r", i, d) for i, d in enumerate(rec.documents)], strict=True), inv)
    assert _pending(ev, ("shop/api", "api.example.com", "TCP", 443)) == "allow"
    assert _pending(ev, ("shop/api", "other.example.com", "TCP", 443)) == "deny"
    k8s = recommend(inv, [parse_record(json.loads(line)) for line in flows.read_text().splitlines()], fmt="k8s")
    assert any("DNS-name destinations" in w for w in k8s.warnings)
