"""Upstream pod-security-admission fixtures: every pass fixture passes and every fail fixture
fails, at its level and policy version, with the check its file is named after."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from garrison.core.errors import ConfigError
from garrison.posture.k8s.loader import load_file
from garrison.posture.k8s.objects import pod_templates
from garrison.posture.k8s.pss import KNOWN_LATEST, evaluate_pod, parse_version

FIXTURES = Path(__file__).resolve().parents[2] / "assets" / "posture" / "pss"
CASES = sorted(FIXTURES.glob("*/v*/*/*.yaml"))


def _run(path: Path) -> tuple[str, list[str]]:
    level, version, _outcome = path.relative_to(FIXTURES).parts[:3]
    (obj,) = load_file(path).objects
    ((_, meta, spec),) = list(pod_templates(obj))
    return level, [f.check_id.lower() for f in evaluate_pod(meta, spec, level, version)]


def test_fixtures_present() -> None:
    assert len(CASES) >= 12
    assert sum(1 for line in (FIXTURES / "SOURCE").read_text().splitlines() if line.startswith("  ")) == len(CASES)


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_upstream_fixture(path: Path) -> None:
    _level, failed = _run(path)
    outcome = path.parent.name
    check = re.sub(r"\d+$", "", path.stem)
    if outcome == "pass":
        assert failed == []
    else:
        assert check in failed, failed


def test_versions() -> None:
    assert parse_version("latest") == KNOWN_LATEST
    assert parse_version("v1.0") == (1, 0)
    assert parse_version("v1.999") == KNOWN_LATEST
    for bad in ("v0.9", "1", "v2.0", "banana"):
        with pytest.raises(ConfigError):
            parse_version(bad)


def test_detail_strings_are_upstream() -> None:
    spec = {
        "containers": [
            {"name": "a", "securityContext": {"privileged": True}},
            {"name": "b", "ports": [{"hostPort": 80}, {"hostPort": 443}]},
        ]
    }
    failures = {f.check_id: f for f in evaluate_pod({}, spec, "baseline", "latest")}
    assert failures["privileged"].reason == "privileged"
    assert failures["privileged"].detail == 'container "a" must not set securityContext.privileged=true'
    assert failures["hostPorts"].detail == 'container "b" uses hostPorts 443, 80'


def test_version_changes_behaviour() -> None:
    # restricted seccomp only exists from v1.19; runAsUser from v1.23; sysctl allow-list grows
    spec = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 0},
        "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": False}}],
    }
    old = {f.check_id for f in evaluate_pod({}, spec, "restricted", "v1.18")}
    new = {f.check_id for f in evaluate_pod({}, spec, "restricted", "latest")}
    assert "seccompProfile_restricted" not in old and "seccompProfile_restricted" in new
    assert "runAsUser" not in old and "runAsUser" in new
    sysctl = {"securityContext": {"sysctls": [{"name": "net.ipv4.tcp_rmem"}]}, "containers": [{"name": "c"}]}
    assert [f.check_id for f in evaluate_pod({}, sysctl, "baseline", "v1.31")] == ["sysctls"]
    assert evaluate_pod({}, sysctl, "baseline", "v1.32") == []
    windows = {"os": {"name": "windows"}, "securityContext": {"runAsNonRoot": True}, "containers": [{"name": "c"}]}
    assert {f.check_id for f in evaluate_pod({}, windows, "restricted", "v1.25")} == set()
    assert "allowPrivilegeEscalation" in {f.check_id for f in evaluate_pod({}, windows, "restricted", "v1.24")}
