"""The command line as a user meets it: help, exit codes, one-line errors, config precedence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def garrison(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--help"], id="root"),
        pytest.param(["scan", "--help"], id="scan"),
        pytest.param(["scan", "image", "--help"], id="scan-image"),
        pytest.param(["scan", "fs", "--help"], id="scan-fs"),
        pytest.param(["scan", "sbom", "--help"], id="scan-sbom"),
        pytest.param(["sbom", "--help"], id="sbom"),
        pytest.param(["db", "--help"], id="db"),
    ],
)
def test_help_reads_well(args: list[str]) -> None:
    out = garrison(*args)
    assert out.returncode == 0, out.stderr
    assert "Usage:" in out.stdout
    assert "\x1b[" not in out.stdout  # no colour when not a terminal


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["scan", "image", "/nonexistent/image.tar"], "/nonexistent/image.tar", id="missing-image"),
        pytest.param(["scan", "fs", "/nonexistent/dir"], "/nonexistent/dir", id="missing-dir"),
        pytest.param(["scan", "fs", ".", "--scanners", "virus"], "virus", id="bad-scanner"),
        pytest.param(["scan", "fs", ".", "--format", "pdf", "--scanners", "secret"], "pdf", id="bad-format"),
        pytest.param(["db", "status", "--db", "/nonexistent/garrison.db"], "garrison.db", id="missing-db"),
        pytest.param(["scan", "image", "--bogus-flag", "x"], "bogus", id="bad-flag"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    out = garrison(*args, cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    assert needle in out.stderr


def test_corrupt_image_archive_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.tar"
    bad.write_bytes(b"this is not a tar archive at all" * 10)
    out = garrison("scan", "image", str(bad), "--scanners", "secret")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "broken.tar" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stdout == ""  # no partial report pretending to be complete


def test_flag_beats_env_beats_config_file(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("nothing secret here\n")
    (tmp_path / "garrison.yaml").write_text("format: json\nscanners: secret\n")
    from_file = garrison("scan", "fs", str(project), cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout)["schema"] == "garrison.scan/v1"
    from_env = garrison("scan", "fs", str(project), cwd=tmp_path, env={"GARRISON_FORMAT": "sarif"})
    assert from_env.returncode == 0, from_env.stderr
    assert json.loads(from_env.stdout)["version"] == "2.1.0"
    from_flag = garrison("scan", "fs", str(project), "--format", "json", cwd=tmp_path, env={"GARRISON_FORMAT": "sarif"})
    assert json.loads(from_flag.stdout)["schema"] == "garrison.scan/v1"


def test_unknown_config_key_is_reported(tmp_path: Path) -> None:
    (tmp_path / "garrison.yaml").write_text("severty: HIGH\n")
    out = garrison("scan", "fs", ".", "--scanners", "secret", cwd=tmp_path)
    assert out.returncode == 2
    assert "severty" in out.stderr and "garrison.yaml" in out.stderr
