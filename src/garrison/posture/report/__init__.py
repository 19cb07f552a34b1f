"""Posture report renderers over a list of :class:`~garrison.posture.model.ControlResult`.

:func:`render` dispatches on the format: ``json`` (:mod:`.json`), ``sarif`` (:mod:`.sarif`, SARIF
2.1.0), ``junit`` (:mod:`.junit`), ``policyreport`` (:mod:`.policyreport`, wgpolicyk8s.io/v1alpha2)
and ``html`` (:mod:`.html`, one self-contained printable page). :mod:`.summary` holds the shared
ordering, counts and framework scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from garrison.core.errors import ConfigError
from garrison.posture.frameworks import Framework
from garrison.posture.model import ControlResult

FORMATS = ("html", "json", "sarif", "junit", "policyreport")


def render(fmt: str, results: Sequence[ControlResult], frameworks: Sequence[Framework] = ()) -> str:
    """Render ``results`` (scored against ``frameworks`` where the format shows scores)."""
    if fmt == "json":
        from garrison.posture.report.json import render_json

        return render_json(results, frameworks)
    if fmt == "sarif":
        from garrison.posture.report.sarif import render_sarif

        return render_sarif(results)
    if fmt == "junit":
        from garrison.posture.report.junit import render_junit

        return render_junit(results)
    if fmt == "policyreport":
        from garrison.posture.report.policyreport import render_policyreport

        return render_policyreport(results)
    if fmt == "html":
        from garrison.posture.report.html import render_html

        return render_html(results, frameworks)
    raise ConfigError(f"unknown report format {fmt!r}; choose from {', '.join(FORMATS)}")
