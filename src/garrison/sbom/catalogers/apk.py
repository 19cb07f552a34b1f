"""Installed Alpine (and Wolfi/Chainguard) packages from ``lib/apk/db/installed``.

The database is apk's own line format: records separated by blank lines, each line a one-letter
key, ``:`` and the value (``P`` name, ``V`` version, ``A`` arch, ``o`` origin = source package,
``L`` licence, ``m`` maintainer, ``U`` URL, ``T`` description, ``I`` installed size, ``t`` build
time, ``c`` aports commit; ``F``/``R``/``Z``/``a``/``M`` describe files and are skipped). There is
no library for it outside apk-tools, hence the small hand-written reader. Records without ``V``
(apk writes those for virtual or broken entries) are skipped.

``L`` is kept as one licence expression when it uses SPDX operators (``MIT OR Apache-2.0``),
otherwise it is split on whitespace (Alpine's older ``MIT BSD GPL2+`` lists).
"""

from __future__ import annotations

from typing import Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

INSTALLED_PATH = "lib/apk/db/installed"
_SPDX_OPERATORS = frozenset({"AND", "OR", "WITH", "and", "or", "with"})
_METADATA_KEYS = {"m": "maintainer", "U": "url", "T": "description", "c": "commit"}
_INT_METADATA_KEYS = {"I": "installed_size", "S": "size", "t": "build_time"}
_FILE_KEYS = frozenset("FRZaM")  # one line per file or directory: not needed for inventory
_MAX_SIZE = 256 * 1024 * 1024


def split_licenses(value: str) -> tuple[str, ...]:
    value = value.strip()
    if not value:
        return ()
    words = value.split()
    if any(w in _SPDX_OPERATORS for w in words) or "(" in value:
        return (value,)
    return tuple(words)


def _package(record: dict[str, str]) -> Package | None:
    name = record.get("P")
    version = record.get("V")
    if not name or not version:
        return None
    meta: dict[str, Any] = {}
    for key, label in _METADATA_KEYS.items():
        if record.get(key):
            meta[label] = record[key]
    for key, label in _INT_METADATA_KEYS.items():
        value = record.get(key, "")
        if value.isdigit():
            meta[label] = int(value)
    return Package(
        name=name,
        version=version,
        type="apk",
        arch=record.get("A") or None,
        source_name=record.get("o") or name,
        source_version=version,
        licenses=split_licenses(record.get("L", "")),
        metadata=meta,
    )


def parse_installed(text: str) -> list[Package]:
    """Packages of an apk ``installed`` database; ``ValueError`` names a malformed line."""
    out: list[Package] = []
    record: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line:
            if record:
                pkg = _package(record)
                if pkg is not None:
                    out.append(pkg)
                record = {}
            continue
        if len(line) < 2 or line[1] != ":":
            raise ValueError(f"line {number}: expected 'X:value'")
        key = line[0]
        if key not in _FILE_KEYS:
            record[key] = line[2:]
    if record:
        pkg = _package(record)
        if pkg is not None:
            out.append(pkg)
    return out


@cataloger
class ApkCataloger(Cataloger):
    """apk's installed database (Alpine, Wolfi, Chainguard)."""

    name = "apk"
    version = 1
    modes = frozenset({"image"})
    max_size = _MAX_SIZE
    suffixes = ("/lib/apk/db/installed",)

    def required(self, path: str, info: FileInfo) -> bool:
        return path == INSTALLED_PATH

    def catalog(self, inp: CatalogInput) -> list[Package]:
        text = inp.read().decode("utf-8", "replace")
        try:
            return parse_installed(text)
        except ValueError as err:
            raise CatalogError(f"malformed apk database: {err}", input_name=inp.path) from None
