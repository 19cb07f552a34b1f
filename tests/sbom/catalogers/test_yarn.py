"""yarn-lock cataloger on lock files written by yarn 1.22 and yarn 4 (Berry) for one project
(tests/assets/lang/{yarn1,berry}); `yarn list --json` and `yarn info --all --recursive --json`
are the oracles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.yarn import YarnLockCataloger, parse_yarn_v1, split_descriptor
from garrison.sbom.registry import default_registry


def full_name(p: Package) -> str:
    return f"@{p.namespace}/{p.name}" if p.namespace else p.name


def _catalog(data: bytes, path: str = "web/yarn.lock") -> list[Package]:
    return YarnLockCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode="fs"))


@pytest.fixture(scope="session")
def lang(assets_dir: Path) -> Path:
    return assets_dir / "lang"


def test_registered() -> None:
    assert default_registry().get("yarn-lock").modes == frozenset({"fs"})


def test_classic_matches_yarn_list(lang: Path) -> None:
    pkgs = _catalog((lang / "yarn1" / "yarn.lock").read_bytes())
    listed: set[tuple[str, str]] = set()

    def walk(trees: list[dict[str, object]]) -> None:
        for t in trees:
            if not t.get("shadow"):
                name, _, version = str(t["name"]).rpartition("@")
                listed.add((name, version))
            walk(t.get("children", []))  # type: ignore[arg-type]

    walk(json.loads((lang / "yarn1" / "yarn-list.json").read_text())["data"]["trees"])
    assert {(full_name(p), p.version) for p in pkgs} == listed
    assert len(pkgs) == len(listed)
    frame = next(p for p in pkgs if full_name(p) == "@babel/code-frame")
    assert frame.namespace == "babel" and frame.metadata["integrity"].startswith("sha512-")
    assert frame.metadata["resolved"].startswith("https://registry.yarnpkg.com/@babel/code-frame/")


def test_berry_matches_yarn_info(lang: Path) -> None:
    pkgs = _catalog((lang / "berry" / "yarn.lock").read_bytes())
    want: set[tuple[str, str]] = set()
    skipped: list[str] = []
    for line in (lang / "berry" / "yarn-info.ndjson").read_text().splitlines():
        o = json.loads(line)
        name, reference = split_descriptor(o["value"])
        if reference.startswith("npm:"):
            want.add((name, o["children"]["Version"]))
        else:
            skipped.append(o["value"])
    assert {(full_name(p), p.version) for p in pkgs} == want
    assert any(s.startswith("garrison-lang-fixture@workspace:") for s in skipped)
    assert any("@patch:" in s for s in skipped)
    assert ("fsevents", "2.3.3") in want


def test_classic_and_berry_agree_on_the_project(lang: Path) -> None:
    classic = {(full_name(p), p.version) for p in _catalog((lang / "yarn1" / "yarn.lock").read_bytes())}
    berry = {(full_name(p), p.version) for p in _catalog((lang / "berry" / "yarn.lock").read_bytes())}
    assert classic <= berry  # berry also locks node-gyp & co. for the patched fsevents' build


def test_v1_quoted_and_multiple_specifiers() -> None:
    text = b"""# yarn lockfile v1


"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":
  version "7.12.13"
  resolved "https://registry.yarnpkg.com/@babel/code-frame/-/code-frame-7.12.13.tgz#dcfc826beef65e75c50e21d3837d7d95798dd658"
  integrity sha512-HV1Cm0Q3ZrpCR93tkWOYiuYIgLxZXZFVG2VgK+MBWjUqZTundupbfx2aXarXuw5Ko5aMcjtJgbSs4vUGBS5v6g==
  dependencies:
    "@babel/highlight" "^7.12.13"

js-tokens@^4.0.0, "js-tokens@^3.0.0 || ^4.0.0":
  version "4.0.0"
  resolved "https://registry.yarnpkg.com/js-tokens/-/js-tokens-4.0.0.tgz"

my-alias@npm:lodash@^4.17.0:
  version "4.17.21"

local@file:../local:
  version "1.0.0"
"""
    pkgs = {full_name(p): p for p in _catalog(text)}
    assert set(pkgs) == {"@babel/code-frame", "js-tokens", "lodash"}
    assert pkgs["@babel/code-frame"].metadata["specifiers"] == ["@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4"]
    assert pkgs["js-tokens"].metadata["specifiers"][1] == "js-tokens@^3.0.0 || ^4.0.0"
    assert pkgs["lodash"].version == "4.17.21"


def test_parse_v1_structure() -> None:
    entries = parse_yarn_v1('a@^1:\n  version "1.0.0"\n  dependencies:\n    b "^2"\n    "@c/d" "3"\n')
    assert entries[0].fields == {"version": "1.0.0", "dependencies": {"b": "^2", "@c/d": "3"}}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('a@^1\n  version "1"\n', id="header-without-colon"),
        pytest.param('  version "1"\n', id="orphan-field"),
        pytest.param('a@^1:\n   version "1"\n', id="odd-indent"),
        pytest.param('a@^1:\n  version "1\n', id="unterminated-quote"),
        pytest.param('"a@^1:\n  version "1"\n', id="unterminated-header-quote"),
        pytest.param("a@^1:\n  resolved x\n", id="no-version"),
        pytest.param('a@^1:\n  version "1"\n      deep "x"\n', id="too-deep"),
        pytest.param('a@^1:\n  version "1" extra\n', id="three-tokens"),
    ],
)
def test_v1_malformed(text: str) -> None:
    with pytest.raises(CatalogError, match=r"^web/yarn\.lock: "):
        _catalog(text.encode())


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("__metadata:\n  version: 6\n'a@npm:1': [\n", id="bad-yaml"),
        pytest.param('__metadata:\n  version: 6\n"a@npm:^1":\n  version: 1.0.0\n', id="no-resolution"),
        pytest.param('__metadata:\n  version: 6\n"a@npm:^1": 3\n', id="entry-not-mapping"),
    ],
)
def test_berry_malformed(text: str) -> None:
    with pytest.raises(CatalogError, match=r"^web/yarn\.lock: "):
        _catalog(text.encode())


@pytest.mark.parametrize(("path", "want"), [("yarn.lock", True), ("a/b/yarn.lock", True), ("yarn.lock.bak", False)])
def test_required(path: str, want: bool) -> None:
    assert YarnLockCataloger().required(path, FileInfo(path, 10)) is want
