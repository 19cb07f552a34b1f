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
        ["posture", "k8s", str(FIXTURES / "baseline/v1.35/pass/base.yaml"), "--pss", "baseline", "-f", "json"], capsys
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
