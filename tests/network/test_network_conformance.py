"""Kubernetes NetworkPolicy e2e truth tables: every probe matrix, pair by pair (TCP, UDP, SCTP)."""

from __future__ import annotations

import pytest
from tests.conftest import CONFORMANCE

from garrison.network.conformance import ConformanceMatrix, matrices
from garrison.network.evaluator import Evaluator
from garrison.network.inventory import inventory_from_objects
from garrison.network.loader import load_objects

NETPOL = CONFORMANCE / "netpol"
MATRICES = matrices(NETPOL / "k8s_e2e_netpol.yaml", NETPOL / "k8s_e2e_netpol.expanded.json")


def test_all_matrices_and_pairs_are_expanded() -> None:
    import json

    expanded = json.loads((NETPOL / "k8s_e2e_netpol.expanded.json").read_text())["matrices"]
    assert len(MATRICES) == len(expanded)
    assert sum(len(m.expected) for m in MATRICES) == sum(len(m["pairs"]) for m in expanded)
    assert {m.protocol for m in MATRICES} == {"TCP", "UDP", "SCTP"}


@pytest.mark.parametrize("matrix", [pytest.param(m, id=m.id) for m in MATRICES])
def test_e2e_matrix(matrix: ConformanceMatrix) -> None:
    objects = [("e2e", i, o) for i, o in enumerate(matrix.objects())]
    pset = load_objects(objects, strict=True)
    ev = Evaluator(pset, inventory_from_objects(objects))
    wrong = []
    for src, dst, expected in matrix.expected:
        verdict = ev.evaluate(src, dst, matrix.protocol, matrix.port)
        fast = ev.allowed(ev.index[src], ev.index[dst], {"TCP": 6, "UDP": 17, "SCTP": 132}[matrix.protocol],
                          matrix.port)
        assert fast == verdict.allowed, (src, dst)
        if verdict.allowed != expected:
            wrong.append((src, dst, expected, [str(h) for h in verdict.hits]))
    assert not wrong, f"{len(wrong)}/{len(matrix.expected)} pairs disagree: {wrong}"


def test_placeholders_are_substituted() -> None:
    with_cidr = [m for m in MATRICES if m.case == "k8s-tcp-35"]
    assert with_cidr
    text = str(with_cidr[0].policies)
    assert "{{" not in text and "0.0.0.0/4" in text and "10.1.0.3/32" in text
