"""pnpm lock files (source trees): ``pnpm-lock.yaml`` lockfileVersion 5.x, 6.x and 9.x.

YAML, read with PyYAML's safe loader. Package keys differ by version:

* 5.x: ``/name/1.0.0``, ``/@scope/name/1.0.0``, peer resolutions after ``_``
  (``/react-dom/18.3.1_react@18.3.1``);
* 6.x: ``/name@1.0.0``, peers in parentheses (``/react-dom@18.3.1(react@18.3.1)``);
* 9.x: ``name@1.0.0`` in ``packages`` (metadata) and ``snapshots`` (the install graph, peers in
  parentheses).

Entries that carry their own ``name``/``version`` (tarball and git dependencies) are reported
under those; ``link:`` and ``file:`` versions (local folders) are skipped. One package
resolved against several peer sets is reported once.

Dev and optional flags come from the graph: the importers' (the project's and its
workspaces') ``dependencies`` and everything they reach are production packages, what only
``optionalDependencies`` reach is optional, the rest (reached through ``devDependencies``) is
dev. 5.x and 6.x also write ``dev: true/false`` on each package, which wins when present; an
entry's own ``optional: true`` (an optional dependency of some package) is kept.
"""

from __future__ import annotations

import posixpath
import re
from collections import deque
from collections.abc import Iterable
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._lockutil import PackageMerger, as_dict, load_yaml_mapping, npm_package, str_items
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

_MAX_SIZE = 128 * 1024 * 1024
_DEP_SECTIONS = ("dependencies", "optionalDependencies", "devDependencies")
_LOCAL = ("link:", "file:")
_MAJOR = re.compile(r"^\s*(\d+)")


def lockfile_major(value: Any) -> int:
    m = _MAJOR.match(str(value)) if isinstance(value, (str, int, float)) else None
    if m is None:
        raise ValueError(f"unsupported lockfileVersion {value!r}")
    return int(m.group(1))


def _strip_peers(version: str, major: int) -> str:
    if major < 6:
        return version.split("_", 1)[0].split("(", 1)[0]
    return version.split("(", 1)[0]


def parse_key(key: str, major: int) -> tuple[str, str] | None:
    """(name, version) of a ``packages``/``snapshots`` key, peers removed; ``None`` if the key
    is not of the registry form (a tarball URL or a git host path)."""
    body = key[1:] if key.startswith("/") else key
    if major < 6:
        parts = body.split("/")
        if body.startswith("@") and len(parts) >= 3:
            name, version = f"{parts[0]}/{parts[1]}", "/".join(parts[2:])
        elif len(parts) >= 2:
            name, version = parts[0], "/".join(parts[1:])
        else:
            return None
        version = _strip_peers(version, major)
        if not name or not version or "/" in version or ":" in version:
            return None
        return name, version
    plain = body.split("(", 1)[0]
    at = plain.find("@", 1)
    if at < 0:
        return None
    name, version = plain[:at], plain[at + 1 :]
    if not name or not version or version.startswith(_LOCAL) or "/" in version.split("-", 1)[0]:
        return None
    return name, version


def _ref(value: Any) -> str | None:
    """The resolved reference of an importer or package dependency (5.x: a string; 6.x+ in
    importers: ``{specifier, version}``)."""
    if isinstance(value, dict):
        value = value.get("version")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value else None


def node_id(name: str, ref: str, major: int) -> str | None:
    """The ``packages`` (5.x, 6.x) or ``snapshots`` (9.x) key a dependency reference points to."""
    if ref.startswith(_LOCAL):
        return None
    if major < 6:
        return ref if "/" in ref else f"/{name}/{ref}"
    if ref.startswith("/"):
        return ref
    plain = ref.split("(", 1)[0]
    if "@" in plain[1:] or ("/" in plain.split("@", 1)[0] and "://" not in plain):
        # an alias (``real@1.0.0``, 6.x: ``/real@1.0.0``) or a non-registry key
        return ref
    return f"/{name}@{ref}" if major < 9 else f"{name}@{ref}"


def _deps(entry: dict[str, Any], sections: Iterable[str]) -> Iterable[tuple[str, str]]:
    for section in sections:
        for name, value in str_items(entry.get(section)):
            ref = _ref(value)
            if ref is not None:
                yield name, ref


def _importers(doc: dict[Any, Any]) -> list[dict[str, Any]]:
    importers = doc.get("importers")
    if isinstance(importers, dict) and importers:
        return [v for v in importers.values() if isinstance(v, dict)]
    return [doc]  # single-project lock files keep the root's dependencies at the top level


def parse_pnpm_lock(doc: dict[Any, Any], path: str) -> list[Package]:
    try:
        major = lockfile_major(doc.get("lockfileVersion"))
    except ValueError as err:
        raise CatalogError(str(err), input_name=path) from None
    if major < 5 or major > 9:
        raise CatalogError(f"unsupported lockfileVersion {doc.get('lockfileVersion')!r}", input_name=path)
    packages = doc.get("packages") or {}
    snapshots = doc.get("snapshots") or {}
    if not isinstance(packages, dict) or not isinstance(snapshots, dict):
        raise CatalogError("'packages'/'snapshots' is not a mapping", input_name=path)
    graph_nodes: dict[Any, Any] = snapshots if major >= 9 and snapshots else packages

    graph: dict[str, list[str]] = {}
    for key, entry in graph_nodes.items():
        if not isinstance(key, str):
            raise CatalogError(f"package key {key!r} is not a string", input_name=path)
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise CatalogError(f"package {key!r} is not a mapping", input_name=path)
        graph[key] = [
            n for d, r in _deps(entry, ("dependencies", "optionalDependencies")) if (n := node_id(d, r, major))
        ]

    def reach(roots: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        queue = deque(roots)
        while queue:
            n = queue.popleft()
            if n in seen or n not in graph:
                continue
            seen.add(n)
            queue.extend(graph[n])
        return seen

    importers = _importers(doc)

    def roots(section: str) -> list[str]:
        return [n for imp in importers for d, r in _deps(imp, (section,)) if (n := node_id(d, r, major))]

    prod = reach(roots("dependencies"))
    optional_only = reach(roots("optionalDependencies")) - prod
    has_roots = any(any(isinstance(imp.get(s), dict) and imp.get(s) for s in _DEP_SECTIONS) for imp in importers)

    merger = PackageMerger()
    for key, raw_entry in graph_nodes.items():
        entry = raw_entry or {}
        meta_entry = entry
        if major >= 9:
            parsed = parse_key(key, major)
            base_key = f"{parsed[0]}@{parsed[1]}" if parsed else key.split("(", 1)[0]
            meta_entry = as_dict(packages.get(base_key)) or entry
        name = meta_entry.get("name") if isinstance(meta_entry.get("name"), str) else None
        version = meta_entry.get("version") if isinstance(meta_entry.get("version"), str) else None
        if not (name and version):
            parsed = parse_key(key, major)
            if parsed is None:
                raise CatalogError(f"cannot read name and version from package key {key!r}", input_name=path)
            name, version = parsed
        if version.startswith(_LOCAL):
            continue
        if isinstance(entry.get("dev"), bool):
            dev = entry["dev"]
            is_optional = entry.get("optional") is True or key in optional_only
        elif has_roots:
            in_prod = key in prod
            is_optional = not in_prod and (key in optional_only or entry.get("optional") is True)
            dev = not in_prod and key not in optional_only
        else:
            dev, is_optional = False, entry.get("optional") is True
        meta: dict[str, Any] = {}
        resolution = as_dict(meta_entry.get("resolution"))
        for field in ("integrity", "tarball", "repo", "commit"):
            value = resolution.get(field)
            if isinstance(value, str):
                meta[field] = value
        merger.add(npm_package(name, version, dev=dev, optional=is_optional, metadata=meta))
    return merger.packages()


@cataloger
class PnpmLockCataloger(Cataloger):
    """``pnpm-lock.yaml`` in source trees."""

    name = "pnpm-lock"
    version = 1
    modes = frozenset({"fs"})
    max_size = _MAX_SIZE
    suffixes = ("/pnpm-lock.yaml",)

    def required(self, path: str, info: FileInfo) -> bool:
        return posixpath.basename(path) == "pnpm-lock.yaml" and info.size <= self.max_size

    def catalog(self, inp: CatalogInput) -> list[Package]:
        return parse_pnpm_lock(load_yaml_mapping(inp, "pnpm-lock.yaml"), inp.path)
