"""apk cataloger against Trivy's Alpine fixture (no apk tool exists on Debian to ask)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.apk import ApkCataloger, split_licenses
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.registry import default_registry

FIELDS = ("name", "version", "source_name", "source_version", "arch")
PATH = "lib/apk/db/installed"


@pytest.fixture(scope="session")
def apk_dir(conformance_dir: Path) -> Path:
    return conformance_dir / "catalogers" / "apk"


def _catalog(data: bytes) -> list[Package]:
    return ApkCataloger().catalog(CatalogInput(FileInfo(PATH, len(data)), data=data))


def test_registered() -> None:
    cat = default_registry().get("apk")
    assert isinstance(cat, ApkCataloger)
    assert cat.required(PATH, FileInfo(PATH, 1))
    assert not cat.required("lib/apk/db/installed.new", FileInfo("x", 1))


def test_conformance(apk_dir: Path) -> None:
    expected = json.loads((apk_dir / "expected.json").read_text())
    for fixture in expected["fixtures"]:
        pkgs = _catalog((apk_dir / fixture["path"]).read_bytes())
        assert {tuple(getattr(p, f) for f in FIELDS) for p in pkgs} == {
            tuple(e[f] for f in FIELDS) for e in fixture["packages"]
        }
        assert len(pkgs) == len(fixture["packages"])
        for skipped in fixture["skipped"]:
            assert skipped["name"] not in {p.name for p in pkgs}


def test_metadata_from_fixture(apk_dir: Path) -> None:
    pkgs = {p.name: p for p in _catalog((apk_dir / "alpine/lib/apk/db/installed").read_bytes())}
    musl = pkgs["musl"]
    assert musl.type == "apk"
    assert musl.licenses == ("MIT",)
    assert musl.metadata["maintainer"].startswith("Timo Ter")
    assert musl.metadata["installed_size"] > 0


RECORD = """\
C:Q1abc=
P:libcrypto3
V:3.1.4-r5
A:aarch64
S:1731213
I:4153344
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1706000000
c:8d3fa2bc6a10
D:so:libc.musl-aarch64.so.1
p:so:libcrypto.so.3=3
F:lib
R:libcrypto.so.3
a:0:0:755
Z:Q1xyz=
"""


def test_record_fields() -> None:
    (pkg,) = _catalog((RECORD + "\n" + RECORD.replace("P:libcrypto3", "P:libssl3")).encode())[:1]
    assert (pkg.name, pkg.version, pkg.arch, pkg.source_name) == ("libcrypto3", "3.1.4-r5", "aarch64", "openssl")
    assert pkg.metadata == {
        "maintainer": "Ariadne Conill <ariadne@dereferenced.org>",
        "url": "https://www.openssl.org/",
        "description": "Crypto library from openssl",
        "commit": "8d3fa2bc6a10",
        "installed_size": 4153344,
        "size": 1731213,
        "build_time": 1706000000,
    }


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("MIT", ("MIT",)),
        ("MIT BSD GPL2+", ("MIT", "BSD", "GPL2+")),
        ("GPL-2.0-or-later OR MIT", ("GPL-2.0-or-later OR MIT",)),
        ("(MIT AND BSD-2-Clause)", ("(MIT AND BSD-2-Clause)",)),
        ("", ()),
    ],
)
def test_split_licenses(value: str, want: tuple[str, ...]) -> None:
    assert split_licenses(value) == want


def test_record_without_version_or_name_skipped() -> None:
    assert _catalog(b"P:a\nA:x86_64\n\nV:1.0\n\n") == []


@pytest.mark.parametrize("line", ["Pfoo", "this is not apk", "P"])
def test_malformed(line: str) -> None:
    with pytest.raises(CatalogError, match=rf"^{PATH}: malformed apk database: line 2"):
        _catalog(f"P:a\n{line}\nV:1\n".encode())
