"""The posture report as JUnit XML: one ``<testsuite>`` per control family, one ``<testcase>`` per
control x subject; failures carry the message, suppressed and not-applicable checks are
``<skipped>``, checks that could not run are ``<error>``. Built with ElementTree (escaping included)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from garrison.posture.model import ControlResult, Verdict
from garrison.posture.report.summary import family, ordered


def _case_key(r: ControlResult) -> tuple[str, str]:
    return (r.control.id, r.subject.ref)


def render_junit(results: Sequence[ControlResult]) -> str:
    # one testcase per control x subject: its verdict is the worst of its results
    cases: dict[str, dict[tuple[str, str], list[ControlResult]]] = {}
    for r in ordered(results):
        cases.setdefault(family(r), {}).setdefault(_case_key(r), []).append(r)
    root = ET.Element("testsuites", name="garrison posture")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for fam in sorted(cases):
        suite = ET.SubElement(root, "testsuite", name=fam)
        stats = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for (cid, ref), rs in sorted(cases[fam].items()):
            first = rs[0]
            loc = first.location if first.location.file else first.subject.location
            case = ET.SubElement(
                suite, "testcase", classname=f"{fam}.{cid}", name=f"{cid} {ref}", file=loc.file, line=str(loc.line)
            )
            stats["tests"] += 1
            fails = [r for r in rs if r.verdict is Verdict.FAIL]
            errors = [r for r in rs if r.verdict is Verdict.ERROR]
            skips = [r for r in rs if r.verdict is Verdict.SKIP]
            if errors:
                stats["errors"] += 1
                el = ET.SubElement(case, "error", message=errors[0].message or "check could not run", type="error")
                el.text = "\n".join(r.message for r in errors)
            elif fails:
                stats["failures"] += 1
                message = fails[0].message or first.control.title
                el = ET.SubElement(case, "failure", message=message, type=first.control.severity.name)
                lines = [
                    f"{r.location.file}:{r.location.line}: {r.message or r.control.title}"
                    + (f" ({', '.join(r.paths)})" if r.paths else "")
                    for r in fails
                ]
                if first.control.remediation:
                    lines.append(f"Remediation: {first.control.remediation}")
                el.text = "\n".join(lines)
            elif skips and not any(r.verdict is Verdict.PASS for r in rs):
                stats["skipped"] += 1
                ET.SubElement(case, "skipped", message=skips[0].message or "skipped")
        for key, value in stats.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
