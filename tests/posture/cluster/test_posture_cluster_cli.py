"""``garrison posture cluster``: the same controls fail on the replayed cluster as on the same
objects written as YAML for ``garrison posture k8s``; formats, filters, exit codes, bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from tests.posture.cluster._apiserver_replay import Running
from tests.posture.cluster.conftest import KubeconfigWriter

from garrison.cli.main import main
from garrison.posture.k8s.cluster import scan_cluster


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _failures(report: dict) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(obj["ref"], res["control"]) for obj in report["objects"] for res in obj["results"]}


def test_cluster_agrees_with_manifests(
    write_kubeconfig: KubeconfigWriter,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    kubeconfig = write_kubeconfig()
    code, out, err = _run(["posture", "cluster", "--kubeconfig", str(kubeconfig), "-f", "json"], capsys)
    assert code == 1, err
    live = json.loads(out)
    assert "podsecuritypolicies: policy/v1beta1 not served" in err

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    snap = scan_cluster(kubeconfig, environ={})
    for i, obj in enumerate(snap.objects):
        (manifests / f"{i:02d}-{obj.kind}.yaml").write_text(yaml.safe_dump(obj.doc))
    code, out, _ = _run(["posture", "k8s", str(manifests), "-f", "json"], capsys)
    assert code == 1
    offline = json.loads(out)

    assert _failures(live) == _failures(offline)
    assert len(_failures(live)) >= 10
    controls = {c for _ref, c in _failures(live)}
    assert any(c.startswith("PSS-") for c in controls) and any(c.startswith("GK-") for c in controls)
    assert live["summary"] == offline["summary"]
    locations = {r["location"]["file"] for o in live["objects"] for r in o["results"]}
    assert "cluster:replay/default/Pod/nginx" in locations
    assert all(r["location"]["line"] == 0 for o in live["objects"] for r in o["results"])
    assert live["cluster"]["context"] == "replay" and live["cluster"]["skipped_owned"] == 2
    assert live["cluster"]["counts"]["Pod"] == 1


@pytest.mark.parametrize("fmt", ["table", "sarif", "junit", "policyreport", "html"])
def test_formats(
    write_kubeconfig: KubeconfigWriter, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    out_file = tmp_path / f"report.{fmt}"
    code, _, _ = _run(
        ["posture", "cluster", "--kubeconfig", str(write_kubeconfig()), "-f", fmt, "-o", str(out_file)], capsys
    )
    assert code == 1
    text = out_file.read_text()
    if fmt == "sarif":
        sarif = json.loads(text)
        uris = {
            loc["physicalLocation"]["artifactLocation"]["uri"]
            for run in sarif["runs"]
            for res in run["results"]
            for loc in res.get("locations", [])
        }
        assert any("Deployment/icx-db" in u for u in uris)
    elif fmt == "junit":
        assert int(ET.fromstring(text).get("failures", "0") or 0) > 0 or "<failure" in text
    elif fmt == "table":
        assert "Deployment/icx/icx-db" in text and "cluster:replay" in text
        assert "12 object(s)" in text
    elif fmt == "html":
        assert "<html" in text.lower() and "icx-db" in text
    else:
        assert "icx-db" in text


def test_only_and_namespace_filters(write_kubeconfig: KubeconfigWriter, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "posture",
        "cluster",
        "--kubeconfig",
        str(write_kubeconfig()),
        "-f",
        "json",
        "--only",
        "pss",
        "--namespace",
        "icx",
    ]
    code, out, _ = _run(argv, capsys)
    report = json.loads(out)
    assert code == 1
    assert {o["ref"] for o in report["objects"]} == {"Deployment/icx/icx-db"}
    assert all(r["control"].startswith("PSS-") for o in report["objects"] for r in o["results"])


def test_exclude_everything_with_failures_passes(
    write_kubeconfig: KubeconfigWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "posture",
        "cluster",
        "--kubeconfig",
        str(write_kubeconfig()),
        "-f",
        "json",
        "--only",
        "pss",
        "--exclude-namespaces",
        "default,icx",
    ]
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert json.loads(out)["summary"]["failed"] == 0


def test_baseline_round_trip(
    write_kubeconfig: KubeconfigWriter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "baseline.json"
    argv = ["posture", "cluster", "--kubeconfig", str(write_kubeconfig()), "-f", "json"]
    code, _, _ = _run([*argv, "--write-baseline", str(base)], capsys)
    assert code == 1 and base.is_file()
    code, out, _ = _run([*argv, "--baseline", str(base)], capsys)
    assert code == 0, out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("clusters: [\n", "invalid YAML", id="yaml"),
        pytest.param("kind: Config\ncurrent-context: nope\n", "context 'nope' not found", id="context"),
    ],
)
def test_bad_kubeconfig_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str) -> None:
    path = tmp_path / "kc"
    path.write_text(content)
    code, out, err = _run(["posture", "cluster", "--kubeconfig", str(path)], capsys)
    assert code == 2 and not out
    line = err.strip()
    assert message in line and str(path) in line and "\n" not in line and "Traceback" not in err


def test_unknown_context_and_format_exit_2(
    write_kubeconfig: KubeconfigWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(write_kubeconfig())
    code, _, err = _run(["posture", "cluster", "--kubeconfig", path, "--context", "prod"], capsys)
    assert code == 2 and "context 'prod' not found (contexts: replay)" in err
    code, _, err = _run(["posture", "cluster", "--kubeconfig", path, "-f", "xml"], capsys)
    assert code == 2 and "unknown format 'xml'" in err


def test_unreachable_server_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_kubeconfig: KubeconfigWriter, apiserver: Running
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = write_kubeconfig(cluster={"server": f"https://127.0.0.1:{port}"})
    code, _, err = _run(["posture", "cluster", "--kubeconfig", str(path), "--timeout", "1"], capsys)
    assert code == 2 and "cannot reach the API server" in err and "Traceback" not in err
