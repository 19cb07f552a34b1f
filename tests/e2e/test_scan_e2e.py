"""End to end through the CLI, as a user runs it: import the bundled real advisories, SBOM and scan
the bundled sample image (demo/sample-image.tar, built from real parts by demo/build-sample.sh),
and check the outputs against the formats' schemas and against an independent reading of the
same OSV records (``packaging`` evaluating the ranges), never against a hard-coded answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.version import InvalidVersion, Version

from garrison.report.validate import validate

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "demo" / "sample-image.tar"
ADVISORIES = REPO / "demo" / "advisories"


def garrison(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("e2e")
    e = {"GARRISON_DB": str(tmp / "garrison.db"), "GARRISON_CACHE_DIR": str(tmp / "cache"), "SOURCE_DATE_EPOCH": "1767225600"}
    out = garrison("db", "import", str(ADVISORIES), env=e)
    assert out.returncode == 0, out.stderr
    return e


@pytest.fixture(scope="module")
def sbom(env: dict[str, str]) -> dict[str, Any]:
    out = garrison("sbom", str(IMAGE), "--format", "cyclonedx", env=env)
    assert out.returncode == 0, out.stderr
    assert validate(out.stdout, "cyclonedx") == []
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


@pytest.fixture(scope="module")
def scan(env: dict[str, str]) -> dict[str, Any]:
    out = garrison("scan", "image", str(IMAGE), "--format", "cyclonedx", env=env)
    assert out.returncode == 0, out.stderr
    assert validate(out.stdout, "cyclonedx") == []
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _image_truth() -> dict[str, set[tuple[str, str]]]:
    """What the image holds, read straight from its layers with tarfile (no Garrison code)."""
    truth: dict[str, set[tuple[str, str]]] = {"pypi": set(), "npm": set(), "deb": set()}
    with tarfile.open(IMAGE) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer_name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer_name)) as layer:
                for m in layer.getmembers():
                    name = m.name.lstrip("./")
                    if name.endswith(".dist-info/METADATA"):
                        headers = layer.extractfile(m).read().decode()  # type: ignore[union-attr]
                        fields = dict(
                            line.split(": ", 1) for line in headers.split("\n\n")[0].splitlines() if ": " in line
                        )
                        truth["pypi"].add((fields["Name"].lower().replace("_", "-"), fields["Version"]))
                    elif "/node_modules/" in f"/{name}" and name.endswith("package.json") and name.count("node_modules/") == 1:
                        if name.split("node_modules/", 1)[1].count("/") == 1:
                            pkg = json.load(layer.extractfile(m))  # type: ignore[arg-type]
                            truth["npm"].add((pkg["name"], pkg["version"]))
                    elif name.startswith("var/lib/dpkg/status.d/") and m.isfile():
                        text = layer.extractfile(m).read().decode()  # type: ignore[union-attr]
                        fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line and not line.startswith(" "))
                        truth["deb"].add((fields["Package"], fields["Version"]))
    return truth


def _components(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in doc.get("components", [])}


def test_sbom_lists_what_the_image_holds(sbom: dict[str, Any]) -> None:
    assert sbom["specVersion"] == "1.6"
    found: dict[str, set[tuple[str, str]]] = {"pypi": set(), "npm": set(), "deb": set(), "golang": set()}
    for c in sbom["components"]:
        purl = c.get("purl", "")
        kind = purl[4:].split("/", 1)[0] if purl.startswith("pkg:") else ""
        if kind in found:
            found[kind].add((c["name"].lower() if kind == "pypi" else c["name"], c["version"]))
    truth = _image_truth()
    assert truth["pypi"] and truth["npm"] and truth["deb"]
    assert found["pypi"] == truth["pypi"]
    assert truth["npm"] <= found["npm"]
    assert found["deb"] == truth["deb"]
    # the Go binary: its stdlib and main module come from the ELF build info
    assert any(name == "stdlib" for name, _ in found["golang"])


def _osv_records(zip_path: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(zip_path) as z:
        return [json.loads(z.read(n)) for n in z.namelist() if n.endswith(".json")]


def _pypi_affected(record: dict[str, Any], name: str, version: str) -> bool:
    """An independent reading of OSV's ECOSYSTEM ranges and versions lists for PyPI."""
    v = Version(version)
    for aff in record.get("affected", []):
        pkg = aff.get("package", {})
        if pkg.get("ecosystem") != "PyPI" or pkg.get("name", "").lower().replace("_", "-") != name:
            continue
        if version in aff.get("versions", []):
            return True
        for rng in aff.get("ranges", []):
            if rng.get("type") != "ECOSYSTEM":
                continue
            events = sorted(
                rng["events"],
                key=lambda e: Version("0") if e.get("introduced") == "0" else Version(next(iter(e.values()))),
            )
            affected = False
            for ev in events:
                try:
                    if "introduced" in ev and (ev["introduced"] == "0" or v >= Version(ev["introduced"])):
                        affected = True
                    elif "fixed" in ev and v >= Version(ev["fixed"]):
                        affected = False
                    elif "last_affected" in ev and v > Version(ev["last_affected"]):
                        affected = False
                except InvalidVersion:
                    continue
            if affected:
                return True
    return False


def test_python_findings_agree_with_an_independent_reading(scan: dict[str, Any]) -> None:
    comps = _components(scan)
    pypi = {ref: c for ref, c in comps.items() if c.get("purl", "").startswith("pkg:pypi/")}
    records = [r for r in _osv_records(ADVISORIES / "osv-PyPI.zip") if not r.get("withdrawn")]
    expected: set[tuple[str, str]] = set()
    for ref, c in pypi.items():
        name = c["name"].lower().replace("_", "-")
        for r in records:
            if _pypi_affected(r, name, c["version"]):
                expected.add((r["id"], ref))
    got: set[tuple[str, str]] = set()
    for v in scan.get("vulnerabilities", []):
        for a in v["affects"]:
            if a["ref"] in pypi:
                got.add((v["id"], a["ref"]))
    assert expected, "the demo advisories should affect the demo's old Python packages"
    assert got == expected


def test_every_vulnerability_points_at_a_component_and_explains_itself(scan: dict[str, Any]) -> None:
    comps = _components(scan)
    vulns = scan["vulnerabilities"]
    assert vulns
    for v in vulns:
        assert v["affects"] and all(a["ref"] in comps for a in v["affects"])
        assert v.get("source", {}).get("name")
        assert v.get("ratings"), v["id"]


def test_go_stdlib_findings_come_from_the_binary(scan: dict[str, Any]) -> None:
    comps = _components(scan)
    stdlib_refs = {ref for ref, c in comps.items() if c.get("name") == "stdlib"}
    assert stdlib_refs
    go_ids = {r["id"] for r in _osv_records(ADVISORIES / "osv-Go.zip")}
    hits = {v["id"] for v in scan["vulnerabilities"] if any(a["ref"] in stdlib_refs for a in v["affects"])}
    assert hits and hits <= go_ids


def test_output_is_byte_stable(env: dict[str, str]) -> None:
    a = garrison("scan", "image", str(IMAGE), "--format", "json", env=env)
    b = garrison("scan", "image", str(IMAGE), "--format", "json", "--no-cache", env=env)
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout


def test_sarif_and_spdx_validate(env: dict[str, str]) -> None:
    sarif = garrison("scan", "image", str(IMAGE), "--format", "sarif", env=env)
    assert sarif.returncode == 0, sarif.stderr
    assert validate(sarif.stdout, "sarif") == []
    assert json.loads(sarif.stdout)["runs"][0]["results"]
    spdx = garrison("sbom", str(IMAGE), "--format", "spdx-json", env=env)
    assert spdx.returncode == 0, spdx.stderr
    assert validate(spdx.stdout, "spdx-json") == []


def test_gate_exit_codes(env: dict[str, str], scan: dict[str, Any]) -> None:
    severities = {r["severity"] for v in scan["vulnerabilities"] for r in v["ratings"]}
    assert "critical" in severities or "high" in severities
    failed = garrison("scan", "image", str(IMAGE), "--fail-on", "HIGH", "--format", "json", env=env)
    assert failed.returncode == 1, failed.stderr
    passed = garrison("scan", "image", str(IMAGE), "--fail-on", "HIGH", "--severity", "LOW", "--format", "json", env=env)
    assert passed.returncode == 0, passed.stderr


def test_secret_in_a_layer_is_found_and_redacted(env: dict[str, str]) -> None:
    out = garrison("scan", "image", str(IMAGE), "--scanners", "secret", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    secrets = [f for f in doc["findings"] if f["kind"] == "secret"]
    assert secrets
    assert any("private key" in f["title"].lower() and f["target"].endswith("settings.env") for f in secrets)
    with tarfile.open(IMAGE) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer_name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer_name)) as layer:
                for m in layer.getmembers():
                    if m.name.endswith("settings.env"):
                        body = layer.extractfile(m).read().decode()  # type: ignore[union-attr]
                        key_line = next(line for line in body.splitlines() if len(line) > 40 and "=" not in line)
                        assert key_line not in out.stdout


def test_vex_suppresses_a_finding(env: dict[str, str], scan: dict[str, Any], tmp_path: Path) -> None:
    comps = _components(scan)
    target = scan["vulnerabilities"][0]
    purl = comps[target["affects"][0]["ref"]]["purl"]
    vex = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "security@example.com",
        "timestamp": "2026-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": target["id"]},
                "products": [{"@id": purl}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            }
        ],
    }
    path = tmp_path / "app.openvex.json"
    path.write_text(json.dumps(vex))
    out = garrison("scan", "image", str(IMAGE), "--format", "cyclonedx", "--vex", str(path), env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    same = [v for v in doc["vulnerabilities"] if v["id"] == target["id"] and v["affects"] == target["affects"]]
    assert same and same[0]["analysis"]["state"] == "not_affected"


def test_db_status_reports_the_import(env: dict[str, str]) -> None:
    out = garrison("db", "status", "--format", "json", env=env)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert "osv:PyPI" in json.dumps(status)


def test_sbom_round_trip_scan(env: dict[str, str], tmp_path: Path, scan: dict[str, Any]) -> None:
    sbom_file = tmp_path / "sbom.cdx.json"
    out = garrison("sbom", str(IMAGE), "--format", "cyclonedx", "--output", str(sbom_file), env=env)
    assert out.returncode == 0, out.stderr
    again = garrison("scan", "sbom", str(sbom_file), "--format", "cyclonedx", env=env)
    assert again.returncode == 0, again.stderr
    ids = {v["id"] for v in json.loads(again.stdout)["vulnerabilities"]}
    assert ids == {v["id"] for v in scan["vulnerabilities"]}
