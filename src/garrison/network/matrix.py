"""Connectivity matrix: the verdict of every ordered pair of pods on every port the inventory names.

Shape (the stable ``garrison policy matrix --format json`` interface)::

    {"<ns>/<pod>": {"<ns>/<pod>": {"<PROTO>/<port>": "allow" | "deny"}}}

Rows and columns are the inventory's pods (host endpoints are left out: they are not addressed as
``ns/pod``), including the pair of a pod with itself; the columns of the inner map are the
``(protocol, port)`` pairs of all named container ports. It uses :meth:`Evaluator.allowed`, the
no-explanation fast path, so a matrix of n pods and k ports costs n*n*k bit-lookup walks.
"""

from __future__ import annotations

from collections.abc import Iterable

from garrison.model.network import EndpointKind
from garrison.network import ir
from garrison.network.evaluator import Evaluator

Matrix = dict[str, dict[str, dict[str, str]]]


def connectivity(ev: Evaluator, ports: Iterable[tuple[str, int]] | None = None,
                 keys: Iterable[str] | None = None) -> Matrix:
    """Compute the matrix for ``keys`` (default: every pod) on ``ports`` (default: every named port)."""
    chosen = list(keys) if keys is not None else [
        e.key for e in ev.endpoints if e.kind is EndpointKind.POD]
    cols = sorted(set(ports) if ports is not None else set(ev.inventory.ports()))
    idx = [ev.index[k] for k in chosen]
    compiled = [(f"{proto}/{port}", ir.PROTOCOLS[proto.upper()], port) for proto, port in cols]
    out: Matrix = {}
    for sk, si in zip(chosen, idx, strict=True):
        row: dict[str, dict[str, str]] = {}
        for dk, di in zip(chosen, idx, strict=True):
            row[dk] = {name: ("allow" if ev.allowed(si, di, proto, port) else "deny") for name, proto, port in compiled}
        out[sk] = row
    return out
