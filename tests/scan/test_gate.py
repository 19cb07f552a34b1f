"""The CI gate: severity thresholds and the expression language."""

from __future__ import annotations

import pytest

from garrison.core.errors import ConfigError
from garrison.model import (
    CVSS,
    Finding,
    FindingKind,
    Package,
    SecretMatch,
    Severity,
    Suppression,
    Vulnerability,
    VulnMatch,
    VulnStatus,
)
from garrison.scan.gate import FilterOptions, GateExpression, filter_findings, gate_failures, parse_severities


def vuln_finding(
    vid: str, sev: Severity, fixed: tuple[str, ...] = (), status: VulnStatus = VulnStatus.FIXED, score: float = 0.0
) -> Finding:
    pkg = Package("requests", "2.19.1", "pypi", path="site-packages/requests-2.19.1.dist-info/METADATA")
    cvss = (CVSS("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", score, "nvd"),) if score else ()
    v = Vulnerability(vid, severity=sev, cvss=cvss)
    return Finding(vid, FindingKind.VULNERABILITY, sev, "t", "python packages",
                   vuln=VulnMatch(v, pkg, "2.19.1", fixed_versions=fixed, status=status))


def secret_finding() -> Finding:
    s = SecretMatch("private-key", "AsymmetricPrivateKey", "Private key", "srv/app/settings.env", 3, "*****")
    return Finding("private-key", FindingKind.SECRET, Severity.HIGH, "Private key", "srv/app/settings.env", secret=s)


@pytest.mark.parametrize(
    ("expr", "finding", "expected"),
    [
        pytest.param("severity >= HIGH and fixable", vuln_finding("CVE-1", Severity.HIGH, ("2.20.0",)), True, id="high-fixable"),
        pytest.param("severity >= HIGH and fixable", vuln_finding("CVE-1", Severity.HIGH), False, id="high-unfixable"),
        pytest.param("severity >= 'critical'", vuln_finding("CVE-1", Severity.HIGH), False, id="string-severity"),
        pytest.param('kind == "secret"', secret_finding(), True, id="secret"),
        pytest.param('kind == "secret"', vuln_finding("CVE-1", Severity.LOW), False, id="not-secret"),
        pytest.param("cvss >= 7.5", vuln_finding("CVE-1", Severity.HIGH, score=7.5), True, id="cvss"),
        pytest.param("cvss >= 7.5", vuln_finding("CVE-1", Severity.HIGH, score=7.4), False, id="cvss-below"),
        pytest.param('id in ("CVE-9", "CVE-1")', vuln_finding("CVE-1", Severity.LOW), True, id="in-list"),
        pytest.param('not status == "will_not_fix"', vuln_finding("CVE-1", Severity.LOW, status=VulnStatus.WILL_NOT_FIX), False, id="not"),
        pytest.param('type == "pypi" and package == "requests" and version == "2.19.1"', vuln_finding("C", Severity.LOW), True, id="package"),
        pytest.param("LOW < severity < CRITICAL", vuln_finding("C", Severity.MEDIUM), True, id="chained"),
    ],
)
def test_gate_expression(expr: str, finding: Finding, expected: bool) -> None:
    assert GateExpression(expr)(finding) is expected


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param("__import__('os').system('true')", id="call"),
        pytest.param("severity.real", id="attribute"),
        pytest.param("bogus == 1", id="unknown-name"),
        pytest.param("severity >=", id="syntax"),
        pytest.param("[x for x in id]", id="comprehension"),
    ],
)
def test_gate_expression_rejects_anything_else(expr: str) -> None:
    with pytest.raises(ConfigError):
        GateExpression(expr)


def test_suppressed_findings_never_fail_the_gate() -> None:
    f = vuln_finding("CVE-1", Severity.CRITICAL, ("1",))
    f.suppression = Suppression("vex", "not reachable")
    assert gate_failures([f], Severity.LOW, None) == []
    assert gate_failures([vuln_finding("CVE-2", Severity.CRITICAL)], Severity.HIGH, None) != []


def test_filters() -> None:
    items = [
        vuln_finding("A", Severity.HIGH, ("1",)),
        vuln_finding("B", Severity.HIGH),
        vuln_finding("C", Severity.LOW, ("1",), status=VulnStatus.UNIMPORTANT),
    ]
    assert [f.id for f in filter_findings(items, FilterOptions(ignore_unfixed=True))] == ["A", "C"]
    assert [f.id for f in filter_findings(items, FilterOptions(severities=parse_severities("high")))] == ["A", "B"]
    assert [f.id for f in filter_findings(items, FilterOptions(ignore_statuses=frozenset({"unimportant"})))] == ["A", "B"]
    with pytest.raises(ConfigError):
        parse_severities("HIGH,SEVERE")
