"""``garrison posture ...``: one module per input under ``garrison.cli.posture_*`` adds its
command to :data:`app` (``k8s``, ``dockerfile``, ``node``, ...)."""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    help="Check Kubernetes manifests, Dockerfiles and nodes against controls, PSS and CIS benchmarks.",
    no_args_is_help=True,
)


def _load() -> None:
    import garrison.cli as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("posture_"):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


_load()
