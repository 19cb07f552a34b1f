"""``garrison posture cluster``: read a live cluster through its API server and run the same
checks as ``garrison posture k8s`` (Pod Security Standards, workload and cluster controls) over
what it serves.

Credentials come from ``--kubeconfig`` / ``$KUBECONFIG`` / ``~/.kube/config`` (``--context``
picks one) or the in-cluster service account; see :mod:`garrison.posture.k8s.kubeconfig`.
Kinds the credentials may not list are reported as warnings and the scan goes on; kinds the
server does not serve are noted. The evaluation is ``posture k8s``'s own
(:func:`garrison.cli.posture_k8s.evaluate_objects`), so a manifest and the object it became in a
cluster fail the same controls.

Exit codes: 0 every object passes, 1 a check failed, 2 an error (bad kubeconfig, unreachable
or refusing API server, bad flag).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from garrison.cli._output import emit as _emit
from garrison.cli._output import use_color as _use_color
from garrison.cli.posture import BaselineOpt, ExceptionsOpt, OutputOpt, WriteBaselineOpt, app
from garrison.cli.posture_k8s import FAMILIES, _table, evaluate_objects, parse_families
from garrison.core.errors import ConfigError
from garrison.core.jsonfmt import pretty

CLUSTER_FORMATS = ("table", "json", "sarif", "junit", "policyreport", "html")


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


@app.command("cluster")
def posture_cluster(
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).", show_default=False
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context", envvar="GARRISON_KUBE_CONTEXT", help="Kubeconfig context to use.", show_default=False
        ),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Only these namespaces (repeat or comma-separate); default all.",
            show_default=False,
        ),
    ] = None,
    exclude_namespaces: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-namespaces", help="Leave out these namespaces (repeat or comma-separate).", show_default=False
        ),
    ] = None,
    only: Annotated[
        str,
        typer.Option(
            "--only",
            envvar="GARRISON_POSTURE_ONLY",
            help="Control families to run (comma-separated): pss, workload, cluster.",
        ),
    ] = ",".join(FAMILIES),
    pss: Annotated[
        str, typer.Option("--pss", envvar="GARRISON_PSS", help="Pod Security Standards level: baseline or restricted.")
    ] = "restricted",
    pss_version: Annotated[
        str, typer.Option("--pss-version", envvar="GARRISON_PSS_VERSION", help="Policy version: latest or vX.Y.")
    ] = "latest",
    format: Annotated[
        str,
        typer.Option("--format", "-f", envvar="GARRISON_FORMAT", help=f"Output format: {', '.join(CLUSTER_FORMATS)}."),
    ] = "table",
    framework: Annotated[
        str,
        typer.Option(
            "--framework",
            envvar="GARRISON_FRAMEWORK",
            help="Frameworks to score in the html report, comma-separated; all by default.",
        ),
    ] = "",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each API request.", min=0.1)] = 30.0,
    output: OutputOpt = None,
    exceptions: ExceptionsOpt = None,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
) -> None:
    """Check the objects of a live cluster against the Pod Security Standards and the Kubernetes controls."""
    from garrison.posture.k8s.cluster import scan_cluster
    from garrison.posture.k8s.pss.engine import _check_level, parse_version

    if format not in CLUSTER_FORMATS:
        raise ConfigError(f"unknown format {format!r}; choose from {', '.join(CLUSTER_FORMATS)}")
    families = parse_families(only)
    level = _check_level(pss)
    version = parse_version(pss_version)
    selected: list[Any] = []
    if format == "html":
        from garrison.posture import frameworks as fw

        selected = list(fw.load(framework.split(",") if framework.strip() else None))
    snap = scan_cluster(
        kubeconfig,
        context,
        namespaces=_split(namespace),
        exclude_namespaces=_split(exclude_namespaces),
        timeout=timeout,
    )
    for warning in snap.warnings:
        sys.stderr.write(f"garrison: warning: {warning}\n")
    for note in snap.notes:
        sys.stderr.write(f"garrison: note: {note}\n")
    collecting = gc.isenabled()
    gc.disable()
    try:
        report, results = evaluate_objects(
            snap.objects, level, version, families, (exceptions, baseline, write_baseline)
        )
    finally:
        if collecting:
            gc.enable()
    report["cluster"] = {
        "context": snap.context,
        "server": snap.server,
        "counts": dict(sorted(snap.counts.items())),
        "skipped_owned": snap.skipped_owned,
        "kubelet_versions": snap.kubelet_versions,
        "warnings": snap.warnings,
        "notes": snap.notes,
    }
    if format == "json":
        _emit(pretty(report), output)
    elif format == "table":
        _emit(_table(report, _use_color(output)), output)
    else:
        from garrison.posture.report import render

        _emit(render(format, results, selected), output)
    if report["summary"]["failed"]:
        raise typer.Exit(1)
