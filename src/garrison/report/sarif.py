"""SARIF 2.1.0: one run, one rule per vulnerability id or secret rule, one result per finding.

Rules carry ``security-severity`` (the CVSS score, or a representative score for the severity) so
code-scanning front ends rank them; suppressed findings stay in the log with an ``external``
suppression, as SARIF intends. Built as plain dicts and checked against the official schema.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from garrison.model import Finding, FindingKind, ScanResult, Severity
from garrison.report._common import (
    SEVERITY_SCORE,
    dump_json,
    image_reference,
    max_cvss,
    paused_gc,
    short_hash,
    sorted_findings,
)
from garrison.report.cyclonedx import advisory_url

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}


def render_sarif(result: ScanResult) -> str:
    with paused_gc():
        return dump_json(sarif_document(result), record_depth=2)


def _uri(path: str) -> str:
    return quote(path.lstrip("/"), safe="/:@+~=,;!$&'()*")


def _score(f: Finding) -> float:
    score = max_cvss(f)
    return score if score is not None else SEVERITY_SCORE[f.severity]


def sarif_document(result: ScanResult) -> dict[str, Any]:
    findings = [f for f in sorted_findings(result.findings) if f.kind in (FindingKind.VULNERABILITY, FindingKind.SECRET)]
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(_rule_id(f), []).append(f)
    rule_ids = sorted(by_rule)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    rules = [_rule(rid, by_rule[rid]) for rid in rule_ids]
    target = image_reference(result.artifact)
    results = [_result(f, index[_rule_id(f)], target) for f in findings]
    driver: dict[str, Any] = {"name": "garrison", "fullName": "Garrison container security scanner", "rules": rules}
    if result.tool_version:
        driver["version"] = result.tool_version
        driver["semanticVersion"] = result.tool_version
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "results": results,
        "columnKind": "utf16CodeUnits",
        "originalUriBaseIds": {"ROOTPATH": {"uri": "file:///"}},
        "properties": {
            "artifactName": result.artifact.name,
            "artifactKind": str(result.artifact.kind),
            **({"imageDigest": result.artifact.digest} if result.artifact.digest else {}),
            **({"os": f"{result.os.family} {result.os.version}"} if result.os else {}),
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _rule_id(f: Finding) -> str:
    return f.id or ("secret" if f.kind == FindingKind.SECRET else "vulnerability")


def _rule(rid: str, group: list[Finding]) -> dict[str, Any]:
    worst = max(group, key=lambda f: (int(f.severity), _score(f)))
    score = max(_score(f) for f in group)
    rule: dict[str, Any] = {"id": rid, "name": _rule_name(worst)}
    title = worst.title or rid
    rule["shortDescription"] = {"text": title}
    tags = ["security", worst.severity.name]
    if worst.vuln is not None:
        v = worst.vuln.vulnerability
        full = v.details or v.summary or title
        rule["fullDescription"] = {"text": full}
        links = [u for u in (advisory_url(v.id), *v.references) if u.startswith(("http://", "https://"))]
        if links:
            rule["helpUri"] = links[0]
        refs = "\n".join(f"- {u}" for u in dict.fromkeys(links))
        rule["help"] = {
            "text": f"Vulnerability {rid}\nSeverity: {worst.severity.name}\n{full}\n{refs}".rstrip(),
            "markdown": f"**Vulnerability {rid}**\n\n| Severity | Package |\n| --- | --- |\n"
            f"| {worst.severity.name} | {worst.vuln.package.name} |\n\n{full}\n\n{refs}".rstrip(),
        }
        tags.insert(0, "vulnerability")
        tags.extend(sorted({c for c in v.cwes if c}))
    elif worst.secret is not None:
        s = worst.secret
        rule["fullDescription"] = {"text": f"{s.title} ({s.category})"}
        rule["help"] = {
            "text": f"Secret {rid}: {s.title}\nCategory: {s.category}\nSeverity: {worst.severity.name}",
            "markdown": f"**Secret {rid}**: {s.title}\n\n| Category | Severity |\n| --- | --- |\n"
            f"| {s.category} | {worst.severity.name} |",
        }
        tags.insert(0, "secret")
    rule["defaultConfiguration"] = {"level": _LEVEL[worst.severity]}
    rule["properties"] = {"security-severity": f"{score:.1f}", "precision": "very-high", "tags": tags}
    return rule


def _rule_name(f: Finding) -> str:
    if f.kind == FindingKind.SECRET:
        return "Secret"
    if f.vuln is not None and f.vuln.package.type in ("deb", "apk", "rpm"):
        return "OsPackageVulnerability"
    return "LanguageSpecificPackageVulnerability"


def _result(f: Finding, rule_index: int, target: str) -> dict[str, Any]:
    res: dict[str, Any] = {"ruleId": _rule_id(f), "ruleIndex": rule_index, "level": _LEVEL[f.severity]}
    region: dict[str, Any] = {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1}
    if f.vuln is not None:
        m = f.vuln
        pkg = m.package
        fixed = ", ".join(m.fixed_versions) or "none"
        lines = [
            f"Package: {pkg.name}",
            f"Installed Version: {m.installed_version}",
            f"Vulnerability: {f.id}",
            f"Severity: {f.severity.name}",
            f"Status: {m.status}",
            f"Fixed Version: {fixed}",
        ]
        if m.matched_range:
            lines.append(f"Affected Range: {m.matched_range}")
        if m.data_source:
            lines.append(f"Data Source: {m.data_source}")
        if pkg.layer:
            lines.append(f"Layer: {pkg.layer}")
        uri, base = (pkg.path, True) if pkg.path else (target, False)
        location_text = f"{pkg.name}@{m.installed_version}"
        fingerprint = short_hash(f.id, pkg.bom_ref, pkg.path, length=32)
    else:
        assert f.secret is not None
        s = f.secret
        lines = [f"Secret: {s.title}", f"Rule: {s.rule_id}", f"Category: {s.category}", f"Severity: {f.severity.name}"]
        lines.append(f"Match: {s.redacted}")
        if s.layer:
            lines.append(f"Layer: {s.layer}")
        uri, base = (s.path, True) if s.path else (target, False)
        line = max(s.line, 1)
        region = {"startLine": line, "startColumn": 1, "endLine": line, "endColumn": 1}
        location_text = f"{s.path}:{line}"
        fingerprint = short_hash(f.id, s.path, str(s.line), s.layer or "", length=32)
    res["message"] = {"text": "\n".join(lines)}
    artifact_location: dict[str, Any] = {"uri": _uri(uri)}
    if base:
        artifact_location["uriBaseId"] = "ROOTPATH"
    res["locations"] = [
        {
            "physicalLocation": {"artifactLocation": artifact_location, "region": region},
            "message": {"text": location_text},
        }
    ]
    res["partialFingerprints"] = {"garrisonFinding/v1": fingerprint}
    if f.suppression is not None:
        s_ = f.suppression
        justification = s_.justification or s_.state
        where = f"{s_.kind} {s_.source}".strip()
        res["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{justification} ({where})" if where else justification,
            }
        ]
    return res
