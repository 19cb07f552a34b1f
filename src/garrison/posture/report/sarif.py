"""The posture report as SARIF 2.1.0: one rule per control (help text and remediation), one result
per failed or suppressed check with a physical location (file and line). Suppressed results carry a
SARIF ``suppressions`` entry with the reason, so code-scanning UIs show them as dismissed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from garrison.core.jsonfmt import pretty
from garrison.model import Severity
from garrison.posture.model import Control, ControlResult, Verdict
from garrison.posture.report.summary import ordered

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.UNKNOWN: "note",
}
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.UNKNOWN: "0.0",
}


def _rule(control: Control) -> dict[str, Any]:
    help_text = control.description or control.title
    if control.rationale:
        help_text += f"\n\nWhy: {control.rationale}"
    if control.remediation:
        help_text += f"\n\nRemediation: {control.remediation}"
    tags = ["security", "misconfiguration", control.family or "posture"]
    tags += [f"{fw}:{cid}" for fw, ids in sorted(control.frameworks.items()) for cid in ids]
    return {
        "id": control.id,
        "name": control.id.replace("-", ""),
        "shortDescription": {"text": control.title},
        "fullDescription": {"text": control.description or control.title},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": _LEVEL[control.severity]},
        "properties": {
            "tags": tags,
            "security-severity": _SECURITY_SEVERITY[control.severity],
            "precision": "high",
        },
    }


def _uri(path: str) -> str:
    return path.replace("\\", "/") or "unknown"


def sarif_document(results: Sequence[ControlResult]) -> dict[str, Any]:
    shown = [r for r in ordered(results) if r.verdict in (Verdict.FAIL, Verdict.ERROR, Verdict.SKIP)]
    shown = [r for r in shown if r.verdict is not Verdict.SKIP or "suppression" in r.details]
    controls = {r.control.id: r.control for r in shown}
    rule_ids = sorted(controls)
    index = {cid: i for i, cid in enumerate(rule_ids)}
    out: list[dict[str, Any]] = []
    for r in shown:
        loc = r.location if r.location.file else r.subject.location
        region: dict[str, Any] = {"startLine": max(loc.line, 1)}
        if loc.end_line >= region["startLine"]:
            region["endLine"] = loc.end_line
        message = r.message or r.control.title
        entry: dict[str, Any] = {
            "ruleId": r.control.id,
            "ruleIndex": index[r.control.id],
            "level": _LEVEL[r.control.severity] if r.verdict is not Verdict.ERROR else "error",
            "message": {"text": f"{r.subject.ref}: {message}"},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": _uri(loc.file)}, "region": region},
                    "logicalLocations": [{"name": r.subject.ref, "kind": "resource"}],
                }
            ],
            "properties": {"subject": r.subject.ref, "paths": list(r.paths), "verdict": str(r.verdict)},
        }
        if r.verdict is Verdict.SKIP:
            entry["suppressions"] = [
                {"kind": "external", "justification": str(r.details.get("suppression", ""))},
            ]
        out.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "garrison",
                        "fullName": "Garrison posture checks",
                        "rules": [_rule(controls[cid]) for cid in rule_ids],
                    }
                },
                "results": out,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def render_sarif(results: Sequence[ControlResult]) -> str:
    return pretty(sarif_document(results)) + "\n"
