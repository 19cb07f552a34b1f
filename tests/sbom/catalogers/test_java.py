"""java-archive cataloger against archives built with the JDK's jar tool and real Debian jars.

The JDK is also the oracle: JarOracle (tests/assets/bin/java) reads every archive, nested ones
included, with java.util.jar.Manifest and java.util.Properties.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.model import FileInfo
from garrison.sbom.catalogers import java as java_mod
from garrison.sbom.catalogers._java_meta import parse_file_name, parse_manifest, parse_properties
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.java import JavaArchiveCataloger, is_archive
from garrison.sbom.registry import default_registry

CACHE = Path(os.environ.get("GARRISON_TEST_CACHE", "/var/tmp/garrison-test-cache"))
ARCHIVES = [
    "acme-widget-1.2.3.jar",
    "report-engine.jar",
    "eventbus-bundle.jar",
    "plain-util-3.4.5.jar",
    "legacy-codec-2.0.1.jar",
    "shaded-app-1.0.0.jar",
    "webapp.war",
    "boot-demo-0.9.0.jar",
    "enterprise.ear",
    "git-client-4.0.0.hpi",
    "nest0.jar",
    "commons-lang3.jar",
    "commons-io.jar",
]


def _tree_hash(root: Path, *extra: str) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def java_out(assets_dir: Path) -> Path:
    src = assets_dir / "bin" / "java"
    jdk = subprocess.run(["javac", "-version"], capture_output=True, text=True, check=True).stdout
    target = CACHE / f"java-{_tree_hash(src, jdk)}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers build once
        if not target.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix="java.", dir=CACHE))
            try:
                subprocess.run(["bash", str(src / "build.sh"), str(tmp)], check=True)
                tmp.rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _unesc(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


@pytest.fixture(scope="session")
def oracle(java_out: Path) -> dict[str, dict[str, Any]]:
    """archive path -> {"manifest": {name: value}, "poms": {entry: {key: value}}} as Java reads them."""
    out = subprocess.run(
        ["java", "-cp", str(java_out / "oracle"), "JarOracle", *(str(java_out / a) for a in ARCHIVES)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {}
    for line in out.splitlines():
        kind, *cols = [_unesc(c) for c in line.split("\t")]
        if kind == "A":
            current = result[cols[0]] = {"manifest": {}, "poms": defaultdict(dict)}
        elif kind == "M":
            current["manifest"][cols[0]] = cols[1]
        elif kind == "P":
            current["poms"][cols[0]][cols[1]] = cols[2]
    return result


def _catalog(path: Path, name: str | None = None) -> list[Any]:
    data = path.read_bytes()
    info = FileInfo(name or path.name, len(data))
    return JavaArchiveCataloger().catalog(CatalogInput(info, opener=lambda: io.BytesIO(data)))


def _coords(pkgs: list[Any]) -> set[tuple[str | None, str, str, str]]:
    return {(p.namespace, p.name, p.version, p.path) for p in pkgs}


def _members(data: bytes, path: str) -> dict[str, zipfile.ZipFile]:
    """Every archive inside ``data`` (recursively), by the same joined path the cataloger uses."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    out = {path: zf}
    for info in zf.infolist():
        if is_archive(info.filename):
            out.update(_members(zf.read(info), f"{path}/{info.filename}"))
    return out


def test_registered() -> None:
    assert isinstance(default_registry().get("java-archive"), JavaArchiveCataloger)


@pytest.mark.parametrize("name", ARCHIVES)
def test_every_pom_properties_reported(name: str, java_out: Path, oracle: dict[str, dict[str, Any]]) -> None:
    """Each complete pom.properties Java finds (within the nesting bound) is a package at its archive's path."""
    got = _coords(_catalog(java_out / name))
    for path, seen in oracle.items():
        if path != name and not path.startswith(name + "/"):
            continue
        depth = path.count(".jar/") + path.count(".war/") + path.count(".ear/")
        for props in seen["poms"].values():
            coords = (props.get("groupId"), props.get("artifactId"), props.get("version"), path)
            if None in coords:
                continue
            assert (coords in got) is (depth <= java_mod.MAX_DEPTH), coords


@pytest.mark.parametrize("name", ARCHIVES)
def test_metadata_parsers_match_java(name: str, java_out: Path, oracle: dict[str, dict[str, Any]]) -> None:
    for path, zf in _members((java_out / name).read_bytes(), name).items():
        seen = oracle[path]
        names = {i.filename for i in zf.infolist()}
        if "META-INF/MANIFEST.MF" in names:
            assert parse_manifest(zf.read("META-INF/MANIFEST.MF")) == seen["manifest"]
        for entry, props in seen["poms"].items():
            assert parse_properties(zf.read(entry)) == props


@pytest.mark.parametrize(
    ("name", "want"),
    [
        pytest.param(
            "report-engine.jar", {("org.example.tools", "report-engine", "4.0.2", "manifest")}, id="manifest-only"
        ),
        pytest.param("eventbus-bundle.jar", {("io.garrison.osgi", "eventbus", "2.5.0", "manifest")}, id="osgi-bundle"),
        pytest.param("plain-util-3.4.5.jar", {(None, "plain-util", "3.4.5", "filename")}, id="file-name"),
        pytest.param(
            "acme-widget-1.2.3.jar", {("com.acme", "acme-widget", "1.2.3", "pom.properties")}, id="pom-matches-name"
        ),
        pytest.param(
            "shaded-app-1.0.0.jar",
            {
                ("com.acme", "shaded-app", "1.0.0", "pom.properties"),
                ("org.apache.commons", "commons-lang3", "3.12.0", "pom.properties"),
            },
            id="shaded",
        ),
        pytest.param(
            "commons-lang3.jar",
            {("org.apache.commons", "commons-lang3", "3.12.0", "pom.properties")},
            id="debian-unversioned-name",
        ),
        pytest.param(
            "commons-io.jar", {("commons-io", "commons-io", "2.11.0", "pom.properties")}, id="debian-commons-io"
        ),
    ],
)
def test_own_artifact_rules(name: str, want: set[tuple[str | None, str, str, str]], java_out: Path) -> None:
    pkgs = _catalog(java_out / name)
    assert {(p.namespace, p.name, p.version, p.metadata["source"]) for p in pkgs} == want
    assert all(p.type == "maven" and p.path == name for p in pkgs)


def test_war_nested_libs(java_out: Path) -> None:
    got = {
        (p.name, p.version, p.path, p.metadata["source"])
        for p in _catalog(java_out / "webapp.war", "srv/app/webapp.war")
    }
    assert got == {
        ("webapp", "1.0.0", "srv/app/webapp.war", "pom.properties"),
        ("acme-widget", "1.2.3", "srv/app/webapp.war/WEB-INF/lib/acme-widget-1.2.3.jar", "pom.properties"),
        ("commons-lang3", "3.12.0", "srv/app/webapp.war/WEB-INF/lib/commons-lang3-3.12.0.jar", "pom.properties"),
        ("plain-util", "3.4.5", "srv/app/webapp.war/WEB-INF/lib/plain-util-3.4.5.jar", "filename"),
    }


def test_fat_jar(java_out: Path) -> None:
    got = {(p.namespace, p.name, p.version) for p in _catalog(java_out / "boot-demo-0.9.0.jar")}
    assert got == {
        ("io.garrison.demo", "boot-demo", "0.9.0"),
        ("commons-io", "commons-io", "2.11.0"),
        ("io.garrison.osgi", "eventbus", "2.5.0"),
    }


def test_ear_two_levels(java_out: Path) -> None:
    paths = {p.path for p in _catalog(java_out / "enterprise.ear")}
    assert "enterprise.ear/webapp.war/WEB-INF/lib/acme-widget-1.2.3.jar" in paths
    assert "enterprise.ear/lib/legacy-codec-2.0.1.jar" in paths


def test_nesting_depth_bound(java_out: Path) -> None:
    names = sorted(p.name for p in _catalog(java_out / "nest0.jar"))
    assert names == [f"nest{i}" for i in range(java_mod.MAX_DEPTH + 1)]


def test_total_size_bound(java_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested content beyond the bound aborts the file instead of expanding it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(java_out / "acme-widget-1.2.3.jar", "lib/acme-widget-1.2.3.jar")
        zf.writestr("lib/zeros-1.0.jar", b"\0" * (8 * 1024 * 1024))
    assert len(buf.getvalue()) < 64 * 1024  # highly compressible
    bomb = tmp_path / "bomb-1.0.jar"
    bomb.write_bytes(buf.getvalue())
    monkeypatch.setattr(java_mod, "MAX_TOTAL_BYTES", 4 * 1024 * 1024)
    with pytest.raises(CatalogError, match=r"^bomb-1\.0\.jar: .*beyond 4194304 bytes"):
        _catalog(bomb)


def test_corrupt_nested_archive_skipped(java_out: Path, tmp_path: Path) -> None:
    good = (java_out / "acme-widget-1.2.3.jar").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("WEB-INF/lib/acme-widget-1.2.3.jar", good)
        zf.writestr("WEB-INF/lib/broken-1.0.jar", good[: len(good) // 2])
    p = tmp_path / "mixed.war"
    p.write_bytes(buf.getvalue())
    assert {p.name for p in _catalog(p)} == {"acme-widget"}


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"PK\x03\x04" + b"\0" * 200, id="zip-magic-only"),
        pytest.param(lambda b: b"#!/bin/sh\n" * 10, id="not-a-zip"),
    ],
)
def test_corrupt_archive(mangle: Any, java_out: Path, tmp_path: Path) -> None:
    p = tmp_path / "broken-1.0.jar"
    p.write_bytes(mangle((java_out / "webapp.war").read_bytes()))
    with pytest.raises(CatalogError, match=r"^broken-1\.0\.jar: corrupt archive"):
        _catalog(p)


@pytest.mark.parametrize(
    ("name", "want"),
    [
        pytest.param("spring-core-5.3.4-SNAPSHOT.jar", ("spring-core", "5.3.4-SNAPSHOT"), id="snapshot"),
        pytest.param("lib/guava-31.1-jre.jar", ("guava", "31.1-jre"), id="qualifier"),
        pytest.param("app.war", None, id="no-version"),
        pytest.param("jackson-databind-2.13.4.2.JAR", ("jackson-databind", "2.13.4.2"), id="upper-case-suffix"),
        pytest.param("notes-1.0.txt", None, id="not-an-archive"),
    ],
)
def test_parse_file_name(name: str, want: tuple[str, str] | None) -> None:
    assert parse_file_name(name) == want


@pytest.mark.parametrize(
    ("path", "mode", "want"),
    [
        pytest.param("opt/app/app.jar", 0o100644, True, id="jar"),
        pytest.param("opt/app/app.WAR", 0o100644, True, id="war-upper"),
        pytest.param("var/jenkins/plugins/git.jpi", 0o100644, True, id="jpi"),
        pytest.param("opt/app/app.jar", 0o120777, False, id="symlink"),
        pytest.param("opt/app/app.zip", 0o100644, False, id="zip"),
    ],
)
def test_required(path: str, mode: int, want: bool) -> None:
    assert JavaArchiveCataloger().required(path, FileInfo(path, 10_000, mode)) is want


def test_properties_malformed_unicode_escape() -> None:
    with pytest.raises(ValueError, match="uxxxx"):
        parse_properties(b"version=\\u12")


# -- fuzzing ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fuzz_archives(java_out: Path) -> list[bytes]:
    return [(java_out / n).read_bytes() for n in ("acme-widget-1.2.3.jar", "nest0.jar", "legacy-codec-2.0.1.jar")]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.integers(0, 2),
    edits=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 4000)),
)
def test_fuzz_archives(fuzz_archives: list[bytes], which: int, edits: list[tuple[int, int]], cut: int | None) -> None:
    buf = bytearray(fuzz_archives[which])
    for off, val in edits:
        if off < len(buf):
            buf[off] = val
    if cut is not None:
        del buf[cut:]
    data = bytes(buf)
    try:
        result = JavaArchiveCataloger().catalog(CatalogInput(FileInfo("fuzz.jar", len(data)), data=data))
    except CatalogError as err:
        assert str(err).startswith("fuzz.jar: ")
        return
    assert all(p.type == "maven" for p in result)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_metadata_parsers(data: bytes) -> None:
    assert isinstance(parse_manifest(data), dict)
    try:
        assert isinstance(parse_properties(data), dict)
    except ValueError:
        pass
