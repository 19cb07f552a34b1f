"""``garrison rules check|list``: exit codes, one-line positioned messages, formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from garrison.cli.rules import app

runner = CliRunner()

BAD = """- rule: Broken
  desc: d
  condition: evt.type = execve and undefined_macro
  output: o
  priority: WARNING
- rule: Also broken
  desc: d
  condition: evt.type = execve and proc.name in (a, b
  output: o
  priority: WARNING
"""


def test_check_ok_on_pack_and_upstream(conformance_dir: Path) -> None:
    from garrison.runtime.rules import default_pack

    files = [
        str(conformance_dir / "runtime" / f)
        for f in ("falco_rules.yaml", "falco-incubating_rules.yaml", "falco-sandbox_rules.yaml")
    ]
    r = runner.invoke(app, ["check", *files, *map(str, default_pack())])
    assert r.exit_code == 0, r.output
    assert r.output.strip().endswith(": ok")
    assert "warning: rule disabled" in r.output


def test_check_invalid_lists_every_error_with_position(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    r = runner.invoke(app, ["check", str(f)])
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert lines[0].startswith(f"{f}:3:14: rule 'Broken': Undefined macro 'undefined_macro' used in filter.")
    assert lines[1].startswith(f"{f}:8:54: rule 'Also broken': expected a ')' token")
    assert lines[-1].endswith("invalid (2 error(s))")
    r = runner.invoke(app, ["check", "--format", "json", str(f)])
    assert r.exit_code == 1
    doc = json.loads(r.output)
    assert doc["successful"] is False
    assert [e["item_name"] for e in doc["errors"]] == ["Broken", "Also broken"]
    assert all(e["code"] == "LOAD_ERR_COMPILE_CONDITION" for e in doc["errors"])


def test_check_missing_file_is_invalid(tmp_path: Path) -> None:
    r = runner.invoke(app, ["check", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 1 and "LOAD_ERR_FILE_READ" in r.output


def test_list_table_and_json(conformance_dir: Path) -> None:
    r = runner.invoke(app, ["list", "--format", "json"])
    assert r.exit_code == 0
    rows = json.loads(r.output)
    assert rows and all(row["mitre"] and row["status"] == "active" for row in rows)
    r = runner.invoke(app, ["list", "--format", "json", str(conformance_dir / "runtime" / "falco_rules.yaml")])
    rows = {row["rule"]: row for row in json.loads(r.output)}
    assert rows["Contact K8S API Server From Container"]["status"] == "unsupported"
    assert rows["Contact K8S API Server From Container"]["unsupported"] == ["fd.sip.name"]
    assert rows["Run shell untrusted"]["evttypes"] == ["execve", "execveat"]
    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0 and "Garrison Known Crypto Miner Executed" in r.output


def test_cli_entry_point_exit_codes(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    cmd = [sys.executable, "-m", "garrison.cli.main", "rules"]
    p = subprocess.run([*cmd, "check", str(f)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr + p.stdout
    p = subprocess.run([*cmd, "list", str(f)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.startswith("garrison: ") and len(p.stderr.strip().splitlines()) == 1
    p = subprocess.run([*cmd, "list", "--format", "xml"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unknown format" in p.stderr
