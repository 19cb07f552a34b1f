"""``garrison posture k8s PATH...``: check Kubernetes manifests against the Pod Security
Standards (baseline or restricted, at any policy version) and the Kubernetes control library
(workload controls ``GK-W-*``, cluster controls ``GK-R/N/S-*``).

JSON keeps one document shape for every family: ``objects`` with the failed results of each
checked object, and a ``summary``. SARIF, JUnit and PolicyReport reuse the posture report
renderers (passes included where the format records them).

Exit codes: 0 every object passes, 1 a check failed, 2 an error (bad manifest, bad flag).
"""

from __future__ import annotations

import gc
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from garrison.cli._output import emit as _emit
from garrison.cli._output import use_color as _use_color
from garrison.cli.posture import BaselineOpt, ExceptionsOpt, OutputOpt, WriteBaselineOpt, app
from garrison.core.errors import ConfigError
from garrison.core.jsonfmt import pretty
from garrison.posture.model import ControlResult, Verdict

if TYPE_CHECKING:
    from garrison.posture.k8s.objects import K8sObject

K8S_FORMATS = ("table", "json", "sarif", "junit", "policyreport")
FAMILIES = ("pss", "workload", "cluster")
_SEVERITY_RANK = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "LOW": 1}


def _table(report: dict[str, Any], color: bool) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True, force_terminal=color, no_color=not color, width=160, file=io.StringIO())
    table = Table(title=f"Kubernetes posture ({report['families']}; PSS {report['level']} {report['version']})")
    table.add_column("Object", overflow="fold")
    table.add_column("Control", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Location", overflow="fold")
    table.add_column("Reason", overflow="fold")
    table.add_column("Detail", overflow="fold", ratio=2)
    for obj in report["objects"]:
        for res in sorted(obj["results"], key=lambda r: (-_SEVERITY_RANK.get(r["severity"], 0), r["control"])):
            loc = res["location"]
            table.add_row(
                obj["ref"],
                res["control"],
                res["severity"],
                f"{loc['file']}:{loc['line']}",
                res["details"].get("reason", "") or res["title"],
                res["details"].get("detail", "") or res["message"],
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
        typer.Option(
            "--only",
            envvar="GARRISON_POSTURE_ONLY",
            help="Control families to run (comma-separated): pss, workload, cluster.",
        ),
    ] = ",".join(FAMILIES),
    allowed_registries: Annotated[
        str | None,
        typer.Option(
            "--allowed-registries",
            envvar="GARRISON_K8S_ALLOWED_REGISTRIES",
            help="Registries images may come from (comma-separated, e.g. registry.example.com,ghcr.io/acme); "
            "enables GK-W-074.",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        str,
        typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help=f"Output format: {', '.join(K8S_FORMATS)}."),
    ] = "table",
    output: OutputOpt = None,
    exceptions: ExceptionsOpt = None,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
) -> None:
    """Check Kubernetes manifests against the Pod Security Standards and the Kubernetes controls."""
    from garrison.posture.k8s.controls.workload_images import configure_allowed_registries
    from garrison.posture.k8s.pss.engine import _check_level, parse_version

    if format not in K8S_FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose from {', '.join(K8S_FORMATS)}")
    families = parse_families(only)
    level = _check_level(pss)
    version = parse_version(pss_version)
    configure_allowed_registries(allowed_registries.split(",") if allowed_registries is not None else None)
    # a batch run builds many long-lived acyclic objects: the cyclic collector only slows it down
    collecting = gc.isenabled()
    gc.disable()
    try:
        report, results = _evaluate(paths, level, version, families, (exceptions, baseline, write_baseline))
    finally:
        if collecting:
            gc.enable()
        configure_allowed_registries(None)
    if format == "json":
        _emit(pretty(report), output)
    elif format == "table":
        _emit(_table(report, _use_color(output)), output)
    else:
        from garrison.posture.report import render

        _emit(render(format, results), output)
    if report["summary"]["failed"]:
        raise typer.Exit(1)


def parse_families(only: str) -> set[str]:
    """The control families named in ``--only`` (comma-separated), each checked."""
    families = {f.strip() for f in only.split(",") if f.strip()}
    unknown = families - set(FAMILIES)
    if unknown or not families:
        raise ConfigError(f"unknown control family {', '.join(sorted(unknown)) or only!r}; use {', '.join(FAMILIES)}")
    return families


def family_of(control_family: str) -> str:
    """The CLI family (``workload`` or ``cluster``) of a control-library module family."""
    return "workload" if control_family.startswith("workload") else "cluster"


def _evaluate(
    paths: list[str],
    level: str,
    version: tuple[int, int],
    families: set[str],
    suppression: tuple[Path | None, Path | None, Path | None],
) -> tuple[dict[str, Any], list[ControlResult]]:
    from garrison.posture.k8s.loader import load_paths

    loaded = load_paths(paths)
    for warning in loaded.warnings:
        sys.stderr.write(f"garrison: warning: {warning}\n")
    return evaluate_objects(list(loaded.objects), level, version, families, suppression)


def evaluate_objects(
    objects: list[K8sObject],
    level: str,
    version: tuple[int, int],
    families: set[str],
    suppression: tuple[Path | None, Path | None, Path | None],
) -> tuple[dict[str, Any], list[ControlResult]]:
    """Run the selected families over already-loaded objects (manifests or a live cluster)."""
    from garrison.cli.posture_report import apply_suppressions, pss_results
    from garrison.posture.k8s.controls import registry, run_controls
    from garrison.posture.k8s.pss.engine import format_version

    results: list[ControlResult] = []
    if "pss" in families:
        results += pss_results(objects, level, version)
    library = {cid for cid, reg in registry().items() if family_of(reg.control.family) in families}
    if library:
        results += run_controls(objects, only=library)
    if any(suppression):
        results = apply_suppressions(results, objects, *suppression)
    checked: dict[str, list[ControlResult]] = {}
    subjects: dict[str, dict[str, Any]] = {}
    for r in results:
        key = f"{r.subject.ref}\0{r.subject.location.file}"  # same name in two files: two objects
        if key not in checked:
            checked[key] = []
            subjects[key] = r.subject.to_dict()
        if r.verdict is Verdict.FAIL:
            checked[key].append(r)
    entries: list[dict[str, Any]] = [
        {
            "ref": key.split("\0", 1)[0],
            "subject": subjects[key],
            "allowed": not failures,
            "results": [_result_dict(r) for r in failures],
        }
        for key, failures in checked.items()
    ]
    failed = sum(1 for e in entries if not e["allowed"])
    report = {
        "families": ",".join(f for f in FAMILIES if f in families),
        "level": level,
        "version": format_version(version),
        "objects": entries,
        "summary": {
            "objects": len(objects),
            "checked": len(entries),
            "failed": failed,
            "results": sum(len(e["results"]) for e in entries),
        },
    }
    return report, results


def _result_dict(r: ControlResult) -> dict[str, Any]:
    out = r.to_dict()
    del out["subject"]
    return out
