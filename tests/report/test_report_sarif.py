"""SARIF 2.1.0: schema validity, rules, levels, locations and suppressions."""

from __future__ import annotations

import pytest

from garrison.model import FindingKind, ScanResult, Severity
from garrison.report import render
from garrison.report.sarif import sarif_document
from garrison.report.validate import validate


def test_valid_against_schema(scan_result: ScanResult) -> None:
    assert validate(render(scan_result, "sarif"), "sarif") == []


def test_one_rule_per_id_and_results_point_at_them(scan_result: ScanResult) -> None:
    run = sarif_document(scan_result)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids == sorted(set(ids))
    assert set(ids) == {f.id for f in scan_result.findings}
    assert len(run["results"]) == len(scan_result.findings)
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]


@pytest.mark.parametrize(
    ("rule_id", "score", "level"),
    [
        pytest.param("PYSEC-2023-161", "7.8", "error", id="cvss-high"),
        pytest.param("PYSEC-2023-212", "4.2", "warning", id="cvss-medium"),
        pytest.param("PYSEC-2014-13", "0.0", "note", id="unknown"),
        pytest.param("aws-access-key-id", "9.5", "error", id="secret-critical"),
    ],
)
def test_rule_severity(scan_result: ScanResult, rule_id: str, score: str, level: str) -> None:
    rules = {r["id"]: r for r in sarif_document(scan_result)["runs"][0]["tool"]["driver"]["rules"]}
    rule = rules[rule_id]
    assert rule["properties"]["security-severity"] == score
    assert rule["defaultConfiguration"]["level"] == level
    assert "security" in rule["properties"]["tags"]
    assert rule["help"]["text"] and rule["help"]["markdown"]


def test_vulnerability_result_message_and_location(scan_result: ScanResult) -> None:
    run = sarif_document(scan_result)["runs"][0]
    res = next(r for r in run["results"] if r["ruleId"] == "PYSEC-2023-192")
    text = res["message"]["text"]
    assert "Package: urllib3" in text and "Installed Version: 2.0.5" in text and "Fixed Version: 2.0.6" in text
    assert "Data Source: osv:PyPI" in text
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "srv/app/requirements.txt"
    assert res["level"] == "error"


def test_secret_region_is_its_line(scan_result: ScanResult) -> None:
    secret = next(f.secret for f in scan_result.findings if f.kind == FindingKind.SECRET)
    assert secret is not None
    run = sarif_document(scan_result)["runs"][0]
    res = next(r for r in run["results"] if r["ruleId"] == secret.rule_id)
    loc = res["locations"][0]["physicalLocation"]
    assert loc["region"]["startLine"] == secret.line
    assert loc["artifactLocation"]["uri"] == secret.path
    assert secret.redacted in res["message"]["text"]


def test_package_without_path_points_at_image(scan_result: ScanResult) -> None:
    f = next(f for f in scan_result.findings if f.vuln is not None)
    assert f.vuln is not None
    f.vuln.package.path = ""
    run = sarif_document(scan_result)["runs"][0]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"] if r["ruleId"] == f.id}
    assert "registry.example.com/shop/web:1.4.2" in uris


def test_suppressed_results_carry_external_suppression(scan_result: ScanResult) -> None:
    run = sarif_document(scan_result)["runs"][0]
    suppressed = [r for r in run["results"] if "suppressions" in r]
    assert len(suppressed) == sum(1 for f in scan_result.findings if f.suppressed)
    for r in suppressed:
        (s,) = r["suppressions"]
        assert s["kind"] == "external" and s["status"] == "accepted" and s["justification"]


def test_levels_follow_severity(scan_result: ScanResult) -> None:
    expected = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note",
                Severity.UNKNOWN: "note"}
    run = sarif_document(scan_result)["runs"][0]
    findings = sorted(scan_result.findings, key=lambda f: (f.target, -int(f.severity), f.id,
                                                           f.vuln.package.name if f.vuln else ""))
    assert [r["level"] for r in run["results"]] == [expected[f.severity] for f in findings]


def test_byte_stable(scan_result: ScanResult) -> None:
    assert render(scan_result, "sarif") == render(scan_result, "sarif")
