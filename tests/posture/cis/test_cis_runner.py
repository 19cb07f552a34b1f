"""The node runner on real files and a real kubelet process (see conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.core.errors import ConfigError, GarrisonError, NotFoundError
from garrison.posture.cis.definitions import load_config
from garrison.posture.cis.runner import (
    AuditError,
    NodeReport,
    Process,
    build_context,
    detect_targets,
    find_binary,
    flag_value,
    list_processes,
    run_audit,
    run_node,
    substitute,
)
from garrison.posture.model import ControlResult, Verdict

NODE_CHECKS = ["4.1.1", "4.1.5", "4.1.6", "4.1.9", "4.1.10", "4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.10", "4.2.12"]


def _by_id(report: NodeReport) -> dict[str, ControlResult]:
    return {r.control.id: r for r in report.results}


@pytest.fixture(scope="module")
def good(fake_node) -> dict[str, ControlResult]:  # type: ignore[no-untyped-def]
    return _by_id(run_node(targets=["node"], root=fake_node.good, checks=NODE_CHECKS))


@pytest.fixture(scope="module")
def bad(fake_node) -> dict[str, ControlResult]:  # type: ignore[no-untyped-def]
    return _by_id(run_node(targets=["node"], root=fake_node.bad, checks=NODE_CHECKS))


def test_fake_kubelet_is_detected_from_proc(fake_node) -> None:  # type: ignore[no-untyped-def]
    # another test worker may run its own fake kubelet at the same time: look past it
    procs = [p for p in list_processes() if p.pid == fake_node.pid or "kubelet" not in " ".join(p.argv)]
    binary, process = find_binary(["hyperkube kubelet", "kubelet"], procs)
    assert binary == "kubelet"
    assert process is not None and process.pid == fake_node.pid
    assert flag_value(process.argv, "--config") == "/var/lib/kubelet/config.yaml"
    assert "node" in detect_targets(load_config(), procs)


def test_kubelet_config_comes_from_the_process_flag(fake_node) -> None:  # type: ignore[no-untyped-def]
    ctx = build_context(load_config(), ["node"], list_processes(), fake_node.good)
    assert ctx.variables["kubeletbin"] == "kubelet"
    assert ctx.variables["kubeletconf"] == str(fake_node.good / "var/lib/kubelet/config.yaml")
    assert ctx.variables["kubeletsvc"] == str(fake_node.good / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf")
    assert ctx.variables["kubeletkubeconfig"] == str(fake_node.good / "etc/kubernetes/kubelet.conf")
    # kube-proxy is optional and not running: its binary defaults to the component name
    assert ctx.variables["proxybin"] == "proxy"


def test_file_permission_checks(good, bad) -> None:  # type: ignore[no-untyped-def]
    assert good["CIS-1.12-4.1.1"].verdict is Verdict.PASS
    assert good["CIS-1.12-4.1.1"].message == "permissions has permissions 600, expected 600 or more restrictive"
    assert bad["CIS-1.12-4.1.1"].verdict is Verdict.FAIL
    assert bad["CIS-1.12-4.1.1"].message == "permissions has permissions 644, expected 600 or more restrictive"
    assert good["CIS-1.12-4.1.9"].verdict is Verdict.PASS
    assert bad["CIS-1.12-4.1.9"].verdict is Verdict.FAIL
    assert bad["CIS-1.12-4.1.9"].message == "permissions has permissions 666, expected 600 or more restrictive"
    assert good["CIS-1.12-4.1.5"].verdict is Verdict.PASS


def test_file_ownership_checks(fake_node, good, bad) -> None:  # type: ignore[no-untyped-def]
    # files created by a non-root test run are not root:root, so the check fails there too
    expected = Verdict.PASS if fake_node.is_root else Verdict.FAIL
    assert good["CIS-1.12-4.1.6"].verdict is expected
    assert good["CIS-1.12-4.1.10"].verdict is expected
    assert bad["CIS-1.12-4.1.6"].verdict is Verdict.FAIL
    assert bad["CIS-1.12-4.1.6"].message == "'root:root' is present"


def test_kubelet_settings(good, bad) -> None:  # type: ignore[no-untyped-def]
    # --anonymous-auth=false on the command line overrides the config file in both roots
    for report in (good, bad):
        assert report["CIS-1.12-4.2.1"].verdict is Verdict.PASS
        assert report["CIS-1.12-4.2.1"].message == "'--anonymous-auth' is equal to 'false'"
    assert good["CIS-1.12-4.2.2"].verdict is Verdict.PASS
    assert bad["CIS-1.12-4.2.2"].verdict is Verdict.FAIL
    assert bad["CIS-1.12-4.2.2"].message == "'{.authorization.mode}' does not have 'AlwaysAllow'"
    assert good["CIS-1.12-4.2.3"].verdict is Verdict.PASS
    assert bad["CIS-1.12-4.2.3"].message == "'{.authentication.x509.clientCAFile}' is present"
    assert good["CIS-1.12-4.2.10"].verdict is Verdict.PASS
    assert bad["CIS-1.12-4.2.10"].verdict is Verdict.FAIL
    # --read-only-port=10255 fails an unscored check: kube-bench's WARN, a LOW failure here
    ro = good["CIS-1.12-4.2.4"]
    assert ro.verdict is Verdict.FAIL and ro.details["state"] == "WARN"
    assert ro.control.severity.name == "LOW"
    assert ro.message == "'--read-only-port' is equal to '0' OR '--read-only-port' is not present"
    assert good["CIS-1.12-4.2.12"].verdict is Verdict.PASS
    assert bad["CIS-1.12-4.2.12"].verdict is Verdict.FAIL


def test_result_metadata(good) -> None:  # type: ignore[no-untyped-def]
    r = good["CIS-1.12-4.2.1"]
    assert r.control.title == "Ensure that the --anonymous-auth argument is set to false (Automated)"
    assert r.control.frameworks == {"cis-k8s-1.12": ("4.2.1",)}
    assert r.control.severity.name == "MEDIUM"
    assert r.control.family == "cis-node"
    assert "10-kubeadm.conf" in r.control.remediation  # $kubeletsvc substituted
    assert r.subject.kind == "node" and r.subject.name == "node"


def test_manual_checks_are_skipped(fake_node) -> None:  # type: ignore[no-untyped-def]
    report = run_node(targets=["policies"], root=fake_node.good, checks=["5.1.7", "5.1.8"])
    assert {r.verdict for r in report.results} == {Verdict.SKIP}
    assert all(r.message == "Test marked as a manual test" for r in report.results)
    assert report.summary()["WARN"] == 2


def test_summary_counts_kube_bench_states(fake_node) -> None:  # type: ignore[no-untyped-def]
    report = run_node(targets=["node"], root=fake_node.good, checks=["4.2"])
    summary = report.summary()
    assert sum(summary.values()) == len(report.results) == 14
    assert summary["PASS"] >= 5


def test_errors() -> None:
    with pytest.raises(NotFoundError):
        run_node(targets=["node"], root=Path("/nonexistent/root"))
    with pytest.raises(ConfigError):
        run_node(targets=["nodes"], root=Path("/"), processes=[])
    with pytest.raises(NotFoundError, match="kubelet"):
        run_node(targets=["node"], root=Path("/"), processes=[])
    with pytest.raises(NotFoundError, match="no Kubernetes components"):
        run_node(root=Path("/"), processes=[])
    with pytest.raises(GarrisonError, match="unknown benchmark"):
        run_node(benchmark="cis-9.9", root=Path("/"), processes=[])
    kubelet = Process(1, "kubelet", ("/usr/bin/kubelet",))
    with pytest.raises(ConfigError, match="unknown check"):
        run_node(targets=["node"], root=Path("/"), processes=[kubelet], checks=["9.9.9"])


def test_hostile_config_flag_is_not_substituted(tmp_path: Path) -> None:
    evil = Process(1, "kubelet", ("/usr/bin/kubelet", "--config=/x;touch /tmp/pwned"))
    ctx = build_context(load_config(), ["node"], [evil], tmp_path)
    assert ";" not in ctx.variables["kubeletconf"]
    assert ctx.warnings and "ignoring" in ctx.warnings[0]


def test_run_audit() -> None:
    assert run_audit("echo out; echo err >&2") == "out\nerr\n"
    with pytest.raises(AuditError, match="exit status 3"):
        run_audit("exit 3")
    with pytest.raises(AuditError, match="timed out"):
        run_audit("sleep 5", timeout=0.2)


def test_substitute_prefers_longest_names() -> None:
    variables = {"kubeletconf": "/a", "kubeletkubeconfig": "/b"}
    assert substitute("$kubeletconf $kubeletkubeconfig $d", variables) == "/a /b $d"


def test_binary_must_start_the_command_line() -> None:
    procs = [Process(1, "apiserver", ("/usr/bin/kube-apiserver",)), Process(2, "kubelet", ("/opt/bin/kubelet", "-v"))]
    assert find_binary(["apiserver"], procs) == ("", None)
    assert find_binary(["hyperkube kubelet", "kubelet"], procs)[1] == procs[1]
