"""The posture report as JSON: results in a stable order, counts, and framework scores (keys sorted)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from garrison.core.jsonfmt import pretty
from garrison.posture.frameworks import Framework
from garrison.posture.model import ControlResult
from garrison.posture.report.summary import counts, ordered, scores


def report_document(results: Sequence[ControlResult], frameworks: Sequence[Framework] = ()) -> dict[str, Any]:
    items = ordered(results)
    controls = {r.control.id: r.control.to_dict() for r in items}
    return {
        "summary": counts(items),
        "frameworks": [s.to_dict() for s in scores(items, frameworks)],
        "controls": [controls[k] for k in sorted(controls)],
        "results": [r.to_dict() for r in items],
    }


def render_json(results: Sequence[ControlResult], frameworks: Sequence[Framework] = ()) -> str:
    return pretty(report_document(results, frameworks)) + "\n"
