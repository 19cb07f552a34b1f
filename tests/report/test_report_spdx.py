"""SPDX 2.3 JSON: schema validity, identifiers, relationships, licences and determinism."""

from __future__ import annotations

import copy
import json
import random

import pytest

from garrison.model import Artifact, ArtifactKind, Package, ScanResult
from garrison.report import render, render_sbom
from garrison.report.spdx import spdx_document
from garrison.report.validate import validate


def test_valid_against_schema(scan_result: ScanResult) -> None:
    assert validate(render(scan_result, "spdx-json"), "spdx-json") == []


def test_document_fields(scan_result: ScanResult) -> None:
    doc = spdx_document(scan_result)
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["dataLicense"] == "CC0-1.0"
    assert doc["SPDXID"] == "SPDXRef-DOCUMENT"
    assert doc["creationInfo"] == {"created": scan_result.created, "creators": ["Tool: garrison-0.1.0"]}
    assert doc["documentNamespace"].startswith("https://garrison.invalid/spdx/image/")


def test_packages_and_relationships(scan_result: ScanResult) -> None:
    doc = spdx_document(scan_result)
    ids = [p["SPDXID"] for p in doc["packages"]]
    assert len(ids) == len(set(ids)) == len(scan_result.packages) + 2
    by_purpose: dict[str, list[dict[str, object]]] = {}
    for p in doc["packages"]:
        by_purpose.setdefault(str(p["primaryPackagePurpose"]), []).append(p)
    (root,) = by_purpose["CONTAINER"]
    (os_pkg,) = by_purpose["OPERATING_SYSTEM"]
    assert (os_pkg["name"], os_pkg["versionInfo"]) == ("ubuntu", "18.04")
    assert len(by_purpose["LIBRARY"]) == len(scan_result.packages)
    rels = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", root["SPDXID"]) in rels
    assert (root["SPDXID"], "CONTAINS", os_pkg["SPDXID"]) in rels
    contained = {r[2] for r in rels if r[1] == "CONTAINS"}
    assert {p["SPDXID"] for p in by_purpose["LIBRARY"]} <= contained
    for p in by_purpose["LIBRARY"]:
        assert p["downloadLocation"] == "NOASSERTION"
        refs = p["externalRefs"]
        assert refs[0]["referenceCategory"] == "PACKAGE-MANAGER" and refs[0]["referenceLocator"].startswith("pkg:")
        parent = next(r[0] for r in rels if r[2] == p["SPDXID"])
        is_os = refs[0]["referenceLocator"].startswith("pkg:deb/")
        assert parent == (os_pkg["SPDXID"] if is_os else root["SPDXID"])


@pytest.mark.parametrize(
    ("licenses", "declared", "extracted"),
    [
        pytest.param(("MIT",), "MIT", [], id="id"),
        pytest.param(("MIT", "Apache-2.0"), "MIT AND Apache-2.0", [], id="two-ids"),
        pytest.param(("MIT OR Apache-2.0",), "(MIT OR Apache-2.0)", [], id="expression"),
        pytest.param(("GPLv2+",), None, ["GPLv2+"], id="name"),
        pytest.param((), "NOASSERTION", [], id="none"),
    ],
)
def test_license_declared(licenses: tuple[str, ...], declared: str | None, extracted: list[str]) -> None:
    pkg = Package("x", "1", "npm", purl="pkg:npm/x@1", licenses=licenses)
    result = ScanResult(Artifact("dir", ArtifactKind.FILESYSTEM), packages=[pkg], created="2024-01-01T00:00:00Z")
    doc = spdx_document(result)
    (lib,) = [p for p in doc["packages"] if p.get("primaryPackagePurpose") == "LIBRARY"]
    infos = doc.get("hasExtractedLicensingInfos", [])
    assert [i["name"] for i in infos] == extracted
    if declared is None:
        assert lib["licenseDeclared"] == infos[0]["licenseId"]
        assert infos[0]["licenseId"].startswith("LicenseRef-")
    else:
        assert lib["licenseDeclared"] == declared
    assert validate(doc, "spdx-json") == []


def test_byte_stable_and_order_independent(scan_result: ScanResult) -> None:
    first = render(scan_result, "spdx-json")
    shuffled = copy.deepcopy(scan_result)
    random.Random(3).shuffle(shuffled.packages)
    assert render(shuffled, "spdx-json") == first
    assert render_sbom(scan_result, "spdx-json") == first


def test_namespace_follows_content(scan_result: ScanResult) -> None:
    before = spdx_document(scan_result)["documentNamespace"]
    scan_result.packages.pop(0)
    assert spdx_document(scan_result)["documentNamespace"] != before


def test_empty_created_falls_back_to_epoch(scan_result: ScanResult) -> None:
    scan_result.created = ""
    text = render(scan_result, "spdx-json")
    assert json.loads(text)["creationInfo"]["created"] == "1970-01-01T00:00:00Z"
    assert validate(text, "spdx-json") == []
