"""``garrison posture node``: output formats, summary and exit codes, on the fake node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def garrison(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli.main", "posture", "node", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_passing_checks_exit_0_with_json(fake_node) -> None:  # type: ignore[no-untyped-def]
    proc = garrison(
        "--targets", "node", "--root", str(fake_node.good), "--check", "4.1.1,4.2.1,4.2.2", "--format", "json"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["benchmark"] == "cis-1.12" and doc["targets"] == ["node"]
    assert doc["summary"] == {"PASS": 3, "FAIL": 0, "WARN": 0, "INFO": 0}
    assert [r["control"] for r in doc["results"]] == ["CIS-1.12-4.1.1", "CIS-1.12-4.2.1", "CIS-1.12-4.2.2"]
    assert {r["verdict"] for r in doc["results"]} == {"pass"}
    assert proc.stdout == json.dumps(doc, indent=2, sort_keys=True) + "\n"


def test_failing_checks_exit_1_with_table_summary(fake_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report.txt"
    proc = garrison("--targets", "node", "--root", str(fake_node.bad), "--check", "4.1.1,4.2.1,4.2.2", "-o", str(out))
    assert proc.returncode == 1, proc.stderr
    text = out.read_text()
    assert "\x1b[" not in text  # no colour in a file
    assert "CIS-1.12-4.1.1" in text and "permissions has permissions 644" in text
    assert "== Summary == 1 checks PASS, 2 checks FAIL, 0 checks WARN, 0 checks INFO" in text


def test_errors_exit_2_with_one_line() -> None:
    for args in (
        ("--format", "xml", "--targets", "node"),
        ("--targets", "nodes"),
        ("--benchmark", "cis-0.1", "--targets", "node"),
        ("--root", "/nonexistent/dir", "--targets", "node"),
    ):
        proc = garrison(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("garrison: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_help_lists_options() -> None:
    proc = garrison("--help")
    assert proc.returncode == 0
    for option in ("--benchmark", "--targets", "--root", "--check", "--format"):
        assert option in proc.stdout


def test_report_formats_and_baseline(fake_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import xml.etree.ElementTree as ET

    args = ("--targets", "node", "--root", str(fake_node.bad), "--check", "4.1.1,4.2.1,4.2.2")
    sarif = garrison(*args, "--format", "sarif")
    assert sarif.returncode == 1, sarif.stderr
    doc = json.loads(sarif.stdout)
    assert doc["version"] == "2.1.0"
    assert {r["ruleId"] for r in doc["runs"][0]["results"]} <= {"CIS-1.12-4.1.1", "CIS-1.12-4.2.1", "CIS-1.12-4.2.2"}
    assert doc["runs"][0]["results"]
    junit = garrison(*args, "--format", "junit")
    assert junit.returncode == 1 and ET.fromstring(junit.stdout).iter("failure")
    base = tmp_path / "base.json"
    first = garrison(*args, "--format", "json", "--write-baseline", str(base))
    assert first.returncode == 1 and base.exists()
    failed = json.loads(first.stdout)["summary"]["FAIL"]
    assert failed > 0
    again = garrison(*args, "--format", "json", "--baseline", str(base))
    assert again.returncode == 0, again.stdout
    assert json.loads(again.stdout)["summary"]["SUPPRESSED"] == failed
