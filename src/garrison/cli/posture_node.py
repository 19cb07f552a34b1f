"""``garrison posture node``: run the CIS Kubernetes benchmark's node checks (kube-bench compatible).

Exit codes: 0 nothing failed, 1 a check failed (or its audit could not run), 2 an error.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import typer

from garrison.cli._output import use_color as _use_color
from garrison.cli.posture import BaselineOpt, ExceptionsOpt, OutputOpt, WriteBaselineOpt, app
from garrison.core.errors import ConfigError
from garrison.core.jsonfmt import pretty

NODE_FORMATS = ("table", "json", "sarif", "junit", "policyreport")


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [w.strip() for w in text.split(",") if w.strip()]
    return items or None


def _render_table(report: object, color: bool) -> str:
    from rich.console import Console
    from rich.table import Table

    from garrison.posture.cis.runner import NodeReport
    from garrison.posture.model import Verdict

    assert isinstance(report, NodeReport)
    styles = {"PASS": "green", "FAIL": "red", "WARN": "yellow", "INFO": "blue"}
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=color, no_color=not color, width=160, highlight=False)
    table = Table(title=f"{report.benchmark} on {', '.join(report.targets)}", show_lines=False)
    for column in ("State", "Id", "Target", "Severity", "Check", "Result"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        state = str(r.details.get("state", ""))
        result = r.message if r.verdict is not Verdict.PASS else ""
        table.add_row(
            f"[{styles.get(state, '')}]{state}[/]" if state in styles else state,
            r.control.id,
            r.subject.name,
            r.control.severity.name,
            r.control.title,
            result,
        )
    console.print(table)
    summary = report.summary()
    console.print(
        f"== Summary == {summary['PASS']} checks PASS, {summary['FAIL']} checks FAIL, "
        f"{summary['WARN']} checks WARN, {summary['INFO']} checks INFO"
    )
    return buffer.getvalue()


@app.command("node")
def posture_node(
    benchmark: Annotated[
        str, typer.Option("--benchmark", envvar="GARRISON_BENCHMARK", help="Benchmark definitions to run.")
    ] = "cis-1.12",
    targets: Annotated[
        str | None,
        typer.Option(
            "--targets",
            envvar="GARRISON_TARGETS",
            help="Comma-separated targets: master, node, controlplane, etcd, policies (default: detected).",
            show_default=False,
        ),
    ] = None,
    root: Annotated[
        Path,
        typer.Option("--root", envvar="GARRISON_ROOT", help="Look up the node's files under this directory."),
    ] = Path("/"),
    check: Annotated[
        str | None,
        typer.Option(
            "--check",
            envvar="GARRISON_CHECK",
            help="Only these check or group ids (comma-separated).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", envvar="GARRISON_AUDIT_TIMEOUT", help="Seconds allowed per audit command.")
    ] = 30.0,
    format: Annotated[
        str, typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help=f"Output format: {', '.join(NODE_FORMATS)}.")
    ] = "table",
    output: OutputOpt = None,
    exceptions: ExceptionsOpt = None,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
) -> None:
    """Check this node against the CIS Kubernetes benchmark (kube-bench's checks)."""
    from garrison.posture.cis.runner import run_node

    if format not in NODE_FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose from {', '.join(NODE_FORMATS)}")
    if timeout <= 0:
        raise ConfigError("--timeout must be positive")
    report = run_node(benchmark=benchmark, targets=_split(targets), root=root, checks=_split(check), timeout=timeout)
    for warning in report.warnings:
        sys.stderr.write(f"garrison: warning: {warning}\n")
    if exceptions or baseline or write_baseline:
        from garrison.cli.posture_report import apply_suppressions

        report.results = apply_suppressions(report.results, [], exceptions, baseline, write_baseline)
    if format == "json":
        text = pretty(report.to_dict())
    elif format != "table":
        from garrison.posture.report import render

        text = render(format, report.results)
    else:
        text = _render_table(report, _use_color(output))
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    if report.failed:
        raise typer.Exit(1)
