"""Databases imported from the real advisory snapshots, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.vulndb.importer import ImportSummary, import_paths


def _build(tmp_path_factory: pytest.TempPathFactory, name: str, paths: list[Path]) -> tuple[Path, ImportSummary]:
    db = tmp_path_factory.mktemp(name) / "garrison.db"
    summary = import_paths(db, paths)
    return db, summary


@pytest.fixture(scope="session")
def osv_db(tmp_path_factory: pytest.TempPathFactory, advisories_dir: Path, assets_dir: Path) -> Path:
    """The OSV zips (PyPI, Go, crates.io, AlmaLinux) plus the NVD API pages."""
    osv = advisories_dir / "osv"
    paths = [osv / eco / "all.zip" for eco in ("PyPI", "Go", "crates.io", "AlmaLinux")] + [assets_dir / "nvd"]
    return _build(tmp_path_factory, "osv", paths)[0]


@pytest.fixture(scope="session")
def debian_db(tmp_path_factory: pytest.TempPathFactory, advisories_dir: Path) -> Path:
    return _build(tmp_path_factory, "debian", [advisories_dir / "debian"])[0]


@pytest.fixture(scope="session")
def alpine_db(tmp_path_factory: pytest.TempPathFactory, advisories_dir: Path) -> Path:
    return _build(tmp_path_factory, "alpine", [advisories_dir / "alpine"])[0]


@pytest.fixture(scope="session")
def full_import(tmp_path_factory: pytest.TempPathFactory, advisories_dir: Path) -> tuple[Path, ImportSummary]:
    """The whole advisories tree, imported once (the import the CLI does for ``db import``)."""
    return _build(tmp_path_factory, "full", [advisories_dir])
