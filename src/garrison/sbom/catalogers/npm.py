"""npm packages: installed ``node_modules/**/package.json`` files and ``package-lock.json``.

Installed packages (images and source trees): only a ``package.json`` directly inside a
package folder of ``node_modules`` (``node_modules/<name>/`` or ``node_modules/@scope/<name>/``,
nested ``node_modules`` included) describes an installed package; the project's own
``package.json`` and the extra ``package.json`` files some packages keep in sub-folders
(``yargs/helpers``) are not packages. Files without a name or version are skipped.

Lock files (source trees): ``package-lock.json`` and ``npm-shrinkwrap.json``, read with the
standard library's JSON parser.

* lockfileVersion 1: the nested ``dependencies`` tree; ``npm:`` alias versions
  (``npm:real-name@1.2.3``) are reported under the real name, ``file:`` links are skipped.
* lockfileVersion 2 and 3: the ``packages`` object keyed by install path. The root ``""``
  entry (the project), ``link: true`` entries and workspace folders outside ``node_modules``
  are skipped; the name comes from the entry's ``name`` (set for aliases) or else from the
  path after its last ``node_modules/``. ``devOptional`` (needed by both the dev and the
  optional tree) is reported as optional, not dev: omitting dev dependencies keeps it.

Each name@version is reported once; it is ``dev``/``optional`` only if every copy is (npm's
Arborist reading: one production copy makes it a production package). ``resolved`` and
``integrity`` are kept in the metadata.
"""

from __future__ import annotations

import posixpath
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._lockutil import (
    PackageMerger,
    load_json,
    load_json_object,
    npm_licenses,
    npm_package,
    str_or_none,
)
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

_MAX_MANIFEST = 4 * 1024 * 1024
_MAX_LOCK = 128 * 1024 * 1024
_NM = "node_modules/"


def is_installed_package_json(path: str) -> bool:
    """``.../node_modules/<name>/package.json`` or ``.../node_modules/@scope/<name>/package.json``."""
    if not path.endswith("package.json"):
        return False
    parts = path.split("/")
    if len(parts) < 3 or parts[-1] != "package.json":
        return False
    if parts[-3] == "node_modules":
        return not parts[-2].startswith((".", "@"))
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@") and len(parts[-3]) > 1


def package_from_manifest(doc: dict[str, Any]) -> Package | None:
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name.strip() or not version.strip():
        return None
    meta: dict[str, Any] = {}
    for key in ("homepage", "description"):
        value = str_or_none(doc.get(key))
        if value:
            meta[key] = value
    if doc.get("private") is True:
        meta["private"] = True
    return npm_package(name.strip(), version.strip(), licenses=npm_licenses(doc), metadata=meta)


@cataloger
class NpmInstalledCataloger(Cataloger):
    """Packages installed under ``node_modules``."""

    name = "npm-installed"
    version = 1
    modes = frozenset({"image", "fs"})
    max_size = _MAX_MANIFEST
    suffixes = ("/package.json",)

    def required(self, path: str, info: FileInfo) -> bool:
        return info.size <= self.max_size and is_installed_package_json(path)

    def catalog(self, inp: CatalogInput) -> list[Package]:
        doc = load_json(inp, "package.json")
        if not isinstance(doc, dict):
            return []
        pkg = package_from_manifest(doc)
        return [pkg] if pkg is not None else []


# -- package-lock.json ----------------------------------------------------------------------


def _lock_meta(entry: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key in ("resolved", "integrity"):
        value = str_or_none(entry.get(key))
        if value:
            meta[key] = value
    if entry.get("inBundle") is True or entry.get("bundled") is True:
        meta["bundled"] = True
    return meta


def _split_alias(name: str, version: str) -> tuple[str, str, str | None]:
    """v1 ``npm:`` alias versions: (real name, real version, alias name)."""
    if version.startswith("npm:"):
        spec = version[4:]
        at = spec.rfind("@")
        if at > 0:
            return spec[:at], spec[at + 1 :], name
    return name, version, None


def _walk_v1(deps: Any, merger: PackageMerger, path: str, depth: int) -> None:
    if not isinstance(deps, dict):
        raise CatalogError("'dependencies' is not an object", input_name=path)
    if depth > 500:
        raise CatalogError("'dependencies' nested too deeply", input_name=path)
    for name, entry in deps.items():
        if not isinstance(entry, dict):
            raise CatalogError(f"dependency {name!r} is not an object", input_name=path)
        version = entry.get("version")
        if not isinstance(version, str) or not version:
            raise CatalogError(f"dependency {name!r} has no version", input_name=path)
        nested = entry.get("dependencies")
        if nested is not None:
            _walk_v1(nested, merger, path, depth + 1)
        if version.startswith("file:"):
            continue  # a local link, not a registry package
        real, real_version, alias = _split_alias(name, version)
        meta = _lock_meta(entry)
        if alias:
            meta["alias"] = alias
        merger.add(
            npm_package(
                real,
                real_version,
                dev=entry.get("dev") is True,
                optional=entry.get("optional") is True,
                metadata=meta,
            )
        )


def _name_from_path(key: str) -> str:
    i = key.rfind(_NM)
    return key[i + len(_NM) :] if i >= 0 else ""


def _walk_v2(packages: Any, merger: PackageMerger, path: str) -> None:
    if not isinstance(packages, dict):
        raise CatalogError("'packages' is not an object", input_name=path)
    for key, entry in packages.items():
        if not isinstance(entry, dict):
            raise CatalogError(f"packages[{key!r}] is not an object", input_name=path)
        if key == "" or entry.get("link") is True:
            continue
        path_name = _name_from_path(key)
        if not path_name:
            continue  # a workspace folder; its node_modules link is the installed copy
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            name = path_name
        version = entry.get("version")
        if not isinstance(version, str) or not version:
            if entry.get("extraneous") is True:
                continue
            raise CatalogError(f"packages[{key!r}] has no version", input_name=path)
        meta = _lock_meta(entry)
        if name != path_name:
            meta["alias"] = path_name
        dev_optional = entry.get("devOptional") is True
        if dev_optional:
            meta["devOptional"] = True
        merger.add(
            npm_package(
                name,
                version,
                dev=entry.get("dev") is True,
                optional=entry.get("optional") is True or dev_optional,
                licenses=npm_licenses(entry),
                metadata=meta,
            )
        )


def parse_package_lock(doc: dict[str, Any], path: str) -> list[Package]:
    version = doc.get("lockfileVersion", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CatalogError(f"unsupported lockfileVersion {version!r}", input_name=path)
    merger = PackageMerger()
    if version >= 2 and "packages" in doc:
        _walk_v2(doc["packages"], merger, path)
    elif version in (1, 2):
        _walk_v1(doc.get("dependencies", {}), merger, path, 0)
    else:
        raise CatalogError(f"lockfileVersion {version} without 'packages'", input_name=path)
    return merger.packages()


@cataloger
class NpmLockCataloger(Cataloger):
    """``package-lock.json`` / ``npm-shrinkwrap.json`` in source trees."""

    name = "npm-lock"
    version = 1
    modes = frozenset({"fs"})
    max_size = _MAX_LOCK
    suffixes = ("/package-lock.json", "/npm-shrinkwrap.json")

    def required(self, path: str, info: FileInfo) -> bool:
        base = posixpath.basename(path)
        if base not in ("package-lock.json", "npm-shrinkwrap.json") or info.size > self.max_size:
            return False
        return "node_modules/" not in path  # shrinkwraps of installed packages are installed too

    def catalog(self, inp: CatalogInput) -> list[Package]:
        return parse_package_lock(load_json_object(inp, posixpath.basename(inp.path)), inp.path)
