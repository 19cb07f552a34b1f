"""python-lock cataloger on lock files written by uv, Poetry and pipenv for one project
(tests/assets/lang/python, see the README there); ``uv export`` output is the oracle for the
production set and doubles as a real hashed requirements file."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.pylock import PythonLockCataloger
from garrison.sbom.registry import default_registry

PROD = {
    "certifi",
    "charset-normalizer",
    "idna",
    "pyyaml",
    "requests",
    "urllib3",
}
DEV = {"pytest", "iniconfig", "packaging", "pluggy", "pygments"}


@pytest.fixture(scope="session")
def py_assets(assets_dir: Path) -> Path:
    return assets_dir / "lang" / "python"


def _catalog(data: bytes, path: str) -> list[Package]:
    return PythonLockCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode="fs"))


def _file(py_assets: Path, rel: str) -> list[Package]:
    return _catalog((py_assets / rel).read_bytes(), rel)


def _lower(pkgs: list[Package]) -> dict[str, Package]:
    return {p.name.lower(): p for p in pkgs}


def test_registered_fs_only() -> None:
    cat = default_registry().get("python-lock")
    assert cat.modes == frozenset({"fs"})


def test_uv_export_is_the_production_set(py_assets: Path) -> None:
    exported = _lower(_file(py_assets, "requirements/requirements.txt"))
    assert set(exported) == PROD
    assert all(p.metadata["hashes"] and p.metadata["hashes"][0].startswith("sha256:") for p in exported.values())
    uv = _lower(_file(py_assets, "uv/uv.lock"))
    assert {n for n, p in uv.items() if not p.dev and not p.optional} == PROD
    assert {(n, p.version) for n, p in uv.items() if n in PROD} == {(n, p.version) for n, p in exported.items()}


def test_uv_dev_and_optional_from_graph(py_assets: Path) -> None:
    uv = _lower(_file(py_assets, "uv/uv.lock"))
    assert "garrison-py-fixture" not in uv  # the project itself (virtual source)
    assert DEV <= {n for n, p in uv.items() if p.dev}
    assert uv["pysocks"].optional and not uv["pysocks"].dev
    assert uv["requests"].version == "2.32.3"
    assert uv["requests"].metadata["source"] == {"registry": "https://pypi.org/simple"}


def test_uv_export_all_groups(py_assets: Path) -> None:
    every = _lower(_file(py_assets, "requirements/requirements-all.txt"))
    uv = _lower(_file(py_assets, "uv/uv.lock"))
    # --all-groups leaves out extras: everything else uv locked
    assert set(every) == {n for n, p in uv.items() if not p.optional}
    assert "colorama" in every and every["colorama"].metadata["markers"] == 'sys_platform == "win32"'


def test_poetry_groups(py_assets: Path) -> None:
    poetry = _lower(_file(py_assets, "poetry/poetry.lock"))
    uv = _lower(_file(py_assets, "uv/uv.lock"))
    assert {(n, p.version, p.dev, p.optional) for n, p in poetry.items()} == {
        (n, p.version, p.dev, p.optional) for n, p in uv.items()
    }
    assert poetry["pytest"].metadata["groups"] == ["dev"]


def test_pipfile_lock(py_assets: Path) -> None:
    pipenv = _lower(_file(py_assets, "pipenv/Pipfile.lock"))
    assert {n for n, p in pipenv.items() if not p.dev} == PROD
    assert {n for n, p in pipenv.items() if p.dev} == DEV
    assert pipenv["requests"].version == "2.32.3"
    assert pipenv["certifi"].metadata["hashes"]


def test_poetry_1x_category() -> None:
    text = b"""
[[package]]
name = "requests"
version = "2.31.0"
description = "Python HTTP for Humans."
category = "main"
optional = false
python-versions = ">=3.7"

[[package]]
name = "pytest"
version = "7.4.0"
description = "pytest: simple powerful testing with Python"
category = "dev"
optional = false
python-versions = ">=3.7"

[[package]]
name = "mylib"
version = "0.1.0"
description = ""
category = "main"
optional = false
python-versions = "*"
develop = true

[package.source]
type = "directory"
url = "../mylib"

[metadata]
lock-version = "1.1"
python-versions = "^3.11"
content-hash = "0"
"""
    pkgs = {p.name: p for p in _catalog(text, "poetry.lock")}
    assert set(pkgs) == {"requests", "pytest"}
    assert pkgs["pytest"].dev and not pkgs["requests"].dev


def test_requirements_syntax() -> None:
    text = b"""# a comment
-r base.txt
-c constraints.txt
--index-url https://example.org/simple
-e ./local-package
./another/local
https://example.org/pkg.tar.gz
Django[bcrypt,argon2]==4.2.11 ; python_version >= "3.8"  # pinned
flask>=2.0
numpy==1.26.*
attrs===23.1.0
requests==2.31.0 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
pkg @ https://example.org/pkg-1.0.tar.gz
Requests==2.31.0
"""
    pkgs = _catalog(text, "requirements-dev.txt")
    got = {p.name: p for p in pkgs}
    assert set(got) == {"Django", "attrs", "requests"}
    assert got["Django"].version == "4.2.11"
    assert got["Django"].metadata["extras"] == ["argon2", "bcrypt"]
    assert got["Django"].metadata["markers"] == 'python_version >= "3.8"'
    assert got["requests"].metadata["hashes"] == ["sha256:aaaa", "sha256:bbbb"]
    assert got["attrs"].version == "23.1.0"


def test_requirements_invalid_line() -> None:
    with pytest.raises(CatalogError, match=r"^requirements\.txt: line 2: invalid requirement"):
        _catalog(b"ok==1.0\nthis is == not valid\n", "requirements.txt")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("poetry.lock", b"[[package]\nname='x'"),
        ("uv.lock", b"[[package]]\nversion = '1'\n"),
        ("Pipfile.lock", b'{"default": '),
        ("Pipfile.lock", b'{"default": []}'),
        ("poetry.lock", b"package = 3\n"),
        ("requirements.txt", b"\xff\xfe"),
    ],
)
def test_malformed(name: str, data: bytes) -> None:
    with pytest.raises(CatalogError, match=rf"^src/{name}: "):
        _catalog(data, f"src/{name}")


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("requirements.txt", True),
        ("app/requirements-dev.txt", True),
        ("app/requirements/prod.txt", True),
        ("app/poetry.lock", True),
        ("Pipfile.lock", True),
        ("uv.lock", True),
        ("Pipfile", False),
        ("notes.txt", False),
        ("requirements.in", False),
    ],
)
def test_required(path: str, want: bool) -> None:
    assert PythonLockCataloger().required(path, FileInfo(path, 10)) is want
