"""rpm cataloger over SQLite, Berkeley DB and NDB rpmdbs, with Debian's rpm as the oracle.

tests/assets/rpmdb/ holds one package set in all formats (see build.sh there): rpm writes the
SQLite file and reads the BDB ones back through its ``bdb_ro`` backend; the NDB file is written
by rpm's own NDB code from the same header blobs, so the SQLite reading is its oracle.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._rpmheader import HeaderError, RpmHeader, split_source_rpm
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.rpm import RpmCataloger
from garrison.sbom.registry import default_registry

QF = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{LICENSE}\\t%{SOURCERPM}\\n"
ASSET_FILES = {"rpmdb.sqlite": "sqlite", "Packages": "bdb", "Packages-512": "bdb", "Packages.db": "ndb"}


def _catalog(data: bytes, path: str = "var/lib/rpm/rpmdb.sqlite") -> list[Package]:
    return RpmCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data))


def _row(p: Package) -> tuple[Any, ...]:
    src = p.metadata.get("source_rpm")
    return (p.name, p.version, p.epoch, p.arch, p.licenses[0] if p.licenses else None, src)


def rpm_query(dbpath: Path, backend: str) -> set[tuple[Any, ...]]:
    out = subprocess.run(
        ["rpm", "--dbpath", str(dbpath), "--define", f"_db_backend {backend}", "-qa", "--qf", QF],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = set()
    for line in out.stdout.splitlines():
        name, epoch, version, release, arch, license_, source = line.split("\t")
        if name == "gpg-pubkey":
            continue
        evr = f"{version}-{release}" if epoch == "(none)" else f"{epoch}:{version}-{release}"
        rows.add((name, evr, None if epoch == "(none)" else int(epoch), arch, license_, source))
    return rows


@pytest.fixture(scope="session")
def rpmdb_assets(assets_dir: Path) -> Path:
    return assets_dir / "rpmdb"


@pytest.fixture(scope="session")
def asset_truth(rpmdb_assets: Path, tmp_path_factory: pytest.TempPathFactory) -> set[tuple[Any, ...]]:
    """rpm's reading of the SQLite asset (from a copy: rpm writes lock files next to it)."""
    d = tmp_path_factory.mktemp("rpmsqlite")
    shutil.copy(rpmdb_assets / "rpmdb.sqlite", d / "rpmdb.sqlite")
    return rpm_query(d, "sqlite")


def test_registered() -> None:
    cat = default_registry().get("rpm")
    assert isinstance(cat, RpmCataloger)
    for path in ("var/lib/rpm/Packages", "usr/lib/sysimage/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/Packages.db"):
        assert cat.required(path, FileInfo(path, 1))
    assert not cat.required("var/lib/rpm/Name", FileInfo("x", 1))


def test_conformance_mariner(conformance_dir: Path) -> None:
    folder = conformance_dir / "catalogers" / "rpm"
    expected = json.loads((folder / "expected.json").read_text())
    for fixture in expected["fixtures"]:
        pkgs = _catalog((folder / fixture["path"]).read_bytes())
        got = {(*_row(p), p.source_name, p.source_version) for p in pkgs}
        want = {
            tuple(e[k] for k in ("name", "version", "epoch", "arch", "license", "source_rpm"))
            + tuple(e[k] for k in ("source_name", "source_version"))
            for e in fixture["packages"]
        }
        assert got == want
        assert len(pkgs) == len(fixture["packages"])


def test_mariner_matches_rpm(conformance_dir: Path, tmp_path: Path) -> None:
    src = conformance_dir / "catalogers/rpm/cbl-mariner-2.0/rpmdb.sqlite"
    shutil.copy(src, tmp_path / "rpmdb.sqlite")
    (tmp_path / "rpmdb.sqlite").chmod(0o644)
    assert {_row(p) for p in _catalog(src.read_bytes())} == rpm_query(tmp_path, "sqlite")


@pytest.mark.parametrize("name", sorted(ASSET_FILES))
def test_assets_match_rpm(name: str, rpmdb_assets: Path, asset_truth: set[tuple[Any, ...]]) -> None:
    pkgs = _catalog((rpmdb_assets / name).read_bytes(), f"var/lib/rpm/{name}")
    assert {_row(p) for p in pkgs} == asset_truth
    assert len(pkgs) == len(asset_truth) == 4  # the imported gpg-pubkey is not reported
    assert {p.metadata["rpmdb"] for p in pkgs} == {ASSET_FILES[name]}
    epoch = next(p for p in pkgs if p.name == "garrison-epoch")
    assert (epoch.version, epoch.epoch) == ("2:0.9-1", 2)
    assert epoch.metadata["modularity_label"] == "garrison:1.0:20240101:abcdef12"
    libs = next(p for p in pkgs if p.name == "garrison-hello-libs")
    assert (libs.source_name, libs.source_version) == ("garrison-hello", "1.2.3-4.el9")


@pytest.mark.parametrize("name", ["Packages", "Packages-512"])
def test_bdb_assets_read_by_rpm_bdb_ro(name: str, rpmdb_assets: Path, tmp_path: Path) -> None:
    """Debian's rpm reads the Berkeley DB files itself and agrees."""
    shutil.copy(rpmdb_assets / name, tmp_path / "Packages")
    got = {_row(p) for p in _catalog((rpmdb_assets / name).read_bytes(), "var/lib/rpm/Packages")}
    assert got == rpm_query(tmp_path, "bdb_ro")


SPEC = """\
Name: {name}
{epoch}Version: {version}
Release: {release}
Summary: test
License: {license}
BuildArch: noarch
%description
test package
%files
"""


@pytest.fixture(scope="session")
def fresh_rpmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An rpmdb written by rpm on the spot, from packages rpmbuild makes now."""
    work = tmp_path_factory.mktemp("rpmbuild")
    for name, epoch, version, release, license_ in [
        ("alpha", "", "1.0", "1", "MIT"),
        ("beta", "Epoch: 7\n", "2.5.1", "3.fc40", "GPL-3.0-only WITH GCC-exception-3.1"),
        ("gamma", "", "0.0.1~rc2", "0.1", "BSD"),
    ]:
        spec = work / f"{name}.spec"
        spec.write_text(SPEC.format(name=name, epoch=epoch, version=version, release=release, license=license_))
        subprocess.run(
            ["rpmbuild", "--quiet", "-bb", "--define", f"_topdir {work / 'top'}", str(spec)],
            check=True,
            capture_output=True,
        )
    db = work / "db"
    db.mkdir()
    rpms = sorted(str(p) for p in (work / "top/RPMS/noarch").glob("*.rpm"))
    base = ["rpm", "--dbpath", str(db), "--define", "_db_backend sqlite"]
    subprocess.run([*base, "--initdb"], check=True)
    subprocess.run([*base, "-i", "--justdb", "--nodeps", "--noscripts", "--nosignature", *rpms], check=True)
    return db


def test_fresh_rpmdb_matches_rpm(fresh_rpmdb: Path) -> None:
    pkgs = _catalog((fresh_rpmdb / "rpmdb.sqlite").read_bytes())
    want = rpm_query(fresh_rpmdb, "sqlite")
    assert {_row(p) for p in pkgs} == want
    assert (
        "beta",
        "7:2.5.1-3.fc40",
        7,
        "noarch",
        "GPL-3.0-only WITH GCC-exception-3.1",
        "beta-2.5.1-3.fc40.src.rpm",
    ) in want


@pytest.mark.parametrize(
    ("filename", "want"),
    [
        ("audit-3.0.6-1.cm2.src.rpm", ("audit", "3.0.6-1.cm2")),
        ("python-dateutil-2.8.2-1.el9.nosrc.rpm", ("python-dateutil", "2.8.2-1.el9")),
        ("broken.src.rpm", None),
        ("name-1.0-1.x86_64.rpm", None),
    ],
)
def test_split_source_rpm(filename: str, want: tuple[str, str] | None) -> None:
    assert split_source_rpm(filename) == want


def _header(entries: list[tuple[int, int, int, int]], data: bytes) -> bytes:
    index = b"".join(struct.pack(">IIII", *e) for e in entries)
    return struct.pack(">II", len(entries), len(data)) + index + data


def test_header_values() -> None:
    data = b"name\0" + struct.pack(">I", 3)
    hdr = RpmHeader.parse(_header([(1000, 6, 0, 1), (1003, 4, 5, 1)], data))
    assert hdr.string(1000) == "name"
    assert hdr.integer(1003) == 3
    assert hdr.string(1001) is None


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        pytest.param(b"\0\0\0", "too short", id="short"),
        pytest.param(struct.pack(">II", 0, 0), "bad index entry count", id="no-entries"),
        pytest.param(struct.pack(">II", 5, 100), "header needs", id="truncated"),
        pytest.param(_header([(1000, 6, 50, 1)], b"abc\0"), "outside", id="offset-out"),
        pytest.param(_header([(1000, 42, 0, 1)], b"abc\0"), "unknown type", id="bad-type"),
    ],
)
def test_header_errors(blob: bytes, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        RpmHeader.parse(blob)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        pytest.param(_header([(1000, 6, 0, 1)], b"abc"), "unterminated string", id="unterminated"),
        pytest.param(_header([(1000, 4, 0, 2)], b"abcd"), "run past", id="int-past-end"),
    ],
)
def test_header_value_errors(blob: bytes, message: str) -> None:
    hdr = RpmHeader.parse(blob)
    with pytest.raises(HeaderError, match=message):
        hdr.string(1000) if message.startswith("unterminated") else hdr.integers(1000)


def test_unknown_format() -> None:
    with pytest.raises(CatalogError, match=r"^var/lib/rpm/Packages: malformed rpmdb: not an rpm database"):
        _catalog(b"\0" * 8192, "var/lib/rpm/Packages")


def test_sqlite_without_packages_table(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "x.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(CatalogError, match="cannot read SQLite rpmdb"):
        _catalog(path.read_bytes())


def test_bad_header_in_db_names_record(rpmdb_assets: Path) -> None:
    data = bytearray((rpmdb_assets / "Packages.db").read_bytes())
    start = data.index(b"BlbS")
    # break the first blob's header il count and fix nothing else: the checksum catches it first
    data[start + 16] ^= 0xFF
    with pytest.raises(CatalogError, match="checksum mismatch"):
        _catalog(bytes(data), "var/lib/rpm/Packages.db")
