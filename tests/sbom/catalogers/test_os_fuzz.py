"""Fuzzing the OS package parsers with truncated and byte-flipped copies of real databases.

Whatever the damage, a cataloger either returns packages or raises CatalogError naming the file;
detect_os never raises.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.model import FileInfo
from garrison.sbom.catalogers._rpmheader import HeaderError, package_from_header
from garrison.sbom.catalogers.apk import ApkCataloger
from garrison.sbom.catalogers.dpkg import DpkgCataloger
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.catalogers.rpm import RpmCataloger
from garrison.sbom.osrelease import OS_FILES, detect_os

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EDITS = st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 255)), max_size=8)


def _mutate(data: bytes, cut: float, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data[: max(1, int(len(data) * cut))])
    for pos, xor in edits:
        buf[pos % len(buf)] ^= xor
    return bytes(buf)


def _check(cat: Cataloger, path: str, data: bytes) -> None:
    try:
        pkgs = cat.catalog(CatalogInput(FileInfo(path, len(data)), data=data))
    except CatalogError as err:
        assert str(err).startswith(f"{path}: ")
        assert "\n" not in str(err)
        return
    assert all(p.name and p.version for p in pkgs)


@pytest.fixture(scope="session")
def dpkg_status(conformance_dir: Path) -> bytes:
    return (conformance_dir / "catalogers/dpkg/ubuntu-bionic/var/lib/dpkg/status").read_bytes()


@pytest.fixture(scope="session")
def apk_installed(conformance_dir: Path) -> bytes:
    return (conformance_dir / "catalogers/apk/alpine/lib/apk/db/installed").read_bytes()


@pytest.fixture(scope="session")
def rpm_blobs(conformance_dir: Path) -> list[bytes]:
    path = conformance_dir / "catalogers/rpm/cbl-mariner-2.0/rpmdb.sqlite"
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT blob FROM Packages ORDER BY hnum LIMIT 12")]
    finally:
        conn.close()


@SETTINGS
@given(cut=st.floats(0, 1), edits=EDITS)
def test_fuzz_dpkg(dpkg_status: bytes, cut: float, edits: list[tuple[int, int]]) -> None:
    _check(DpkgCataloger(), "var/lib/dpkg/status", _mutate(dpkg_status, cut, edits))


@SETTINGS
@given(cut=st.floats(0, 1), edits=EDITS)
def test_fuzz_dpkg_structural(dpkg_status: bytes, cut: float, edits: list[tuple[int, int]]) -> None:
    """Flips that land on the characters the grammar cares about."""
    text = bytearray(dpkg_status[: max(1, int(len(dpkg_status) * cut))])
    for pos, ch in edits:
        text[pos % len(text)] = b"\n :\t#("[ch % 6]
    _check(DpkgCataloger(), "var/lib/dpkg/status.d/base", bytes(text))


@SETTINGS
@given(cut=st.floats(0, 1), edits=EDITS)
def test_fuzz_apk(apk_installed: bytes, cut: float, edits: list[tuple[int, int]]) -> None:
    _check(ApkCataloger(), "lib/apk/db/installed", _mutate(apk_installed, cut, edits))


@SETTINGS
@given(index=st.integers(0, 11), cut=st.floats(0, 1), edits=EDITS)
def test_fuzz_rpm_header(rpm_blobs: list[bytes], index: int, cut: float, edits: list[tuple[int, int]]) -> None:
    blob = rpm_blobs[index % len(rpm_blobs)]
    # aim half the flips at the index (where the structure is), half anywhere
    il = int.from_bytes(blob[:4], "big")
    aimed = [(pos % (8 + 16 * il) if i % 2 else pos, xor) for i, (pos, xor) in enumerate(edits)]
    try:
        pkg = package_from_header(_mutate(blob, cut, aimed))
    except HeaderError:
        return
    assert pkg is None or pkg.type == "rpm"


@pytest.mark.parametrize("name", ["Packages", "Packages-512", "Packages.db"])
def test_fuzz_rpmdb_files(name: str, assets_dir: Path) -> None:
    data = (assets_dir / "rpmdb" / name).read_bytes()

    @SETTINGS
    @given(cut=st.floats(0, 1), edits=EDITS)
    def run(cut: float, edits: list[tuple[int, int]]) -> None:
        _check(RpmCataloger(), f"var/lib/rpm/{name}", _mutate(data, cut, edits))

    run()


@pytest.mark.parametrize("name", ["Packages-512", "Packages.db"])
def test_fuzz_rpmdb_metadata_pages(name: str, assets_dir: Path) -> None:
    """Flips concentrated on the first page (metadata, slot table) and item index areas."""
    data = (assets_dir / "rpmdb" / name).read_bytes()

    @SETTINGS
    @given(edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(1, 255)), min_size=1, max_size=4))
    def run(edits: list[tuple[int, int]]) -> None:
        _check(RpmCataloger(), f"var/lib/rpm/{name}", _mutate(data, 1.0, edits))

    run()


@settings(max_examples=50, deadline=None)
@given(cut=st.floats(0, 1), edits=EDITS)
def test_fuzz_rpm_sqlite(rpmdb_sqlite: bytes, cut: float, edits: list[tuple[int, int]]) -> None:
    _check(RpmCataloger(), "var/lib/rpm/rpmdb.sqlite", _mutate(rpmdb_sqlite, cut, edits))


@pytest.fixture(scope="module")
def rpmdb_sqlite(assets_dir: Path) -> bytes:
    return (assets_dir / "rpmdb" / "rpmdb.sqlite").read_bytes()


@settings(max_examples=300, deadline=None)
@given(files=st.dictionaries(st.sampled_from(sorted(OS_FILES)), st.binary(max_size=300), max_size=4))
def test_fuzz_detect_os(files: dict[str, bytes]) -> None:
    found = detect_os(files)
    assert found is None or isinstance(found.family, str)
