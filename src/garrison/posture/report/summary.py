"""Shared pieces of the posture reports: a stable result order, verdict and severity counts, and
the framework scores."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from garrison.model import Severity
from garrison.posture.frameworks import Framework, FrameworkScore, score
from garrison.posture.model import ControlResult, Verdict

#: most severe first
SEVERITY_ORDER = sorted(Severity, reverse=True)


def sort_key(r: ControlResult) -> tuple[str, int, str, str, str, str]:
    return (r.location.file, r.location.line, r.control.id, r.subject.ref, str(r.verdict), r.message)


def ordered(results: Iterable[ControlResult]) -> list[ControlResult]:
    return sorted(results, key=sort_key)


def counts(results: Iterable[ControlResult]) -> dict[str, Any]:
    """Results per verdict, and failures per severity."""
    items = list(results)
    return {
        "results": len(items),
        "verdicts": {str(v): sum(1 for r in items if r.verdict is v) for v in Verdict},
        "failed_by_severity": {
            s.name: sum(1 for r in items if r.verdict is Verdict.FAIL and r.control.severity is s) for s in Severity
        },
        "subjects": len({r.subject.ref for r in items}),
        "failed_subjects": len({r.subject.ref for r in items if r.verdict is Verdict.FAIL}),
    }


def scores(results: Sequence[ControlResult], frameworks: Sequence[Framework]) -> list[FrameworkScore]:
    return [score(fw, results) for fw in frameworks]


def family(r: ControlResult) -> str:
    return r.control.family or "posture"
