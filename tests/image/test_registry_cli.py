"""The CLI against the real registry: what a user pulling an image by reference gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests._images import require_image
from tests.image.conftest import Registry

from garrison.report.validate import validate

pytestmark = [pytest.mark.registry, pytest.mark.images]


def garrison(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    env["GARRISON_CACHE_DIR"] = str(tmp / "cache")
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli.main", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _purls(doc: dict[str, object]) -> set[str]:
    comps = doc.get("components", [])
    assert isinstance(comps, list)
    return {c["purl"] for c in comps if "purl" in c}


def test_sbom_by_reference_equals_sbom_of_the_archive(pushed: dict[str, str], tmp_path: Path) -> None:
    remote = garrison("sbom", f"registry:{pushed['bookworm']}", "--insecure", "--format", "cyclonedx", tmp=tmp_path)
    assert remote.returncode == 0, remote.stderr
    assert validate(remote.stdout, "cyclonedx") == []
    local = garrison(
        "sbom", str(require_image("debian-bookworm-docker-archive")), "--format", "cyclonedx", "--no-cache", tmp=tmp_path
    )
    assert local.returncode == 0, local.stderr
    remote_purls, local_purls = _purls(json.loads(remote.stdout)), _purls(json.loads(local.stdout))
    assert any(p.startswith("pkg:deb/debian/") for p in remote_purls)
    assert remote_purls == local_purls


def test_unknown_image_is_one_line_and_exit_2(registry: Registry, tmp_path: Path) -> None:
    out = garrison("sbom", f"registry:{registry.host}/garrison/nope:1", "--insecure", tmp=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "garrison/nope" in out.stderr
    assert out.stdout == ""
