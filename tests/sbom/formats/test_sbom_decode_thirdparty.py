"""SBOMs written by other tools: upstream example documents, Trivy's fixtures and cyclonedx-python-lib output.

Expected values are read from each document independently of the decoder (walking the JSON and
parsing purls with packageurl-python), never typed in by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentScope, ComponentType
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.output.json import BY_SCHEMA_VERSION
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from garrison.model import ArtifactKind
from garrison.sbom.formats import decode_sbom


def _cdx_components(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for node in nodes:
        out.append(node)
        out.extend(_cdx_components(node.get("components", [])))
    return out


def expected_purls(doc: dict[str, Any]) -> set[str]:
    if "bomFormat" in doc:
        return {c["purl"] for c in _cdx_components(doc.get("components", [])) if c.get("purl")}
    return {
        ref["referenceLocator"]
        for p in doc.get("packages", [])
        for ref in p.get("externalRefs", [])
        if ref.get("referenceType") == "purl"
    }


def expected_os(doc: dict[str, Any]) -> tuple[str, str] | None:
    if "bomFormat" in doc:
        found = [(c["name"], c.get("version", "")) for c in _cdx_components(doc.get("components", []))
                 if c.get("type") == "operating-system"]
    else:
        found = [(p["name"], p.get("versionInfo", "")) for p in doc.get("packages", [])
                 if p.get("primaryPackagePurpose") == "OPERATING_SYSTEM" or p["SPDXID"].startswith("SPDXRef-OperatingSystem")]
    return found[0] if found else None


FILES = [
    pytest.param("cyclonedx-bom-examples-vex-bom-1.3.json", id="cdx-1.3-maven"),
    pytest.param("cyclonedx-bom-examples-cbom-dependencies-1.7.json", id="cdx-1.7-no-purls"),
    pytest.param("trivy-centos-7-cyclonedx-1.5.json", id="trivy-cdx-1.5"),
    pytest.param("trivy-centos-7-spdx-2.2.json", id="trivy-spdx-2.2"),
    pytest.param("spdx-spec-example-v2.3.spdx.json", id="spdx-2.3-example"),
]


@pytest.mark.parametrize("name", FILES)
def test_third_party_documents(name: str, data_dir: Path) -> None:
    path = data_dir / name
    doc = json.loads(path.read_text(encoding="utf-8"))
    artifact, packages, os_ = decode_sbom(path)
    assert artifact.kind == ArtifactKind.SBOM and artifact.name == str(path)
    purls = expected_purls(doc)
    assert {p.purl for p in packages} == purls
    for pkg in packages:
        parsed = PackageURL.from_string(pkg.purl)
        assert pkg.type == parsed.type
        assert pkg.version.endswith(str(parsed.version))
        assert pkg.name.lower().endswith(str(parsed.name).lower())
    want_os = expected_os(doc)
    if want_os is None:
        assert os_ is None
    else:
        assert os_ is not None and (os_.family, os_.version) == (want_os[0].lower(), want_os[1])


def test_trivy_cyclonedx_details(data_dir: Path) -> None:
    path = data_dir / "trivy-centos-7-cyclonedx-1.5.json"
    doc = json.loads(path.read_text())
    artifact, packages, _ = decode_sbom(path)
    props = {p["name"]: p["value"] for p in doc["metadata"]["component"]["properties"]}
    assert artifact.repo_tags == (props["aquasecurity:trivy:RepoTag"],)
    assert artifact.image_id == props["aquasecurity:trivy:ImageID"]
    assert artifact.created == doc["metadata"]["timestamp"]
    by_name = {p.name: p for p in packages}
    for comp in doc["components"]:
        if not comp.get("purl"):
            continue
        pkg = by_name[comp["name"]]
        cprops = {p["name"]: p["value"] for p in comp["properties"]}
        q = PackageURL.from_string(comp["purl"]).qualifiers
        assert pkg.layer == cprops["aquasecurity:trivy:LayerDiffID"]
        assert pkg.source_name == cprops["aquasecurity:trivy:SrcName"]
        assert pkg.arch == q["arch"]
        assert pkg.licenses == tuple(lic["license"]["name"] for lic in comp["licenses"])
        if "epoch" in q:
            assert pkg.epoch == int(q["epoch"])
            assert pkg.version == f"{q['epoch']}:{comp['version']}"
            assert pkg.source_version == f"{cprops['aquasecurity:trivy:SrcEpoch']}:{cprops['aquasecurity:trivy:SrcVersion']}-{cprops['aquasecurity:trivy:SrcRelease']}"
        else:
            assert pkg.epoch is None and pkg.version == comp["version"]


def test_spdx_example_licences(data_dir: Path) -> None:
    path = data_dir / "spdx-spec-example-v2.3.spdx.json"
    doc = json.loads(path.read_text())
    _, packages, _ = decode_sbom(path)
    (jena,) = packages
    raw = next(p for p in doc["packages"] if p.get("externalRefs") and any(
        r["referenceType"] == "purl" for r in p["externalRefs"]))
    assert "licenseDeclared" not in raw and jena.licenses == ()
    assert jena.namespace == PackageURL.from_string(jena.purl).namespace


def test_cyclonedx_scope_flags(data_dir: Path) -> None:
    path = data_dir / "cyclonedx-bom-examples-vex-bom-1.3.json"
    doc = json.loads(path.read_text())
    _, packages, _ = decode_sbom(path)
    optional = {c["name"] for c in doc["components"] if c.get("scope") == "optional"}
    assert {p.name for p in packages if p.optional} == optional
    assert all(p.licenses == ("Apache-2.0",) for p in packages)


def _library_bom(conformance_dir: Path) -> tuple[Bom, list[dict[str, Any]]]:
    expected = json.loads((conformance_dir / "catalogers" / "dpkg" / "expected.json").read_text())
    rows = expected["fixtures"][0]["packages"][:12]
    bom = Bom()
    for i, p in enumerate(rows):
        purl = PackageURL(type="deb", namespace="ubuntu", name=p["name"], version=p["version"],
                          qualifiers={"arch": p["arch"], "distro": "ubuntu-18.04"})
        bom.components.add(
            Component(name=p["name"], version=p["version"], purl=purl, bom_ref=purl.to_string(),
                      licenses=[DisjunctiveLicense(id="MIT")] if i % 2 else [],
                      scope=ComponentScope.OPTIONAL if i % 3 == 0 else None)
        )
    bom.components.add(Component(name="ubuntu", version="18.04", type=ComponentType.OPERATING_SYSTEM, bom_ref="os"))
    return bom, rows


@pytest.mark.parametrize(
    "version",
    [pytest.param(v, id=f"cyclonedx-{v.to_version()}") for v in (SchemaVersion.V1_2, SchemaVersion.V1_3,
                                                                    SchemaVersion.V1_4, SchemaVersion.V1_5,
                                                                    SchemaVersion.V1_6)],
)
def test_cyclonedx_python_lib_output(version: SchemaVersion, conformance_dir: Path, tmp_path: Path) -> None:
    """Every CycloneDX JSON version 1.2-1.6, as the reference library writes it, decodes to its components."""
    bom, rows = _library_bom(conformance_dir)
    text = BY_SCHEMA_VERSION[version](bom).output_as_string()
    assert json.loads(text)["specVersion"] == version.to_version()
    path = tmp_path / "lib.cdx.json"
    path.write_text(text)
    _, packages, os_ = decode_sbom(path)
    assert sorted((p.name, p.version, p.arch) for p in packages) == sorted((r["name"], r["version"], r["arch"]) for r in rows)
    assert all(p.type == "deb" and p.namespace is None for p in packages)
    assert os_ is not None and (os_.family, os_.version) == ("ubuntu", "18.04")
    by_name = {p.name: p for p in packages}
    for i, r in enumerate(rows):
        assert by_name[r["name"]].licenses == (("MIT",) if i % 2 else ())
        assert by_name[r["name"]].optional is (i % 3 == 0)
