"""Agreement with checkov on its own fixtures for the cluster-level checks our RBAC, network,
namespace and config controls map (``references.checkov`` in the family YAML files).

Resource checks come from ``expected.jsonl`` (rows of framework ``kubernetes``); graph checks
(CKV2_K8S_*) from each graph folder's ``expected.yaml`` with the folder's manifests loaded together.
A resource fails a checkov id when any of our controls mapped to it fails the object.

Deliberate differences (why agreement is not 100%):

* CKV_K8S_49 looks only at a role's first rule; we look at every rule.
* CKV_K8S_157 treats ``bind`` on rolebindings as binding permission; Kubernetes checks ``bind``
  only on roles and clusterroles, which is what GK-R-005 follows.
* Graph checks ignore apiGroups (``services/status`` or ``pods/exec`` granted in the
  ``rbac.authorization.k8s.io`` group counts for them); we match the group the resource is in.
* CKV2_K8S_2 looks for ``create`` on nodes/proxy only; GK-R-041 also counts ``get``, which
  reaches the kubelet's exec endpoints over websockets.
* Graph checks only judge bindings whose subjects include a ServiceAccount or Node and match
  verbs and resources across different rules of a role; we judge every subject and require one
  rule to grant both (which is how the authorizer grants).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from garrison.posture.k8s.controls import registry, run_controls
from garrison.posture.k8s.loader import load_paths
from garrison.posture.model import ControlResult, Verdict

FAMILIES = {"rbac", "network", "namespace", "config_objects"}
#: graph folder -> the id our controls reference (RoleBindingPE has no upstream id yet)
GRAPH = {
    "ReadAllSecrets": "CKV2_K8S_5",
    "NoCreateNodesProxyOrPodsExec": "CKV2_K8S_2",
    "ImpersonatePermissions": "CKV2_K8S_3",
    "ModifyServicesStatus": "CKV2_K8S_4",
    "RequireAllPodsToHaveNetworkPolicy": "CKV2_K8S_6",
    "RoleBindingPE": "RoleBindingPE",
}
MIN_AGREEMENT = 0.85


def _mapped() -> dict[str, set[str]]:
    by_ckv: dict[str, set[str]] = defaultdict(set)
    for cid, reg in registry().items():
        if reg.control.family in FAMILIES:
            for ref in (*reg.control.references.get("checkov", ()), *reg.control.references.get("checkov-graph", ())):
                by_ckv[ref].add(cid)
    return by_ckv


def _key(result: ControlResult) -> str:
    s = result.subject
    return f"{s.kind}.{s.namespace or 'default'}.{s.name}"


def _verdicts(paths: list[Path], controls: set[str]) -> dict[str, str]:
    """checkov-style resource key -> FAILED/PASSED over ``controls``."""
    out: dict[str, str] = {}
    for result in run_controls(load_paths(paths).objects, only=controls):
        key = _key(result)
        if result.verdict is Verdict.FAIL:
            out[key] = "FAILED"
        else:
            out.setdefault(key, "PASSED")
    return out


def _matches(expected_key: str, ours: dict[str, str]) -> str | None:
    # graph ids append the pod labels to Kind.namespace.name, and name a workload's pods "Pod"
    kind, _, rest = expected_key.partition(".")
    for key, verdict in ours.items():
        if expected_key == key or expected_key.startswith(key + "."):
            return verdict
        if kind == "Pod" and (rest + ".").startswith(key.partition(".")[2] + "."):
            return verdict
    return None


def test_checkov_agreement(conformance_dir: Path) -> None:
    root = conformance_dir / "posture" / "checkov"
    mapped = _mapped()
    agree = total = 0
    disagreements: list[str] = []
    for line in (root / "expected.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["framework"] != "kubernetes" or row["check_id"] not in mapped or row["result"] == "SKIPPED":
            continue
        ours = _verdicts([root / row["file"]], mapped[row["check_id"]])
        got = _matches(row["resource"], ours) or "PASSED"
        total += 1
        agree += got == row["result"]
        if got != row["result"]:
            disagreements.append(f"{row['check_id']} {row['file']} {row['resource']}: {got} != {row['result']}")
    graph_root = root / "tests" / "kubernetes" / "graph" / "checks" / "resources"
    for folder, ckv in GRAPH.items():
        expected = yaml.safe_load((graph_root / folder / "expected.yaml").read_text())
        ours = _verdicts([graph_root / folder], mapped[ckv])
        for want, keys in (("PASSED", expected.get("pass") or []), ("FAILED", expected.get("fail") or [])):
            for key in keys:
                got = _matches(key, ours) or "PASSED"
                total += 1
                agree += got == want
                if got != want:
                    disagreements.append(f"{ckv} {folder} {key}: {got} != {want}")
    ratio = agree / total
    print(f"checkov cluster agreement: {agree}/{total} = {ratio:.1%}")
    for d in disagreements:
        print("  differs:", d)
    assert total >= 60
    assert ratio >= MIN_AGREEMENT, disagreements


@pytest.mark.parametrize("ckv", ["CKV_K8S_21", "CKV_K8S_41", "CKV_K8S_42", "CKV_K8S_49", "CKV_K8S_153", "CKV_K8S_155"])
def test_checkov_ids_are_mapped(ckv: str) -> None:
    assert _mapped()[ckv]
