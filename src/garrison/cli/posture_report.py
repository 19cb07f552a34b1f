"""``garrison posture report PATH...``: run every posture check (Pod Security Standards, the
Kubernetes control library and the Dockerfile controls) over manifests and Dockerfiles, apply
suppressions and render a report scored against compliance frameworks; ``garrison posture
frameworks`` lists the frameworks.

Exit codes: 0 nothing failed, 1 a check failed, 2 an error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from garrison.cli.posture import BaselineOpt, ExceptionsOpt, OutputOpt, WriteBaselineOpt, app
from garrison.core.errors import ConfigError, NotFoundError
from garrison.posture.k8s.objects import K8sObject
from garrison.posture.model import ControlResult, Verdict

REPORT_FORMATS = ("html", "json", "sarif", "junit", "policyreport")


def pss_results(
    objects: list[K8sObject], level: str = "restricted", version: tuple[int, int] | None = None
) -> list[ControlResult]:
    """Pod Security Standards results for every object that runs pods: the failures, and a PASS per
    check of ``level`` that did not fail (so frameworks can score passes)."""
    from garrison.posture.k8s.objects import pod_specs
    from garrison.posture.k8s.pss.engine import KNOWN_LATEST, _plan, control_for, evaluate_object

    version = version or KNOWN_LATEST
    out: list[ControlResult] = []
    plan = _plan(level, version)
    for obj in objects:
        if not obj.is_mapping or not any(True for _ in pod_specs(obj)):
            continue
        failures = evaluate_object(obj, level, version)
        out += failures
        failed = {r.control.id for r in failures}
        subject = obj.subject()
        for chk, _rev in plan:
            control = control_for(chk.id, chk.level)
            if control.id not in failed:
                out.append(ControlResult(control, subject, Verdict.PASS, location=subject.location))
    return out


def collect(paths: list[str]) -> tuple[list[ControlResult], list[K8sObject]]:
    """Run every available control over the manifests and Dockerfiles under ``paths``."""
    from garrison.cli.posture_dockerfile import find_dockerfiles
    from garrison.posture.dockerfile.controls import check_dockerfile
    from garrison.posture.dockerfile.parser import parse_file
    from garrison.posture.k8s.controls import run_controls
    from garrison.posture.k8s.loader import load_paths

    dockerfiles = find_dockerfiles([Path(p) for p in paths if p != "-"]) if any(p != "-" for p in paths) else []
    manifest_paths = [p for p in paths if Path(p) not in set(dockerfiles)]
    objects: list[K8sObject] = []
    if manifest_paths:
        try:
            loaded = load_paths(manifest_paths)
        except NotFoundError:
            if not dockerfiles:
                raise
        else:
            for warning in loaded.warnings:
                sys.stderr.write(f"garrison: warning: {warning}\n")
            objects = list(loaded.objects)
    results = pss_results(objects) + run_controls(objects)
    for path in dockerfiles:
        df = parse_file(path)
        results += check_dockerfile(df, context_dir=path.parent)
    if not objects and not dockerfiles:
        raise NotFoundError("no Kubernetes objects or Dockerfiles found", input_name=", ".join(paths))
    return results, objects


@app.command("report")
def posture_report(
    paths: Annotated[list[str], typer.Argument(help="Manifest files or directories (Dockerfiles found in them too).")],
    framework: Annotated[
        str,
        typer.Option(
            "--framework",
            envvar="GARRISON_FRAMEWORK",
            help="Frameworks to score, comma-separated (see `garrison posture frameworks`); all by default.",
        ),
    ] = "",
    format: Annotated[
        str,
        typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help=f"Output format: {', '.join(REPORT_FORMATS)}."),
    ] = "html",
    output: OutputOpt = None,
    exceptions: ExceptionsOpt = None,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
) -> None:
    """Run every posture check and render a compliance report."""
    from garrison.cli._output import emit as _emit
    from garrison.posture import frameworks as fw
    from garrison.posture.report import render

    if format not in REPORT_FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose from {', '.join(REPORT_FORMATS)}")
    selected = fw.load(framework.split(",") if framework.strip() else None)
    results, objects = collect(paths)
    results = apply_suppressions(results, objects, exceptions, baseline, write_baseline)
    _emit(render(format, results, selected), output)
    if any(r.verdict is Verdict.FAIL for r in results):
        raise typer.Exit(1)


def apply_suppressions(
    results: list[ControlResult],
    objects: list[K8sObject],
    exceptions: Path | None,
    baseline: Path | None,
    write_baseline: Path | None,
) -> list[ControlResult]:
    """Apply annotations, comments, the exceptions file and the baseline; write a baseline if asked.
    Shared by the posture commands."""
    from garrison.posture import suppress

    rules = suppress.load_exceptions(exceptions) if exceptions else []
    known = suppress.load_baseline(baseline) if baseline else None
    outcome = suppress.apply(results, objects=objects, exceptions=rules, baseline=known)
    for warning in outcome.warnings:
        sys.stderr.write(f"garrison: warning: {warning}\n")
    if write_baseline is not None:
        count = suppress.write_baseline(outcome.results, write_baseline)
        sys.stderr.write(f"garrison: wrote {count} baseline entr{'y' if count == 1 else 'ies'} to {write_baseline}\n")
    return outcome.results


@app.command("frameworks")
def posture_frameworks(
    format: Annotated[
        str, typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help="Output format: table, json.")
    ] = "table",
) -> None:
    """List the compliance frameworks with their control counts."""
    from garrison.posture import frameworks as fw

    rows: list[dict[str, str | int]] = []
    for f in fw.load():
        resolved = fw.resolve(f)
        rows.append(
            {
                "id": f.id,
                "title": f.title,
                "version": f.version,
                "controls": len(f.controls),
                "automated": sum(1 for r in resolved if r.automated),
                "manual": sum(1 for r in resolved if not r.automated),
            }
        )
    if format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
        return
    if format != "table":
        raise ConfigError(f"unknown format {format!r}; choose from table, json")
    width = max(len(str(r["id"])) for r in rows)
    sys.stdout.write(f"{'ID':<{width}}  CONTROLS  AUTOMATED  MANUAL  TITLE\n")
    for r in rows:
        sys.stdout.write(
            f"{r['id']:<{width}}  {r['controls']:>8}  {r['automated']:>9}  {r['manual']:>6}  {r['title']} {r['version']}\n"
        )
