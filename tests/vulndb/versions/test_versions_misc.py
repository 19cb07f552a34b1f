"""pep440 (packaging's order), composer (Composer normalisation and constraints) and generic."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from garrison.vulndb.versions import InvalidVersion, get_scheme
from garrison.vulndb.versions.composer import normalize

PEP440 = get_scheme("pep440")
COMPOSER = get_scheme("composer")
GENERIC = get_scheme("generic")


def test_pep440_orders_like_packaging(advisories_dir: Path) -> None:
    versions: set[str] = set()
    with zipfile.ZipFile(advisories_dir / "osv" / "PyPI" / "all.zip") as zf:
        for name in zf.namelist()[:500]:
            for aff in json.loads(zf.read(name)).get("affected", []):
                versions.update(aff.get("versions", [])[:20])
    valid = [v for v in versions if PEP440.valid(v)]
    assert len(valid) > 500
    assert sorted(valid, key=PEP440.key) == sorted(valid, key=Version)
    assert PEP440.compare("1.0", "1.0.0") == 0 and PEP440.key("1.0") == PEP440.key("1.0.0")
    assert PEP440.compare("1.0rc1", "1.0") == -1 and PEP440.compare("1.0.post1", "1.0") == 1


@pytest.mark.parametrize("bad", ["", "1.0-beta-x", "latest", "1.0 1"])
def test_pep440_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion, match="pep440 version"):
        PEP440.key(bad)


def test_pep440_specifiers() -> None:
    assert PEP440.satisfies("1.4.5", "~=1.4.2")
    assert not PEP440.satisfies("1.5.0", "~=1.4.2")
    assert PEP440.satisfies("2.0rc1", ">=1.0,<2.1")
    with pytest.raises(InvalidVersion, match="specifier"):
        PEP440.satisfies("1.0", "=>1")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("1.0", "1.0.0.0"), ("v1.2.3", "1.2.3.0"), ("1.0-beta2", "1.0.0.0-beta2"), ("1.0.0-RC1", "1.0.0.0-RC1"),
     ("1.0-p1", "1.0.0.0-patch1"), ("1.0.x-dev", "1.0.9999999.9999999-dev"), ("1.0.0-stable", "1.0.0.0"),
     ("1.0.0-a1", "1.0.0.0-alpha1"), ("2010-01-02", "2010.01.02"), ("1.0.0-beta.2-dev", "1.0.0.0-beta2-dev")],
)  # fmt: skip
def test_composer_normalize(raw: str, normalized: str) -> None:
    assert normalize(raw) == normalized


def test_composer_stability_order() -> None:
    order = ["1.0.0-dev", "1.0.0-alpha1", "1.0.0-alpha2", "1.0.0-beta1", "1.0.0-RC1", "1.0.0", "1.0.0-patch1", "1.0.1"]
    keys = [COMPOSER.key(v) for v in order]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert COMPOSER.compare("v1.0", "1.0.0.0") == 0


@pytest.mark.parametrize(
    ("version", "constraint", "expected"),
    [("1.2.3", "^1.2", True), ("2.0.0", "^1.2", False), ("1.2.9", "~1.2.3", True), ("1.3.0", "~1.2.3", False),
     ("1.9", "~1.2", True), ("2.0", "~1.2", False), ("1.0.5", "1.0.*", True), ("1.1.0", "1.0.*", False),
     ("2.0.5", "1.0 - 2.0", True), ("2.1.0", "1.0 - 2.0", False), ("1.5", ">=1.0 <2.0", True),
     ("1.3", ">=1.0,<1.2 || >=1.4", False), ("1.4", ">=1.0,<1.2 || >=1.4", True), ("0.3.5", "^0.3", True),
     ("0.4.0", "^0.3", False), ("2.0.0-beta1", "<2.0", False), ("1.0.0", "*", True), ("1.5", "!=1.5", False)],
)  # fmt: skip
def test_composer_constraints(version: str, constraint: str, expected: bool) -> None:
    assert COMPOSER.satisfies(version, constraint) is expected


@pytest.mark.parametrize("bad", ["", "dev-main", "1.0.0.0.0", "abc", "1.x.2"])
def test_composer_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion, match="composer version"):
        COMPOSER.key(bad)


def test_generic_is_tolerant() -> None:
    assert GENERIC.compare("1.10", "1.9") == 1
    assert GENERIC.compare("1.0-RC1", "1.0.rc1") == 0
    assert GENERIC.compare("1.0", "1.0a") == -1
    assert GENERIC.compare("2024.01.02", "2023.12.31") == 1
    assert GENERIC.valid("¯\\_(ツ)_/¯") and GENERIC.valid("---")
    with pytest.raises(InvalidVersion):
        GENERIC.key("")
