"""Agreement of the workload controls with checkov's verdicts on checkov's own fixtures.

Every control whose ``references.checkov`` names a CKV_K8S check runs on each fixture file of
that check in ``expected.jsonl``; per (file, resource, check) the resource fails when any of our
mapped controls fails on it. SKIPPED rows (checkov's annotation suppressions) are not compared.
Deliberate differences are in ``EXCEPTIONS`` with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from garrison.posture.k8s.controls import registry, run_controls
from garrison.posture.k8s.loader import load_paths
from garrison.posture.k8s.objects import K8sObject
from garrison.posture.model import Verdict

#: (check, file name, resource) -> why we deliberately disagree with checkov
EXCEPTIONS: dict[tuple[str, str, str], str] = {
    ("CKV_K8S_23", "rootContainersFAILED-malformed-spec.yaml", "Pod.default.pod1"): (
        "spec is a list, not a pod spec: the API server rejects it and no workload control applies"
    ),
    ("CKV_K8S_29", "pod-container-FAILED_malformed_spec.yaml", "Pod.default.security-context-demo"): (
        "spec is not a pod spec: the API server rejects it and no workload control applies"
    ),
    ("CKV_K8S_27", "CronJob-pass.yaml", "CronJob.default.nginx-pod"): (
        "the job template spec is null: there is no pod spec to evaluate, so not applicable rather than passed"
    ),
}


def _name(obj: K8sObject) -> str:
    """checkov names an object without metadata.name after its first label, ``key-value``."""
    if obj.name:
        return obj.name
    labels = obj.metadata.get("labels")
    if isinstance(labels, dict) and labels:
        key, value = next(iter(labels.items()))
        return f"{key}-{value}"
    return ""


def _mapped() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for cid, reg in registry().items():
        if cid.startswith("GK-W-"):
            for ckv in reg.control.references.get("checkov", ()):
                out.setdefault(ckv, set()).add(cid)
    return out


def _key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}.{namespace or 'default'}.{name}"


def test_checkov_agreement(conformance_dir: Path) -> None:
    base = conformance_dir / "posture" / "checkov"
    mapped = _mapped()
    rows = [json.loads(line) for line in (base / "expected.jsonl").read_text().splitlines() if line.strip()]
    expected: dict[tuple[str, str, str], str] = {}
    for row in rows:
        if row["framework"] == "kubernetes" and row["check_id"] in mapped and row["result"] != "SKIPPED":
            expected[(row["check_id"], row["file"], row["resource"])] = row["result"]
    assert len({k[0] for k in expected}) >= 25, sorted(mapped)
    ours: dict[tuple[str, str, str], str] = {}
    for check, file in sorted({(k[0], k[1]) for k in expected}):
        objects = load_paths([str(base / file)]).objects
        for obj in objects:
            key = (check, file, _key(obj.kind, obj.namespace, _name(obj)))
            for r in run_controls([obj], only=mapped[check]):
                if r.verdict is Verdict.FAIL:
                    ours[key] = "FAILED"
                elif r.verdict is Verdict.PASS:
                    ours.setdefault(key, "PASSED")
    agree, differ = 0, []
    for key, result in sorted(expected.items()):
        got = ours.get(key, "NOT EVALUATED")
        if got == result:
            agree += 1
        elif (key[0], Path(key[1]).name, key[2]) in EXCEPTIONS:
            agree += 1
        else:
            differ.append(f"{key}: checkov {result}, ours {got}")
    print(f"checkov agreement: {agree}/{len(expected)} = {agree / len(expected):.1%}")
    assert not differ, "\n".join(differ)
