"""Golden files: every format rendered from the realistic result, compared as structures (text for tables).

Run with ``GARRISON_UPDATE_GOLDENS=1`` to rewrite the files after an intended change, then review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from garrison.model import ScanResult
from garrison.report import render, render_sbom

UPDATE = os.environ.get("GARRISON_UPDATE_GOLDENS") == "1"

Renderer = Callable[[ScanResult], str]

CASES = [
    pytest.param("scan.cdx.json", "scan", lambda r: render(r, "cyclonedx"), id="cyclonedx-scan"),
    pytest.param("sbom.cdx.json", "sbom", lambda r: render_sbom(r, "cyclonedx"), id="cyclonedx-sbom"),
    pytest.param("scan.spdx.json", "scan", lambda r: render(r, "spdx-json"), id="spdx"),
    pytest.param("scan.sarif", "scan", lambda r: render(r, "sarif"), id="sarif"),
    pytest.param("scan.json", "scan", lambda r: render(r, "json"), id="json"),
    pytest.param("scan-80.txt", "scan", lambda r: render(r, "table", width=80), id="table-80"),
    pytest.param("scan-200.txt", "scan", lambda r: render(r, "table", width=200), id="table-200"),
    pytest.param(
        "scan-suppressed-160.txt", "scan", lambda r: render(r, "table", width=160, show_suppressed=True), id="table-shown"
    ),
    pytest.param("sbom-120.txt", "sbom", lambda r: render_sbom(r, "table", width=120), id="sbom-table"),
]


@pytest.mark.parametrize(("name", "which", "renderer"), CASES)
def test_golden(
    name: str, which: str, renderer: Renderer, scan_result: ScanResult, sbom_result: ScanResult, golden_dir: Path
) -> None:
    result = scan_result if which == "scan" else sbom_result
    text = renderer(result)
    path = golden_dir / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden {path}; run with GARRISON_UPDATE_GOLDENS=1"
    expected = path.read_text(encoding="utf-8")
    if name.endswith(".txt"):
        assert text == expected
    else:
        assert json.loads(text) == json.loads(expected)
