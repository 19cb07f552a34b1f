"""CycloneDX 1.6: schema validity (strict), content, determinism, VEX form and speed."""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path

import pytest
from cyclonedx.model.bom import Bom

from garrison.model import (
    CVSS,
    Artifact,
    ArtifactKind,
    Finding,
    FindingKind,
    Package,
    ScanResult,
    Severity,
    Vulnerability,
    VulnMatch,
)
from garrison.report import render, render_sbom
from garrison.report.cyclonedx import cyclonedx_document, licenses
from garrison.report.validate import validate
from garrison.scan.suppress import apply_suppressions, load_vex


@pytest.mark.parametrize("mode", [pytest.param("scan", id="scan"), pytest.param("sbom", id="sbom")])
def test_valid_against_strict_schema(mode: str, scan_result: ScanResult) -> None:
    text = render(scan_result, "cyclonedx") if mode == "scan" else render_sbom(scan_result, "cyclonedx")
    assert validate(text, "cyclonedx") == []


def test_library_reads_document_back(scan_result: ScanResult) -> None:
    """cyclonedx-python-lib, an independent reader, sees every component and vulnerability."""
    doc = json.loads(render(scan_result, "cyclonedx"))
    doc.pop("$schema")
    bom = Bom.from_json(doc)  # type: ignore[attr-defined]
    assert {str(c.bom_ref) for c in bom.components} == {c["bom-ref"] for c in doc["components"]}
    assert len(bom.vulnerabilities) == len(doc["vulnerabilities"])
    assert bom.metadata.component is not None and bom.metadata.component.name == "registry.example.com/shop/web:1.4.2"


def test_metadata_describes_image(scan_result: ScanResult) -> None:
    doc = cyclonedx_document(scan_result)
    root = doc["metadata"]["component"]
    assert root["type"] == "container"
    assert root["version"] == scan_result.artifact.digest
    assert root["purl"].startswith("pkg:oci/web@sha256:")
    props = {(p["name"], p["value"]) for p in root["properties"]}
    assert ("garrison:image:repo_tag", scan_result.artifact.repo_tags[0]) in props
    assert ("garrison:image:layer:000", scan_result.artifact.layers[0].diff_id) in props
    assert doc["metadata"]["timestamp"] == scan_result.created
    assert doc["metadata"]["tools"]["components"][0]["name"] == "garrison"


def test_filesystem_root_is_application(scan_result: ScanResult) -> None:
    scan_result.artifact = Artifact(name="srv/app", kind=ArtifactKind.FILESYSTEM)
    root = cyclonedx_document(scan_result)["metadata"]["component"]
    assert root["type"] == "application"
    assert root["name"] == "srv/app"
    assert "purl" not in root


def test_components(scan_result: ScanResult) -> None:
    doc = cyclonedx_document(scan_result, vulnerabilities=False)
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    os_comps = [c for c in doc["components"] if c["type"] == "operating-system"]
    assert [(c["name"], c["version"]) for c in os_comps] == [("ubuntu", "18.04")]
    assert len(by_ref) == len(scan_result.packages) + 1
    for pkg in scan_result.packages:
        if pkg.name == "distlib":
            continue  # same purl twice, see test_duplicate_purls_get_unique_refs
        comp = by_ref[pkg.purl]
        assert (comp["name"], comp.get("version"), comp["purl"]) == (pkg.name, pkg.version, pkg.purl)
        props = {p["name"]: p["value"] for p in comp["properties"]}
        assert props["garrison:layer:diff_id"] == pkg.layer
        assert props["garrison:package:path"] == pkg.path
        if pkg.source_name:
            assert props["garrison:package:source_name"] == pkg.source_name
    deps = {d["ref"]: set(d["dependsOn"]) for d in doc["dependencies"]}
    root = doc["metadata"]["component"]["bom-ref"]
    os_ref = os_comps[0]["bom-ref"]
    assert os_ref in deps[root]
    assert all(by_ref[r]["purl"].startswith("pkg:deb/") for r in deps[os_ref])
    assert set(by_ref) == deps[root] | deps[os_ref]


def test_duplicate_purls_get_unique_refs(scan_result: ScanResult) -> None:
    dupes = [p for p in scan_result.packages if p.name == "distlib"]
    assert len(dupes) == 2 and dupes[0].purl == dupes[1].purl
    doc = cyclonedx_document(scan_result)
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))
    distlib = [c for c in doc["components"] if c["name"] == "distlib"]
    assert {c["purl"] for c in distlib} == {dupes[0].purl}
    assert {c["bom-ref"] for c in distlib} != {dupes[0].purl}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(("MIT",), [{"license": {"id": "MIT"}}], id="spdx-id"),
        pytest.param(("apache-2.0",), [{"license": {"id": "Apache-2.0"}}], id="id-case-fixed"),
        pytest.param(("GPLv2+",), [{"license": {"name": "GPLv2+"}}], id="name"),
        pytest.param(("MIT OR Apache-2.0",), [{"expression": "MIT OR Apache-2.0"}], id="expression"),
        pytest.param(
            ("MIT", "Python license"), [{"license": {"id": "MIT"}}, {"license": {"name": "Python license"}}], id="mixed"
        ),
        pytest.param((), [], id="none"),
    ],
)
def test_licenses(values: tuple[str, ...], expected: list[dict[str, object]]) -> None:
    assert licenses(values) == expected


def test_vulnerabilities(scan_result: ScanResult) -> None:
    doc = cyclonedx_document(scan_result)
    refs = {c["bom-ref"] for c in doc["components"]}
    vulns = doc["vulnerabilities"]
    expected_ids = {f.id for f in scan_result.findings if f.kind == FindingKind.VULNERABILITY}
    assert {v["id"] for v in vulns} == expected_ids
    for v in vulns:
        assert all(a["ref"] in refs for a in v["affects"])
    scored = next(v for v in vulns if v["id"] == "PYSEC-2023-161")
    methods = [r["method"] for r in scored["ratings"]]
    assert methods[0] == "CVSSv31" and methods[-1] == "other"
    assert scored["ratings"][0]["score"] == pytest.approx(7.8)
    assert scored["ratings"][0]["severity"] == "high"
    assert scored["recommendation"] == "Upgrade gitpython to 3.1.33"
    affects = scored["affects"][0]["versions"]
    assert {"version": "3.1.9", "status": "affected"} in affects
    assert {"version": "3.1.33", "status": "unaffected"} in affects


def test_suppressed_findings_become_vex_analysis(scan_result: ScanResult) -> None:
    doc = cyclonedx_document(scan_result)
    analysed = {v["id"]: v["analysis"] for v in doc["vulnerabilities"] if "analysis" in v}
    suppressed = {f.id for f in scan_result.findings if f.suppressed}
    assert set(analysed) == suppressed
    assert analysed["CVE-2020-27350"] == {
        "state": "not_affected",
        "justification": "code_not_reachable",
        "detail": "code_not_reachable (suppressed by vex vex/app.cdx.json)",
    }
    assert analysed["PYSEC-2022-43012"]["state"] == "not_affected"
    assert "justification" not in analysed["PYSEC-2022-43012"]
    same_id = [v for v in doc["vulnerabilities"] if v["id"] == "CVE-2020-27350"]
    assert len(same_id) == 2, "the suppressed and the open finding of one CVE are separate entries"


def test_vex_output_is_read_by_garrison_vex_loader(scan_result: ScanResult, tmp_path: Path) -> None:
    """The scan's CycloneDX, used as VEX for a fresh copy of the findings, suppresses exactly the same ones."""
    path = tmp_path / "scan.cdx.json"
    path.write_text(render(scan_result, "cyclonedx"))
    fresh = copy.deepcopy(scan_result.findings)
    for f in fresh:
        f.suppression = None
    apply_suppressions(fresh, load_vex(path))
    assert {(f.id, f.vuln.package.name) for f in fresh if f.suppressed and f.vuln} == {
        (f.id, f.vuln.package.name) for f in scan_result.findings if f.suppressed and f.vuln
    }


def test_byte_stable_and_order_independent(scan_result: ScanResult) -> None:
    first = render(scan_result, "cyclonedx")
    assert render(scan_result, "cyclonedx") == first
    shuffled = copy.deepcopy(scan_result)
    random.Random(7).shuffle(shuffled.packages)
    random.Random(8).shuffle(shuffled.findings)
    assert render(shuffled, "cyclonedx") == first


def test_serial_number_follows_content(scan_result: ScanResult) -> None:
    a = cyclonedx_document(scan_result)["serialNumber"]
    assert cyclonedx_document(scan_result, vulnerabilities=False)["serialNumber"] != a
    scan_result.packages.pop()
    assert cyclonedx_document(scan_result)["serialNumber"] != a


def test_no_timestamp_without_created(scan_result: ScanResult) -> None:
    scan_result.created = ""
    text = render(scan_result, "cyclonedx")
    assert "timestamp" not in json.loads(text)["metadata"]
    assert validate(text, "cyclonedx") == []


def _big_result(n_packages: int, n_findings: int) -> ScanResult:
    packages = [
        Package(f"lib{i}", f"1.{i % 50}.{i % 7}", "npm", path=f"app{i % 20}/package-lock.json", layer="sha256:" + "ab" * 32,
                purl=f"pkg:npm/lib{i}@1.{i % 50}.{i % 7}", licenses=("MIT",))
        for i in range(n_packages)
    ]
    findings = []
    for j in range(n_findings):
        pkg = packages[j % n_packages]
        vuln = Vulnerability(f"CVE-2024-{j // 2:05d}", aliases=(f"GHSA-{j:04d}-xxxx-yyyy",), summary="Prototype pollution",
                             details="A crafted payload can pollute Object.prototype. " * 5, severity=Severity.HIGH,
                             severity_source="ghsa", cvss=(CVSS("3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "nvd"),),
                             references=("https://github.com/advisories",), cwes=("CWE-1321",))
        match = VulnMatch(vuln, pkg, pkg.version, fixed_versions=("9.9.9",), data_source="osv:npm")
        findings.append(Finding(vuln.id, FindingKind.VULNERABILITY, Severity.HIGH, "Prototype pollution", pkg.path, vuln=match))
    return ScanResult(Artifact(name="big:1", kind=ArtifactKind.DOCKER_ARCHIVE), packages=packages, findings=findings,
                      created="2024-01-01T00:00:00Z", tool_version="0.1.0")


def test_speed_5000_packages_20000_findings() -> None:
    result = _big_result(5000, 20000)
    start = time.perf_counter()
    text = render(result, "cyclonedx")
    elapsed = time.perf_counter() - start
    doc = json.loads(text)
    assert len(doc["components"]) == 5000
    assert len(doc["vulnerabilities"]) == 10000
    assert elapsed < 10.0, f"rendering took {elapsed:.2f}s"
