"""``garrison posture ...``: one module per input under ``garrison.cli.posture_*`` adds its
command to :data:`app` (``k8s``, ``dockerfile``, ``node``, ...)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Check Kubernetes manifests, Dockerfiles and nodes against controls, PSS and CIS benchmarks.",
    no_args_is_help=True,
)


# options shared by every posture command that supports suppressions
ExceptionsOpt = Annotated[
    Path | None,
    typer.Option("--exceptions", envvar="GARRISON_EXCEPTIONS", help="Exceptions file (YAML).", show_default=False),
]
BaselineOpt = Annotated[
    Path | None,
    typer.Option("--baseline", envvar="GARRISON_BASELINE", help="Suppress failures in this baseline file."),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", envvar="GARRISON_OUTPUT", help="Write the report to this file.", show_default=False),
]
WriteBaselineOpt = Annotated[
    Path | None,
    typer.Option("--write-baseline", help="Write the current failures' fingerprints to this file."),
]


def _load() -> None:
    import garrison.cli as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("posture_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


_load()
