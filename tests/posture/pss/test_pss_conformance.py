"""Upstream pod-security-admission fixtures: every pass fixture passes and every fail fixture
fails, at its level and policy version, with the check its file is named after.

The fixtures are the files upstream's ``test/fixtures_test.go`` writes to ``test/testdata/<level>/
<version>/<pass|fail>/<check><n>.yaml`` (provenance in ``SOURCE``). A fixture's verdict is its
path; the check is its file name without the index, lower-cased as upstream writes it.

Two tables are data beside the fixtures, not code: ``REASONS`` holds each generator's
``expectErrorSubstring`` (the text a FAIL fixture's message must contain), and ``SUPERSEDED``
lists stored fixtures that the newest upstream check source contradicts; for those the test
asserts the engine still disagrees, so the list cannot hide a regression.

A FAIL fixture generated for a baseline check also lands in the restricted tree, where a
restricted check may override the baseline one (upstream ``OverrideCheckIDs``); there the
overriding check is the one that must report it.

Upstream renamed the check ``procMount`` to ``procMount_baseline`` when v1.35 added
``procMount_restricted`` (``policy/check_procMount_baseline.go``); fixtures written before the
rename are named ``procmount<n>`` and are matched against whichever of the two carries that
check at the fixture's level and version.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from garrison.core.errors import ConfigError
from garrison.posture.k8s.loader import load_file
from garrison.posture.k8s.objects import pod_templates
from garrison.posture.k8s.pss import KNOWN_LATEST, CheckResult, evaluate_pod, parse_version
from garrison.posture.k8s.pss.engine import CHECKS

FIXTURES = Path(__file__).resolve().parents[2] / "assets" / "posture" / "pss"
CASES = sorted(FIXTURES.glob("*/v*/*/*.yaml"))

#: fixture names written before an upstream rename -> the check IDs that carry them now
RENAMED = {"procmount": ("procmount_baseline", "procmount_restricted")}


def _table(name: str) -> dict[str, str]:
    rows = {}
    for line in (FIXTURES / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("\t")[:2]
            rows[key] = value
    return rows


REASONS = _table("REASONS")
SUPERSEDED = _table("SUPERSEDED")


def _rel(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


def _check(path: Path) -> str:
    return re.sub(r"\d+$", "", path.stem)


def _run(path: Path) -> list[CheckResult]:
    level, version, _outcome = path.relative_to(FIXTURES).parts[:3]
    (obj,) = load_file(path).objects
    ((_, meta, spec),) = list(pod_templates(obj))
    return evaluate_pod(meta, spec, level, version)


def _wanted(path: Path) -> set[str]:
    """The check a FAIL fixture names, after upstream renames, plus the checks that override it
    at the fixture's level and version (upstream ``OverrideCheckIDs``: at ``restricted``,
    restrictedVolumes reports what hostPathVolumes would, and so on)."""
    level, version = path.relative_to(FIXTURES).parts[:2]
    names = set(RENAMED.get(_check(path), (_check(path),)))
    ver = parse_version(version)
    for chk in CHECKS:
        rev = chk.at(ver)
        if level == "restricted" and rev is not None and names & {o.lower() for o in rev.overrides}:
            names.add(chk.id.lower())
    return names


def _agrees(path: Path) -> bool:
    failed = {f.check_id.lower() for f in _run(path)}
    if path.parent.name == "pass":
        return not failed
    return bool(failed & _wanted(path))


def test_fixtures_present() -> None:
    assert len(CASES) >= 400
    rows = re.findall(r"^  (\S+\.yaml) <- \S+ @ [0-9a-f]{40}$", (FIXTURES / "SOURCE").read_text(), re.MULTILINE)
    assert sorted(rows) == sorted(_rel(p) for p in CASES)  # one provenance row per stored fixture
    # both levels, both verdicts, and a spread of policy versions
    assert {p.relative_to(FIXTURES).parts[0] for p in CASES} == {"baseline", "restricted"}
    assert {p.parent.name for p in CASES} == {"pass", "fail"}
    assert len({p.relative_to(FIXTURES).parts[1] for p in CASES}) >= 30
    assert set(SUPERSEDED) <= {_rel(p) for p in CASES}


@pytest.mark.parametrize("path", CASES, ids=_rel)
def test_upstream_fixture(path: Path) -> None:
    if _rel(path) in SUPERSEDED:
        assert not _agrees(path), f"engine now agrees with {_rel(path)}: drop it from SUPERSEDED"
    else:
        assert _agrees(path), [(f.check_id, f.reason, f.detail) for f in _run(path)]


FAIL_CASES = [p for p in CASES if p.parent.name == "fail" and _rel(p) not in SUPERSEDED]


@pytest.mark.parametrize("path", FAIL_CASES, ids=_rel)
def test_fail_reason_is_upstream(path: Path) -> None:
    mine = [f for f in _run(path) if f.check_id.lower() in _wanted(path)]
    assert mine
    for failure in mine:
        substring = REASONS[failure.check_id]
        assert substring in f"{failure.reason} ({failure.detail})", (failure.reason, failure.detail)


def test_every_check_has_a_reason_row() -> None:
    assert {c.id for c in CHECKS} == set(REASONS)


def test_agreement_figure() -> None:
    """Agreement over all stored fixtures (superseded ones count as disagreements)."""
    tally = Counter(_agrees(p) for p in CASES)
    # every disagreement is a listed, superseded fixture; all others agree
    assert tally[False] == len(SUPERSEDED)
    assert tally[True] == len(CASES) - len(SUPERSEDED)


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


def test_proc_mount_user_namespaces() -> None:
    # v1.35 baseline relaxes /proc unmasking for hostUsers=false; restricted keeps blocking it
    spec = {"hostUsers": False, "containers": [{"name": "c", "securityContext": {"procMount": "Unmasked"}}]}
    assert [f.check_id for f in evaluate_pod({}, spec, "baseline", "v1.34")] == ["procMount_baseline"]
    assert evaluate_pod({}, spec, "baseline", "v1.35") == []
    restricted = {f.check_id: f for f in evaluate_pod({}, spec, "restricted", "v1.35")}
    assert "procMount_baseline" not in restricted
    assert restricted["procMount_restricted"].detail == (
        'container "c" must not set securityContext.procMount to "Unmasked"'
    )


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
