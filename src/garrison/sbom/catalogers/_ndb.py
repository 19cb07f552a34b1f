"""Reader for rpm's NDB package database (``Packages.db``, SUSE since SLE 15 SP3 / openSUSE).

Layout (rpm ``lib/backend/ndb/rpmpkg.c``, all integers little-endian): a 32-byte header
``("RpmP", version 0, generation, slot pages, next package index)`` shares the first page with
the slot table; ``slot pages`` pages of 16-byte slots ``("Slot", pkgidx, block offset,
block count)`` follow, a slot with block offset 0 being free. Each slot points at a blob of
16-byte blocks: ``("BlbS", pkgidx, generation, length)``, the rpm header, padding and a
trailer ``(adler32, length, "BlbE")``. The Adler-32 over head, blob and padding is checked.

Hand-written because no maintained Python library reads NDB; Debian's librpm is built
without the NDB backend.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

HEADER_MAGIC = b"RpmP"
SLOT_MAGIC = b"Slot"
BLOB_MAGIC = b"BlbS"
BLOB_TAIL_MAGIC = b"BlbE"
PAGE_SIZE = 4096
SLOT_SIZE = 16
BLK_SIZE = 16
HEADER_SIZE = 32
BLOB_HEAD_SIZE = 16
BLOB_TAIL_SIZE = 12
MAX_SLOT_PAGES = 2048  # 520k packages; anything larger is corrupt


class NdbError(ValueError):
    """The file is not a well-formed NDB package database."""


def is_ndb(head: bytes) -> bool:
    return head[:4] == HEADER_MAGIC


def _read_at(f: BinaryIO, offset: int, size: int, what: str) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise NdbError(f"{what} at offset {offset} is truncated")
    return data


def read_ndb(f: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Yield ``(pkgidx, header blob)`` for every used slot, in slot order."""
    f.seek(0, 2)
    file_size = f.tell()
    header = _read_at(f, 0, HEADER_SIZE, "header")
    magic, version, _generation, slot_pages = header[:4], *struct.unpack_from("<III", header, 4)
    if magic != HEADER_MAGIC:
        raise NdbError("not an NDB database (bad magic)")
    if version != 0:
        raise NdbError(f"unsupported NDB version {version}")
    if slot_pages == 0 or slot_pages > MAX_SLOT_PAGES:
        raise NdbError(f"bad slot page count {slot_pages}")
    table = _read_at(f, 0, slot_pages * PAGE_SIZE, "slot table")
    min_blk = slot_pages * PAGE_SIZE // BLK_SIZE
    file_blks = file_size // BLK_SIZE
    for pos in range(HEADER_SIZE, len(table), SLOT_SIZE):
        if table[pos : pos + 4] != SLOT_MAGIC:
            raise NdbError(f"bad slot magic at offset {pos}")
        pkgidx, blkoff, blkcnt = struct.unpack_from("<III", table, pos + 4)
        if blkoff == 0:
            continue
        if pkgidx == 0 or blkcnt == 0 or blkoff < min_blk or blkoff + blkcnt > file_blks:
            raise NdbError(f"bad slot at offset {pos}")
        yield pkgidx, _read_blob(f, pkgidx, blkoff, blkcnt)


def _read_blob(f: BinaryIO, pkgidx: int, blkoff: int, blkcnt: int) -> bytes:
    raw = _read_at(f, blkoff * BLK_SIZE, blkcnt * BLK_SIZE, f"blob of package {pkgidx}")
    if raw[:4] != BLOB_MAGIC:
        raise NdbError(f"package {pkgidx}: bad blob magic")
    owner, _generation, length = struct.unpack_from("<III", raw, 4)
    if owner != pkgidx:
        raise NdbError(f"package {pkgidx}: blob belongs to package {owner}")
    if blkcnt != (BLOB_HEAD_SIZE + length + BLOB_TAIL_SIZE + BLK_SIZE - 1) // BLK_SIZE:
        raise NdbError(f"package {pkgidx}: blob length {length} does not fit {blkcnt} blocks")
    tail = len(raw) - BLOB_TAIL_SIZE
    checksum, tail_length = struct.unpack_from("<II", raw, tail)
    if raw[tail + 8 :] != BLOB_TAIL_MAGIC or tail_length != length:
        raise NdbError(f"package {pkgidx}: bad blob trailer")
    if zlib.adler32(raw[:tail]) != checksum:
        raise NdbError(f"package {pkgidx}: blob checksum mismatch")
    return raw[BLOB_HEAD_SIZE : BLOB_HEAD_SIZE + length]
