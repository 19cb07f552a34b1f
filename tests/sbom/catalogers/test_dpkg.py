"""dpkg cataloger: upstream conformance data, with Debian's dpkg-query as the oracle."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.dpkg import DpkgCataloger, parse_control, parse_status
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.registry import default_registry

FIELDS = ("name", "version", "source_name", "source_version", "arch")
HOST_STATUS = Path("/var/lib/dpkg/status")
# dpkg-query's ${db:Status-Abbrev} second letter for installed, triggers-pending, triggers-awaited
INSTALLED_ABBREV = frozenset("itW")


@pytest.fixture(scope="session")
def dpkg_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "catalogers" / "dpkg"


def _catalog(data: bytes, path: str = "var/lib/dpkg/status") -> list[Package]:
    return DpkgCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data))


def _row(p: Package) -> tuple[Any, ...]:
    return tuple(getattr(p, f) for f in FIELDS)


def dpkg_query(admindir: Path) -> set[tuple[str, ...]]:
    fmt = "${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${Architecture}\\n"
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W", "-f", fmt], capture_output=True, text=True, check=True
    )
    rows = set()
    for line in out.stdout.splitlines():
        abbrev, *fields = line.split("\t")
        if abbrev[1] in INSTALLED_ABBREV:
            rows.add(tuple(fields))
    return rows


def test_registered() -> None:
    assert isinstance(default_registry().get("dpkg"), DpkgCataloger)


def test_conformance(dpkg_dir: Path) -> None:
    expected = json.loads((dpkg_dir / "expected.json").read_text())
    for fixture in expected["fixtures"]:
        pkgs = _catalog((dpkg_dir / fixture["path"]).read_bytes())
        assert {_row(p) for p in pkgs} == {tuple(e[f] for f in FIELDS) for e in fixture["packages"]}
        assert len(pkgs) == len(fixture["packages"])
        names = {p.name for p in pkgs}
        for skipped in fixture["skipped"]:
            assert skipped["name"] not in names


def test_conformance_matches_dpkg_query(dpkg_dir: Path, tmp_path: Path) -> None:
    status = dpkg_dir / "ubuntu-bionic/var/lib/dpkg/status"
    shutil.copy(status, tmp_path / "status")
    (tmp_path / "info").mkdir()
    (tmp_path / "updates").mkdir()
    want = dpkg_query(tmp_path)
    assert len(want) == 90
    assert {_row(p) for p in _catalog(status.read_bytes())} == want


def test_machine_status_matches_dpkg_query() -> None:
    pkgs = _catalog(HOST_STATUS.read_bytes())
    assert {_row(p) for p in pkgs} == dpkg_query(Path("/var/lib/dpkg"))
    dpkg = next(p for p in pkgs if p.name == "dpkg")
    assert dpkg.metadata["maintainer"]
    assert dpkg.metadata["installed_size"] > 0


def test_parse_speed() -> None:
    """A full system's status (the machine's own, padded to 1000 packages) parses without pathology."""
    text = HOST_STATUS.read_text()
    count = len(parse_status(text))
    if count < 1000:
        stanzas = text.strip("\n").split("\n\n")
        extra = [s.replace("Package: ", "Package: copy-", 1) for s in stanzas[: 1000 - count]]
        text = text.rstrip("\n") + "\n\n" + "\n\n".join(extra) + "\n"
    best = min(_timed(parse_status, text) for _ in range(5))
    assert len(parse_status(text)) >= 1000
    assert best < 0.25, f"{best * 1000:.1f} ms"  # a guard against pathologies; figures are in benchmarks/


def _timed(fn: Any, arg: str) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


STANZA = """\
Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12987
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 This package includes shared versions of the standard C library.
"""


def test_fields_and_metadata() -> None:
    (pkg,) = _catalog(STANZA.encode())
    assert _row(pkg) == ("libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4", "amd64")
    assert pkg.type == "deb"
    assert pkg.metadata == {
        "maintainer": "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
        "installed_size": 12987,
        "multi_arch": "same",
        "status": "install ok installed",
    }


def test_continuation_crlf_and_case() -> None:
    text = STANZA.replace("Source: glibc", "source: glibc (2.36-9)").replace("\n", "\r\n")
    (pkg,) = _catalog(text.encode())
    assert (pkg.source_name, pkg.source_version) == ("glibc", "2.36-9")
    ((_, stanza),) = parse_control(STANZA)
    assert stanza["Description"].count("\n") == 4


def test_binary_package_with_arch_qualifier() -> None:
    text = STANZA.replace("Package: libc6", "Package: libc6:i386").replace("Architecture: amd64\n", "")
    (pkg,) = _catalog(text.encode())
    assert (pkg.name, pkg.arch) == ("libc6", "i386")


@pytest.mark.parametrize(
    ("status", "installed"),
    [
        ("install ok installed", True),
        ("hold ok installed", True),
        ("install ok triggers-pending", True),
        ("install ok triggers-awaited", True),
        ("deinstall ok config-files", False),
        ("install ok unpacked", False),
        ("install ok half-configured", False),
        ("purge ok not-installed", False),
    ],
)
def test_status_values(status: str, installed: bool) -> None:
    text = STANZA.replace("install ok installed", status)
    assert bool(_catalog(text.encode())) is installed


def test_distroless_status_d() -> None:
    """Distroless keeps one control stanza per file in status.d, without a Status field."""
    text = "".join(line + "\n" for line in STANZA.splitlines() if not line.startswith("Status:"))
    cat = DpkgCataloger()
    assert cat.required("var/lib/dpkg/status.d/libc6", FileInfo("var/lib/dpkg/status.d/libc6", 10))
    assert not cat.required("var/lib/dpkg/status.d/libc6.md5sums", FileInfo("x", 10))
    assert not cat.required("var/lib/dpkg/status-old", FileInfo("x", 10))
    (pkg,) = _catalog(text.encode(), "var/lib/dpkg/status.d/libc6")
    assert pkg.name == "libc6" and pkg.metadata["status_file"] == "libc6"
    assert _catalog(text.encode()) == []  # the main status file needs a Status


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("Package: a\nno colon here\n", "line 2: expected", id="no-colon"),
        pytest.param(" leading continuation\n", "line 1: continuation line outside", id="orphan-continuation"),
        pytest.param("Package: a\nPackage: b\n", "duplicate field Package", id="duplicate"),
        pytest.param(
            "Package: a\nStatus: install ok installed\nVersion: 1\nSource: a b c\n", "bad Source", id="bad-source"
        ),
        pytest.param("Status: install ok installed\nVersion: 1\n", "no Package field", id="no-package"),
    ],
)
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(CatalogError, match=r"^var/lib/dpkg/status: malformed dpkg status: .*" + message):
        _catalog(text.encode())
