"""Stream the members of one layer blob (gzip, zstd, xz, bzip2 or plain tar) as
:class:`~garrison.image.interface.Entry` objects, without extracting anything to disk.

The compression is detected from the blob's magic bytes (a media type is only a hint: registries
and tools mislabel layers). The tar stream is read forward only by :mod:`garrison.image._tarstream`
(a lean reader; decompression and the blob's digest check run in a producer thread), so memory
stays constant whatever the layer size. Hostile members (absolute paths, ``..`` escapes, paths
through a symlink of the same layer, device nodes) are skipped with a warning, never followed;
GNU sparse members are read as regular files with zero-filled holes. A decompression-bomb guard counts bytes on both sides of the
decompressor. Any corrupt or truncated stream raises :class:`~garrison.core.errors.InputError`
naming the layer, including errors met while a consumer reads an entry's content.
"""

from __future__ import annotations

import io
import logging
import posixpath
import stat
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

from garrison.core.errors import GarrisonError, InputError
from garrison.core.limits import DEFAULT_LIMITS, Limits
from garrison.image._tarstream import DECODE_ERRORS, RATIO_GRACE, ChunkFeed, Header, TarStream, describe
from garrison.image.interface import Entry, EntryType
from garrison.model import FileInfo

logger = logging.getLogger(__name__)

__all__ = ["OPAQUE_MARKER", "RATIO_GRACE", "WHITEOUT_PREFIX", "detect_compression", "iter_layer", "normalize_member_path"]

_HARDLINK_FILE_MAX = 1024 * 1024  # content kept per file so later hardlinks can be opened
_HARDLINK_TOTAL_MAX = 16 * 1024 * 1024

_MAGIC_GZIP = b"\x1f\x8b"
_MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"
_MAGIC_XZ = b"\xfd7zXZ\x00"
_MAGIC_BZIP2 = b"BZh"

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


def detect_compression(head: bytes) -> str:
    """``gzip``, ``zstd``, ``xz``, ``bzip2`` or ``tar`` from the first bytes of a blob."""
    if head.startswith(_MAGIC_GZIP):
        return "gzip"
    if head.startswith(_MAGIC_ZSTD):
        return "zstd"
    if head.startswith(_MAGIC_XZ):
        return "xz"
    if head.startswith(_MAGIC_BZIP2):
        return "bzip2"
    return "tar"


def normalize_member_path(name: str) -> str | None:
    """The member name as a clean relative POSIX path, ``""`` for the root itself, or ``None``
    when it is absolute or escapes the root."""
    if "\x00" in name:
        return None
    if name.startswith("/"):
        return None
    norm = posixpath.normpath(name)
    if norm == ".":
        return ""
    if norm == ".." or norm.startswith("../") or norm.startswith("/"):
        return None
    return norm


class _Content(io.RawIOBase):
    """Content of the current member, read straight from the tar stream's buffered chunks. Valid
    until the walk advances; small files read to the end are remembered for later hardlinks."""

    def __init__(self, walk: _Walk, generation: int, path: str, size: int) -> None:
        self._walk = walk
        self._generation = generation
        self._path = path
        self._size = size
        self._keep: list[bytes] | None = [] if size <= _HARDLINK_FILE_MAX else None
        self._got = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        walk = self._walk
        if walk.generation != self._generation:
            raise InputError(f"{self._path}: content is no longer available (the layer has moved on)", input_name=walk.name)
        try:
            data = walk.tar.read(-1 if size is None else size)
        except GarrisonError:
            raise
        except DECODE_ERRORS as err:
            raise InputError(f"{self._path}: cannot read member: {describe(err)}", input_name=walk.name) from err
        self._got += len(data)
        if self._keep is not None:
            if data:
                self._keep.append(data)
            if self._got == self._size:
                walk.hardlinks.put(self._path, b"".join(self._keep))
                self._keep = None
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _HardlinkCache:
    """Bounded memory of small regular files already read, for hardlinks that point at them."""

    def __init__(self) -> None:
        self._files: OrderedDict[str, bytes] = OrderedDict()
        self._total = 0

    def put(self, path: str, data: bytes) -> None:
        if path in self._files:
            self._total -= len(self._files.pop(path))
        self._files[path] = data
        self._total += len(data)
        while self._total > _HARDLINK_TOTAL_MAX and self._files:
            _, old = self._files.popitem(last=False)
            self._total -= len(old)

    def get(self, path: str) -> bytes | None:
        return self._files.get(path)


_TYPES: dict[bytes, tuple[EntryType, int]] = {
    b"0": ("file", stat.S_IFREG),
    b"\x00": ("file", stat.S_IFREG),
    b"7": ("file", stat.S_IFREG),
    b"5": ("dir", stat.S_IFDIR),
    b"2": ("symlink", stat.S_IFLNK),
    b"1": ("hardlink", stat.S_IFREG),
    b"6": ("other", stat.S_IFIFO),
}


class _Walk:
    """State shared by the walk over one layer and the content readers it hands out."""

    __slots__ = ("generation", "hardlinks", "name", "opened", "safe_dirs", "symlinks", "tar")

    def __init__(self, tar: TarStream, name: str) -> None:
        self.tar = tar
        self.name = name
        self.generation = 0
        self.opened = False
        self.hardlinks = _HardlinkCache()
        self.symlinks: set[str] = set()
        #: directories (and their ancestors) checked to lie under no symlink of the layer so far
        self.safe_dirs: set[str] = set()


def iter_layer(
    blob: BinaryIO, name: str, media_type: str = "", limits: Limits = DEFAULT_LIMITS
) -> Iterator[Entry]:
    """Yield the entries of a layer blob in tar order.

    ``name`` identifies the layer in messages. Each entry's ``open`` is valid until the iterator
    advances. Raises :class:`InputError` for corrupt or truncated streams and
    :class:`UnsafeArchiveError` when the decompressed stream exceeds ``limits``.
    """
    if "encrypted" in media_type:
        raise InputError(f"encrypted layers are not supported ({media_type})", input_name=name)
    try:
        head = blob.read(8)
    except GarrisonError:
        raise
    except DECODE_ERRORS as err:
        raise InputError(f"cannot read layer: {describe(err)}", input_name=name) from err
    if not head:
        logger.debug("%s: empty layer blob", name)
        return
    kind = detect_compression(head)
    if media_type and kind != "tar" and kind not in media_type and not media_type.endswith((".tar", "tar")):
        logger.debug("%s: media type %s but the blob is %s", name, media_type, kind)
    feed = ChunkFeed(blob, head, kind, name, limits)
    try:
        walk = _Walk(TarStream(feed, name, kind), name)
        skipped = 0
        while True:
            header = walk.tar.next_header()
            walk.generation += 1
            if header is None:
                break
            entry = _entry(walk, header)
            if entry is None:
                skipped += 1
                continue
            yield entry
        if walk.tar.end_reason not in ("zeros", "empty"):
            raise InputError(f"corrupt tar stream at offset {walk.tar.end_offset}: {walk.tar.end_reason}", input_name=name)
        # read what is left (tar padding, the compressor's trailer) so truncation and checksum
        # errors of the compressed stream are noticed too
        while feed.next():
            pass
    finally:
        feed.close()
    if skipped:
        logger.debug("%s: skipped %d special member(s) (device nodes; unsafe paths are warned about one by one)", name, skipped)


def _entry(walk: _Walk, member: Header) -> Entry | None:
    name = walk.name
    path = normalize_member_path(member.name)
    if path is None:
        logger.warning("%s: skipping member with an absolute or escaping path: %r", name, member.name[:200])
        return None
    if path == "":
        return None
    if walk.symlinks and _through_symlink(path, walk.symlinks, walk.safe_dirs):
        logger.warning("%s: skipping member %r written through a symlink of the same layer", name, path)
        return None
    known = _TYPES.get(member.type)
    if known is None:
        if member.type in (b"3", b"4"):
            logger.info("%s: skipping device node %r", name, path)
        else:
            logger.info("%s: skipping member %r of unknown type %r", name, path, member.type)
        return None
    etype, kind_bits = known
    mode = kind_bits | (member.mode & 0o7777)
    directory, base = posixpath.split(path)
    if base.startswith(WHITEOUT_PREFIX):
        info = FileInfo(path, 0, mode)
        if base == OPAQUE_MARKER:
            return Entry(info, etype, opaque=directory)
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return None  # aufs metadata (.wh..wh.plnk, .wh..wh.aufs)
        return Entry(info, etype, whiteout=posixpath.join(directory, base[len(WHITEOUT_PREFIX) :]))
    if etype == "file":
        size = member.size
        generation = walk.generation

        def open_file() -> BinaryIO:
            if walk.generation != generation:
                raise InputError(f"{path}: content is no longer available (the layer has moved on)", input_name=name)
            return cast(BinaryIO, _Content(walk, generation, path, size))

        return Entry(FileInfo(path, size, mode), "file", open=open_file)
    if etype == "symlink":
        if path in walk.safe_dirs:  # a directory seen so far is replaced by a link: check again
            walk.safe_dirs.clear()
        walk.symlinks.add(path)
        return Entry(FileInfo(path, 0, mode), "symlink", linkname=member.linkname)
    if etype == "hardlink":
        target = normalize_member_path(member.linkname)
        if not target:
            logger.warning("%s: skipping hardlink %r to an escaping target %r", name, path, member.linkname[:200])
            return None
        content = walk.hardlinks.get(target)
        opener: Callable[[], BinaryIO] | None = None
        size = member.size
        if content is not None:
            data = content
            size = len(data)

            def opener() -> BinaryIO:
                return io.BytesIO(data)

        return Entry(FileInfo(path, size, mode), "hardlink", open=opener, linkname=target)
    return Entry(FileInfo(path, 0 if etype == "dir" else member.size, mode), etype)


def _through_symlink(path: str, symlinks: set[str], safe: set[str]) -> bool:
    """Whether a directory of ``path`` is a symlink of this layer. Answers for directories are
    kept in ``safe`` (with every ancestor) until a symlink replaces one of them, so the members of
    one directory cost one set lookup instead of a walk up the tree each."""
    cut = path.rfind("/")
    if cut <= 0 or path[:cut] in safe:
        return False
    checked: list[str] = []
    while cut > 0:
        directory = path[:cut]
        if directory in symlinks:
            return True
        if directory in safe:
            break
        checked.append(directory)
        cut = path.rfind("/", 0, cut)
    safe.update(checked)
    return False
