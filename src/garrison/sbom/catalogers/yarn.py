"""Yarn lock files (source trees): classic ``yarn.lock`` v1 and Yarn Berry (2+) lock files.

Classic v1 files use yarn's own indentation format (neither YAML nor JSON), so they are read
by the small parser below, which follows yarn's ``lockfile/parse.js``: two-space indentation,
``#`` comments, keys and values that are bare words or double-quoted JSON strings, ``key:``
opening a nested block, and entry headers listing several comma-separated specifiers
(``"@babel/core@^7.0.0", "@babel/core@^7.1.0":``). No maintained Python library reads it.

Berry files are YAML (a ``__metadata`` block first) and are read with PyYAML's safe loader.
The ``resolution`` (``name@npm:1.2.3``) names the package; ``workspace:`` entries (the project
and its workspaces), ``patch:`` entries (a patched copy of a package that is also listed under
its ``npm:`` resolution), and ``link:``/``portal:``/``file:`` local folders are skipped.

Neither format records which packages are dev dependencies, so none is flagged.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._lockutil import PackageMerger, load_yaml_mapping, npm_package, read_text
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

_MAX_SIZE = 128 * 1024 * 1024
_BERRY = re.compile(r"^__metadata:", re.MULTILINE)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s"]+')
_SKIPPED_PROTOCOLS = ("workspace:", "patch:", "link:", "portal:", "file:", "virtual:")


@dataclass(slots=True)
class YarnEntry:
    specifiers: list[str]
    fields: dict[str, Any] = field(default_factory=dict)


def _unquote(token: str, line_no: int) -> str:
    if token.startswith('"'):
        try:
            value = json.loads(token)
        except json.JSONDecodeError:
            raise ValueError(f"line {line_no}: bad quoted string") from None
        if not isinstance(value, str):
            raise ValueError(f"line {line_no}: bad quoted string")
        return value
    return token


def _tokens(text: str, line_no: int) -> list[str]:
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        gap = text[pos : m.start()]
        if gap.strip():
            raise ValueError(f"line {line_no}: unterminated quoted string")
        out.append(m.group())
        pos = m.end()
    if text[pos:].strip():
        raise ValueError(f"line {line_no}: unterminated quoted string")
    return out


def _header_specifiers(text: str, line_no: int) -> list[str]:
    """Specifiers of an entry header (without its trailing colon)."""
    out: list[str] = []
    for part in _split_commas(text, line_no):
        part = part.strip()
        if not part:
            raise ValueError(f"line {line_no}: empty specifier")
        out.append(_unquote(part, line_no))
    return out


def _split_commas(text: str, line_no: int) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    escaped = False
    for c in text:
        if quoted:
            buf.append(c)
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
            buf.append(c)
        elif c == ",":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(c)
    if quoted:
        raise ValueError(f"line {line_no}: unterminated quoted string")
    parts.append("".join(buf))
    return parts


def parse_yarn_v1(text: str) -> list[YarnEntry]:
    """Entries of a classic yarn.lock; ``ValueError`` naming the line on malformed input."""
    entries: list[YarnEntry] = []
    current: YarnEntry | None = None
    block: dict[str, Any] | None = None  # the nested block being filled (level 2)
    for line_no, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if raw[indent : indent + 1] == "\t" or indent % 2:
            raise ValueError(f"line {line_no}: bad indentation")
        level = indent // 2
        if level == 0:
            if not stripped.endswith(":"):
                raise ValueError(f"line {line_no}: entry header does not end with ':'")
            current = YarnEntry(_header_specifiers(stripped[:-1], line_no))
            entries.append(current)
            block = None
            continue
        if current is None:
            raise ValueError(f"line {line_no}: indented line outside an entry")
        toks = _tokens(stripped, line_no)
        opens = toks[-1].endswith(":") and not toks[-1].startswith('"')
        if opens:
            toks[-1] = toks[-1][:-1]
            if not toks[-1]:
                toks.pop()
        if level == 1:
            if opens:
                if len(toks) != 1:
                    raise ValueError(f"line {line_no}: bad block header")
                block = {}
                current.fields[_unquote(toks[0], line_no)] = block
                continue
            block = None
            if len(toks) != 2:
                raise ValueError(f"line {line_no}: expected 'key value'")
            current.fields[_unquote(toks[0], line_no)] = _unquote(toks[1], line_no)
        elif level == 2:
            if block is None or opens or len(toks) != 2:
                raise ValueError(f"line {line_no}: unexpected nested line")
            block[_unquote(toks[0], line_no)] = _unquote(toks[1], line_no)
        else:
            raise ValueError(f"line {line_no}: nested too deeply")
    return entries


def split_descriptor(descriptor: str) -> tuple[str, str]:
    """``@scope/name@range`` -> (``@scope/name``, ``range``)."""
    at = descriptor.find("@", 1)
    if at < 0:
        return descriptor, ""
    return descriptor[:at], descriptor[at + 1 :]


def packages_from_v1(entries: list[YarnEntry], path: str) -> list[Package]:
    merger = PackageMerger()
    for entry in entries:
        version = entry.fields.get("version")
        if not isinstance(version, str) or not version:
            raise CatalogError(f"entry {', '.join(entry.specifiers)!r} has no version", input_name=path)
        name, spec = split_descriptor(entry.specifiers[0])
        if spec.startswith("npm:"):
            name, _ = split_descriptor(spec[4:])  # alias: "alias@npm:real@^1"
        if not name or spec.startswith(("file:", "link:")):
            continue
        meta: dict[str, Any] = {"specifiers": entry.specifiers}
        for key in ("resolved", "integrity"):
            value = entry.fields.get(key)
            if isinstance(value, str):
                meta[key] = value
        merger.add(npm_package(name, version, metadata=meta))
    return merger.packages()


def packages_from_berry(doc: dict[Any, Any], path: str) -> list[Package]:
    merger = PackageMerger()
    for key, entry in doc.items():
        if key == "__metadata":
            continue
        if not isinstance(key, str) or not isinstance(entry, dict):
            raise CatalogError(f"entry {key!r} is not a mapping", input_name=path)
        resolution = entry.get("resolution")
        if not isinstance(resolution, str) or not resolution:
            raise CatalogError(f"entry {key!r} has no resolution", input_name=path)
        name, reference = split_descriptor(resolution)
        if not reference or reference.startswith(_SKIPPED_PROTOCOLS):
            continue
        version = entry.get("version")
        if isinstance(version, (int, float)) and not isinstance(version, bool):
            version = str(version)
        if reference.startswith("npm:"):
            version = reference[4:]
        if not isinstance(version, str) or not version:
            raise CatalogError(f"entry {key!r} has no version", input_name=path)
        meta: dict[str, Any] = {"resolution": resolution}
        checksum = entry.get("checksum")
        if isinstance(checksum, str):
            meta["checksum"] = checksum
        merger.add(npm_package(name, version, metadata=meta))
    return merger.packages()


@cataloger
class YarnLockCataloger(Cataloger):
    """``yarn.lock`` files (classic and Berry) in source trees."""

    name = "yarn-lock"
    version = 1
    modes = frozenset({"fs"})
    max_size = _MAX_SIZE
    suffixes = ("/yarn.lock",)

    def required(self, path: str, info: FileInfo) -> bool:
        return posixpath.basename(path) == "yarn.lock" and info.size <= self.max_size

    def catalog(self, inp: CatalogInput) -> list[Package]:
        text = read_text(inp, "yarn.lock")
        if _BERRY.search(text):
            return packages_from_berry(load_yaml_mapping(inp, "yarn.lock"), inp.path)
        try:
            entries = parse_yarn_v1(text)
        except ValueError as err:
            raise CatalogError(f"malformed yarn.lock: {err}", input_name=inp.path) from None
        return packages_from_v1(entries, inp.path)
