"""``garrison posture k8s``: exit codes and JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.cli.main import main

FIXTURES = Path(__file__).resolve().parents[2] / "assets" / "posture" / "pss"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_pass_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        [
            "posture",
            "k8s",
            str(FIXTURES / "baseline/v1.35/pass/base.yaml"),
            "--pss",
            "baseline",
            "-f",
            "json",
            "--only",
            "pss",
        ],
        capsys,
    )
    assert code == 0
    report = json.loads(out)
    assert report["summary"] == {"objects": 1, "checked": 1, "failed": 0, "results": 0}
    assert report["objects"][0]["allowed"] is True


def test_fail_exit_1_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "restricted/v1.10/fail/runasnonroot0.yaml"
    code, out, _ = _run(
        ["posture", "k8s", str(path), "--pss", "restricted", "--pss-version", "v1.10", "-f", "json", "--only", "pss"],
        capsys,
    )
    assert code == 1
    report = json.loads(out)
    assert report["version"] == "v1.10" and report["level"] == "restricted"
    (obj,) = report["objects"]
    assert obj["ref"] == "Pod/runasnonroot0"
    by_control = {r["control"]: r for r in obj["results"]}
    res = by_control["PSS-restricted-runAsNonRoot"]
    assert res["details"]["reason"] == "runAsNonRoot != true"
    assert (
        res["details"]["detail"]
        == 'pod or containers "initcontainer1", "container1" must set securityContext.runAsNonRoot=true'
    )
    assert res["paths"][0] == "spec.initContainers[0].securityContext.runAsNonRoot"
    assert res["location"]["line"] == 14
    assert out == json.dumps(report, indent=2, sort_keys=True) + "\n"


def test_table_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = _run(
        ["posture", "k8s", str(FIXTURES / "baseline/v1.35/fail/procmount_baseline0.yaml"), "--pss", "baseline"], capsys
    )
    assert code == 1 and "PSS-baseline-procMount_baseline" in out
    code, _, err = _run(["posture", "k8s", str(FIXTURES), "--pss-version", "v0.1"], capsys)
    assert code == 2 and "older than v1.0" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    code, _, err = _run(["posture", "k8s", str(bad)], capsys)
    assert code == 2 and f"{bad}:" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(["posture", "k8s", str(bad), "--only", "rbac"], capsys)
    assert code == 2 and "unknown control family" in err


DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: docker.io/library/nginx:1.27
          securityContext: {privileged: true}
"""


def test_every_family_by_default_and_family_selection(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOY)
    code, out, _ = _run(["posture", "k8s", str(path), "-f", "json"], capsys)
    assert code == 1
    report = json.loads(out)
    assert report["families"] == "pss,workload,cluster"
    controls = {r["control"] for r in report["objects"][0]["results"]}
    assert "PSS-baseline-privileged" in controls or any(c.startswith("PSS-") for c in controls)
    assert any(c.startswith("GK-W-") for c in controls)
    code, out, _ = _run(["posture", "k8s", str(path), "-f", "json", "--only", "workload"], capsys)
    controls = {r["control"] for r in json.loads(out)["objects"][0]["results"]}
    assert controls and all(c.startswith("GK-W-") for c in controls)


def test_allowed_registries_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOY)

    def controls(*extra: str) -> set[str]:
        _, out, _ = _run(["posture", "k8s", str(path), "-f", "json", "--only", "workload", *extra], capsys)
        return {r["control"] for r in json.loads(out)["objects"][0]["results"]}

    assert "GK-W-074" not in controls()
    assert "GK-W-074" in controls("--allowed-registries", "registry.example.com")
    assert "GK-W-074" not in controls("--allowed-registries", "docker.io/library")
    assert "GK-W-074" not in controls()  # the flag does not leak into the next run


@pytest.mark.parametrize("fmt", ["sarif", "junit", "policyreport"])
def test_report_formats(fmt: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    import yaml

    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOY)
    code, out, _ = _run(["posture", "k8s", str(path), "-f", fmt], capsys)
    assert code == 1
    if fmt == "sarif":
        doc = json.loads(out)
        assert doc["version"] == "2.1.0"
        rule_ids = {r["ruleId"] for r in doc["runs"][0]["results"]}
        assert "GK-W-001" in rule_ids or any(r.startswith("GK-W-") for r in rule_ids)
    elif fmt == "junit":
        root = ET.fromstring(out)
        assert int(root.get("failures") or sum(int(s.get("failures", 0)) for s in root)) > 0
    else:
        docs = [d for d in yaml.safe_load_all(out) if d]
        assert docs and all(d["apiVersion"] == "wgpolicyk8s.io/v1alpha2" for d in docs)
        assert any(r["result"] == "fail" for d in docs for r in d["results"])


def test_exceptions_and_baseline(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOY)
    base = tmp_path / "baseline.json"
    code, out, err = _run(["posture", "k8s", str(path), "-f", "json", "--write-baseline", str(base)], capsys)
    assert code == 1 and base.exists() and "baseline" in err
    code, out, _ = _run(["posture", "k8s", str(path), "-f", "json", "--baseline", str(base)], capsys)
    assert code == 0, out
    assert json.loads(out)["summary"]["failed"] == 0
    exc = tmp_path / "exc.yaml"
    exc.write_text(
        "exceptions:\n  - id: 'GK-W-*'\n    resource: {kind: Deployment, name: web}\n"
        "    justification: reviewed\n    expires: 2999-01-01\n"
    )
    _, out, _ = _run(
        ["posture", "k8s", str(path), "-f", "json", "--only", "workload", "--exceptions", str(exc)], capsys
    )
    assert json.loads(out)["summary"]["failed"] == 0
