"""PHP Composer packages: ``composer.lock`` (source trees) and ``vendor/composer/installed.json``.

Both are JSON, read with the standard library. ``composer.lock`` lists ``packages`` and
``packages-dev`` (reported as dev). ``installed.json`` is Composer's install record, so it is
read in images too: Composer 1 writes a bare list of packages, Composer 2 an object with
``packages`` and ``dev-package-names`` (those are flagged dev). Package names are
``vendor/name``: the vendor is the purl namespace. Licences come from the ``license`` field
(a string or a list). Entries without a name or version are malformed.
"""

from __future__ import annotations

import posixpath
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._lockutil import load_json, str_or_none
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

_MAX_SIZE = 64 * 1024 * 1024


def _licenses(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(v.strip() for v in value if isinstance(v, str) and v.strip())


def composer_package(entry: Any, where: str, path: str, dev: bool) -> Package:
    if not isinstance(entry, dict):
        raise CatalogError(f"{where} is not an object", input_name=path)
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"{where} has no name", input_name=path)
    if not isinstance(version, str) or not version.strip():
        raise CatalogError(f"{where} ({name}) has no version", input_name=path)
    vendor, _, short = name.strip().partition("/")
    namespace: str | None = vendor
    if not short:
        namespace, short = None, vendor
    meta: dict[str, Any] = {}
    for key in ("source", "dist"):
        ref = entry.get(key)
        if isinstance(ref, dict):
            meta[key] = {k: v for k, v in ref.items() if isinstance(v, str)}
    kind = str_or_none(entry.get("type"))
    if kind:
        meta["package_type"] = kind
    return Package(
        name=short,
        version=version.strip(),
        type="composer",
        namespace=namespace,
        licenses=_licenses(entry.get("license")),
        dev=dev,
        metadata=meta,
    )


def _list(doc: dict[str, Any], key: str, path: str) -> list[Any]:
    value = doc.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogError(f"'{key}' is not a list", input_name=path)
    return value


def parse_composer_lock(doc: Any, path: str) -> list[Package]:
    if not isinstance(doc, dict):
        raise CatalogError("malformed composer.lock: top level is not an object", input_name=path)
    out: list[Package] = []
    for key, dev in (("packages", False), ("packages-dev", True)):
        for i, entry in enumerate(_list(doc, key, path)):
            out.append(composer_package(entry, f"{key}[{i}]", path, dev))
    return out


def parse_installed_json(doc: Any, path: str) -> list[Package]:
    if isinstance(doc, list):  # Composer 1
        entries, dev_names = doc, set()
    elif isinstance(doc, dict):  # Composer 2
        entries = _list(doc, "packages", path)
        dev_names = {n for n in _list(doc, "dev-package-names", path) if isinstance(n, str)}
    else:
        raise CatalogError("malformed installed.json: neither a list nor an object", input_name=path)
    out: list[Package] = []
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        out.append(composer_package(entry, f"packages[{i}]", path, name in dev_names))
    return out


@cataloger
class ComposerCataloger(Cataloger):
    """``composer.lock`` in source trees and Composer's ``installed.json`` install record."""

    name = "composer"
    version = 1
    modes = frozenset({"image", "fs"})
    max_size = _MAX_SIZE
    suffixes = ("vendor/composer/installed.json", "/composer.lock")

    def required(self, path: str, info: FileInfo) -> bool:
        if info.size > self.max_size:
            return False
        if path.endswith("vendor/composer/installed.json"):
            return True
        return posixpath.basename(path) == "composer.lock"

    def catalog(self, inp: CatalogInput) -> list[Package]:
        if inp.path.endswith("installed.json"):
            return parse_installed_json(load_json(inp, "installed.json"), inp.path)
        if inp.mode != "fs":
            return []  # lock files in images are not install records
        return parse_composer_lock(load_json(inp, "composer.lock"), inp.path)
