"""cargo-lock and rust-binary catalogers.

Lock files: one project locked by the installed cargo in all four formats (v1-v4), checked
against cargo's own reading (`cargo metadata --locked`), plus Trivy's Cargo.lock fixtures with
Trivy's expected package lists. Binaries: a cargo-built release binary carrying a `.dep-v0`
section in cargo-auditable's format, read back independently with binutils' objcopy.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.model import FileInfo
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.rust import CargoLockCataloger, RustBinaryCataloger, parse_audit_json
from garrison.sbom.registry import default_registry

CACHE = Path(os.environ.get("GARRISON_TEST_CACHE", "/var/tmp/garrison-test-cache"))


def _tree_hash(root: Path, *extra: str) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def rust_out(assets_dir: Path) -> Path:
    src = assets_dir / "bin" / "rust"
    env = dict(os.environ)
    if shutil.which("cargo") is None:  # a rustup toolchain that is not on PATH
        env["PATH"] = f"{Path.home() / '.cargo' / 'bin'}{os.pathsep}{env['PATH']}"
    cargo = subprocess.run(["cargo", "--version"], capture_output=True, text=True, check=True, env=env).stdout
    target = CACHE / f"rust-{_tree_hash(src, cargo)}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers build once
        if not target.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix="rust.", dir=CACHE))
            try:
                subprocess.run(["bash", str(src / "build.sh"), str(tmp)], check=True, env=env)
                tmp.rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _lock(text: str, path: str = "Cargo.lock", mode: str = "fs") -> list[Any]:
    data = text.encode()
    return CargoLockCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode=mode))


def _binary(path: Path, data: bytes | None = None) -> list[Any]:
    if data is None:
        data = path.read_bytes()
    return RustBinaryCataloger().catalog(CatalogInput(FileInfo(path.name, len(data), 0o100755), data=data))


def test_registered_in_both_modes() -> None:
    reg = default_registry()
    assert reg.get("cargo-lock").modes == frozenset({"image", "fs"})
    assert isinstance(reg.get("rust-binary"), RustBinaryCataloger)


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_lock_matches_cargo_metadata(version: int, rust_out: Path) -> None:
    text = (rust_out / f"Cargo.lock.v{version}").read_text()
    if version >= 3:
        assert f"version = {version}" in text
    meta = json.loads((rust_out / f"metadata.v{version}.json").read_text())
    want = {(p["name"], p["version"], p["source"]) for p in meta["packages"]}
    pkgs = _lock(text)
    assert {(p.name, p.version, p.metadata.get("source")) for p in pkgs} == want
    assert {p.metadata["lock_version"] for p in pkgs} == {version}
    assert all(p.type == "cargo" for p in pkgs)
    local = {p.name for p in pkgs if p.metadata.get("local")}
    assert local == {p["name"] for p in meta["packages"] if p["source"] is None}


def test_same_name_two_versions(rust_out: Path) -> None:
    pkgs = _lock((rust_out / "Cargo.lock.v4").read_text())
    assert sorted(p.version for p in pkgs if p.name == "itoa") == ["0.4.8", "1.0.1"]


def test_lock_in_image_mode(rust_out: Path) -> None:
    assert _lock((rust_out / "Cargo.lock.v3").read_text(), "app/Cargo.lock", mode="image")


@pytest.fixture(scope="session")
def trivy_locks(assets_dir: Path) -> tuple[Path, dict[str, Any]]:
    d = assets_dir / "bin" / "rust" / "trivy"
    return d, json.loads((d / "expected.json").read_text())


@pytest.mark.parametrize("index", [0, 1, 2])
def test_trivy_fixtures(index: int, trivy_locks: tuple[Path, dict[str, Any]]) -> None:
    d, expected = trivy_locks
    fx = expected["fixtures"][index]
    text = (d / fx["path"]).read_text()
    if fx.get("error"):
        with pytest.raises(CatalogError, match=r"^Cargo\.lock: malformed Cargo\.lock"):
            _lock(text)
        return
    pkgs = _lock(text)
    assert sorted(f"{p.name}@{p.version}" for p in pkgs) == fx["packages"]
    assert {p.metadata["lock_version"] for p in pkgs} == {fx["format"]}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param('[[package]]\nname = "a"\n', "has no version", id="no-version"),
        pytest.param('[[package]]\nversion = "1.0.0"\n', "has no name", id="no-name"),
        pytest.param('[[package]]\nname = "a"\nversion = 1\n', "has no version", id="version-not-string"),
        pytest.param('package = "x"\n', "not an array", id="package-not-array"),
        pytest.param("package = [1]\n", "not a table", id="entry-not-table"),
        pytest.param("[[package]\n", "malformed", id="bad-toml"),
    ],
)
def test_lock_malformed(text: str, match: str) -> None:
    with pytest.raises(CatalogError, match=match):
        _lock(text)


def test_lock_oldest_root_table() -> None:
    text = '[root]\nname = "app"\nversion = "0.1.0"\ndependencies = ["libc 0.2.1 (registry+x)"]\n\n[[package]]\nname = "libc"\nversion = "0.2.1"\nsource = "registry+x"\n'
    pkgs = _lock(text)
    assert [(p.name, p.metadata["lock_version"]) for p in pkgs] == [("app", 1), ("libc", 1)]


def test_lock_not_utf8() -> None:
    with pytest.raises(CatalogError, match="not UTF-8"):
        CargoLockCataloger().catalog(CatalogInput(FileInfo("Cargo.lock", 2), data=b"\xff\xfe"))


# -- cargo-auditable binaries ------------------------------------------------------------------


def objcopy_audit_json(binary: Path, tmp: Path) -> dict[str, Any]:
    """The `.dep-v0` payload as binutils extracts it (the shell recipe of cargo-auditable's PARSING.md)."""
    dump = tmp / "dep-v0.z"
    subprocess.run(["objcopy", "--dump-section", f".dep-v0={dump}", str(binary), str(tmp / "scratch")], check=True)
    result: dict[str, Any] = json.loads(zlib.decompress(dump.read_bytes()))
    return result


def test_auditable_binary(rust_out: Path, tmp_path: Path) -> None:
    binary = rust_out / "auditable-demo"
    oracle = objcopy_audit_json(binary, tmp_path)
    assert oracle == json.loads((rust_out / "audit.json").read_text())
    pkgs = _binary(binary)
    assert [(p.name, p.version) for p in pkgs] == [(p["name"], p["version"]) for p in oracle["packages"]]
    for pkg, raw in zip(pkgs, oracle["packages"], strict=True):
        assert pkg.type == "cargo"
        assert pkg.metadata["kind"] == raw.get("kind", "runtime")
        assert pkg.dev is (raw.get("kind") == "build")
        assert pkg.metadata.get("root", False) is raw.get("root", False)
        assert pkg.metadata["source"] == raw["source"]
    (root,) = [p for p in pkgs if p.metadata.get("root")]
    assert root.name == "garrison-audit-demo"
    build_only = {p.name for p in pkgs if p.dev}
    assert build_only == {"autocfg"}  # the build-dependency of build.rs


def test_binary_runs(rust_out: Path) -> None:
    """The section is linked into a working program, as cargo-auditable does."""
    out = subprocess.run([str(rust_out / "auditable-demo")], capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == str(0x78)  # it prints the first byte of its audit data: a zlib header


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/usr/bin/ls", id="c-program"),
        pytest.param("/etc/os-release", id="not-elf"),
    ],
)
def test_binary_without_audit_data(path: str) -> None:
    assert _binary(Path(path)) == []


def _with_section(tmp: Path, payload: bytes) -> Path:
    section = tmp / "payload"
    section.write_bytes(payload)
    out = tmp / "patched"
    subprocess.run(["objcopy", "--add-section", f".dep-v0={section}", "/usr/bin/true", str(out)], check=True)
    return out


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        pytest.param(b"not zlib at all", "not zlib", id="not-zlib"),
        pytest.param(zlib.compress(b" " * (9 * 1024 * 1024)), "expands beyond", id="zlib-bomb"),
        pytest.param(zlib.compress(b'{"packages": [')[:-4], "truncated|not JSON", id="truncated-zlib"),
        pytest.param(zlib.compress(b"[1, 2]"), "no 'packages'", id="json-array"),
        pytest.param(
            zlib.compress(b'{"packages":[{"name":"a","version":"1","source":"local","kind":"dev"}]}'),
            "unknown kind",
            id="bad-kind",
        ),
        pytest.param(
            zlib.compress(b'{"packages":[{"name":"a","version":"1","source":"local","dependencies":[7]}]}'),
            "dependency indices",
            id="bad-index",
        ),
        pytest.param(
            zlib.compress(b'{"packages":[{"name":"a","source":"local"}]}'), "lacks a name or version", id="no-version"
        ),
    ],
)
def test_bad_audit_data(payload: bytes, match: str, tmp_path: Path) -> None:
    patched = _with_section(tmp_path, payload)
    with pytest.raises(CatalogError, match=match):
        _binary(patched)


def test_other_source_object() -> None:
    raw = b'{"packages":[{"name":"a","version":"1.0.0","source":{"Other":"sparse"},"root":true}]}'
    (pkg,) = parse_audit_json(raw, "bin")
    assert pkg.metadata == {"source": "sparse", "kind": "runtime", "audit_format": 0, "root": True}


@pytest.mark.parametrize(
    ("path", "size", "mode", "want"),
    [
        pytest.param("usr/bin/rg", 4_000_000, 0o100755, True, id="executable"),
        pytest.param("usr/lib/libdemo.so", 4_000_000, 0o100644, True, id="cdylib"),
        pytest.param("usr/lib/libdemo.so.1.2", 4_000_000, 0o100644, True, id="versioned-cdylib"),
        pytest.param("usr/share/doc/readme", 4_000, 0o100644, False, id="plain-file"),
        pytest.param("usr/lib/libdemo.so", 0, 0o120777, False, id="symlink"),
        pytest.param("usr/bin/big", 900 * 1024**2, 0o100755, False, id="too-large"),
    ],
)
def test_binary_required(path: str, size: int, mode: int, want: bool) -> None:
    assert RustBinaryCataloger().required(path, FileInfo(path, size, mode)) is want


@pytest.mark.parametrize(
    ("path", "want"),
    [
        pytest.param("Cargo.lock", True, id="root"),
        pytest.param("crates/app/Cargo.lock", True, id="nested"),
        pytest.param("Cargo.toml", False, id="manifest"),
        pytest.param("cargo.lock", False, id="lowercase"),
    ],
)
def test_lock_required(path: str, want: bool) -> None:
    assert CargoLockCataloger().required(path, FileInfo(path, 1000)) is want


# -- fuzzing ------------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    version=st.sampled_from([1, 2, 3, 4]),
    cut=st.integers(0, 2000),
    edits=st.lists(st.tuples(st.integers(0, 1700), st.sampled_from(list('[]"=\n ,.#ab1'))), max_size=5),
)
def test_fuzz_lock(rust_out: Path, version: int, cut: int, edits: list[tuple[int, str]]) -> None:
    text = list((rust_out / f"Cargo.lock.v{version}").read_text())
    for pos, ch in edits:
        if pos < len(text):
            text[pos] = ch
    try:
        result = _lock("".join(text)[:cut])
    except CatalogError as err:
        assert str(err).startswith("Cargo.lock: ")
        return
    assert all(isinstance(p.name, str) and p.name for p in result)


@pytest.fixture(scope="session")
def demo_binary(rust_out: Path) -> tuple[bytes, int]:
    data = (rust_out / "auditable-demo").read_bytes()
    payload = zlib.compress((rust_out / "audit.json").read_bytes(), 9)  # what build.sh linked in
    return data, data.index(payload[:16])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(-8, 240), st.integers(0, 255)), max_size=6),
    header_edits=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=2),
    cut=st.one_of(st.none(), st.integers(0, 460_000)),
)
def test_fuzz_binary(
    demo_binary: tuple[bytes, int], edits: list[tuple[int, int]], header_edits: list[tuple[int, int]], cut: int | None
) -> None:
    data, at = demo_binary
    buf = bytearray(data)
    for off, val in edits:
        buf[at + off] = val
    for off, val in header_edits:
        buf[off] = val
    if cut is not None:
        del buf[cut:]
    try:
        result = RustBinaryCataloger().catalog(CatalogInput(FileInfo("fuzz", len(buf), 0o100755), data=bytes(buf)))
    except CatalogError as err:
        assert str(err).startswith("fuzz: ")
        return
    assert isinstance(result, list)
