"""composer cataloger on composer.lock and vendor/composer/installed.json written by Debian's
Composer 2 for a project with local path repositories (tests/assets/lang/php);
`composer show --format=json` (with and without --no-dev) is the oracle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.catalogers.php import ComposerCataloger
from garrison.sbom.registry import default_registry


def full(p: Package) -> str:
    return f"{p.namespace}/{p.name}" if p.namespace else p.name


def _catalog(data: bytes, path: str, mode: str = "fs") -> list[Package]:
    return ComposerCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode=mode))


@pytest.fixture(scope="session")
def php(assets_dir: Path) -> Path:
    return assets_dir / "lang" / "php"


def _shown(php: Path, name: str) -> set[tuple[str, str]]:
    return {(p["name"], p["version"]) for p in json.loads((php / name).read_text())["installed"]}


def test_registered() -> None:
    assert default_registry().get("composer").modes == frozenset({"image", "fs"})


def test_lock_matches_composer_show(php: Path) -> None:
    pkgs = _catalog((php / "composer.lock").read_bytes(), "composer.lock")
    assert {(full(p), p.version) for p in pkgs} == _shown(php, "composer-show.json")
    assert {(full(p), p.version) for p in pkgs if not p.dev} == _shown(php, "composer-show-no-dev.json")
    by_name = {full(p): p for p in pkgs}
    assert by_name["monolog/monolog"].namespace == "monolog"
    assert by_name["doctrine/dual"].licenses == ("MIT", "Apache-2.0")
    assert by_name["phpunit/php-timer"].dev and by_name["phpunit/php-timer"].licenses == ("BSD-3-Clause",)
    assert by_name["symfony/polyfill-ctype"].version == "v1.31.0"


@pytest.mark.parametrize("mode", ["image", "fs"])
def test_installed_json_composer2(php: Path, mode: str) -> None:
    path = "var/www/vendor/composer/installed.json"
    data = (php / "vendor" / "composer" / "installed.json").read_bytes()
    assert ComposerCataloger().required(path, FileInfo(path, len(data)))
    pkgs = _catalog(data, path, mode=mode)
    assert {(full(p), p.version) for p in pkgs} == _shown(php, "composer-show.json")
    assert {full(p) for p in pkgs if p.dev} == {"phpunit/php-timer"}


def test_installed_json_composer1_list(php: Path) -> None:
    """Composer 1 wrote the bare list of package objects."""
    doc = json.loads((php / "vendor" / "composer" / "installed.json").read_text())
    data = json.dumps(doc["packages"]).encode()
    pkgs = _catalog(data, "vendor/composer/installed.json", mode="image")
    assert {(full(p), p.version) for p in pkgs} == _shown(php, "composer-show.json")
    assert not any(p.dev for p in pkgs)  # Composer 1 did not record it


def test_lock_ignored_in_images(php: Path) -> None:
    assert _catalog((php / "composer.lock").read_bytes(), "app/composer.lock", mode="image") == []


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("composer.lock", b"{"),
        ("composer.lock", b"[]"),
        ("composer.lock", b'{"packages": {}}'),
        ("composer.lock", b'{"packages": [{"name": "a/b"}]}'),
        ("composer.lock", b'{"packages-dev": [{"version": "1.0"}]}'),
        ("vendor/composer/installed.json", b'"x"'),
        ("vendor/composer/installed.json", b'{"packages": [3]}'),
    ],
)
def test_malformed(path: str, data: bytes) -> None:
    with pytest.raises(CatalogError, match=rf"^{path}: "):
        _catalog(data, path)


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("composer.lock", True),
        ("app/vendor/composer/installed.json", True),
        ("composer.json", False),
        ("app/vendor/composer/installed.php", False),
    ],
)
def test_required(path: str, want: bool) -> None:
    assert ComposerCataloger().required(path, FileInfo(path, 10)) is want
