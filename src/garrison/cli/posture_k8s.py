"""``garrison posture k8s PATH...``: check Kubernetes manifests against the Pod Security
Standards (baseline or restricted, at any policy version).

Exit codes: 0 every object passes, 1 a check failed, 2 an error (bad manifest, bad flag).
"""

from __future__ import annotations

import gc
import io
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from garrison.cli.posture import app
from garrison.core.errors import ConfigError

K8S_FORMATS = ("table", "json")
FAMILIES = ("pss",)


def _use_color(output: Path | None) -> bool:
    if output is not None or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout.isatty()


def _emit(text: str, output: Path | None) -> None:
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _table(report: dict[str, Any], color: bool) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True, force_terminal=color, no_color=not color, width=160, file=io.StringIO())
    table = Table(title=f"Pod Security Standards: {report['level']} {report['version']}")
    for col in ("Object", "Control", "Location", "Reason", "Detail"):
        table.add_column(col, overflow="fold")
    for obj in report["objects"]:
        for res in obj["results"]:
            loc = res["location"]
            table.add_row(
                obj["ref"],
                res["control"],
                f"{loc['file']}:{loc['line']}",
                res["details"].get("reason", ""),
                res["details"].get("detail", ""),
            )
    console.print(table)
    s = report["summary"]
    console.print(
        f"{s['objects']} object(s), {s['checked']} checked, {s['failed']} failed, {s['results']} failed check(s)"
    )
    return console.export_text(styles=color)


@app.command("k8s")
def posture_k8s(
    paths: Annotated[
        list[str], typer.Argument(help="Manifest files, directories, Kustomize dirs, Helm charts, or - for stdin.")
    ],
    pss: Annotated[
        str, typer.Option("--pss", envvar="GARRISON_PSS", help="Pod Security Standards level: baseline or restricted.")
    ] = "restricted",
    pss_version: Annotated[
        str, typer.Option("--pss-version", envvar="GARRISON_PSS_VERSION", help="Policy version: latest or vX.Y.")
    ] = "latest",
    only: Annotated[
        str,
        typer.Option("--only", envvar="GARRISON_POSTURE_ONLY", help="Control families to run (comma-separated): pss."),
    ] = "pss",
    format: Annotated[
        str, typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help="Output format: table, json.")
    ] = "table",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", envvar="GARRISON_OUTPUT", help="Write the report to this file.", show_default=False
        ),
    ] = None,
) -> None:
    """Check Kubernetes manifests against the Pod Security Standards."""
    from garrison.posture.k8s.pss.engine import _check_level, parse_version

    if format not in K8S_FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose from {', '.join(K8S_FORMATS)}")
    families = {f.strip() for f in only.split(",") if f.strip()}
    unknown = families - set(FAMILIES)
    if unknown or not families:
        raise ConfigError(f"unknown control family {', '.join(sorted(unknown)) or only!r}; use {', '.join(FAMILIES)}")
    level = _check_level(pss)
    version = parse_version(pss_version)
    # a batch run builds many long-lived acyclic objects: the cyclic collector only slows it down
    collecting = gc.isenabled()
    gc.disable()
    try:
        report = _evaluate(paths, level, version)
    finally:
        if collecting:
            gc.enable()
    if format == "json":
        _emit(json.dumps(report, indent=2, sort_keys=True), output)
    else:
        _emit(_table(report, _use_color(output)), output)
    if report["summary"]["failed"]:
        raise typer.Exit(1)


def _evaluate(paths: list[str], level: str, version: tuple[int, int]) -> dict[str, Any]:
    from garrison.posture.k8s.loader import load_paths
    from garrison.posture.k8s.objects import pod_specs
    from garrison.posture.k8s.pss.engine import evaluate_object, format_version

    loaded = load_paths(paths)
    for warning in loaded.warnings:
        sys.stderr.write(f"garrison: warning: {warning}\n")
    objects: list[dict[str, Any]] = []
    checked = failed = total = 0
    for obj in loaded.objects:
        if not any(True for _ in pod_specs(obj)):
            continue
        checked += 1
        results = evaluate_object(obj, level, version)
        total += len(results)
        failed += bool(results)
        objects.append(
            {
                "ref": obj.subject().ref,
                "subject": obj.subject().to_dict(),
                "allowed": not results,
                "results": [r.to_dict() for r in results],
            }
        )
    return {
        "level": level,
        "version": format_version(version),
        "objects": objects,
        "summary": {"objects": len(loaded.objects), "checked": checked, "failed": failed, "results": total},
    }
