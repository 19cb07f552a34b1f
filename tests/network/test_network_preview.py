"""Staged-policy preview: the Kubernetes e2e truth tables replayed as flow logs, and ``policy preview``."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import CONFORMANCE
from tests.network.test_network_flows import INVENTORY, POLICIES, record, run_cli, write_jsonl

from garrison.core.errors import InputError
from garrison.network.conformance import ConformanceMatrix, matrices
from garrison.network.evaluator import Evaluator
from garrison.network.flows import parse_record
from garrison.network.inventory import inventory_from_objects
from garrison.network.loader import load_objects
from garrison.network.preview import as_staged, load_preview_set, preview

NETPOL = CONFORMANCE / "netpol"


def _transitions() -> list[tuple[ConformanceMatrix, ConformanceMatrix]]:
    """Pairs of checks of one case, on the same port/protocol, at consecutive checked steps, where only
    policies changed (same namespace and pod labels), so a staged preview can explain the difference."""
    by_case: dict[str, list[ConformanceMatrix]] = defaultdict(list)
    for m in matrices(NETPOL / "k8s_e2e_netpol.yaml", NETPOL / "k8s_e2e_netpol.expanded.json"):
        by_case[m.case].append(m)
    out = []
    for ms in by_case.values():
        steps = sorted({m.step for m in ms})
        for a_step, b_step in itertools.pairwise(steps):
            for a in (m for m in ms if m.step == a_step):
                for b in (m for m in ms if m.step == b_step):
                    same_world = a.namespaces == b.namespaces and [(p.key, p.labels) for p in a.pods] == \
                        [(p.key, p.labels) for p in b.pods]
                    if (a.port, a.protocol) == (b.port, b.protocol) and same_world:
                        out.append((a, b))
    return out


def _from_nothing() -> list[tuple[ConformanceMatrix, ConformanceMatrix]]:
    """Every checked step previewed from an empty policy set (the suite's starting point: every pair allowed)."""
    out = []
    for m in matrices(NETPOL / "k8s_e2e_netpol.yaml", NETPOL / "k8s_e2e_netpol.expanded.json"):
        empty = dataclasses.replace(m, policies=[], expected=[(s, d, True) for s, d, _ in m.expected])
        out.append((empty, m))
    return out


TRANSITIONS = _transitions()
CASES = [pytest.param(a, b, id=f"{a.id}->s{b.step}") for a, b in TRANSITIONS] + [
    pytest.param(a, b, id=f"none->{b.id}") for a, b in _from_nothing()]


def _staged_docs(a: ConformanceMatrix, b: ConformanceMatrix) -> list[dict[str, Any]]:
    """Step b's policies as staged policies over step a's: Set for new/changed, Delete for removed."""
    docs = [dict(as_staged(p)) for p in b.policies]
    kept = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in b.policies}
    for p in a.policies:
        if (p["metadata"]["namespace"], p["metadata"]["name"]) not in kept:
            gone = dict(as_staged(p))
            gone["spec"] = dict(gone["spec"], stagedAction="Delete")
            docs.append(gone)
    return docs


def _records(m: ConformanceMatrix) -> list[dict[str, Any]]:
    ips = {p.key: p.ip for p in m.pods}
    return [record(src, dst, m.protocol.lower(), m.port, action="allow" if ok else "deny", src_ip=ips[src],
                   dst_ip=ips[dst], reporter="dst") for src, dst, ok in m.expected]


def test_the_truth_tables_have_policy_only_transitions() -> None:
    assert len(TRANSITIONS) >= 5
    assert sum(1 for a, b in TRANSITIONS if a.expected != b.expected) >= 5
    assert len(CASES) == len(TRANSITIONS) + 65


@pytest.mark.parametrize(("a", "b"), CASES)
def test_preview_reports_exactly_the_pairs_the_truth_table_changes(a: ConformanceMatrix,
                                                                   b: ConformanceMatrix) -> None:
    objs = [("step.yaml", i, o) for i, o in enumerate(a.objects() + _staged_docs(a, b))]
    pset = load_objects(objs, strict=True)
    ev = Evaluator(pset, inventory_from_objects(objs))
    result = preview(ev, (parse_record(r) for r in _records(a)))
    before = {(s, d): ok for s, d, ok in a.expected}
    after = {(s, d): ok for s, d, ok in b.expected}
    assert set(before) == set(after)
    want = {(s, d, "allow" if after[(s, d)] else "deny") for s in {k[0] for k in before}
            for d in {k[1] for k in before} if (s, d) in before and before[(s, d)] != after[(s, d)]}
    got = {(c.src, c.dst, c.after) for c in result.changed}
    assert got == want
    assert result.drift == 0  # the enforced verdicts agree with step a of the truth table
    assert result.distinct == len(before) and result.unchanged == len(before) - len(want)
    assert result.blocking == any(before[k] and not after[k] for k in before)
    assert sum(g.keys for g in result.by_policy) == len(want)
    for c in result.changed:
        assert c.pending_hit.endswith("|deny|-1") if c.after == "deny" else "|allow|" in c.pending_hit


def _write(tmp: Path, name: str, docs: list[dict[str, Any]]) -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return path


DENY_DB = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "db-lockdown", "namespace": "shop"},
           "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]}}


def test_ordinary_policies_are_previewed_as_staged(tmp_path: Path) -> None:
    staged_dir = tmp_path / "staged"
    staged_dir.mkdir()
    _write(staged_dir, "lock.yaml", [DENY_DB])
    pset = load_preview_set(POLICIES, staged_dir)
    lock = next(p for p in pset.policies if p.original_name == "db-lockdown")
    assert lock.staged and lock.kind == "StagedKubernetesNetworkPolicy"
    with pytest.raises(InputError, match="nothing to preview"):
        load_preview_set(None, None)


def test_cli_preview_gate_exit_codes(tmp_path: Path) -> None:
    flows = write_jsonl(tmp_path / "f.jsonl", [
        record("shop/api", "shop/db-7d9f8c6b5-x2k8p", port=5432, num_flows=7),
        record("shop/api", "shop/db-7d9f8c6b5-x2k8p", port=5432, num_flows=7, reporter="src"),
        record("shop/web", "shop/api", port=9090),
        record("ops/monitor", "shop/web", port=8080, action="deny"),
    ])
    lock = {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "db-lockdown", "namespace": "shop"},
            "spec": {"order": 1, "selector": "app == 'db'", "types": ["Ingress"],
                     "ingress": [{"action": "Deny", "source": {"selector": "app == 'api'"}}]}}
    staged = _write(tmp_path, "staged.yaml", [lock])
    res = run_cli("preview", "--policies", POLICIES, "--staged", staged, "--inventory", INVENTORY, "--flows", flows,
                  "--format", "json")
    assert res.returncode == 1, res.stderr
    data = json.loads(res.stdout)
    assert data["summary"]["allowed_to_denied"] == 1 and data["summary"]["distinct_flows"] == 3
    (group,) = data["by_policy"]
    assert group["policy"] == "shop/default.staged:db-lockdown" and group["rule"] == 0
    assert group["flows"] == 7 and group["examples"] == ["shop/api -> shop/db TCP/5432"]
    # without the staged lock-down nothing changes: exit 0, and the table says so
    res = run_cli("preview", "--policies", POLICIES, "--inventory", INVENTORY, "--flows", flows)
    assert res.returncode == 0, res.stderr
    assert "0 allowed -> denied" in res.stdout


def test_cli_preview_deny_to_allow_is_not_a_gate_failure(tmp_path: Path) -> None:
    flows = write_jsonl(tmp_path / "f.jsonl", [record("shop/db", "shop/api", port=9090, action="deny")])
    opener = {"apiVersion": "projectcalico.org/v3", "kind": "StagedNetworkPolicy",
              "metadata": {"name": "db-to-api", "namespace": "shop"},
              "spec": {"order": 10, "selector": "app == 'api'", "types": ["Ingress"], "ingress": [
                  {"action": "Allow", "protocol": "TCP", "source": {"selector": "app == 'db'"}}]}}
    staged = _write(tmp_path, "staged.yaml", [opener])
    res = run_cli("preview", "--policies", POLICIES, "--staged", staged, "--inventory", INVENTORY, "--flows", flows,
                  "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["summary"]["denied_to_allowed"] == 1
    assert data["changed"][0]["pending_hit"].startswith("dst:") and "default.staged:db-to-api|allow|0" in \
        data["changed"][0]["pending_hit"]


def test_cli_preview_unknown_endpoints_are_reported_not_fatal(tmp_path: Path) -> None:
    flows = write_jsonl(tmp_path / "f.jsonl", [
        record("shop/ghost-pod", "shop/db", port=5432, source_labels={"labels": ["app=api"]}),
        record("shop/api", "shop/db", port=5432),
    ])
    res = run_cli("preview", "--policies", POLICIES, "--inventory", INVENTORY, "--flows", flows, "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["unknown_endpoints"] == {"shop/ghost-pod": 1}
    assert "shop/ghost-pod is not in the inventory" in res.stderr


def test_cli_preview_bad_inputs_exit_2(tmp_path: Path) -> None:
    flows = tmp_path / "f.jsonl"
    flows.write_text(json.dumps(record("shop/api", "shop/db")) + "\n" + json.dumps(record("a/b", "c/d", port=-1)))
    res = run_cli("preview", "--policies", POLICIES, "--inventory", INVENTORY, "--flows", flows)
    assert res.returncode == 2 and f"{flows}: line 2: dest_port out of range" in res.stderr
    bad_policy = _write(tmp_path, "bad.yaml", [{"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                                               "metadata": {"name": "x"}, "spec": {"selector": "app == "}}])
    good_flows = write_jsonl(tmp_path / "g.jsonl", [record("shop/api", "shop/db")])
    res = run_cli("preview", "--staged", bad_policy, "--inventory", INVENTORY, "--flows", good_flows)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "selector" in res.stderr
    res = run_cli("preview", "--inventory", INVENTORY, "--flows", good_flows)
    assert res.returncode == 2 and "nothing to preview" in res.stderr
