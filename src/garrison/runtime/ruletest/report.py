"""Renderers for rule-test results: a plain table, JSON (one object per case) and JUnit XML.

JUnit is written with :mod:`xml.etree` (one ``testsuite`` per suite file, a ``failure`` element
with the reason), the shape CI systems read.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from garrison.runtime.pipeline import alert_record
from garrison.runtime.ruletest.runner import CaseResult, Seen


def _alert(seen: Seen) -> dict[str, Any]:
    rec = alert_record(seen.alert)
    return {
        "rule": rec["rule"],
        "priority": rec["priority"],
        "tags": rec["tags"],
        "latency_ms": round(seen.latency * 1000, 1),
        "proc.name": rec.get("proc.name"),
        "proc.pid": rec.get("proc.pid"),
        "container.id": rec.get("container.id"),
        "output": rec["output"],
    }


def result_dict(r: CaseResult) -> dict[str, Any]:
    return {
        "suite": r.suite,
        "case": r.case.name,
        "where": r.case.where,
        "passed": r.passed,
        "reason": r.reason,
        "exit_code": r.exit_code,
        "duration_s": round(r.duration, 3),
        "expect": [
            {"expect": e.describe(), "matched": _alert(hit) if hit is not None else None} for e, hit in r.matched
        ],
        "expect_none": r.case.expect_none.label() if r.case.expect_none is not None else None,
        "alerts": [_alert(s) for s in r.alerts],
    }


def render_json(results: Sequence[CaseResult]) -> str:
    passed = sum(r.passed for r in results)
    doc = {"passed": passed, "failed": len(results) - passed, "cases": [result_dict(r) for r in results]}
    return json.dumps(doc, indent=2) + "\n"


def render_table(results: Sequence[CaseResult]) -> str:
    lines = []
    for r in results:
        state = "PASS" if r.passed else "FAIL"
        hits = [h for _, h in r.matched if h is not None]
        if hits:
            detail = "; ".join(f"{h.alert.rule} ({h.alert.priority.label()}, {h.latency * 1000:.0f} ms)" for h in hits)
        elif r.case.expect_none is not None and r.passed:
            detail = f"no alert >= {r.case.expect_none.label()} ({len(r.alerts)} below)"
        else:
            detail = ""
        if not r.passed:
            detail = r.reason + (f" | seen: {', '.join(sorted({s.alert.rule for s in r.alerts}))}" if r.alerts else "")
        lines.append(f"{state}  {r.suite}/{r.case.name:<34} {detail}")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} case(s) passed")
    return "\n".join(lines) + "\n"


def render_junit(results: Sequence[CaseResult]) -> str:
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(sum(not r.passed for r in results)))
    by_suite: dict[str, list[CaseResult]] = {}
    for r in results:
        by_suite.setdefault(r.suite, []).append(r)
    for name, items in by_suite.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=name,
            tests=str(len(items)),
            failures=str(sum(not r.passed for r in items)),
            time=f"{sum(r.duration for r in items):.3f}",
        )
        for r in items:
            case = ET.SubElement(suite, "testcase", classname=name, name=r.case.name, time=f"{r.duration:.3f}")
            if not r.passed:
                failure = ET.SubElement(case, "failure", message=r.reason[:500])
                failure.text = json.dumps(result_dict(r), indent=2)
            else:
                out = ET.SubElement(case, "system-out")
                out.text = "; ".join(f"{h.alert.rule} {h.latency * 1000:.0f} ms" for _, h in r.matched if h is not None)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


RENDERERS = {"table": render_table, "json": render_json, "junit": render_junit}
