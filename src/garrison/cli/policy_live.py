"""``garrison policy snapshot``: read policies and endpoints from a live cluster into YAML files
that every other ``garrison policy`` command takes (``--policies DIR/policies.yaml --inventory
DIR/inventory.yaml``), so analysis, preview and recommendation run offline on a frozen view."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml


def snapshot_cmd(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write policies.yaml and inventory.yaml.")
    ],
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig file (default ~/.kube/config).", show_default=False
        ),
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="Kubeconfig context.", show_default=False)] = None,
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Only these namespaces (repeatable).")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per API request.")] = 30.0,
) -> None:
    """Read network policies and endpoints from a live cluster into YAML files."""
    from garrison.network.live import read_cluster

    live = read_cluster(kubeconfig, context, namespaces=namespace or (), timeout=timeout)
    for note in live.notes:
        sys.stderr.write(f"garrison: note: {note}\n")
    for warning in live.warnings:
        sys.stderr.write(f"garrison: warning: {warning}\n")
    output.mkdir(parents=True, exist_ok=True)
    for name, docs in (("policies.yaml", live.policies), ("inventory.yaml", live.inventory)):
        text = yaml.safe_dump_all(docs, sort_keys=False) if docs else ""
        (output / name).write_text(text, encoding="utf-8")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(live.counts.items())) or "nothing"
    sys.stderr.write(f"garrison: {live.context}: {counts} -> {output}\n")
