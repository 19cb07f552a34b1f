"""Scan results built from the real cataloger conformance fixtures, for SBOM round trips."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from garrison.model import Artifact, ArtifactKind, Layer, OperatingSystem, Package, ScanResult
from garrison.model.purl import assign_purls


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def ubuntu_result(conformance_dir: Path) -> ScanResult:
    """Ubuntu 18.04 dpkg packages, Python metadata packages and an npm v3 lockfile, over two layers."""
    cat = conformance_dir / "catalogers"
    status = (cat / "dpkg" / "ubuntu-bionic" / "var" / "lib" / "dpkg" / "status").read_bytes()
    lock = (cat / "npm" / "package-lock_v3.json").read_bytes()
    base, app = _digest(status), _digest(lock)
    os_ = OperatingSystem("ubuntu", "18.04", name="Ubuntu 18.04 LTS", codename="bionic")
    packages = [
        Package(p["name"], p["version"], "deb", cataloger="dpkg", path="var/lib/dpkg/status", layer=base,
                source_name=p["source_name"], source_version=p["source_version"], arch=p["arch"])
        for p in _load(cat / "dpkg" / "expected.json")["fixtures"][0]["packages"]
    ]
    for fx in _load(cat / "python" / "expected.json")["fixtures"]:
        packages += [
            Package(p["name"], p["version"], "pypi", cataloger="python", path=f"usr/lib/python3/dist-packages/{fx['path']}",
                    layer=base, licenses=tuple(p.get("licenses_trivy", [])))
            for p in fx["packages"]
        ]
    v3 = next(f for f in _load(cat / "npm" / "expected.json")["fixtures"] if f["path"].endswith("v3.json"))
    packages += [
        Package(p["name"], p["version"], "npm", cataloger="npm-lock", path="srv/app/package-lock.json", layer=app,
                dev=p["dev"], optional=p["optional"], licenses=("MIT",))
        for p in v3["packages"]
    ]
    assign_purls(packages, os_)
    artifact = Artifact(name="registry.example.com/shop/web:1.4.2", kind=ArtifactKind.REGISTRY, digest=_digest(status + lock),
                        image_id=_digest(lock), repo_tags=("registry.example.com/shop/web:1.4.2",),
                        repo_digests=(f"registry.example.com/shop/web@{_digest(status + lock)}",),
                        created="2024-10-10T17:22:00Z", architecture="amd64", os_name="linux",
                        layers=[Layer(_digest(b"l1" + status), base), Layer(_digest(b"l2" + lock), app)])
    return ScanResult(artifact, packages=packages, os=os_, created="2024-10-10T17:22:00Z", tool_version="0.1.0")


def mariner_result(conformance_dir: Path) -> ScanResult:
    """CBL-Mariner 2.0 rpm packages (epochs, source rpms, licences) from a root filesystem."""
    cat = conformance_dir / "catalogers" / "rpm"
    db = (cat / "cbl-mariner-2.0" / "rpmdb.sqlite").read_bytes()
    os_ = OperatingSystem("cbl-mariner", "2.0", name="CBL-Mariner/Linux")
    packages = [
        Package(p["name"], p["version"], "rpm", cataloger="rpm", path="var/lib/rpm/rpmdb.sqlite", layer=_digest(db),
                source_name=p["source_name"], source_version=p["source_version"], arch=p["arch"], epoch=p["epoch"],
                licenses=(p["license"],) if p.get("license") else ())
        for p in _load(cat / "expected.json")["fixtures"][0]["packages"]
    ]
    assign_purls(packages, os_)
    artifact = Artifact(name="rootfs/mariner", kind=ArtifactKind.ROOTFS, created="2023-01-01T00:00:00Z")
    return ScanResult(artifact, packages=packages, os=os_, created="2023-01-01T00:00:00Z", tool_version="0.1.0")


def source_tree_result(conformance_dir: Path) -> ScanResult:
    """A directory scan: npm packages only, no operating system, no layers."""
    result = ubuntu_result(conformance_dir)
    packages = [p for p in result.packages if p.type == "npm"]
    for p in packages:
        p.layer = None
    return ScanResult(Artifact(name="srv/app", kind=ArtifactKind.FILESYSTEM), packages=packages, created="",
                      tool_version="0.1.0")
