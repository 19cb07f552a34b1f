"""Garrison's own JSON report: ``ScanResult.to_dict()`` in a stable order, plus summary counts."""

from __future__ import annotations

from typing import Any

from garrison.core.jsonfmt import pretty
from garrison.model import ScanResult
from garrison.report._common import paused_gc, sorted_findings, sorted_packages, summary


def json_document(result: ScanResult) -> dict[str, Any]:
    doc = result.to_dict()
    doc["packages"] = [p.to_dict() for p in sorted_packages(result.packages)]
    doc["findings"] = [f.to_dict() for f in sorted_findings(result.findings)]
    doc["summary"] = summary(result)
    return doc


def render_json(result: ScanResult) -> str:
    with paused_gc():
        return pretty(json_document(result)) + "\n"
