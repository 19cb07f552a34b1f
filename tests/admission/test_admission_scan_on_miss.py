"""The vulnerability gate's scan-on-miss path: a pod whose image has no cached result is scanned
for real (the bundled sample image against the bundled advisories), the answer matches what
``garrison scan image`` reports for the same image, the result is indexed for the next request,
and a scan that overruns its budget answers the configured timeout action."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from garrison.admission.config import VulnConfig
from garrison.admission.vulngate import VulnGate
from garrison.model import Severity

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "demo" / "sample-image.tar"
ADVISORIES = REPO / "demo" / "advisories"


def _garrison(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli.main", *args], capture_output=True, text=True, env=full, timeout=300
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("scan-on-miss")
    path = tmp / "garrison.db"
    out = _garrison("db", "import", str(ADVISORIES), env={"GARRISON_DB": str(path)})
    assert out.returncode == 0, out.stderr
    return path


@pytest.fixture(scope="module")
def expected(db: Path, tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """(vulnerability, package) pairs at or above MEDIUM with a fix, from the CLI's own scan."""
    cache = tmp_path_factory.mktemp("cli-cache")
    out = _garrison(
        "scan", "image", str(IMAGE), "--format", "json", "--scanners", "vuln",
        env={"GARRISON_DB": str(db), "GARRISON_CACHE_DIR": str(cache)},
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    pairs = set()
    for f in json.loads(out.stdout)["findings"]:
        if f.get("kind") != "vulnerability":
            continue
        if Severity.parse(f.get("severity")) >= Severity.MEDIUM and f["vulnerability"].get("fixed_versions"):
            pairs.add((f["id"], f["vulnerability"]["package"]["name"]))
    return pairs


def test_miss_is_scanned_and_then_served_from_the_index(
    db: Path, expected: set[tuple[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARRISON_CACHE_DIR", str(tmp_path / "cache"))
    gate = VulnGate(VulnConfig(severity="MEDIUM", scan_on_miss=True, scan_timeout_seconds=120, db_path=str(db)))
    try:
        answer = gate.check(str(IMAGE))
        assert expected, "the sample image should have fixable MEDIUM+ findings"
        assert answer.verdict == "fail"
        assert {(h.id, h.package) for h in answer.hits} == expected
        start = time.perf_counter()
        again = gate.check(str(IMAGE))
        assert time.perf_counter() - start < 0.05  # answered from the index, no second scan
        assert again.verdict == "fail" and set(again.hits) == set(answer.hits)
        assert gate._pending == {}
    finally:
        gate.close()


def test_timeout_answers_the_configured_action_and_the_scan_completes(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GARRISON_CACHE_DIR", str(tmp_path / "cache"))
    gate = VulnGate(
        VulnConfig(severity="MEDIUM", scan_on_miss=True, scan_timeout_seconds=0.001, on_timeout="deny", db_path=str(db))
    )
    try:
        answer = gate.check(str(IMAGE))
        assert answer.verdict == "timeout" and answer.action == "deny"
        assert "did not finish" in answer.message
        deadline = time.monotonic() + 120
        while gate.index.lookup(str(IMAGE)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gate.check(str(IMAGE)).verdict == "fail"  # the background scan filled the index
    finally:
        gate.close()


def test_a_failing_scan_answers_the_miss_action(db: Path, tmp_path: Path) -> None:
    gate = VulnGate(VulnConfig(scan_on_miss=True, on_miss="warn", db_path=str(db)))
    try:
        answer = gate.check(str(tmp_path / "no-such-image.tar"))
        assert answer.verdict == "miss" and answer.action == "warn"
        assert "no-such-image.tar" in answer.message
    finally:
        gate.close()
