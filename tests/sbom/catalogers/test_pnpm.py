"""pnpm-lock cataloger on lock files pnpm 7 (lockfileVersion 5.4), pnpm 8 (6.0) and the current
pnpm (9.0) wrote for one project (tests/assets/lang/pnpm*); `pnpm list --depth Infinity --json`
from each is the oracle, dev flags included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.pnpm import PnpmLockCataloger, parse_key
from garrison.sbom.registry import default_registry

VERSIONS = ["pnpm5", "pnpm6", "pnpm9"]


def full_name(p: Package) -> str:
    return f"@{p.namespace}/{p.name}" if p.namespace else p.name


def _catalog(data: bytes, path: str = "web/pnpm-lock.yaml") -> list[Package]:
    return PnpmLockCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode="fs"))


def _pnpm_list(doc: list[dict[str, Any]]) -> set[tuple[str, str, bool]]:
    copies: dict[tuple[str, str], set[bool]] = {}

    def walk(node: dict[str, Any], dev: bool) -> None:
        for section in ("dependencies", "devDependencies", "optionalDependencies"):
            for name, child in (node.get(section) or {}).items():
                child_dev = dev or section == "devDependencies"
                copies.setdefault((name, child["version"]), set()).add(child_dev)
                walk(child, child_dev)

    walk(doc[0], False)
    return {(n, v, all(devs)) for (n, v), devs in copies.items()}


@pytest.fixture(scope="session")
def lang(assets_dir: Path) -> Path:
    return assets_dir / "lang"


def test_registered() -> None:
    assert default_registry().get("pnpm-lock").modes == frozenset({"fs"})


@pytest.mark.parametrize("version", VERSIONS)
def test_matches_pnpm_list(lang: Path, version: str) -> None:
    pkgs = _catalog((lang / version / "pnpm-lock.yaml").read_bytes())
    want = _pnpm_list(json.loads((lang / version / "pnpm-list.json").read_text()))
    assert {(full_name(p), p.version, p.dev) for p in pkgs} == want
    assert len(pkgs) == len(want)
    by_name = {full_name(p): p for p in pkgs}
    assert by_name["is-number"].optional and not by_name["is-number"].dev
    assert by_name["mocha"].dev
    assert by_name["fsevents"].optional
    assert by_name["react-dom"].version == "18.3.1"  # the peer suffix is not part of the version
    assert by_name["@babel/code-frame"].namespace == "babel"
    assert by_name["lodash"].metadata["integrity"].startswith("sha512-")


def test_versions_agree(lang: Path) -> None:
    sets = [
        {(full_name(p), p.version, p.dev, p.optional) for p in _catalog((lang / v / "pnpm-lock.yaml").read_bytes())}
        for v in VERSIONS
    ]
    assert sets[0] == sets[1]
    # pnpm 9 resolves debug's optional peer supports-color for express too (see the 9.0
    # importer: express@4.19.2(supports-color@8.1.1)), so it and has-flag become production
    older = {x[:3] for x in sets[1]}
    newer = {x[:3] for x in sets[2]}
    assert older - newer == {("supports-color", "8.1.1", True), ("has-flag", "4.0.0", True)}
    assert newer - older == {("supports-color", "8.1.1", False), ("has-flag", "4.0.0", False)}


@pytest.mark.parametrize(
    ("key", "major", "want"),
    [
        ("/lodash/4.17.21", 5, ("lodash", "4.17.21")),
        ("/@babel/core/7.24.0_supports-color@8.1.1", 5, ("@babel/core", "7.24.0")),
        ("/react-dom@18.3.1(react@18.3.1)", 6, ("react-dom", "18.3.1")),
        ("/@types/node@20.1.0", 6, ("@types/node", "20.1.0")),
        ("express@4.19.2(supports-color@8.1.1)", 9, ("express", "4.19.2")),
        ("@babel/code-frame@7.24.7", 9, ("@babel/code-frame", "7.24.7")),
        ("github.com/user/repo/abcdef", 5, None),
        ("pkg@https://codeload.github.com/user/repo/tar.gz/abc", 9, None),
    ],
)
def test_parse_key(key: str, major: int, want: tuple[str, str] | None) -> None:
    assert parse_key(key, major) == want


def test_tarball_entry_uses_its_name_and_version() -> None:
    text = b"""lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      pkg:
        specifier: github:user/repo
        version: https://codeload.github.com/user/repo/tar.gz/abc
packages:
  pkg@https://codeload.github.com/user/repo/tar.gz/abc:
    resolution: {tarball: https://codeload.github.com/user/repo/tar.gz/abc}
    name: pkg
    version: 2.0.0
snapshots:
  pkg@https://codeload.github.com/user/repo/tar.gz/abc: {}
"""
    (pkg,) = _catalog(text)
    assert (pkg.name, pkg.version, pkg.dev) == ("pkg", "2.0.0", False)
    assert pkg.metadata["tarball"].startswith("https://codeload")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("lockfileVersion: '9.0'\npackages: [\n", id="bad-yaml"),
        pytest.param("- a\n- b\n", id="not-mapping"),
        pytest.param("lockfileVersion: '3.0'\n", id="too-old"),
        pytest.param("lockfileVersion: banana\n", id="bad-version"),
        pytest.param("packages: {}\n", id="no-version"),
        pytest.param("lockfileVersion: '9.0'\npackages: [1]\n", id="packages-list"),
        pytest.param("lockfileVersion: '9.0'\nsnapshots:\n  weird: {}\n", id="unreadable-key"),
        pytest.param("lockfileVersion: '6.0'\npackages:\n  /a@1.0.0: 3\n", id="entry-not-mapping"),
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(CatalogError, match=r"^web/pnpm-lock\.yaml: "):
        _catalog(text.encode())


@pytest.mark.parametrize(
    ("path", "want"), [("pnpm-lock.yaml", True), ("a/pnpm-lock.yaml", True), ("pnpm-workspace.yaml", False)]
)
def test_required(path: str, want: bool) -> None:
    assert PnpmLockCataloger().required(path, FileInfo(path, 10)) is want
