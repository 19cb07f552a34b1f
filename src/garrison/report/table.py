"""The human-readable table: findings grouped by target, OS packages first, then each language target.

Rendered with rich into a string. Without colour the output is plain text (no ANSI codes) so it can
be written to files and compared; cell text is never read as rich markup.
"""

from __future__ import annotations

import io
import shutil
from collections import defaultdict

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from garrison.model import Finding, FindingKind, ScanResult, Severity
from garrison.report._common import (
    OS_TYPES,
    image_reference,
    severity_counts,
    short_layer,
    sorted_findings,
)

DEFAULT_WIDTH = 160
#: from this width on the Layer and Title columns are shown; below MEDIUM the Title is dropped too
WIDE = 140
MEDIUM = 100
TITLE_CHARS = 60

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "blue",
    Severity.UNKNOWN: "magenta",
}


def make_console(*, color: bool, width: int | None) -> Console:
    """A console writing into memory: fixed width, colour only when asked, no markup in data."""
    if width is None:
        width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns if color else DEFAULT_WIDTH
    return Console(
        file=io.StringIO(),
        width=max(width, 20),
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        markup=False,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        legacy_windows=False,
    )


def output(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    text = file.getvalue()
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def clip(text: str, limit: int) -> str:
    """First line of ``text``, cut to ``limit`` characters with an ellipsis."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def severity_text(sev: Severity, *, color: bool) -> Text:
    return Text(sev.name, style=SEVERITY_STYLE[sev] if color else "")


def counts_text(findings: list[Finding]) -> str:
    counts = severity_counts(findings)
    return f"Total: {len(findings)} (" + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ")"


def heading(console: Console, text: str, *, color: bool) -> None:
    console.print(Text(text, style="bold" if color else ""))
    console.print("=" * min(len(text), console.width))


def render_table(result: ScanResult, *, color: bool, show_suppressed: bool = False, width: int | None = None) -> str:
    console = make_console(color=color, width=width)
    title = image_reference(result.artifact)
    if result.os is not None:
        title += f" ({result.os.family} {result.os.version})"
    heading(console, title, color=color)
    console.print()

    findings = sorted_findings(result.findings)
    vulns = [f for f in findings if f.kind == FindingKind.VULNERABILITY and f.vuln is not None]
    secrets = [f for f in findings if f.kind == FindingKind.SECRET and f.secret is not None]

    groups: dict[str, list[Finding]] = defaultdict(list)
    for f in vulns:
        groups[f.target].append(f)

    def is_os(target: str) -> bool:
        return any(f.vuln is not None and f.vuln.package.type in OS_TYPES for f in groups[target])

    for target in sorted(groups, key=lambda t: (not is_os(t), t)):
        _vuln_group(console, target, groups[target], os_group=is_os(target), color=color, show=show_suppressed)
    if secrets:
        _secret_group(console, secrets, color=color, show=show_suppressed)

    active = [f for f in findings if not f.suppressed]
    if not active:
        console.print("No vulnerabilities or secrets found.")
    active_vulns = [f for f in vulns if not f.suppressed]
    suppressed = len(findings) - len(active)
    line = (
        f"Summary: {len(active_vulns)} vulnerabilities ("
        + ", ".join(f"{k}: {v}" for k, v in severity_counts(active_vulns).items())
        + f"), {len([f for f in secrets if not f.suppressed])} secrets, {len(result.packages)} packages"
    )
    if suppressed:
        line += f"; {suppressed} suppressed ({'shown' if show_suppressed else 'hidden'})"
    console.print(line, soft_wrap=True)
    return output(console)


def _group_header(console: Console, target: str, group: list[Finding], *, color: bool, show: bool) -> list[Finding]:
    active = [f for f in group if not f.suppressed]
    suppressed = len(group) - len(active)
    heading(console, target, color=color)
    text = counts_text(active)
    if suppressed:
        text += f", {suppressed} suppressed ({'shown' if show else 'hidden'})"
    console.print(text)
    console.print()
    return group if show else active


def _vuln_group(
    console: Console, target: str, group: list[Finding], *, os_group: bool, color: bool, show: bool
) -> None:
    rows = _group_header(console, target, group, color=color, show=show)
    if not rows:
        return
    wide = console.width >= WIDE
    table = Table(box=box.SQUARE, show_lines=False, header_style="bold" if color else "", expand=False)
    table.add_column("Package" if os_group else "Library", overflow="fold")
    table.add_column("Vulnerability", overflow="fold")
    table.add_column("Severity", no_wrap=True)
    table.add_column("Status", overflow="fold")
    table.add_column("Installed", overflow="fold")
    table.add_column("Fixed", overflow="fold")
    if wide:
        table.add_column("Layer", overflow="fold")
    if console.width >= MEDIUM:
        table.add_column("Title", overflow="fold")
    for f in rows:
        m = f.vuln
        assert m is not None
        status = f"suppressed ({f.suppression.kind})" if f.suppression else str(m.status)
        cells: list[str | Text] = [
            m.package.name,
            f.id,
            severity_text(f.severity, color=color),
            status,
            m.installed_version,
            ", ".join(m.fixed_versions),
        ]
        if wide:
            cells.append(short_layer(m.package.layer))
        if console.width >= MEDIUM:
            cells.append(clip(f.title, TITLE_CHARS))
        table.add_row(*cells, style="dim" if (f.suppressed and color) else "")
    console.print(table)
    console.print()


def _secret_group(console: Console, secrets: list[Finding], *, color: bool, show: bool) -> None:
    rows = _group_header(console, "Secrets", secrets, color=color, show=show)
    if not rows:
        return
    wide = console.width >= WIDE
    table = Table(box=box.SQUARE, header_style="bold" if color else "", expand=False)
    table.add_column("Path", overflow="fold")
    table.add_column("Line", justify="right", no_wrap=True)
    table.add_column("Rule", overflow="fold")
    table.add_column("Severity", no_wrap=True)
    table.add_column("Match", overflow="fold")
    if wide:
        table.add_column("Layer", overflow="fold")
        table.add_column("Title", overflow="fold")
    for f in rows:
        s = f.secret
        assert s is not None
        cells: list[str | Text] = [s.path, str(s.line), s.rule_id, severity_text(f.severity, color=color), s.redacted]
        if wide:
            cells += [short_layer(s.layer), clip(f.title, TITLE_CHARS)]
        table.add_row(*cells, style="dim" if (f.suppressed and color) else "")
    console.print(table)
    console.print()
