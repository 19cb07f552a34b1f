"""npm-installed and npm-lock catalogers: Trivy's lockfile fixtures with their expected answers
(conformance), and a project installed with the real npm (tests/assets/lang/npm: the lock file,
`npm ls` output and the installed package.json files)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.npm import NpmInstalledCataloger, NpmLockCataloger
from garrison.sbom.registry import default_registry


def full_name(p: Package) -> str:
    return f"@{p.namespace}/{p.name}" if p.namespace else p.name


def _lock(data: bytes, path: str = "app/package-lock.json") -> list[Package]:
    return NpmLockCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode="fs"))


def _installed(data: bytes, path: str, mode: str = "image") -> list[Package]:
    return NpmInstalledCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode=mode))


@pytest.fixture(scope="session")
def npm_assets(assets_dir: Path) -> Path:
    return assets_dir / "lang" / "npm"


def _npm_ls(tree: dict[str, Any]) -> dict[tuple[str, str], bool]:
    """Every name@version in an `npm ls --all --json` tree (deduped entries included)."""
    out: dict[tuple[str, str], bool] = {}

    def walk(node: dict[str, Any]) -> None:
        for name, child in (node.get("dependencies") or {}).items():
            if "version" in child:
                out[(name, child["version"])] = True
                walk(child)

    walk(tree)
    return out


def test_registered() -> None:
    reg = default_registry()
    assert reg.get("npm-lock").modes == frozenset({"fs"})
    assert reg.get("npm-installed").modes == frozenset({"image", "fs"})


def test_conformance(conformance_dir: Path) -> None:
    base = conformance_dir / "catalogers" / "npm"
    expected = json.loads((base / "expected.json").read_text())
    assert expected["cataloger"] == "npm-lock"
    for fixture in expected["fixtures"]:
        pkgs = _lock((base / fixture["path"]).read_bytes())
        got = {(full_name(p), p.version, p.dev, p.optional) for p in pkgs}
        want = {(e["name"], e["version"], e["dev"], e["optional"]) for e in fixture["packages"]}
        assert got == want, fixture["path"]
        assert len(pkgs) == len(fixture["packages"])
        assert all(p.type == "npm" for p in pkgs)


def test_scoped_namespace_and_metadata(conformance_dir: Path) -> None:
    pkgs = _lock((conformance_dir / "catalogers" / "npm" / "package-lock_v3.json").read_bytes())
    babel = next(p for p in pkgs if p.name == "helper-string-parser")
    assert babel.namespace == "babel"
    assert babel.metadata["integrity"].startswith("sha512-")
    assert babel.metadata["resolved"].endswith("helper-string-parser-7.19.4.tgz")


def test_real_lock_matches_npm_ls(npm_assets: Path) -> None:
    pkgs = _lock((npm_assets / "package-lock.json").read_bytes())
    got = {(full_name(p), p.version) for p in pkgs}
    everything = set(_npm_ls(json.loads((npm_assets / "npm-ls.json").read_text())))
    prod = set(_npm_ls(json.loads((npm_assets / "npm-ls-omit-dev.json").read_text())))
    # fsevents is an optional macOS-only package: locked, but npm did not install it on Linux
    assert got - everything == {("fsevents", "2.3.3")}
    assert everything <= got
    assert {(full_name(p), p.version) for p in pkgs if not p.dev} - {("fsevents", "2.3.3")} == prod
    licenses = {full_name(p): p.licenses for p in pkgs}
    assert licenses["lodash"] == ("MIT",)
    assert licenses["@babel/code-frame"] == ("MIT",)
    fsevents = next(p for p in pkgs if p.name == "fsevents")
    assert fsevents.dev and fsevents.optional
    is_number = next(p for p in pkgs if p.name == "is-number")
    assert is_number.optional and not is_number.dev


def test_lock_v1_written_by_npm6(npm_assets: Path) -> None:
    v1 = {
        (full_name(p), p.version, p.dev, p.optional) for p in _lock((npm_assets / "package-lock.v1.json").read_bytes())
    }
    v3 = {(full_name(p), p.version, p.dev, p.optional) for p in _lock((npm_assets / "package-lock.json").read_bytes())}
    # npm 6 writes neither flag for a package both the dev and the optional trees need; npm 7+
    # writes devOptional, which is reported as optional
    assert v1 - v3 == {("is-number", "7.0.0", False, False)}
    assert v3 - v1 == {("is-number", "7.0.0", False, True)}


def test_installed_tree_matches_npm_ls(npm_assets: Path) -> None:
    files = json.loads((npm_assets / "node_modules-package-json.json").read_text())
    cat = NpmInstalledCataloger()
    got: set[tuple[str, str]] = set()
    for rel, doc in files.items():
        path = f"srv/app/{rel}"
        data = json.dumps(doc).encode()
        if not cat.required(path, FileInfo(path, len(data))):
            assert rel == "node_modules/yargs/helpers/package.json"
            continue
        got |= {(full_name(p), p.version) for p in _installed(data, path)}
    assert got == set(_npm_ls(json.loads((npm_assets / "npm-ls.json").read_text())))


@pytest.mark.parametrize(
    ("doc", "want"),
    [
        ({"name": "a", "version": "1.0.0", "license": "MIT"}, ("MIT",)),
        ({"name": "a", "version": "1.0.0", "license": {"type": "ISC", "url": "x"}}, ("ISC",)),
        (
            {"name": "a", "version": "1.0.0", "licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]},
            ("MIT", "Apache-2.0"),
        ),
        ({"name": "a", "version": "1.0.0", "licenses": ["BSD-2-Clause"]}, ("BSD-2-Clause",)),
        ({"name": "a", "version": "1.0.0"}, ()),
    ],
)
def test_manifest_licenses(doc: dict[str, Any], want: tuple[str, ...]) -> None:
    (pkg,) = _installed(json.dumps(doc).encode(), "node_modules/a/package.json")
    assert pkg.licenses == want


@pytest.mark.parametrize(
    "doc",
    [{"name": "a"}, {"version": "1.0.0"}, {"name": "", "version": "1"}, {"name": "a", "version": 3}, []],
)
def test_manifest_without_name_or_version_skipped(doc: Any) -> None:
    assert _installed(json.dumps(doc).encode(), "node_modules/a/package.json") == []


def test_manifest_malformed() -> None:
    with pytest.raises(CatalogError, match=r"^node_modules/a/package\.json: malformed package\.json"):
        _installed(b'{"name": "a",', "node_modules/a/package.json")


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("usr/lib/node_modules/npm/package.json", True),
        ("app/node_modules/@babel/core/package.json", True),
        ("app/node_modules/a/node_modules/b/package.json", True),
        ("node_modules/lodash/package.json", True),
        ("app/package.json", False),
        ("app/node_modules/yargs/helpers/package.json", False),
        ("app/node_modules/@babel/package.json", False),
        ("app/node_modules/.bin/package.json", False),
        ("app/node_modules/a/package.json.bak", False),
    ],
)
def test_installed_required(path: str, want: bool) -> None:
    assert NpmInstalledCataloger().required(path, FileInfo(path, 100)) is want


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("package-lock.json", True),
        ("web/npm-shrinkwrap.json", True),
        ("web/node_modules/x/npm-shrinkwrap.json", False),
        ("web/node_modules/.package-lock.json", False),
    ],
)
def test_lock_required(path: str, want: bool) -> None:
    assert NpmLockCataloger().required(path, FileInfo(path, 100)) is want


def test_v2_alias_link_and_workspace() -> None:
    doc = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "root", "version": "1.0.0", "workspaces": ["packages/*"]},
            "packages/w": {"name": "w", "version": "0.1.0"},
            "node_modules/w": {"resolved": "packages/w", "link": True},
            "node_modules/old-name": {"name": "real-name", "version": "2.0.0", "license": "MIT"},
            "node_modules/@scope/pkg": {"version": "1.2.3", "devOptional": True},
        },
    }
    pkgs = {full_name(p): p for p in _lock(json.dumps(doc).encode())}
    assert set(pkgs) == {"real-name", "@scope/pkg"}
    assert pkgs["real-name"].metadata["alias"] == "old-name"
    assert pkgs["@scope/pkg"].optional and not pkgs["@scope/pkg"].dev


def test_v1_alias_and_file_link() -> None:
    doc = {
        "lockfileVersion": 1,
        "dependencies": {
            "old": {"version": "npm:@real/thing@2.0.0"},
            "local": {"version": "file:../local"},
        },
    }
    (pkg,) = _lock(json.dumps(doc).encode())
    assert (pkg.namespace, pkg.name, pkg.version, pkg.metadata["alias"]) == ("real", "thing", "2.0.0", "old")


@pytest.mark.parametrize(
    "data",
    [
        b"{",
        b"[]",
        b'{"lockfileVersion": "3", "packages": {}}',
        b'{"lockfileVersion": 3, "packages": []}',
        b'{"lockfileVersion": 3, "packages": {"node_modules/a": {}}}',
        b'{"lockfileVersion": 1, "dependencies": {"a": {"version": 1}}}',
        b'{"lockfileVersion": 7}',
    ],
)
def test_lock_malformed(data: bytes) -> None:
    with pytest.raises(CatalogError, match=r"^app/package-lock\.json: "):
        _lock(data)


def test_lock_performance() -> None:
    packages: dict[str, Any] = {"": {"name": "big", "version": "1.0.0"}}
    for i in range(2000):
        name = f"@scope{i % 40}/pkg-{i}" if i % 3 == 0 else f"pkg-{i}"
        packages[f"node_modules/{name}"] = {
            "version": f"{i % 7}.{i % 11}.{i}",
            "resolved": f"https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz",
            "integrity": "sha512-" + "A" * 86 + "==",
            "dev": i % 2 == 0,
            "license": "MIT",
            "dependencies": {"other": "^1.0.0"},
        }
    data = json.dumps({"name": "big", "lockfileVersion": 3, "packages": packages}, indent=2).encode()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        pkgs = _lock(data)
        best = min(best, time.perf_counter() - start)
    assert len(pkgs) == 2000
    assert best < 0.05, f"{best * 1000:.1f} ms"
