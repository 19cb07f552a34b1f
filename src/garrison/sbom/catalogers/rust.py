"""Rust crates: ``Cargo.lock`` files and binaries built with ``cargo auditable``.

``Cargo.lock`` (every format: v1 with its ``[metadata]`` checksum table, v2 without a version
key, ``version = 3`` and ``version = 4``) is TOML, read with the standard library's ``tomllib``.
As in Trivy it is cataloged in images as well as in source trees. Packages without a
``source`` are workspace members or path dependencies and are flagged ``local``.

``cargo auditable`` links a ``.dep-v0`` section into executables and cdylibs: zlib-compressed
JSON, ``{"packages": [{"name", "version", "source", "kind", "dependencies", "root"}]}``
(rust-secure-code/cargo-auditable, PARSING.md and cargo-auditable.schema.json). Build-time
crates (``kind: build``) are reported with ``dev`` set, since they are not part of the binary;
the root crate is flagged. Decompression is bounded (8 MiB, as the format's docs recommend).
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import tomllib
import zlib
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._elf import ElfFile, is_elf
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

logger = logging.getLogger(__name__)

_MAX_LOCK = 32 * 1024 * 1024
_MAX_COMPRESSED = 8 * 1024 * 1024
_MAX_JSON = 8 * 1024 * 1024
_SHARED_OBJECT = re.compile(r"\.so(\.\d+)*$")


# -- Cargo.lock ----------------------------------------------------------------------------


def _str_field(entry: dict[str, Any], key: str, index: int, path: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise CatalogError(f"[[package]] #{index} has no {key}", input_name=path)
    return value


def _guess_version(doc: dict[str, Any], entries: list[Any]) -> int:
    """v1 and v2 have no version key: v1 has a [metadata] checksum table and spells out the
    source of every dependency (``name version (source)``), v2 does neither."""
    if "metadata" in doc or "root" in doc:
        return 1
    for entry in entries:
        deps = entry.get("dependencies") if isinstance(entry, dict) else None
        if isinstance(deps, list) and any(isinstance(d, str) and " (" in d for d in deps):
            return 1
    return 2


def parse_cargo_lock(text: str, path: str) -> list[Package]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CatalogError(f"malformed Cargo.lock: {err}", input_name=path) from None
    entries = doc.get("package", [])
    if not isinstance(entries, list):
        raise CatalogError("'package' is not an array of tables", input_name=path)
    root = doc.get("root")
    if isinstance(root, dict):
        entries = [root, *entries]  # the oldest v1 files keep the root crate in [root]
    lock_version = doc.get("version") or _guess_version(doc, entries)
    out: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CatalogError(f"[[package]] #{index} is not a table", input_name=path)
        name = _str_field(entry, "name", index, path)
        version = _str_field(entry, "version", index, path)
        if (name, version) in seen:
            continue  # the same crate version from two sources
        seen.add((name, version))
        source = entry.get("source")
        meta: dict[str, Any] = {"lock_version": lock_version}
        if isinstance(source, str) and source:
            meta["source"] = source
        else:
            meta["local"] = True
        checksum = entry.get("checksum")
        if isinstance(checksum, str):
            meta["checksum"] = checksum
        out.append(Package(name=name, version=version, type="cargo", metadata=meta))
    return out


@cataloger
class CargoLockCataloger(Cataloger):
    """Crates pinned in ``Cargo.lock``."""

    name = "cargo-lock"
    suffixes = ("/cargo.lock",)
    version = 1
    max_size = _MAX_LOCK

    def required(self, path: str, info: FileInfo) -> bool:
        return posixpath.basename(path) == "Cargo.lock" and info.size <= self.max_size

    def catalog(self, inp: CatalogInput) -> list[Package]:
        try:
            text = inp.read().decode("utf-8")
        except UnicodeDecodeError:
            raise CatalogError("Cargo.lock is not UTF-8", input_name=inp.path) from None
        return parse_cargo_lock(text, inp.path)


# -- cargo-auditable -----------------------------------------------------------------------


def decompress_audit_data(data: bytes, path: str) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, _MAX_JSON)
    except zlib.error as err:
        raise CatalogError(f".dep-v0 is not zlib data: {err}", input_name=path) from None
    if d.unconsumed_tail:
        raise CatalogError(f".dep-v0 expands beyond {_MAX_JSON} bytes", input_name=path)
    if not d.eof:
        raise CatalogError(".dep-v0 zlib stream is truncated", input_name=path)
    return out


def _source(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Other"), str):
        return str(value["Other"])
    return ""


def parse_audit_json(raw: bytes, path: str) -> list[Package]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise CatalogError(f".dep-v0 is not JSON: {err}", input_name=path) from None
    packages = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(packages, list):
        raise CatalogError(".dep-v0 JSON has no 'packages' array", input_name=path)
    fmt = doc.get("format", 0)
    out: list[Package] = []
    for index, entry in enumerate(packages):
        if not isinstance(entry, dict):
            raise CatalogError(f".dep-v0 package #{index} is not an object", input_name=path)
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            raise CatalogError(f".dep-v0 package #{index} lacks a name or version", input_name=path)
        kind = entry.get("kind", "runtime")
        if kind not in ("runtime", "build"):
            raise CatalogError(f".dep-v0 package {name}: unknown kind {kind!r}", input_name=path)
        deps = entry.get("dependencies", [])
        if not isinstance(deps, list) or not all(isinstance(i, int) and 0 <= i < len(packages) for i in deps):
            raise CatalogError(f".dep-v0 package {name}: bad dependency indices", input_name=path)
        meta: dict[str, Any] = {"source": _source(entry.get("source")), "kind": kind, "audit_format": fmt}
        if entry.get("root") is True:
            meta["root"] = True
        out.append(Package(name=name, version=version, type="cargo", dev=kind == "build", metadata=meta))
    return out


@cataloger
class RustBinaryCataloger(Cataloger):
    """Crates recorded by ``cargo auditable`` in Rust executables and cdylibs (ELF)."""

    name = "rust-binary"
    version = 1
    max_size = 512 * 1024 * 1024
    executables = True
    contains = (".so",)

    def required(self, path: str, info: FileInfo) -> bool:
        if not 64 <= info.size <= self.max_size:
            return False
        if info.executable:
            return True
        return (info.mode & 0o170000) == 0o100000 and bool(_SHARED_OBJECT.search(path))

    def catalog(self, inp: CatalogInput) -> list[Package]:
        with inp.open() as f:
            if not is_elf(f):
                return []
            elf = ElfFile(f, inp.path)
            sec = elf.section(".dep-v0")
            if sec is None:
                return []
            data = elf.section_data(sec, _MAX_COMPRESSED)
        return parse_audit_json(decompress_audit_data(data, inp.path), inp.path)
