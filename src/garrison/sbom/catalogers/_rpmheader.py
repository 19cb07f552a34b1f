"""Reader for rpm header blobs, the records every rpmdb backend stores.

A header blob (as kept in the rpmdb, without the lead and intro magic of an ``.rpm`` file) is
two big-endian ``int32`` counts, ``il`` index entries and ``dl`` data bytes, then ``il``
16-byte entries ``(tag, type, offset, count)`` and the data store they point into. Region tags
(61-63) describe signature/immutable regions and are not needed for inventory.

Hand-written: the only maintained reader is librpm itself (its Python bindings are not on PyPI
and would tie Garrison to the host's rpm). Every offset and count is checked against the blob,
so corrupt input raises :class:`HeaderError` instead of reading out of bounds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from garrison.model import Package

# rpm tag numbers (rpmtag.h)
TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_SUMMARY = 1004
TAG_SIZE = 1009
TAG_VENDOR = 1011
TAG_LICENSE = 1014
TAG_PACKAGER = 1015
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
TAG_LONGSIZE = 5009
TAG_MODULARITYLABEL = 5096

# rpm tag types (rpmtag.h, rpmTagType)
TYPE_NULL = 0
TYPE_CHAR = 1
TYPE_INT8 = 2
TYPE_INT16 = 3
TYPE_INT32 = 4
TYPE_INT64 = 5
TYPE_STRING = 6
TYPE_BIN = 7
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

_INT_SIZES = {TYPE_CHAR: 1, TYPE_INT8: 1, TYPE_INT16: 2, TYPE_INT32: 4, TYPE_INT64: 8}
_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}

# librpm's own sanity bounds (header_internal.h): HEADER_TAGS_MAX, HEADER_DATA_MAX
MAX_TAGS = 0xFFFF
MAX_DATA = 0x0FFFFFFF


class HeaderError(ValueError):
    """The blob is not a well-formed rpm header."""


@dataclass(frozen=True, slots=True)
class _Entry:
    type: int
    offset: int
    count: int


@dataclass(slots=True)
class RpmHeader:
    """Index of one header blob; values are decoded on request."""

    data: bytes
    entries: dict[int, _Entry] = field(default_factory=dict)

    @classmethod
    def parse(cls, blob: bytes) -> RpmHeader:
        if len(blob) < 8:
            raise HeaderError(f"header blob of {len(blob)} bytes is too short")
        il, dl = struct.unpack_from(">II", blob, 0)
        if il == 0 or il > MAX_TAGS:
            raise HeaderError(f"bad index entry count {il}")
        if dl > MAX_DATA:
            raise HeaderError(f"bad data length {dl}")
        start = 8 + il * 16
        if start + dl > len(blob):
            raise HeaderError(f"header needs {start + dl} bytes, blob has {len(blob)}")
        data = blob[start : start + dl]
        entries: dict[int, _Entry] = {}
        for tag, typ, offset, count in struct.iter_unpack(">IIII", blob[8:start]):
            if typ > TYPE_I18NSTRING:
                raise HeaderError(f"tag {tag}: unknown type {typ}")
            if offset >= dl and not (typ == TYPE_NULL or count == 0):
                raise HeaderError(f"tag {tag}: offset {offset} outside the {dl}-byte data store")
            if count > dl + 1:
                raise HeaderError(f"tag {tag}: count {count} larger than the data store")
            entries.setdefault(tag, _Entry(typ, offset, count))
        return cls(data, entries)

    def _strings(self, tag: int, entry: _Entry) -> list[str]:
        out: list[str] = []
        pos = entry.offset
        for _ in range(entry.count if entry.type != TYPE_STRING else 1):
            end = self.data.find(b"\0", pos)
            if end < 0:
                raise HeaderError(f"tag {tag}: unterminated string")
            out.append(self.data[pos:end].decode("utf-8", "replace"))
            pos = end + 1
        return out

    def string(self, tag: int) -> str | None:
        entry = self.entries.get(tag)
        if entry is None:
            return None
        if entry.type not in (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING):
            raise HeaderError(f"tag {tag}: type {entry.type} is not a string")
        values = self._strings(tag, entry)
        return values[0] if values else ""

    def integers(self, tag: int) -> list[int]:
        entry = self.entries.get(tag)
        if entry is None:
            return []
        size = _INT_SIZES.get(entry.type)
        if size is None:
            raise HeaderError(f"tag {tag}: type {entry.type} is not an integer")
        end = entry.offset + size * entry.count
        if end > len(self.data):
            raise HeaderError(f"tag {tag}: {entry.count} values run past the data store")
        return list(struct.unpack_from(f">{entry.count}{_INT_FORMATS[size]}", self.data, entry.offset))

    def integer(self, tag: int) -> int | None:
        values = self.integers(tag)
        return values[0] if values else None


def split_source_rpm(filename: str) -> tuple[str, str] | None:
    """``audit-3.0.6-1.cm2.src.rpm`` -> ``("audit", "3.0.6-1.cm2")``; None if it does not parse."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            break
    else:
        return None
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    name, version, release = parts
    return name, f"{version}-{release}"


def package_from_header(blob: bytes) -> Package | None:
    """The installed package a header describes; None for ``gpg-pubkey`` pseudo-packages."""
    hdr = RpmHeader.parse(blob)
    name = hdr.string(TAG_NAME)
    version = hdr.string(TAG_VERSION)
    release = hdr.string(TAG_RELEASE)
    if not name or version is None or release is None:
        raise HeaderError("header without name, version or release")
    if name == "gpg-pubkey":
        return None
    epoch = hdr.integer(TAG_EPOCH)
    full = f"{version}-{release}"
    if epoch is not None:
        full = f"{epoch}:{full}"
    arch = hdr.string(TAG_ARCH)
    license_ = hdr.string(TAG_LICENSE)
    source_rpm = hdr.string(TAG_SOURCERPM)
    meta: dict[str, Any] = {}
    if source_rpm:
        meta["source_rpm"] = source_rpm
    vendor = hdr.string(TAG_VENDOR)
    if vendor:
        meta["vendor"] = vendor
    size = hdr.integer(TAG_LONGSIZE)
    if size is None:
        size = hdr.integer(TAG_SIZE)
    if size is not None:
        meta["size"] = size
    label = hdr.string(TAG_MODULARITYLABEL)
    if label:
        meta["modularity_label"] = label
    source = split_source_rpm(source_rpm) if source_rpm else None
    return Package(
        name=name,
        version=full,
        type="rpm",
        epoch=epoch,
        arch=arch or None,
        licenses=(license_,) if license_ else (),
        source_name=source[0] if source else name,
        source_version=source[1] if source else f"{version}-{release}",
        metadata=meta,
    )
