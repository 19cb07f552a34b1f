"""Garrison JSON, the findings table, the SBOM table and the format dispatcher."""

from __future__ import annotations

import copy
import json
import random
import re

import pytest

from garrison.core.errors import ConfigError
from garrison.model import Artifact, ArtifactKind, ScanResult
from garrison.report import FORMATS, SBOM_FORMATS, render, render_sbom, sbom_table

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_json_is_to_dict_plus_summary(scan_result: ScanResult) -> None:
    doc = json.loads(render(scan_result, "json"))
    expected = scan_result.to_dict()
    for key in ("schema", "tool", "created", "artifact", "os", "scanners", "db", "warnings"):
        assert doc[key] == json.loads(json.dumps(expected[key]))
    assert sorted(json.dumps(p, sort_keys=True) for p in doc["packages"]) == sorted(
        json.dumps(p, sort_keys=True) for p in expected["packages"]
    )
    assert len(doc["findings"]) == len(scan_result.findings)
    s = doc["summary"]
    assert s["packages"] == len(scan_result.packages)
    assert s["suppressed"] == sum(f.suppressed for f in scan_result.findings)
    assert s["findings"] == len(scan_result.findings) - s["suppressed"]
    assert sum(s["by_severity"].values()) == s["findings"]
    assert s["by_kind"]["secret"] == 1


def test_json_stable_sorted_keys(scan_result: ScanResult) -> None:
    text = render(scan_result, "json")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    shuffled = copy.deepcopy(scan_result)
    random.Random(1).shuffle(shuffled.findings)
    random.Random(2).shuffle(shuffled.packages)
    assert render(shuffled, "json") == text


@pytest.mark.parametrize("width", [pytest.param(w, id=f"w{w}") for w in (20, 40, 80, 120, 200)])
def test_table_fits_width_without_color(scan_result: ScanResult, width: int) -> None:
    text = render(scan_result, "table", color=False, width=width)
    assert not ANSI.search(text)
    *body, last = text.rstrip().splitlines()
    assert max(len(line) for line in body) <= width
    assert last.startswith("Summary: 18 vulnerabilities") and last.endswith("2 suppressed (hidden)"), "one summary line"


def test_table_groups_os_first_then_targets(scan_result: ScanResult) -> None:
    text = render(scan_result, "table", width=200, show_suppressed=True)
    headings = [line for line in text.splitlines() if line in ("ubuntu 18.04 (deb)", "python packages",
                                                                 "srv/app/requirements.txt", "Secrets")]
    assert headings == ["ubuntu 18.04 (deb)", "python packages", "srv/app/requirements.txt", "Secrets"]
    assert "│ Package " in text and "│ Library " in text


def test_table_counts_and_suppressed(scan_result: ScanResult) -> None:
    hidden = render(scan_result, "table", width=200)
    shown = render(scan_result, "table", width=200, show_suppressed=True)
    assert "Total: 4 (CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 4), 1 suppressed (hidden)" in hidden
    assert "suppressed (vex)" not in hidden and "suppressed (vex)" in shown
    assert "setuptools" not in hidden and "setuptools" in shown
    assert hidden.rstrip().endswith("2 suppressed (hidden)")
    assert shown.rstrip().endswith("2 suppressed (shown)")
    assert "Summary: 18 vulnerabilities (CRITICAL: 0, HIGH: 3, MEDIUM: 3, LOW: 0, UNKNOWN: 12), 1 secrets" in hidden


def test_table_secret_row(scan_result: ScanResult) -> None:
    text = render(scan_result, "table", width=200)
    row = next(line for line in text.splitlines() if "aws-access-key-id" in line)
    assert "AWS_ACCESS_KEY_ID=AKIA****************" in row
    assert "│    3 │" in row


def test_table_color(scan_result: ScanResult) -> None:
    text = render(scan_result, "table", color=True, width=160)
    assert ANSI.search(text)
    assert "\x1b[1;31mCRITICAL" in text
    assert ANSI.sub("", text).count("CVE-2021-33910") == 2


def test_table_markup_in_data_is_literal(scan_result: ScanResult) -> None:
    scan_result.findings[2].title = "[bold red]not markup[/] [link=x]"
    text = render(scan_result, "table", color=True, width=200)
    assert "[bold red]not markup[/]" in ANSI.sub("", text)


def test_table_empty_result() -> None:
    result = ScanResult(Artifact("srv/app", ArtifactKind.FILESYSTEM))
    text = render(result, "table", width=80)
    assert "No vulnerabilities or secrets found." in text
    assert text.rstrip().endswith("0 secrets, 0 packages")


@pytest.mark.parametrize("width", [pytest.param(w, id=f"w{w}") for w in (30, 80, 200)])
def test_sbom_table(sbom_result: ScanResult, width: int) -> None:
    text = sbom_table(sbom_result, width=width)
    lines = text.splitlines()
    assert max(len(line) for line in lines[:-1]) <= width
    order = [line for line in lines if re.match(r"^(deb|npm|pypi) \(\d+ packages\)$", line)]
    assert order == ["deb (90 packages)", "npm (31 packages)", "pypi (10 packages)"]
    assert lines[-1] == "Summary: 131 packages in 3 types"


@pytest.mark.parametrize("fmt", [pytest.param(f, id=f) for f in FORMATS])
def test_render_every_format(scan_result: ScanResult, fmt: str) -> None:
    text = render(scan_result, fmt, color=False, width=120)
    assert text.endswith("\n") and len(text) > 200
    assert render(scan_result, fmt, color=False, width=120) == text


@pytest.mark.parametrize("fmt", [pytest.param(f, id=f) for f in SBOM_FORMATS])
def test_render_sbom_every_format(sbom_result: ScanResult, fmt: str) -> None:
    text = render_sbom(sbom_result, fmt)
    assert "adduser" in text
    if fmt == "cyclonedx":
        assert "vulnerabilities" not in json.loads(text)


@pytest.mark.parametrize("fmt", [pytest.param("xml", id="xml"), pytest.param("", id="empty")])
def test_unknown_format(scan_result: ScanResult, fmt: str) -> None:
    with pytest.raises(ConfigError, match="unknown"):
        render(scan_result, fmt)
    with pytest.raises(ConfigError, match="unknown SBOM format"):
        render_sbom(scan_result, fmt)
