"""``garrison policy``: the acceptance interface, exit codes, formats, and export round trips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import CONFORMANCE

from garrison.network.conformance import matrices
from garrison.network.evaluator import Evaluator
from garrison.network.export import export
from garrison.network.inventory import inventory_from_objects, load_inventory
from garrison.network.loader import load_objects, load_policies
from garrison.network.matrix import connectivity

ASSETS = Path(__file__).parent / "assets"
POLICIES = str(ASSETS / "policies.yaml")
INVENTORY = str(ASSETS / "inventory.yaml")


def garrison(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_") and k not in ("FORCE_COLOR",)}
    return subprocess.run([sys.executable, "-m", "garrison.cli.main", "policy", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_matrix_json_interface() -> None:
    res = garrison("matrix", "--policies", POLICIES, "--inventory", INVENTORY, "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    pods = ["ops/monitor", "shop/api", "shop/db", "shop/web"]
    assert sorted(data) == pods
    assert all(sorted(row) == pods for row in data.values())
    cols = {"TCP/5432", "TCP/8080", "TCP/9090", "UDP/53"}
    assert all(set(cell) == cols for row in data.values() for cell in row.values())
    assert data["shop/web"]["shop/api"]["TCP/9090"] == "allow"  # k8s NP via named port grpc
    assert data["shop/web"]["shop/db"]["TCP/5432"] == "deny"  # security tier Deny
    assert data["shop/api"]["shop/db"]["TCP/5432"] == "allow"
    assert data["ops/monitor"]["shop/web"]["UDP/53"] == "deny"
    assert data["shop/web"]["ops/monitor"]["UDP/53"] == "allow"


def test_eval_json_interface() -> None:
    res = garrison("eval", "--policies", POLICIES, "--inventory", INVENTORY, "--src", "shop/web", "--dst",
                   "shop/db", "--protocol", "TCP", "--port", "5432", "--format", "json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["verdict"] == "deny"
    assert [h["policy"] for h in data["hits"]] == ["0|__PROFILE__|__PROFILE__.kns.shop|allow|0",
                                                   "1|security|shop/security.block-db-from-web|deny|0"]
    assert data["policies"]["enforced_policies"] == [h["policy"] for h in data["hits"]]


def test_eval_staged_pending_hits_in_table() -> None:
    res = garrison("eval", "-p", POLICIES, "-i", INVENTORY, "--src", "shop/api", "--dst", "shop/web",
                   "--port", "8080")
    assert res.returncode == 0, res.stderr
    assert ": deny" in res.stdout and "shop/default.staged:lock-web" in res.stdout
    assert "\x1b[" not in res.stdout  # no colour when not a TTY


@pytest.mark.parametrize(("args", "needle"), [
    pytest.param(["eval", "-p", POLICIES, "-i", INVENTORY, "--src", "shop/nope", "--dst", "shop/web"],
                 "no endpoint 'shop/nope'", id="unknown-pod"),
    pytest.param(["matrix", "-p", "/nonexistent", "-i", INVENTORY], "/nonexistent: no such file", id="missing"),
    pytest.param(["matrix", "-p", POLICIES, "-i", INVENTORY, "-f", "xml"], "unknown format 'xml'", id="format"),
    pytest.param(["export", "-p", POLICIES, "--to", "cilium"], "unknown export target", id="target"),
    pytest.param(["eval", "-p", POLICIES, "-i", INVENTORY, "--src", "shop/web", "--dst", "shop/api",
                  "--protocol", "QUIC"], "unknown protocol 'QUIC'", id="protocol"),
])
def test_bad_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    res = garrison(*args)
    assert res.returncode == 2
    assert needle in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_invalid_policy_is_bad_input_for_eval_and_problem_for_check(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: a}\n"
                   "spec: {selector: 'a == b', bogus: 1}\n")
    res = garrison("matrix", "-p", str(bad), "-i", INVENTORY)
    assert res.returncode == 2 and "invalid selector 'a == b' at character 5" in res.stderr
    res = garrison("check", "-p", str(bad), "-f", "json")
    assert res.returncode == 1
    data = json.loads(res.stdout)
    assert data["summary"]["errors"] == 1 and data["summary"]["warnings"] == 1
    assert garrison("check", "-p", POLICIES, "-i", INVENTORY).returncode == 0


def _verdicts(pset_path: Path | str, inventory_path: str) -> dict:
    return connectivity(Evaluator(load_policies(pset_path), load_inventory(inventory_path)))


def test_export_calico_reloads_to_the_same_verdicts(tmp_path: Path) -> None:
    text, warnings = export(load_policies(POLICIES), "calico")
    assert not warnings
    out = tmp_path / "calico.yaml"
    out.write_text(text)
    docs = list(yaml.safe_load_all(text))
    assert {d["kind"] for d in docs} >= {"Tier", "NetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy"}
    reloaded = load_policies(out)
    assert not reloaded.problems
    assert _verdicts(out, INVENTORY) == _verdicts(POLICIES, INVENTORY)


def test_export_k8s_warns_for_what_does_not_fit() -> None:
    res = garrison("export", "-p", POLICIES, "--to", "k8s")
    assert res.returncode == 0, res.stderr
    assert "security.ops-monitoring: not exported to Kubernetes" in res.stderr
    docs = list(yaml.safe_load_all(res.stdout))
    assert {d["kind"] for d in docs} == {"NetworkPolicy"}


NETPOL = CONFORMANCE / "netpol"


@pytest.mark.parametrize("target", ["k8s", "calico"])
def test_export_round_trip_on_e2e_policies(target: str) -> None:
    checked = 0
    for m in matrices(NETPOL / "k8s_e2e_netpol.yaml", NETPOL / "k8s_e2e_netpol.expanded.json"):
        objs = [("e2e", i, o) for i, o in enumerate(m.objects())]
        inv = inventory_from_objects(objs)
        pset = load_objects(objs, strict=True)
        text, warnings = export(pset, target)
        assert not warnings, warnings
        again = load_objects([("export", i, d) for i, d in enumerate(yaml.safe_load_all(text)) if d], strict=True)
        before, after = Evaluator(pset, inv), Evaluator(again, inv)
        for src, dst, expected in m.expected:
            assert after.evaluate(src, dst, m.protocol, m.port).allowed is expected
            assert before.evaluate(src, dst, m.protocol, m.port).allowed is expected
            checked += 1
    assert checked == 506
