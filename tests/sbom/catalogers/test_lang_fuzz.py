"""Hypothesis fuzzing of every language cataloger with truncated and mutated copies of real
inputs: each call returns a list of packages or raises CatalogError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.model import FileInfo
from garrison.sbom.catalogers.dotnet import DotnetCataloger
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.catalogers.npm import NpmInstalledCataloger, NpmLockCataloger
from garrison.sbom.catalogers.php import ComposerCataloger
from garrison.sbom.catalogers.pnpm import PnpmLockCataloger
from garrison.sbom.catalogers.pylock import PythonLockCataloger
from garrison.sbom.catalogers.python import PythonInstalledCataloger
from garrison.sbom.catalogers.ruby import RubyCataloger
from garrison.sbom.catalogers.yarn import YarnLockCataloger

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "lang"

# (cataloger, real input relative to tests/assets/lang or conformance:, path handed to it)
CASES: list[tuple[type[Cataloger], str, str]] = [
    (PythonInstalledCataloger, "conformance:python/distlib-0.3.1.METADATA", "x.dist-info/METADATA"),
    (PythonInstalledCataloger, "conformance:python/setuptools-51.3.3-py3.8.egg-info.PKG-INFO", "x.egg-info/PKG-INFO"),
    (PythonLockCataloger, "python/uv/uv.lock", "uv.lock"),
    (PythonLockCataloger, "python/poetry/poetry.lock", "poetry.lock"),
    (PythonLockCataloger, "python/pipenv/Pipfile.lock", "Pipfile.lock"),
    (PythonLockCataloger, "python/requirements/requirements.txt", "requirements.txt"),
    (NpmLockCataloger, "npm/package-lock.json", "package-lock.json"),
    (NpmLockCataloger, "npm/package-lock.v1.json", "package-lock.json"),
    (NpmLockCataloger, "conformance:npm/package-lock_v2.json", "package-lock.json"),
    (NpmInstalledCataloger, "npm/package.json", "node_modules/a/package.json"),
    (YarnLockCataloger, "yarn1/yarn.lock", "yarn.lock"),
    (YarnLockCataloger, "berry/yarn.lock", "yarn.lock"),
    (PnpmLockCataloger, "pnpm5/pnpm-lock.yaml", "pnpm-lock.yaml"),
    (PnpmLockCataloger, "pnpm6/pnpm-lock.yaml", "pnpm-lock.yaml"),
    (PnpmLockCataloger, "pnpm9/pnpm-lock.yaml", "pnpm-lock.yaml"),
    (RubyCataloger, "ruby/Gemfile.lock", "Gemfile.lock"),
    (RubyCataloger, "ruby/specifications/rack-2.2.22.gemspec", "specifications/rack-2.2.22.gemspec"),
    (ComposerCataloger, "php/composer.lock", "composer.lock"),
    (ComposerCataloger, "php/vendor/composer/installed.json", "vendor/composer/installed.json"),
    (DotnetCataloger, "dotnet/Web.deps.json", "Web.deps.json"),
    (DotnetCataloger, "dotnet/sub/packages.lock.json", "packages.lock.json"),
]

_cache: dict[str, bytes] = {}


def _load(source: str, conformance_dir: Path) -> bytes:
    if source not in _cache:
        if source.startswith("conformance:"):
            path = conformance_dir / "catalogers" / source.removeprefix("conformance:")
        else:
            path = ASSETS / source
        _cache[source] = path.read_bytes()
    return _cache[source]


def _check(cls: type[Cataloger], data: bytes, path: str) -> None:
    try:
        result = cls().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode="fs"))
    except CatalogError as err:
        assert str(err).startswith(f"{path}: ")
        assert "\n" not in str(err)
        return
    assert isinstance(result, list)
    for pkg in result:
        assert pkg.name and pkg.version and pkg.type in ("pypi", "npm", "gem", "composer", "nuget")


def test_inputs_parse_unmutated(conformance_dir: Path) -> None:
    for cls, source, path in CASES:
        data = _load(source, conformance_dir)
        pkgs = cls().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode="fs"))
        assert pkgs or source == "npm/package.json", source  # the project's package.json has a name and version


# mutations that hit the structure of every format: quotes, brackets, indentation, separators
_BYTES = list(b"\"'{}[]():,@/\\ \n\t#=-_>0~^\x00\xff")


@pytest.mark.parametrize(("cls", "source", "path"), CASES, ids=[c[1] for c in CASES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.floats(0.0, 1.0),
    edits=st.lists(st.tuples(st.floats(0.0, 1.0), st.sampled_from(_BYTES)), max_size=8),
)
def test_fuzz_mutated(
    conformance_dir: Path, cls: type[Cataloger], source: str, path: str, cut: float, edits: list[tuple[float, int]]
) -> None:
    data = bytearray(_load(source, conformance_dir))
    for where, byte in edits:
        data[int(where * (len(data) - 1))] = byte
    _check(cls, bytes(data[: int(cut * len(data))]), path)


@pytest.mark.parametrize(("cls", "source", "path"), CASES, ids=[c[1] for c in CASES])
@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes(cls: type[Cataloger], source: str, path: str, data: bytes) -> None:
    _check(cls, data, path)
