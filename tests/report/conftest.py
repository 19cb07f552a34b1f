"""A realistic scan result built from real upstream data, for the renderer tests.

Packages: the Ubuntu 18.04 dpkg status fixture, the Python metadata fixtures, the npm v3 lockfile
fixture, and PyPI packages at versions that real OSV records list as affected. Vulnerabilities:
real PyPI OSV records (CVSS scored with the ``cvss`` library) and real Debian Security Advisories,
kept only where Debian's own ``dpkg --compare-versions`` says the installed version is older than
the fixed one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cvss import CVSS3, CVSS4
from packaging.version import InvalidVersion, Version

from garrison.model import (
    CVSS,
    Artifact,
    ArtifactKind,
    Finding,
    FindingKind,
    Layer,
    OperatingSystem,
    Package,
    ScanResult,
    SecretMatch,
    Severity,
    Suppression,
    Vulnerability,
    VulnMatch,
    VulnStatus,
)
from garrison.model.purl import assign_purls

CREATED = "2024-10-10T17:22:00Z"
TOOL_VERSION = "0.1.0"
EXTRA_PYPI = ("aiohttp", "gitpython", "jinja2", "requests", "urllib3")
DSA_SOURCES = ("apt", "systemd", "tar", "gnutls28")
MAX_PER_PACKAGE = 3


def target_of(pkg: Package, os_: OperatingSystem) -> str:
    """The group heading a finding is listed under, as the scan pipeline names it."""
    if pkg.type in ("deb", "apk", "rpm"):
        return f"{os_.family} {os_.version} ({pkg.type})"
    if pkg.type == "pypi" and pkg.path.endswith(("METADATA", "PKG-INFO")):
        return "python packages"
    return pkg.path or pkg.type


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _osv_records(advisories_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """PyPI OSV records by lower-case package name (withdrawn ones left out)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    with zipfile.ZipFile(advisories_dir / "osv" / "PyPI" / "all.zip") as z:
        for member in sorted(z.namelist()):
            rec = json.loads(z.read(member))
            if rec.get("withdrawn"):
                continue
            for aff in rec.get("affected", []):
                name = aff.get("package", {}).get("name", "").lower()
                by_name.setdefault(name, []).append(rec)
    return by_name


def _affected(rec: dict[str, Any], name: str, version: str) -> tuple[bool, tuple[str, ...], str]:
    """Whether ``version`` of ``name`` is affected, the fixed versions and the range text."""
    try:
        v = Version(version)
    except InvalidVersion:
        return False, (), ""
    for aff in rec.get("affected", []):
        if aff.get("package", {}).get("name", "").lower() != name.lower():
            continue
        listed = version in aff.get("versions", [])
        for rng in aff.get("ranges", []):
            if rng.get("type") != "ECOSYSTEM":
                continue
            introduced, fixed = "0", ""
            for ev in rng.get("events", []):
                introduced = ev.get("introduced", introduced)
                fixed = ev.get("fixed", fixed)
                if fixed:
                    try:
                        lo = Version(introduced) if introduced != "0" else Version("0")
                        hit = lo <= v < Version(fixed)
                    except InvalidVersion:
                        hit = False
                    if hit or listed:
                        return True, (fixed,), f">={introduced}, <{fixed}"
                    introduced, fixed = "0", ""
            if listed:
                return True, (), f">={introduced}"
        if listed:
            return True, (), "listed version"
    return False, (), ""


def _cvss(rec: dict[str, Any]) -> tuple[CVSS, ...]:
    out = []
    for sev in rec.get("severity", []):
        vector = sev.get("score", "")
        if sev.get("type") == "CVSS_V3" and vector.startswith("CVSS:3"):
            out.append(CVSS(vector[5:8], vector, float(CVSS3(vector).base_score), "osv"))
        elif sev.get("type") == "CVSS_V4" and vector.startswith("CVSS:4"):
            out.append(CVSS("4.0", vector, float(CVSS4(vector).base_score), "osv"))
    return tuple(out)


def _vulnerability(rec: dict[str, Any]) -> Vulnerability:
    cvss = _cvss(rec)
    best = max((c.score for c in cvss), default=None)
    cwes = tuple(rec.get("database_specific", {}).get("cwe_ids", []) or ())
    return Vulnerability(
        id=rec["id"],
        aliases=tuple(rec.get("aliases", []) or ()),
        summary=rec.get("summary", ""),
        details=rec.get("details", ""),
        severity=Severity.from_cvss_score(best),
        severity_source="osv" if cvss else "",
        cvss=cvss,
        references=tuple(r["url"] for r in rec.get("references", []) if r.get("url")),
        cwes=cwes,
        published=str(rec.get("published", "")),
        modified=str(rec.get("modified", "")),
    )


def _dsa_entries(advisories_dir: Path) -> dict[str, dict[str, Any]]:
    """Newest DSA with a buster fix for each source package of interest."""
    entries: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in (advisories_dir / "debian" / "DSA.list").read_text(encoding="utf-8", errors="replace").splitlines():
        head = re.match(r"^\[(.+?)\] (DSA-\S+) (\S+) - (.*)$", line)
        if head:
            current = {"id": head.group(2), "source": head.group(3), "title": head.group(4), "cves": [], "fixed": ""}
            continue
        if current is None or current["source"] not in DSA_SOURCES or current["source"] in entries:
            continue
        cves = re.match(r"^\s+\{(.*)\}$", line)
        if cves:
            current["cves"] = cves.group(1).split()
        fix = re.match(r"^\s+\[buster\] - (\S+) (\S+)", line)
        if fix and current["cves"] and not fix.group(2).startswith("<"):
            current["fixed"] = fix.group(2)
            entries[current["source"]] = current
    return entries


def _older(installed: str, fixed: str) -> bool:
    dpkg = shutil.which("dpkg")
    assert dpkg, "dpkg is needed to compare Debian versions"
    return subprocess.run([dpkg, "--compare-versions", installed, "lt", fixed], check=False).returncode == 0


def build_result(conformance_dir: Path, advisories_dir: Path) -> ScanResult:
    cat = conformance_dir / "catalogers"
    status = (cat / "dpkg" / "ubuntu-bionic" / "var" / "lib" / "dpkg" / "status").read_bytes()
    lock = (cat / "npm" / "package-lock_v3.json").read_bytes()
    base_layer, app_layer = _digest(status), _digest(lock)
    os_ = OperatingSystem("ubuntu", "18.04", name="Ubuntu 18.04 LTS", codename="bionic")

    packages: list[Package] = []
    for p in _load(cat / "dpkg" / "expected.json")["fixtures"][0]["packages"]:
        packages.append(
            Package(p["name"], p["version"], "deb", cataloger="dpkg", path="var/lib/dpkg/status", layer=base_layer,
                    source_name=p["source_name"], source_version=p["source_version"], arch=p["arch"])
        )
    for fx in _load(cat / "python" / "expected.json")["fixtures"]:
        for p in fx["packages"]:
            path = f"usr/lib/python3/dist-packages/{fx['path'].replace('.PKG-INFO', '/PKG-INFO').replace('.METADATA', '.dist-info/METADATA')}"
            packages.append(
                Package(p["name"], p["version"], "pypi", cataloger="python-metadata", path=path, layer=base_layer,
                        licenses=tuple(p.get("licenses_trivy", [])))
            )
    npm = _load(cat / "npm" / "expected.json")["fixtures"]
    for p in next(f for f in npm if f["path"].endswith("v3.json"))["packages"]:
        packages.append(
            Package(p["name"], p["version"], "npm", cataloger="npm-lock", path="srv/app/package-lock.json",
                    layer=app_layer, dev=p["dev"], optional=p["optional"])
        )
    osv = _osv_records(advisories_dir)
    for name in EXTRA_PYPI:
        first = next((r for r in osv[name] if r.get("severity")), osv[name][0])
        versions = [v for a in first["affected"] if a["package"]["name"].lower() == name for v in a.get("versions", [])]
        packages.append(
            Package(name, versions[-1], "pypi", cataloger="python-requirements", path="srv/app/requirements.txt",
                    layer=app_layer, licenses=("Apache-2.0",) if name == "requests" else ("MIT",))
        )
    assign_purls(packages, os_)

    findings: list[Finding] = []
    for pkg in packages:
        if pkg.type != "pypi":
            continue
        hits = 0
        for rec in osv.get(pkg.name.lower(), []):
            affected, fixed, rng = _affected(rec, pkg.name, pkg.version)
            if not affected or hits >= MAX_PER_PACKAGE:
                continue
            hits += 1
            vuln = _vulnerability(rec)
            title = vuln.summary or vuln.details.strip().splitlines()[0][:120]
            match = VulnMatch(vuln, pkg, pkg.version, fixed_versions=fixed,
                              status=VulnStatus.FIXED if fixed else VulnStatus.AFFECTED, matched_range=rng,
                              data_source="osv:PyPI", data_source_url=f"https://osv.dev/vulnerability/{vuln.id}",
                              matched_by=pkg.name)
            findings.append(Finding(vuln.id, FindingKind.VULNERABILITY, vuln.severity, title, target_of(pkg, os_), vuln=match))
    for src, entry in sorted(_dsa_entries(advisories_dir).items()):
        for pkg in (p for p in packages if p.type == "deb" and p.source_name == src):
            if not _older(pkg.version, entry["fixed"]):
                continue
            for cve in entry["cves"][:2]:
                vuln = Vulnerability(cve, aliases=(entry["id"],), summary=f"{src}: {entry['title']} ({entry['id']})",
                                     severity_source="debian", references=(f"https://security-tracker.debian.org/tracker/{cve}",))
                match = VulnMatch(vuln, pkg, pkg.version, fixed_versions=(entry["fixed"],), status=VulnStatus.FIXED,
                                  matched_range=f"< {entry['fixed']}", data_source="debian-dsa",
                                  data_source_url=f"https://security-tracker.debian.org/tracker/{entry['id']}", matched_by=src)
                findings.append(Finding(cve, FindingKind.VULNERABILITY, vuln.severity, vuln.summary, target_of(pkg, os_), vuln=match))
    secret = SecretMatch("aws-access-key-id", "AWS", "AWS Access Key ID", "srv/app/.env", 3,
                         "AWS_ACCESS_KEY_ID=AKIA****************", layer=app_layer)
    findings.append(Finding(secret.rule_id, FindingKind.SECRET, Severity.CRITICAL, secret.title, secret.path, secret=secret))

    vulns = [f for f in findings if f.vuln is not None]
    py = next(f for f in vulns if f.vuln is not None and f.vuln.package.type == "pypi")
    py.suppression = Suppression("ignorefile", "not exposed: only used at build time", ".garrisonignore.yaml")
    deb = next(f for f in vulns if f.vuln is not None and f.vuln.package.type == "deb")
    deb.suppression = Suppression("vex", "code_not_reachable", "vex/app.cdx.json", state="not_affected")
    findings.sort(key=lambda f: (f.target, -int(f.severity), f.id, f.vuln.package.name if f.vuln else ""))

    artifact = Artifact(
        name="registry.example.com/shop/web:1.4.2",
        kind=ArtifactKind.REGISTRY,
        digest=_digest(status + lock),
        image_id=_digest(lock + status),
        repo_tags=("registry.example.com/shop/web:1.4.2",),
        repo_digests=(f"registry.example.com/shop/web@{_digest(status + lock)}",),
        created=CREATED,
        architecture="amd64",
        os_name="linux",
        layers=[Layer(_digest(b"base" + status), base_layer, len(status)), Layer(_digest(b"app" + lock), app_layer, len(lock))],
    )
    return ScanResult(artifact=artifact, packages=sorted(packages, key=lambda p: (p.type, p.name, p.version, p.path)),
                      findings=findings, os=os_, created=CREATED, tool_version=TOOL_VERSION, scanners=("secret", "vuln"))


@pytest.fixture(scope="session")
def _base_result(conformance_dir: Path, advisories_dir: Path) -> ScanResult:
    return build_result(conformance_dir, advisories_dir)


@pytest.fixture
def scan_result(_base_result: ScanResult) -> ScanResult:
    """A fresh deep copy per test: tests may change it."""
    return copy.deepcopy(_base_result)


@pytest.fixture
def sbom_result(_base_result: ScanResult) -> ScanResult:
    """The same image without findings, as ``garrison sbom`` produces it."""
    result = copy.deepcopy(_base_result)
    result.findings = []
    result.scanners = ()
    return result


@pytest.fixture
def golden_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "golden"
