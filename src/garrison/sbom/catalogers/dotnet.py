""".NET NuGet packages: ``*.deps.json`` (published applications) and ``packages.lock.json``.

Both are JSON, read with the standard library.

* ``<app>.deps.json`` is written next to every published .NET application and describes what
  it loads at run time, so it is read in images as well as source trees. Packages are the
  ``libraries`` entries with ``type: "package"`` (``project`` and ``reference`` entries are the
  application and its own assemblies), keyed ``Name/Version``; ``sha512`` and ``path`` go to
  the metadata. Libraries that some target lists with ``compileOnly: true`` are dev.
* ``packages.lock.json`` (NuGet lock files, source trees only): one dependency map per target
  framework, ``type`` ``Direct``, ``Transitive`` or ``CentralTransitive`` with the
  ``resolved`` version; ``Project`` entries are skipped. A package is reported once across
  target frameworks.
"""

from __future__ import annotations

import posixpath
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._lockutil import PackageMerger, load_json_object, str_or_none
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

_MAX_SIZE = 64 * 1024 * 1024


def _split_key(key: str, path: str) -> tuple[str, str]:
    name, sep, version = key.rpartition("/")
    if not sep or not name or not version:
        raise CatalogError(f"library key {key!r} is not Name/Version", input_name=path)
    return name, version


def parse_deps_json(doc: dict[str, Any], path: str) -> list[Package]:
    libraries = doc.get("libraries", {})
    targets = doc.get("targets", {})
    if not isinstance(libraries, dict) or not isinstance(targets, dict):
        raise CatalogError("'libraries'/'targets' is not an object", input_name=path)
    compile_only: set[str] = set()
    runtime: set[str] = set()
    for target in targets.values():
        if not isinstance(target, dict):
            raise CatalogError("a target is not an object", input_name=path)
        for key, entry in target.items():
            if isinstance(entry, dict) and entry.get("compileOnly") is True:
                compile_only.add(key)
            else:
                runtime.add(key)
    merger = PackageMerger()
    for key, entry in libraries.items():
        if not isinstance(entry, dict):
            raise CatalogError(f"library {key!r} is not an object", input_name=path)
        if entry.get("type") != "package":
            continue
        name, version = _split_key(key, path)
        meta: dict[str, Any] = {}
        for field in ("sha512", "path", "hashPath"):
            value = str_or_none(entry.get(field))
            if value:
                meta[field] = value
        dev = key in compile_only and key not in runtime
        merger.add(Package(name=name, version=version, type="nuget", dev=dev, metadata=meta))
    return merger.packages()


def parse_packages_lock(doc: dict[str, Any], path: str) -> list[Package]:
    frameworks = doc.get("dependencies", {})
    if not isinstance(frameworks, dict):
        raise CatalogError("'dependencies' is not an object", input_name=path)
    merger = PackageMerger()
    for framework, deps in frameworks.items():
        if not isinstance(deps, dict):
            raise CatalogError(f"dependencies[{framework!r}] is not an object", input_name=path)
        for name, entry in deps.items():
            if not isinstance(entry, dict):
                raise CatalogError(f"{framework}/{name} is not an object", input_name=path)
            kind = entry.get("type")
            if kind == "Project":
                continue
            version = entry.get("resolved")
            if not isinstance(version, str) or not version:
                raise CatalogError(f"{framework}/{name} has no resolved version", input_name=path)
            meta: dict[str, Any] = {}
            if isinstance(kind, str):
                meta["dependency_type"] = kind
            content_hash = str_or_none(entry.get("contentHash"))
            if content_hash:
                meta["contentHash"] = content_hash
            merger.add(Package(name=name, version=version, type="nuget", metadata=meta))
    return merger.packages()


@cataloger
class DotnetCataloger(Cataloger):
    """``*.deps.json`` of .NET applications and NuGet ``packages.lock.json`` files."""

    name = "dotnet-deps"
    version = 1
    modes = frozenset({"image", "fs"})
    max_size = _MAX_SIZE
    suffixes = (".deps.json", "/packages.lock.json")

    def required(self, path: str, info: FileInfo) -> bool:
        if info.size > self.max_size:
            return False
        return path.endswith(".deps.json") or posixpath.basename(path) == "packages.lock.json"

    def catalog(self, inp: CatalogInput) -> list[Package]:
        if inp.path.endswith(".deps.json"):
            return parse_deps_json(load_json_object(inp, "deps.json"), inp.path)
        if inp.mode != "fs":
            return []  # lock files in images are not install records
        return parse_packages_lock(load_json_object(inp, "packages.lock.json"), inp.path)
