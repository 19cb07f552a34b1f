"""The posture report as one self-contained, printable HTML page: inline CSS and inline SVG bar
charts only (no scripts, fonts or external assets), so it can be mailed, archived or printed.

It shows the score of each selected framework and per namespace, then the failing resources
grouped by severity with their remediation. Filtering by severity uses plain anchors and the CSS
``:target`` selector; ``@media print`` hides the filter bar and keeps findings together. Every
number shown is carried in a ``data-*`` attribute as well, so tests can read them back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape

from garrison.model import Severity
from garrison.posture.frameworks import Framework, FrameworkScore, Score
from garrison.posture.model import ControlResult, Verdict
from garrison.posture.report.summary import SEVERITY_ORDER, counts, ordered, scores

_SEV_COLOR = {
    Severity.CRITICAL: "#7b1fa2",
    Severity.HIGH: "#c62828",
    Severity.MEDIUM: "#ef6c00",
    Severity.LOW: "#1565c0",
    Severity.UNKNOWN: "#616161",
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1c1c1c;background:#fafafa}
header,main,nav{max-width:1100px;margin:0 auto;padding:0 16px}
h1{font-size:22px;margin:20px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:#555}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
.filters a{display:inline-block;margin:4px 6px 4px 0;padding:2px 10px;border-radius:12px;border:1px solid #999;
  color:#222;text-decoration:none}
.sev{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
.finding{background:#fff;border:1px solid #e0e0e0;border-left-width:4px;margin:6px 0;padding:6px 10px}
.finding .where{color:#555;font-family:ui-monospace,monospace;font-size:12px}
.finding .fix{margin-top:4px}
.suppressed{opacity:.7}
.filter-target{display:block;height:0}
.filter-target:target ~ main .finding{display:none}
.filter-target:target ~ main .sev-group{display:none}
#show-CRITICAL:target ~ main .sev-CRITICAL,#show-HIGH:target ~ main .sev-HIGH,
#show-MEDIUM:target ~ main .sev-MEDIUM,#show-LOW:target ~ main .sev-LOW,
#show-UNKNOWN:target ~ main .sev-UNKNOWN{display:block}
svg text{font:12px system-ui,sans-serif}
@media print{
  body{background:#fff}.filters{display:none}
  .finding,tr,svg{break-inside:avoid}
  .filter-target:target ~ main .finding,.filter-target:target ~ main .sev-group{display:block}
  a{color:inherit;text-decoration:none}
}
"""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _bar_chart(title: str, rows: Sequence[tuple[str, Score]], css_class: str) -> str:
    """A horizontal bar chart of scores (0-100) as inline SVG."""
    label_w, bar_w, row_h = 260, 520, 24
    height = row_h * len(rows) + 10
    parts = [
        f'<svg class="{css_class}" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{label_w + bar_w + 80}" height="{height}" viewBox="0 0 {label_w + bar_w + 80} {height}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, s) in enumerate(rows):
        y = 5 + i * row_h
        value = s.score
        width = 0 if value is None else round(bar_w * value / 100, 1)
        color = "#9e9e9e" if value is None else ("#2e7d32" if value >= 80 else "#f9a825" if value >= 50 else "#c62828")
        parts.append(f'<text x="0" y="{y + 15}">{escape(label[:40])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="18" fill="#eeeeee"/>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{width}" height="18" fill="{color}"/>')
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 15}">{_pct(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _score_row(label: str, s: Score, attrs: str) -> str:
    return (
        f'<tr {attrs} data-score="{"" if s.score is None else s.score}" data-passed="{s.passed}" '
        f'data-failed="{s.failed}" data-manual="{s.manual}" data-not-assessed="{s.not_assessed}">'
        f'<td>{escape(label)}</td><td class="score">{_pct(s.score)}</td><td>{s.passed}</td><td>{s.failed}</td>'
        f"<td>{s.manual}</td><td>{s.not_assessed}</td></tr>"
    )


_SCORE_HEAD = "<tr><th>{}</th><th>Score</th><th>Passed</th><th>Failed</th><th>Manual</th><th>Not assessed</th></tr>"


def _framework_section(fs: FrameworkScore) -> str:
    fw = fs.framework
    out = [f'<section class="framework" id="fw-{escape(fw.id)}" data-framework="{escape(fw.id)}">']
    out.append(f"<h3>{escape(fw.title)} ({escape(fw.version)})</h3>")
    if fs.namespaces:
        rows = sorted(fs.namespaces.items())
        out.append(_bar_chart(f"{fw.title}: score per namespace", rows, "ns-chart"))
        out.append('<table class="namespaces">' + _SCORE_HEAD.format("Namespace"))
        out += [
            _score_row(ns, s, f'class="ns" data-namespace="{escape(ns)}" data-of="{escape(fw.id)}"') for ns, s in rows
        ]
        out.append("</table>")
    failing = [c for c in fs.controls if c.status == "fail"]
    if failing:
        out.append('<table class="failing-controls"><tr><th>Control</th><th>Title</th><th>Failed results</th></tr>')
        out += [
            f'<tr data-control="{escape(c.control.id)}"><td>{escape(c.control.id)}</td>'
            f"<td>{escape(c.control.title)}</td><td>{c.failed}</td></tr>"
            for c in failing
        ]
        out.append("</table>")
    out.append("</section>")
    return "".join(out)


def _finding(r: ControlResult) -> str:
    sev = r.control.severity
    loc = r.location if r.location.file else r.subject.location
    suppressed = r.verdict is Verdict.SKIP
    classes = f"finding sev-{sev.name}" + (" suppressed" if suppressed else "")
    parts = [
        f'<div class="{classes}" style="border-left-color:{_SEV_COLOR[sev]}" data-control="{escape(r.control.id)}" '
        f'data-verdict="{r.verdict}">',
        f'<span class="sev" style="background:{_SEV_COLOR[sev]}">{sev.name}</span> ',
        f"<strong>{escape(r.control.id)}</strong> {escape(r.control.title)}",
        f'<div class="subject">{escape(r.subject.ref)}: {escape(r.message or r.control.title)}</div>',
        f'<div class="where">{escape(loc.file)}:{loc.line}'
        + (f" &middot; {escape(', '.join(r.paths))}" if r.paths else "")
        + "</div>",
    ]
    if suppressed:
        parts.append(f'<div class="fix"><em>Suppressed:</em> {escape(str(r.details.get("suppression", "")))}</div>')
    elif r.control.remediation:
        parts.append(f'<div class="fix"><em>Remediation:</em> {escape(r.control.remediation)}</div>')
    parts.append("</div>")
    return "".join(parts)


def render_html(
    results: Sequence[ControlResult], frameworks: Sequence[Framework] = (), *, now: dt.datetime | None = None
) -> str:
    items = ordered(results)
    summary = counts(items)
    fscores = scores(items, frameworks)
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    verdicts = summary["verdicts"]
    body: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Garrison posture report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Posture report</h1>",
        f'<p class="meta">Generated {escape(when)} &middot; <span id="total-results" data-value="'
        f'{summary["results"]}">{summary["results"]}</span> results: '
        f'<span id="total-failed" data-value="{verdicts["fail"]}">{verdicts["fail"]}</span> failed, '
        f"{verdicts['pass']} passed, {verdicts['skip']} skipped, {verdicts['error']} errors on "
        f"{summary['subjects']} resources.</p></header>",
        '<nav class="filters">Show: <a href="#all">all</a>'
        + "".join(f'<a href="#show-{s.name}">{s.name.lower()}</a>' for s in SEVERITY_ORDER)
        + "</nav>",
    ]
    body += [f'<span class="filter-target" id="show-{s.name}"></span>' for s in SEVERITY_ORDER]
    body.append('<main id="all">')
    if fscores:
        body.append("<h2>Framework scores</h2>")
        body.append(_bar_chart("Score per framework", [(f.framework.title, f.total) for f in fscores], "fw-chart"))
        body.append('<table class="frameworks">' + _SCORE_HEAD.format("Framework"))
        body += [
            _score_row(f.framework.title, f.total, f'class="fw" data-framework="{escape(f.framework.id)}"')
            for f in fscores
        ]
        body.append("</table>")
        body += [_framework_section(f) for f in fscores]
    body.append("<h2>Failing resources</h2>")
    shown = [
        r for r in items if r.verdict is Verdict.FAIL or (r.verdict is Verdict.SKIP and "suppression" in r.details)
    ]
    if not shown:
        body.append("<p>No failing resources.</p>")
    for sev in SEVERITY_ORDER:
        group = [r for r in shown if r.control.severity is sev]
        if not group:
            continue
        failed = sum(1 for r in group if r.verdict is Verdict.FAIL)
        body.append(
            f'<section class="sev-group sev-{sev.name}" id="sev-{sev.name}" data-failed="{failed}">'
            f"<h3>{sev.name.title()} ({failed} failed"
            + (f", {len(group) - failed} suppressed" if len(group) > failed else "")
            + ")</h3>"
        )
        body += [_finding(r) for r in group]
        body.append("</section>")
    body.append("</main></body></html>")
    return "\n".join(body) + "\n"
