"""Helpers shared by the language-ecosystem catalogers (Python, npm/yarn/pnpm, Ruby, PHP, .NET).

Decoding and document loading that turn every parser failure into a :class:`CatalogError`
naming the file, npm-style name splitting, licence-field normalisation and the merge rule for
packages that a lock file lists more than once. ``tomllib`` and PyYAML are imported by the
loaders that need them (an image with no TOML or YAML lock file never loads them: about 10 ms of
every ``garrison sbom`` run otherwise).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from typing import Any

from garrison.model import Package
from garrison.sbom.catalogers.interface import CatalogError, CatalogInput


def read_text(inp: CatalogInput, what: str) -> str:
    """The file as UTF-8 text (a leading BOM is dropped); ``CatalogError`` if it is not UTF-8."""
    try:
        text = inp.read().decode("utf-8")
    except UnicodeDecodeError:
        raise CatalogError(f"{what} is not UTF-8", input_name=inp.path) from None
    return text.removeprefix("\ufeff")


def load_json(inp: CatalogInput, what: str) -> Any:
    text = read_text(inp, what)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise CatalogError(f"malformed {what}: {_one_line(err)}", input_name=inp.path) from None


def load_json_object(inp: CatalogInput, what: str) -> dict[str, Any]:
    doc = load_json(inp, what)
    if not isinstance(doc, dict):
        raise CatalogError(f"malformed {what}: top level is not an object", input_name=inp.path)
    return doc


def load_toml(inp: CatalogInput, what: str) -> dict[str, Any]:
    import tomllib

    text = read_text(inp, what)
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as err:
        raise CatalogError(f"malformed {what}: {_one_line(err)}", input_name=inp.path) from None


def load_yaml_mapping(inp: CatalogInput, what: str) -> dict[Any, Any]:
    """A YAML document whose top level is a mapping (``safe_load`` only: no tags, no objects)."""
    import yaml

    text = read_text(inp, what)
    try:
        doc = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as err:
        # PyYAML raises ValueError/TypeError for some malformed scalars and unhashable keys
        raise CatalogError(f"malformed {what}: {_one_line(err)}", input_name=inp.path) from None
    if not isinstance(doc, dict):
        raise CatalogError(f"malformed {what}: top level is not a mapping", input_name=inp.path)
    return doc


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]


def basename(path: str) -> str:
    return posixpath.basename(path)


def path_parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def split_npm_name(name: str) -> tuple[str | None, str]:
    """``@babel/core`` -> (``babel``, ``core``); unscoped names have no namespace."""
    if name.startswith("@") and "/" in name:
        scope, _, rest = name[1:].partition("/")
        if scope and rest:
            return scope, rest
    return None, name


def npm_package(name: str, version: str, **kwargs: Any) -> Package:
    namespace, short = split_npm_name(name)
    return Package(name=short, version=version, type="npm", namespace=namespace, **kwargs)


def npm_licenses(doc: dict[str, Any]) -> tuple[str, ...]:
    """Licences of a package.json or lock entry: ``license`` as a string or ``{"type": ...}``
    object, or the legacy ``licenses`` array of strings or objects."""
    out: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, dict):
            value = value.get("type") or value.get("name")
        if isinstance(value, str):
            value = value.strip()
            if value and value not in out:
                out.append(value)

    lic = doc.get("license")
    if isinstance(lic, list):
        for item in lic:
            add(item)
    else:
        add(lic)
    legacy = doc.get("licenses")
    if isinstance(legacy, list):
        for item in legacy:
            add(item)
    else:
        add(legacy)
    return tuple(out)


class PackageMerger:
    """Collects packages keyed by (namespace, name, version).

    A package that appears several times (nested copies in ``node_modules``, one per peer
    resolution in pnpm) is reported once; it counts as ``dev`` or ``optional`` only if every
    copy is, since a single production copy makes it a production dependency.
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str | None, str, str], Package] = {}

    def add(self, pkg: Package) -> Package:
        key = (pkg.namespace, pkg.name, pkg.version)
        have = self._by_key.get(key)
        if have is None:
            self._by_key[key] = pkg
            return pkg
        have.dev = have.dev and pkg.dev
        have.optional = have.optional and pkg.optional
        if not have.licenses and pkg.licenses:
            have.licenses = pkg.licenses
        for k, v in pkg.metadata.items():
            have.metadata.setdefault(k, v)
        return have

    def packages(self) -> list[Package]:
        return list(self._by_key.values())


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def str_items(value: Any) -> Iterable[tuple[str, Any]]:
    """``(key, value)`` pairs of a mapping whose keys are strings; nothing for anything else."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield k, v
