"""Read-only reader for Berkeley DB hash databases, as used by rpm's ``Packages`` file (RHEL/CentOS
up to 8, Amazon Linux 2, older SUSE).

Only what an rpmdb needs: page 0 is the hash metadata page (magic ``0x061561``, page size, last
page number; byte order follows the magic), hash pages (types 2 and 13) hold a 26-byte page
header, an array of 2-byte item offsets alternating key/value, and the items. Each item starts
with its type: ``H_KEYDATA`` (1) holds the bytes in place; ``H_OFFPAGE`` (3) names the first
page of an overflow chain (type 7 pages, ``next`` links, the header's free-area field holding
the bytes used on that page) and the item's total length. Duplicate sets are not used by rpm
and are skipped.

Hand-written because the maintained bindings (``berkeleydb`` on PyPI) need libdb and write
lock/environment files; a scanner must read untrusted files without either. Every page number,
offset and length is checked, overflow chains are followed at most once per page.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

HASH_MAGIC = 0x061561
PAGE_HEADER_SIZE = 26
P_HASH_UNSORTED = 2
P_OVERFLOW = 7
P_HASHMETA = 8
P_HASH = 13
H_KEYDATA = 1
H_DUPLICATE = 2
H_OFFPAGE = 3
H_OFFDUP = 4
MAX_ITEM = 256 * 1024 * 1024


class BdbError(ValueError):
    """The file is not a well-formed Berkeley DB hash database."""


def is_bdb_hash(head: bytes) -> bool:
    if len(head) < 16:
        return False
    return HASH_MAGIC in (struct.unpack_from("<I", head, 12)[0], struct.unpack_from(">I", head, 12)[0])


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        meta = f.read(512)
        if len(meta) < 96:
            raise BdbError("file too short for a Berkeley DB metadata page")
        if struct.unpack_from("<I", meta, 12)[0] == HASH_MAGIC:
            self.order = "<"
        elif struct.unpack_from(">I", meta, 12)[0] == HASH_MAGIC:
            self.order = ">"
        else:
            raise BdbError("not a Berkeley DB hash database (bad magic)")
        version, page_size = struct.unpack_from(self.order + "II", meta, 16)
        encrypt, page_type = meta[24], meta[25]
        if version < 8 or version > 10:
            raise BdbError(f"unsupported hash version {version}")
        if page_type != P_HASHMETA:
            raise BdbError(f"page 0 has type {page_type}, not hash metadata")
        if encrypt:
            raise BdbError("encrypted databases are not supported")
        if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
            raise BdbError(f"bad page size {page_size}")
        self.page_size = page_size
        (self.last_page,) = struct.unpack_from(self.order + "I", meta, 32)
        f.seek(0, 2)
        pages_in_file = f.tell() // page_size
        if self.last_page >= pages_in_file:
            raise BdbError(f"last page {self.last_page} is beyond the end of the file ({pages_in_file} pages)")

    def page(self, number: int) -> bytes:
        if number > self.last_page:
            raise BdbError(f"page {number} is beyond the last page {self.last_page}")
        self.f.seek(number * self.page_size)
        data = self.f.read(self.page_size)
        if len(data) != self.page_size:
            raise BdbError(f"page {number} is truncated")
        return data

    def header(self, page: bytes) -> tuple[int, int, int, int]:
        """(next page, entries, free-area offset, type) of a page."""
        next_page, entries, hf_offset = struct.unpack_from(self.order + "IHH", page, 16)
        return next_page, entries, hf_offset, page[25]

    def overflow(self, first: int, length: int) -> bytes:
        if length > MAX_ITEM:
            raise BdbError(f"overflow item of {length} bytes")
        parts: list[bytes] = []
        have = 0
        seen: set[int] = set()
        number = first
        while number != 0:
            if number in seen:
                raise BdbError(f"overflow chain loops at page {number}")
            seen.add(number)
            page = self.page(number)
            next_page, _, used, typ = self.header(page)
            if typ != P_OVERFLOW:
                raise BdbError(f"page {number} in an overflow chain has type {typ}")
            if used > self.page_size - PAGE_HEADER_SIZE:
                raise BdbError(f"overflow page {number} claims {used} bytes")
            parts.append(page[PAGE_HEADER_SIZE : PAGE_HEADER_SIZE + used])
            have += used
            if have > length:
                raise BdbError(f"overflow chain from page {first} is longer than its item")
            number = next_page
        if have != length:
            raise BdbError(f"overflow chain from page {first} holds {have} of {length} bytes")
        return b"".join(parts)

    def items(self, number: int, page: bytes, entries: int) -> list[tuple[int, bytes]]:
        """(type, payload) of each item on a hash page; the payload is the in-place bytes."""
        index_end = PAGE_HEADER_SIZE + 2 * entries
        if index_end > self.page_size:
            raise BdbError(f"page {number}: {entries} entries do not fit")
        offsets = struct.unpack_from(f"{self.order}{entries}H", page, PAGE_HEADER_SIZE)
        out: list[tuple[int, bytes]] = []
        end = self.page_size
        for i, offset in enumerate(offsets):
            if offset < index_end or offset >= end:
                raise BdbError(f"page {number}: item {i} at bad offset {offset}")
            out.append((page[offset], page[offset + 1 : end]))
            end = offset
        return out


def read_bdb_hash(f: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, value)`` for every record with a plain key and a plain or overflow value."""
    reader = _Reader(f)
    for number in range(1, reader.last_page + 1):
        page = reader.page(number)
        _, entries, _, typ = reader.header(page)
        if typ not in (P_HASH, P_HASH_UNSORTED):
            continue
        if entries % 2:
            raise BdbError(f"page {number}: odd number of items ({entries})")
        items = reader.items(number, page, entries)
        for (ktype, key), (vtype, value) in zip(items[::2], items[1::2], strict=True):
            if ktype == H_OFFPAGE:
                key = _offpage(reader, key, number)
            elif ktype != H_KEYDATA:
                raise BdbError(f"page {number}: key item of type {ktype}")
            if vtype == H_KEYDATA:
                yield key, value
            elif vtype == H_OFFPAGE:
                yield key, _offpage(reader, value, number)
            elif vtype in (H_DUPLICATE, H_OFFDUP):
                continue
            else:
                raise BdbError(f"page {number}: value item of type {vtype}")


def _offpage(reader: _Reader, item: bytes, number: int) -> bytes:
    # HOFFPAGE after the type byte: 3 bytes padding, first page (u32), total length (u32)
    if len(item) < 11:
        raise BdbError(f"page {number}: truncated off-page item")
    first, length = struct.unpack_from(reader.order + "II", item, 3)
    return reader.overflow(first, length)
