"""go-binary cataloger against real Go binaries, with `go version -m` as the oracle.

Binaries: built here with Debian's Go toolchain (tests/assets/bin/go/build.sh: vendored modules,
a replace directive, stripped, PIE, 386, arm64, GOPATH mode) and old esbuild releases from the
npm registry, built upstream with Go 1.16/1.17 (the pre-1.18 pointer format; amd64, 386 and
big-endian s390x). Both are cached under /var/tmp/garrison-test-cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.model import FileInfo
from garrison.sbom.catalogers.gobinary import (
    BUILDINFO_MAGIC,
    GoBinaryCataloger,
    ldflags_version,
    parse_buildinfo,
    split_module_path,
    stdlib_version,
)
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.registry import default_registry

CACHE = Path(os.environ.get("GARRISON_TEST_CACHE", "/var/tmp/garrison-test-cache"))
ESBUILD = ["esbuild-linux-64@0.11.23", "esbuild-linux-32@0.11.12", "esbuild-linux-s390x@0.14.8"]
OWN = ["hello", "hello-stripped", "hello-pie", "hello-386", "hello-arm64", "replaced", "plain"]


def _tree_hash(root: Path, *extra: str) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:16]


def _cached(name: str, build: Any) -> Path:
    """Run ``build(tmpdir)`` once per key; a lock keeps parallel workers from building twice."""
    target = CACHE / name
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix=name + ".", dir=CACHE))
            try:
                build(tmp)
                tmp.rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def go_bins(assets_dir: Path) -> Path:
    src = assets_dir / "bin" / "go"
    go = subprocess.run(["go", "version"], capture_output=True, text=True, check=True).stdout
    debs = subprocess.run(
        ["dpkg-query", "-W", "golang-golang-x-text-dev", "golang-github-google-uuid-dev"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    key = _tree_hash(src, go, debs)
    return _cached(f"go-{key}", lambda out: subprocess.run(["bash", str(src / "build.sh"), str(out)], check=True))


@pytest.fixture(scope="session")
def esbuild_bins() -> Path:
    def fetch(out: Path) -> None:
        for spec in ESBUILD:
            subprocess.run(
                ["npm", "pack", "--silent", "--pack-destination", str(out), spec], check=True, capture_output=True
            )
        for tgz in out.glob("*.tgz"):
            with tarfile.open(tgz) as tar:
                member = tar.getmember("package/bin/esbuild")
                data = tar.extractfile(member)
                assert data is not None
                dest = out / tgz.name.removesuffix(".tgz")
                dest.write_bytes(data.read())
                dest.chmod(0o755)
            tgz.unlink()

    key = hashlib.sha256(",".join(ESBUILD).encode()).hexdigest()[:16]
    return _cached(f"esbuild-{key}", fetch)


def _all_bins(go_bins: Path, esbuild_bins: Path) -> list[Path]:
    return [go_bins / n for n in OWN] + sorted(p for p in esbuild_bins.iterdir() if p.name.startswith("esbuild"))


def oracle(path: Path) -> dict[str, Any]:
    """``go version -m`` output as a structure."""
    out = subprocess.run(["go", "version", "-m", str(path)], capture_output=True, text=True, check=True).stdout
    first, *lines = out.split("\n")
    info: dict[str, Any] = {"go": first.split(": ", 1)[1].strip(), "path": "", "main": None, "deps": [], "settings": []}
    last: list[str] | None = None
    for line in lines:
        cols = line.split("\t")[1:]
        if not cols or not cols[0]:
            continue
        kind, rest = cols[0], cols[1:]
        if kind == "path":
            info["path"] = rest[0]
        elif kind == "mod":
            info["main"] = last = [rest[0], rest[1], None]
        elif kind == "dep":
            last = [rest[0], rest[1], None]
            info["deps"].append(last)
        elif kind == "=>":
            assert last is not None
            last[2] = (rest[0], rest[1])
        elif kind == "build":
            key, _, value = rest[0].partition("=")
            if value.startswith('"'):
                value = value[1:-1].replace('\\"', '"')
            info["settings"].append((key, value))
    return info


def _catalog(path: Path, data: bytes | None = None) -> list[Any]:
    info = FileInfo(path.name, path.stat().st_size if data is None else len(data), 0o100755)
    if data is not None:
        return GoBinaryCataloger().catalog(CatalogInput(info, data=data))
    return GoBinaryCataloger().catalog(CatalogInput(info, opener=lambda: path.open("rb")))


def _expected_packages(o: dict[str, Any]) -> set[tuple[str | None, str, str]]:
    """The documented reporting rule applied to the oracle's modules."""
    want: set[tuple[str | None, str, str]] = {(None, "stdlib", "v" + o["go"].removeprefix("go").split(" ")[0])}
    if o["main"]:
        want.add((*split_module_path(o["main"][0]), o["main"][1]))
    for path, version, rep in o["deps"]:
        if rep is not None and rep[1] not in ("", "(devel)"):
            path, version = rep
        want.add((*split_module_path(path), version))
    return want


def test_registered() -> None:
    assert isinstance(default_registry().get("go-binary"), GoBinaryCataloger)


@pytest.mark.parametrize("name", OWN + [s.split("@")[0] + "-" + s.split("@")[1] for s in ESBUILD])
def test_matches_go_version_m(name: str, go_bins: Path, esbuild_bins: Path) -> None:
    path = go_bins / name if name in OWN else esbuild_bins / name
    o = oracle(path)
    pkgs = _catalog(path)
    got = {(p.namespace, p.name, p.version) for p in pkgs}
    assert got == _expected_packages(o)
    assert all(p.type == "golang" for p in pkgs)
    main = [p for p in pkgs if p.metadata.get("main_module")]
    if o["main"]:
        (m,) = main
        assert m.metadata["go_version"] == o["go"]
        assert m.metadata["main_package"] == o["path"]
        assert list(m.metadata.get("build_settings", {}).items()) == o["settings"]
        assert m.metadata.get("devel") is (True if o["main"][1] == "(devel)" else None)
    else:
        assert main == []


def test_replacements(go_bins: Path) -> None:
    pkgs = {(p.namespace, p.name): p for p in _catalog(go_bins / "replaced")}
    # module replaced by another module: reported under the replacement
    text = pkgs[("github.com/golang", "text")]
    assert text.metadata["replaced"]["path"] == "golang.org/x/text"
    assert ("golang.org/x", "text") not in pkgs
    # local directory replacement: original module and version kept, replacement recorded
    uuid = pkgs[("github.com/google", "uuid")]
    assert uuid.version.startswith("v")
    assert uuid.metadata["replacement"] == {"path": "./third_party/uuid", "version": "(devel)"}


def test_ldflags_version_recorded(go_bins: Path) -> None:
    (main,) = [p for p in _catalog(go_bins / "hello") if p.metadata.get("main_module")]
    assert main.version == "(devel)"
    assert main.metadata["ldflags_version"] == "1.4.2"  # build.sh stamps -X main.version=1.4.2
    assert main.metadata["build_settings"]["GOOS"] == "linux"


def test_section_headers_removed(go_bins: Path, tmp_path: Path) -> None:
    """Without section headers both Go and the cataloger fall back to the first writable segment."""
    data = bytearray((go_bins / "hello").read_bytes())
    assert data[4] == 2  # 64-bit
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<HHH", data, 0x3C, 0, 0, 0)  # e_shnum, e_shstrndx (and e_shentsize before)
    copy = tmp_path / "noshdr"
    copy.write_bytes(bytes(data))
    copy.chmod(0o755)  # go version skips files that are not executable
    assert {(p.namespace, p.name, p.version) for p in _catalog(copy)} == _expected_packages(oracle(copy))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"#!/bin/sh\necho hi\n" * 8, id="shell-script"),
        pytest.param(b"\x7fELF", id="elf-magic-only"),
    ],
)
def test_not_go(content: bytes, tmp_path: Path) -> None:
    p = tmp_path / "x"
    p.write_bytes(content)
    try:
        assert _catalog(p, content) == []
    except CatalogError as err:
        assert "x" in str(err)


def test_elf_without_buildinfo() -> None:
    ls = Path("/usr/bin/ls")  # a C program from coreutils
    assert _catalog(ls) == []


@pytest.mark.parametrize(
    ("path", "size", "mode", "want"),
    [
        pytest.param("usr/local/bin/app", 5_000_000, 0o100755, True, id="executable"),
        pytest.param("usr/lib/libfoo.so", 5_000_000, 0o100644, False, id="not-executable"),
        pytest.param("usr/bin/link", 0, 0o120777, False, id="symlink"),
        pytest.param("usr/bin/tiny", 10, 0o100755, False, id="too-small"),
        pytest.param("usr/bin/huge", 600 * 1024**2, 0o100755, False, id="too-large"),
    ],
)
def test_required(path: str, size: int, mode: int, want: bool) -> None:
    assert GoBinaryCataloger().required(path, FileInfo(path, size, mode)) is want


@pytest.mark.parametrize(
    ("go", "want"),
    [
        pytest.param("go1.19.8", "v1.19.8", id="release"),
        pytest.param("go1.16", "v1.16", id="two-part"),
        pytest.param("go1.22.3 X:boringcrypto", "v1.22.3", id="experiment"),
        pytest.param("go1.21rc2", "v1.21rc2", id="rc"),
        pytest.param("devel go1.23-abcdef Tue", None, id="devel"),
    ],
)
def test_stdlib_version(go: str, want: str | None) -> None:
    assert stdlib_version(go) == want


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        pytest.param("-X main.version=1.2.3", "1.2.3", id="main"),
        pytest.param(
            "-s -w -X 'github.com/x/app/cmd/app.Version=v2.0.0' -X main.version=1.0.0", "v2.0.0", id="cmd-first"
        ),
        pytest.param("-X=github.com/x/app/internal/version.ver=0.9.1", "0.9.1", id="equals-form"),
        pytest.param("-X main.version=1.0.0 -X common.version=2.0.0", None, id="ambiguous"),
        pytest.param("-X main.commit=abc123", None, id="no-version-key"),
        pytest.param("-X main.version=dev", None, id="not-semver"),
        pytest.param("-X 'main.version=1.0", None, id="bad-quoting"),
    ],
)
def test_ldflags_version(flags: str, want: str | None) -> None:
    assert ldflags_version("github.com/x/app", flags) == want


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("mod\tonly-one-column\n", id="short-mod"),
        pytest.param("=>\ta\tb\tc\n", id="replacement-without-module"),
        pytest.param("dep\ta\tv1\n=>\tb\tv2\n", id="replacement-two-columns"),
        pytest.param("build\t=x\n", id="missing-key"),
        pytest.param("build\tkey\n", id="missing-equals"),
        pytest.param("build\tk=a b\n", id="unquoted-space"),
        pytest.param('build\t"k=v\n', id="unterminated-quote"),
    ],
)
def test_parse_buildinfo_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"line [12]"):
        parse_buildinfo("go1.19", text)


def test_parse_buildinfo_quoted_setting() -> None:
    bi = parse_buildinfo("go1.19", 'build\t-ldflags="-X \\"main.v=1\\" -s"\nbuild\t"we ird"=`raw`\n')
    assert bi.settings == [("-ldflags", '-X "main.v=1" -s'), ("we ird", "raw")]


# -- fuzzing: mutated and truncated real binaries -----------------------------------------------


@pytest.fixture(scope="session")
def fuzz_inputs(go_bins: Path, esbuild_bins: Path) -> list[tuple[bytes, int]]:
    """(binary, offset of the build info blob) for a new-format and an old-format binary."""
    out = []
    for p in (go_bins / "hello-stripped", esbuild_bins / "esbuild-linux-s390x-0.14.8"):
        data = p.read_bytes()
        out.append((data, data.index(BUILDINFO_MAGIC)))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.integers(0, 1),
    edits=st.lists(st.tuples(st.integers(-64, 400), st.integers(0, 255)), max_size=8),
    header_edits=st.lists(st.tuples(st.integers(0, 127), st.integers(0, 255)), max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 1 << 21)),
)
def test_fuzz_mutated_binaries(
    fuzz_inputs: list[tuple[bytes, int]],
    which: int,
    edits: list[tuple[int, int]],
    header_edits: list[tuple[int, int]],
    cut: int | None,
) -> None:
    data, blob = fuzz_inputs[which]
    buf = bytearray(data)
    for off, val in edits:
        buf[blob + off] = val
    for off, val in header_edits:
        buf[off] = val
    if cut is not None:
        del buf[cut:]
    try:
        result = GoBinaryCataloger().catalog(CatalogInput(FileInfo("fuzz", len(buf), 0o100755), data=bytes(buf)))
    except CatalogError as err:
        assert str(err).startswith("fuzz: ")
        return
    assert isinstance(result, list)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet='\t\n ="`\\abcdemoprtuvx=>1.', max_size=200))
def test_fuzz_parse_buildinfo_text(text: str) -> None:
    try:
        bi = parse_buildinfo("go1.19", text)
    except ValueError:
        return
    assert bi.go_version == "go1.19"
