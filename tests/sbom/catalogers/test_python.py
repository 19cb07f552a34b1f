"""python-installed cataloger: the upstream conformance fixtures, and every distribution in this
interpreter's site-packages with ``importlib.metadata`` as the oracle."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.python import PythonInstalledCataloger, classifier_license
from garrison.sbom.registry import default_registry


def _catalog(data: bytes, path: str = "usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA") -> list[Package]:
    return PythonInstalledCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data))


@pytest.fixture(scope="session")
def python_conformance(conformance_dir: Path) -> Path:
    return conformance_dir / "catalogers" / "python"


def test_registered() -> None:
    cat = default_registry().get("python-installed")
    assert isinstance(cat, PythonInstalledCataloger)
    assert cat.modes == frozenset({"image", "fs"})


def test_conformance(python_conformance: Path) -> None:
    expected = json.loads((python_conformance / "expected.json").read_text())
    assert len(expected["fixtures"]) == 5
    for fixture in expected["fixtures"]:
        pkgs = _catalog((python_conformance / fixture["path"]).read_bytes(), "site-packages/" + fixture["path"])
        assert {(p.name, p.version) for p in pkgs} == {(e["name"], e["version"]) for e in fixture["packages"]}
        assert all(p.type == "pypi" for p in pkgs)
        skipped = {s["name"] for s in fixture["skipped"]}
        assert not skipped & {p.name for p in pkgs}


@pytest.mark.parametrize(
    ("fixture", "licenses"),
    [
        ("distlib-0.3.1.METADATA", ("Python license",)),
        # License: UNKNOWN, and the MIT classifier sits after a blank line inside the folded
        # Description, i.e. in the body, where importlib.metadata does not see it either
        ("setuptools-51.3.3-py3.8.egg-info.PKG-INFO", ()),
        ("unidecode-egg-info.PKG-INFO", ()),
        ("networkx-3.0.METADATA", ()),  # only License-File
    ],
)
def test_conformance_licenses(python_conformance: Path, fixture: str, licenses: tuple[str, ...]) -> None:
    (pkg,) = _catalog((python_conformance / fixture).read_bytes())
    assert pkg.licenses == licenses


def test_license_files_in_metadata(python_conformance: Path) -> None:
    (pkg,) = _catalog((python_conformance / "networkx-3.0.METADATA").read_bytes())
    assert pkg.metadata["license_files"] == ["LICENSE.txt"]


def _installed() -> list[Any]:
    return [d for d in importlib.metadata.distributions() if getattr(d, "_path", None) is not None]


def test_every_installed_distribution_matches_importlib() -> None:
    dists = _installed()
    assert len(dists) > 20
    checked = 0
    for dist in dists:
        path = Path(str(dist._path))
        meta = path / ("METADATA" if path.name.endswith(".dist-info") else "PKG-INFO")
        if not meta.is_file():
            continue
        rel = f"{path.parent.name}/{path.name}/{meta.name}"
        assert PythonInstalledCataloger().required(rel, FileInfo(rel, meta.stat().st_size))
        (pkg,) = _catalog(meta.read_bytes(), rel)
        assert (pkg.name, pkg.version) == (dist.metadata["Name"], dist.version)
        expression = dist.metadata.get("License-Expression")
        if expression:
            assert pkg.licenses == (expression,)
        checked += 1
    assert checked > 20


def test_license_expression_wins() -> None:
    text = (
        "Metadata-Version: 2.4\nName: demo\nVersion: 1.0\nLicense-Expression: MIT OR Apache-2.0\n"
        "License: BSD\nClassifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)\n\nbody\n"
    )
    (pkg,) = _catalog(text.encode())
    assert pkg.licenses == ("MIT OR Apache-2.0",)


def test_long_license_text_falls_back_to_classifiers() -> None:
    text = (
        "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nLicense: Copyright (c) 2020 Someone\n"
        "        Permission is hereby granted, free of charge, to any person obtaining a copy\n"
        "Classifier: License :: OSI Approved :: MIT License\n"
        "Classifier: License :: OSI Approved :: Apache Software License\n"
        "Classifier: Programming Language :: Python\n"
    )
    (pkg,) = _catalog(text.encode())
    assert pkg.licenses == ("MIT", "Apache-2.0")


@pytest.mark.parametrize(
    ("classifier", "spdx"),
    [
        ("License :: OSI Approved :: MIT License", "MIT"),
        ("License :: OSI Approved :: BSD License", "BSD-3-Clause"),
        ("License :: OSI Approved :: GNU Lesser General Public License v3 or later (LGPLv3+)", "LGPL-3.0-or-later"),
        ("License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
        ("License :: OSI Approved :: Some Future License", "Some Future License"),
        ("License :: OSI Approved", None),
        ("Programming Language :: Python", None),
    ],
)
def test_classifier_mapping(classifier: str, spdx: str | None) -> None:
    assert classifier_license(classifier) == spdx


def test_latin1_pkg_info() -> None:
    data = "Metadata-Version: 1.0\nName: oldpkg\nVersion: 0.1\nAuthor: Jos\u00e9\n".encode("latin-1")
    (pkg,) = _catalog(data, "usr/lib/python2.7/dist-packages/oldpkg-0.1.egg-info")
    assert (pkg.name, pkg.version, pkg.metadata["author"]) == ("oldpkg", "0.1", "Jos\u00e9")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Metadata-Version: 2.1\nVersion: 1.0\n", id="no-name"),
        pytest.param("Metadata-Version: 2.1\nName: demo\n", id="no-version"),
        pytest.param("", id="empty"),
        pytest.param("Name: two words\nVersion: 1\n", id="space-in-name"),
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(CatalogError, match=r"^site/x\.dist-info/METADATA: "):
        _catalog(text.encode(), "site/x.dist-info/METADATA")


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info", True),
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", True),
        ("usr/local/lib/python3.11/site-packages/requests-2.32.3.dist-info/METADATA", True),
        ("opt/app/lib/foo-1.0-py3.11.egg/EGG-INFO/PKG-INFO", True),
        ("usr/local/lib/python3.11/site-packages/requests-2.32.3.dist-info/RECORD", False),
        ("usr/local/lib/python3.11/site-packages/requests/METADATA", False),
        ("src/PKG-INFO", False),
    ],
)
def test_required(path: str, want: bool) -> None:
    assert PythonInstalledCataloger().required(path, FileInfo(path, 100)) is want
