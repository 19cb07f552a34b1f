"""``garrison policy snapshot``: network policies and endpoints read from the (replayed, recorded)
API server into YAML that the policy commands evaluate like any other input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tests.posture.cluster.conftest import KubeconfigWriter

from garrison.cli.main import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_snapshot_then_evaluate(
    write_kubeconfig: KubeconfigWriter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "snap"
    code, _, err = _run(["policy", "snapshot", "--kubeconfig", str(write_kubeconfig()), "-o", str(out_dir)], capsys)
    assert code == 0, err
    assert "projectcalico.org/v3" in err  # Calico's API is not served here: said, not fatal
    policies = [d for d in yaml.safe_load_all((out_dir / "policies.yaml").read_text()) if d]
    inventory = [d for d in yaml.safe_load_all((out_dir / "inventory.yaml").read_text()) if d]
    assert [(p["kind"], p["metadata"]["name"]) for p in policies] == [("NetworkPolicy", "fred")]
    pods = {d["metadata"]["name"] for d in inventory if d["kind"] == "Pod"}
    assert {"nginx", "nginx-7fb78fb6d8-2w75j"} <= pods  # owned pods are endpoints too
    assert all("managedFields" not in d["metadata"] for d in inventory)

    def verdict(src: str, dst: str, port: int) -> str:
        code, out, err = _run(
            ["policy", "eval", "--policies", str(out_dir / "policies.yaml"), "--inventory",
             str(out_dir / "inventory.yaml"), "--src", src, "--dst", dst, "--protocol", "TCP",
             "--port", str(port), "--format", "json"],
            capsys,
        )  # fmt: skip
        assert code == 0, err
        return str(json.loads(out)["verdict"])

    # "fred" isolates app=nginx: ingress only from 172.17.0.0/16 (minus three /24s) etc. on 6379,
    # egress only to 10.0.0.0/24:5978. The unlabeled pod "nginx" has 172.17.0.6.
    assert verdict("default/nginx", "default/nginx-7fb78fb6d8-2w75j", 6379) == "allow"
    assert verdict("default/nginx", "default/nginx-7fb78fb6d8-2w75j", 80) == "deny"
    assert verdict("default/nginx-7fb78fb6d8-2w75j", "default/nginx", 80) == "deny"


def test_snapshot_bad_kubeconfig(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("clusters: [\n")
    code, _, err = _run(["policy", "snapshot", "--kubeconfig", str(bad), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and str(bad) in err and len(err.strip().splitlines()) == 1
