"""Path hints are a necessary condition of ``required``: the walker's combined prefilter must
never hide a file some cataloger wants (checked on generated paths built from every name the
catalogers look for, in any case, at any depth)."""

from __future__ import annotations

import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.model import FileInfo
from garrison.sbom.catalogers.interface import Cataloger, combined_prefilter
from garrison.sbom.registry import default_registry

_CATALOGERS = list(default_registry())

_WORDS = [
    "var", "lib", "dpkg", "status", "status.d", "apk", "db", "installed", "rpm", "sysimage", "rpmdb.sqlite",
    "Packages", "Packages.db", "usr", "local", "site-packages", "dist-packages", "requests-2.19.1.dist-info",
    "six.egg-info", "EGG-INFO", "METADATA", "PKG-INFO", "node_modules", "@scope", "lodash", "package.json",
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "go.mod", "Cargo.lock",
    "Gemfile.lock", "specifications", "default", "rake.gemspec", "vendor", "composer", "installed.json",
    "composer.lock", "app.deps.json", "packages.lock.json", "poetry.lock", "Pipfile.lock", "uv.lock",
    "requirements", "requirements.txt", "requirements-dev.txt", "libssl.so.3", "libz.so", "hello", "app.jar",
    "APP.WAR", "x.ear", "bin", "etc", ".md5sums", ".hidden", "a.so.1.2", "notes.txt", "README",
]  # fmt: skip
_path = st.lists(st.sampled_from(_WORDS) | st.text(alphabet="abcXYZ._-", min_size=1, max_size=6), min_size=1, max_size=7).map(
    "/".join
)
_case = st.sampled_from([str, str.lower, str.upper])
_mode = st.sampled_from([0o644, 0o755, 0o700, 0o600, 0o444, 0o111]).map(lambda p: stat.S_IFREG | p)
_size = st.sampled_from([0, 10, 64, 4096, 10**6, 10**9])


def test_every_builtin_cataloger_is_hinted() -> None:
    assert _CATALOGERS
    assert [c.name for c in _CATALOGERS if not c.hinted()] == []


@settings(max_examples=1500, deadline=None)
@given(path=_path, case=_case, mode=_mode, size=_size)
def test_hints_never_hide_a_wanted_file(path: str, case: object, mode: int, size: int) -> None:
    path = case(path)  # type: ignore[operator]
    info = FileInfo(path, size, mode)
    prefilter = combined_prefilter(_CATALOGERS)
    for cat in _CATALOGERS:
        if cat.required(path, info):
            assert cat.hint_matches(path, info), (cat.name, path, oct(mode), size)
            assert prefilter(path, info), (cat.name, path)


@pytest.mark.parametrize(
    ("path", "mode", "wanted"),
    [
        pytest.param("var/lib/dpkg/status", 0o100644, True, id="dpkg-status"),
        pytest.param("var/lib/dpkg/status.d/base", 0o100644, True, id="distroless-status"),
        pytest.param("usr/share/doc/readme", 0o100644, False, id="plain-doc"),
        pytest.param("usr/bin/tool", 0o100755, True, id="executable"),
        pytest.param("usr/lib/x86_64-linux-gnu/libz.so.1.2.13", 0o100644, True, id="shared-object"),
        pytest.param("usr/share/zoneinfo/Europe/Paris", 0o100644, False, id="zoneinfo"),
    ],
)
def test_combined_prefilter_examples(path: str, mode: int, wanted: bool) -> None:
    assert combined_prefilter(_CATALOGERS)(path, FileInfo(path, 4096, mode)) is wanted


def test_unhinted_cataloger_disables_the_prefilter() -> None:
    class Everything(Cataloger):
        name = "everything"

        def required(self, path: str, info: FileInfo) -> bool:
            return True

        def catalog(self, inp: object) -> list[object]:  # type: ignore[override]
            return []

    assert not Everything.hinted()
    prefilter = combined_prefilter([*_CATALOGERS, Everything()])
    assert prefilter("usr/share/zoneinfo/Europe/Paris", FileInfo("x", 1))
