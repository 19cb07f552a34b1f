"""The posture report as Kubernetes policy reports (``wgpolicyk8s.io/v1alpha2``, the Policy Report
API of the Kubernetes Policy working group): one ``PolicyReport`` per namespace and one
``ClusterPolicyReport`` for cluster-scoped objects (and Dockerfiles), each with per-resource results
(policy = control family, rule = control id, result pass/fail/skip/error, severity, scored) and the
``summary`` block. Rendered as a YAML stream of documents."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

import yaml

from garrison.model import Severity
from garrison.posture.model import ControlResult, Verdict
from garrison.posture.report.summary import family, ordered

API_VERSION = "wgpolicyk8s.io/v1alpha2"
_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "high",
    Severity.MEDIUM: "medium",
    Severity.LOW: "low",
    Severity.UNKNOWN: "info",
}
_RESULT = {Verdict.PASS: "pass", Verdict.FAIL: "fail", Verdict.SKIP: "skip", Verdict.ERROR: "error"}
_DNS = re.compile(r"[^a-z0-9-]+")


def _name(text: str) -> str:
    return (_DNS.sub("-", text.lower()).strip("-") or "cluster")[:63].rstrip("-")


def _result(r: ControlResult, seconds: int) -> dict[str, Any]:
    resource: dict[str, Any] = {"kind": r.subject.kind, "name": r.subject.name}
    if r.subject.api_version:
        resource["apiVersion"] = r.subject.api_version
    if r.subject.namespace:
        resource["namespace"] = r.subject.namespace
    props = {"file": r.location.file, "line": str(r.location.line)}
    if r.paths:
        props["paths"] = ",".join(r.paths)
    if "suppression" in r.details:
        props["suppression"] = str(r.details["suppression"])
    return {
        "policy": family(r),
        "rule": r.control.id,
        "category": family(r),
        "result": _RESULT[r.verdict],
        "severity": _SEVERITY[r.control.severity],
        "scored": not r.control.manual,
        "source": "garrison",
        "message": r.message or r.control.title,
        "timestamp": {"seconds": seconds, "nanos": 0},
        "resources": [resource],
        "properties": props,
    }


def policy_reports(results: Sequence[ControlResult], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    seconds = int((now or dt.datetime.now(dt.UTC)).timestamp())
    groups: dict[str, list[ControlResult]] = {}
    for r in ordered(results):
        groups.setdefault(r.subject.namespace, []).append(r)
    docs: list[dict[str, Any]] = []
    for ns in sorted(groups):
        items = [_result(r, seconds) for r in groups[ns]]
        summary = {k: sum(1 for i in items if i["result"] == k) for k in ("pass", "fail", "warn", "error", "skip")}
        meta: dict[str, Any] = {"name": f"garrison-{_name(ns)}", "labels": {"app.kubernetes.io/managed-by": "garrison"}}
        kind = "ClusterPolicyReport"
        if ns:
            meta["namespace"] = ns
            kind = "PolicyReport"
        docs.append({"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "results": items, "summary": summary})
    return docs


def render_policyreport(results: Sequence[ControlResult], now: dt.datetime | None = None) -> str:
    return yaml.safe_dump_all(policy_reports(results, now), sort_keys=False, explicit_start=True)
