"""Encode -> decode gives back the same packages, OS and artifact facts (CycloneDX and SPDX)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sbom_builders import mariner_result, source_tree_result, ubuntu_result

from garrison.model import Artifact, ArtifactKind, Package, ScanResult
from garrison.report import render, render_sbom
from garrison.report._common import spdx_license_id
from garrison.sbom.formats import decode_sbom

Builder = Callable[[Path], ScanResult]

SCENARIOS = [
    pytest.param(ubuntu_result, id="ubuntu-image"),
    pytest.param(mariner_result, id="mariner-rootfs"),
    pytest.param(source_tree_result, id="source-tree"),
]
ENCODERS = [
    pytest.param(lambda r: render_sbom(r, "cyclonedx"), id="cyclonedx-sbom"),
    pytest.param(lambda r: render(r, "cyclonedx"), id="cyclonedx-scan"),
    pytest.param(lambda r: render_sbom(r, "spdx-json"), id="spdx"),
]


def _canonical_license(value: str) -> str:
    """An SBOM writes licence ids in their canonical case (``zlib`` -> ``Zlib``)."""
    return spdx_license_id(value) or value


def fields(pkg: Package) -> tuple[object, ...]:
    return (
        pkg.type, pkg.namespace, pkg.name, pkg.version, pkg.purl, pkg.path, pkg.layer, pkg.source_name,
        pkg.source_version, pkg.arch, pkg.epoch, tuple(_canonical_license(v) for v in pkg.licenses), pkg.dev,
        pkg.optional, pkg.cataloger,
    )


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("build", SCENARIOS)
def test_round_trip(build: Builder, encode: Callable[[ScanResult], str], conformance_dir: Path, tmp_path: Path) -> None:
    result = build(conformance_dir)
    path = tmp_path / "sbom.json"
    path.write_text(encode(result), encoding="utf-8")
    artifact, packages, os_ = decode_sbom(path)
    assert sorted(map(fields, packages), key=repr) == sorted(map(fields, result.packages), key=repr)
    assert os_ == result.os
    assert artifact.kind == ArtifactKind.SBOM
    assert artifact.name == str(path)
    is_spdx = path.read_text().lstrip().startswith('{\n  "spdxVersion"')
    # SPDX requires a creation time: an unknown one is written as the epoch
    assert artifact.created == (result.created or ("1970-01-01T00:00:00Z" if is_spdx else ""))
    assert artifact.repo_tags == result.artifact.repo_tags
    assert artifact.repo_digests == result.artifact.repo_digests
    assert artifact.digest == result.artifact.digest
    assert [layer.diff_id for layer in artifact.layers] == [layer.diff_id for layer in result.artifact.layers]


@pytest.mark.parametrize("fmt", [pytest.param("cyclonedx", id="cyclonedx"), pytest.param("spdx-json", id="spdx")])
def test_round_trip_is_stable(fmt: str, conformance_dir: Path, tmp_path: Path) -> None:
    """Decoding and re-encoding an SBOM gives the same packages again (a fixed point after one trip)."""
    first = ubuntu_result(conformance_dir)
    path = tmp_path / "one.json"
    path.write_text(render_sbom(first, fmt))
    artifact, packages, os_ = decode_sbom(path)
    second = ScanResult(artifact, packages=packages, os=os_, created=artifact.created, tool_version="0.1.0")
    path2 = tmp_path / "two.json"
    path2.write_text(render_sbom(second, fmt))
    _, again, os2 = decode_sbom(path2)
    assert sorted(map(fields, again), key=repr) == sorted(map(fields, packages), key=repr)
    assert os2 == os_


@pytest.mark.parametrize("fmt", [pytest.param("cyclonedx", id="cyclonedx"), pytest.param("spdx-json", id="spdx")])
def test_package_without_purl_round_trips(fmt: str, tmp_path: Path) -> None:
    pkg = Package("libfoo", "2.1", "generic", cataloger="binary", path="opt/foo/lib/libfoo.so.2", layer="sha256:" + "e" * 64)
    result = ScanResult(Artifact("srv", ArtifactKind.FILESYSTEM), packages=[pkg], created="2024-05-01T00:00:00Z")
    path = tmp_path / "sbom.json"
    path.write_text(render_sbom(result, fmt))
    _, packages, os_ = decode_sbom(path)
    assert [fields(p) for p in packages] == [fields(pkg)]
    assert os_ is None


@pytest.mark.parametrize(
    "name",
    [pytest.param("trivy-centos-7-cyclonedx-1.5.json", id="trivy-cdx"), pytest.param("trivy-centos-7-spdx-2.2.json", id="trivy-spdx")],
)
def test_decoded_third_party_sbom_renders_in_every_format(name: str, data_dir: Path) -> None:
    """``scan sbom FILE`` path: a decoded SBOM becomes a result every renderer accepts."""
    from garrison.report import FORMATS
    from garrison.report.validate import validate

    artifact, packages, os_ = decode_sbom(data_dir / name)
    result = ScanResult(artifact, packages=packages, os=os_, created=artifact.created, tool_version="0.1.0")
    for fmt in FORMATS:
        text = render(result, fmt, width=100)
        if fmt in ("cyclonedx", "spdx-json", "sarif"):
            assert validate(text, fmt) == [], fmt
    assert "ghcr.io/aquasecurity/trivy-test-images:centos-7 (centos 7.6.1810)" in render(result, "table", width=100)
