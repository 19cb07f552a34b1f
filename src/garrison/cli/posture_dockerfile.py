"""``garrison posture dockerfile PATH...``: run the ``GD-*`` controls on Dockerfiles.

A PATH is a Dockerfile or a directory searched for ``Dockerfile``, ``*.Dockerfile``,
``Dockerfile.*`` and ``Containerfile`` (``.git`` and ``node_modules`` skipped). Exit 0 when no
control failed, 1 when one did, 2 on an error (unreadable or malformed Dockerfile, bad flag).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from garrison.cli.posture import BaselineOpt, ExceptionsOpt, OutputOpt, WriteBaselineOpt, app
from garrison.core.errors import ConfigError, NotFoundError
from garrison.core.jsonfmt import pretty
from garrison.posture.model import ControlResult, Verdict

FORMATS = ("table", "json", "sarif", "junit", "policyreport")
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "__pycache__"})


def _is_dockerfile(path: Path) -> bool:
    name = path.name
    return (
        name in ("Dockerfile", "Containerfile", "dockerfile", "containerfile")
        or name.endswith(".Dockerfile")
        or name.endswith(".dockerfile")
        or (name.startswith(("Dockerfile.", "Containerfile.")) and not name.endswith(".dockerignore"))
    )


def find_dockerfiles(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            for candidate in sorted(path.rglob("*")):
                rel = candidate.relative_to(path).parts
                if any(part in _SKIP_DIRS for part in rel[:-1]):
                    continue
                if candidate.is_file() and _is_dockerfile(candidate):
                    found.append(candidate)
        else:
            raise NotFoundError("no such file or directory", input_name=str(path))
    return found


def _ids(text: str) -> set[str]:
    return {w.strip().upper() for w in text.split(",") if w.strip()}


def _render_table(results: list[ControlResult], color: bool, title: str = "Dockerfile controls") -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in ("File", "Line", "Control", "Severity", "Verdict", "Message"):
        table.add_column(col, overflow="fold")
    style = {Verdict.FAIL: "red", Verdict.SKIP: "yellow", Verdict.ERROR: "magenta", Verdict.PASS: "green"}
    shown = [r for r in results if r.verdict is not Verdict.PASS]
    for r in shown:
        table.add_row(
            r.location.file,
            str(r.location.line or ""),
            f"{r.control.id} {r.control.title}",
            r.control.severity.name,
            f"[{style[r.verdict]}]{r.verdict}[/]" if color else str(r.verdict),
            r.message,
        )
    buf = StringIO()
    console = Console(file=buf, force_terminal=color, no_color=not color, width=160)
    if shown:
        console.print(table)
    counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    console.print(
        f"{counts[Verdict.FAIL]} failed, {counts[Verdict.PASS]} passed, {counts[Verdict.SKIP]} skipped, "
        f"{counts[Verdict.ERROR]} errors",
        markup=False,
    )
    return buf.getvalue()


@app.command("dockerfile")
def dockerfile(
    paths: Annotated[list[Path], typer.Argument(help="Dockerfiles or directories to search for them.")],
    format: Annotated[
        str, typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help=f"Output format: {', '.join(FORMATS)}.")
    ] = "table",
    output: OutputOpt = None,
    skip: Annotated[
        str,
        typer.Option("--skip", envvar="GARRISON_POSTURE_SKIP", help="Control ids not to run, comma-separated."),
    ] = "",
    only: Annotated[
        str,
        typer.Option("--controls", envvar="GARRISON_POSTURE_CONTROLS", help="Only run these control ids."),
    ] = "",
    severity: Annotated[
        str,
        typer.Option("--severity", "-s", envvar="GARRISON_SEVERITY", help="Severities to report, comma-separated."),
    ] = "",
    exceptions: ExceptionsOpt = None,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
) -> None:
    """Check Dockerfiles against the GD-* controls (root user, ADD, latest tags, secrets, package hygiene...)."""
    from garrison.cli._output import emit as _emit
    from garrison.cli._output import use_color as _use_color
    from garrison.posture.dockerfile.controls import check_dockerfile
    from garrison.posture.dockerfile.parser import parse_file
    from garrison.scan.gate import parse_severities

    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    severities = parse_severities(severity)
    files = find_dockerfiles(paths)
    if not files:
        raise NotFoundError("no Dockerfile found", input_name=", ".join(str(p) for p in paths))
    results: list[ControlResult] = []
    for path in files:
        df = parse_file(path)
        for warning in df.warnings:
            sys.stderr.write(f"garrison: warning: {warning}\n")
        results.extend(check_dockerfile(df, context_dir=path.parent, only=_ids(only) or None, skip=_ids(skip) or None))
    if severities:
        results = [r for r in results if r.control.severity in severities]
    if exceptions or baseline or write_baseline:
        from garrison.cli.posture_report import apply_suppressions

        results = apply_suppressions(results, [], exceptions, baseline, write_baseline)
    if format in ("sarif", "junit", "policyreport"):
        from garrison.posture.report import render

        text = render(format, results)
    elif format == "json":
        doc = {
            "results": [r.to_dict() for r in results],
            "summary": {str(v): sum(1 for r in results if r.verdict is v) for v in Verdict},
        }
        text = pretty(doc)
    else:
        text = _render_table(results, _use_color(output))
    _emit(text, output)
    if any(r.verdict is Verdict.FAIL for r in results):
        raise typer.Exit(1)
