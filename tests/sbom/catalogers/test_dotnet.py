"""dotnet-deps cataloger on deps.json and packages.lock.json files from Trivy's test data
(tests/assets/lang/dotnet, see the README there)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.dotnet import DotnetCataloger
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput
from garrison.sbom.registry import default_registry


def _catalog(data: bytes, path: str, mode: str = "fs") -> list[Package]:
    return DotnetCataloger().catalog(CatalogInput(FileInfo(path, len(data)), data=data, mode=mode))


@pytest.fixture(scope="session")
def dotnet(assets_dir: Path) -> Path:
    return assets_dir / "lang" / "dotnet"


def test_registered() -> None:
    assert default_registry().get("dotnet-deps").modes == frozenset({"image", "fs"})


@pytest.mark.parametrize(
    ("name", "want"),
    [("ExampleApp1.deps.json", {("Newtonsoft.Json", "13.0.1")}), ("Web.deps.json", {("Newtonsoft.Json", "13.0.3")})],
)
def test_deps_json(dotnet: Path, name: str, want: set[tuple[str, str]]) -> None:
    path = f"app/{name}"
    data = (dotnet / name).read_bytes()
    assert DotnetCataloger().required(path, FileInfo(path, len(data)))
    pkgs = _catalog(data, path, mode="image")
    assert {(p.name, p.version) for p in pkgs} == want  # project entries (Web, Api, Data) are not packages
    assert all(p.type == "nuget" and p.metadata["sha512"].startswith("sha512-") for p in pkgs)


def test_compile_only_is_dev() -> None:
    doc = {
        "targets": {"net8.0": {"A/1.0.0": {"compileOnly": True}, "B/2.0.0": {}}},
        "libraries": {"A/1.0.0": {"type": "package"}, "B/2.0.0": {"type": "package"}, "C/1.0": {"type": "reference"}},
    }
    pkgs = {p.name: p for p in _catalog(json.dumps(doc).encode(), "x.deps.json")}
    assert set(pkgs) == {"A", "B"}
    assert pkgs["A"].dev and not pkgs["B"].dev


def test_packages_lock_subdependencies(dotnet: Path) -> None:
    pkgs = _catalog((dotnet / "sub" / "packages.lock.json").read_bytes(), "src/packages.lock.json")
    assert {(p.name, p.version) for p in pkgs} == {
        ("Newtonsoft.Json", "12.0.3"),
        ("NuGet.Frameworks", "5.7.0"),
        ("Swashbuckle.AspNetCore", "5.5.1"),
        ("Microsoft.Extensions.ApiDescription.Server", "3.0.0"),
        ("Microsoft.OpenApi", "1.1.4"),
        ("Swashbuckle.AspNetCore.Swagger", "5.5.1"),
        ("Swashbuckle.AspNetCore.SwaggerGen", "5.5.1"),
        ("Swashbuckle.AspNetCore.SwaggerUI", "5.5.1"),
    }
    direct = {p.name for p in pkgs if p.metadata["dependency_type"] == "Direct"}
    assert direct == {"Newtonsoft.Json", "NuGet.Frameworks", "Swashbuckle.AspNetCore"}


def test_packages_lock_multi_framework_once(dotnet: Path) -> None:
    pkgs = _catalog((dotnet / "multi" / "packages.lock.json").read_bytes(), "packages.lock.json")
    assert sorted((p.name, p.version) for p in pkgs) == [
        ("Microsoft.Extensions.DependencyInjection", "9.0.0"),
        ("Microsoft.Extensions.DependencyInjection.Abstractions", "9.0.0"),
    ]


def test_packages_lock_skips_projects_and_images(dotnet: Path) -> None:
    doc = {
        "version": 1,
        "dependencies": {"net8.0": {"Lib": {"type": "Project"}, "X": {"type": "Transitive", "resolved": "1.0.0"}}},
    }
    assert [p.name for p in _catalog(json.dumps(doc).encode(), "packages.lock.json")] == ["X"]
    assert _catalog((dotnet / "multi" / "packages.lock.json").read_bytes(), "packages.lock.json", mode="image") == []


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("app.deps.json", b"{"),
        ("app.deps.json", b"[]"),
        ("app.deps.json", b'{"libraries": {"NoSlash": {"type": "package"}}}'),
        ("app.deps.json", b'{"libraries": []}'),
        ("app.deps.json", b'{"targets": {"x": 1}}'),
        ("packages.lock.json", b'{"dependencies": {"net8.0": {"X": {"type": "Direct"}}}}'),
        ("packages.lock.json", b'{"dependencies": {"net8.0": []}}'),
    ],
)
def test_malformed(path: str, data: bytes) -> None:
    with pytest.raises(CatalogError, match=rf"^{path}: "):
        _catalog(data, path)


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("app/MyApp.deps.json", True),
        ("src/packages.lock.json", True),
        ("app/MyApp.runtimeconfig.json", False),
        ("src/project.assets.json", False),
    ],
)
def test_required(path: str, want: bool) -> None:
    assert DotnetCataloger().required(path, FileInfo(path, 10)) is want
