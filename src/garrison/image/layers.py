"""Stream the members of one layer blob (gzip, zstd, xz, bzip2 or plain tar) as
:class:`~garrison.image.interface.Entry` objects, without extracting anything to disk.

The compression is detected from the blob's magic bytes (a media type is only a hint: registries
and tools mislabel layers). ``tarfile`` reads the stream in ``r|`` mode, so memory stays constant
whatever the layer size. Hostile members (absolute paths, ``..`` escapes, paths through a symlink
of the same layer, device nodes) are skipped with a warning, never followed. A decompression-bomb
guard counts bytes on both sides of the decompressor. Any corrupt or truncated stream raises
:class:`~garrison.core.errors.InputError` naming the layer, including errors met while a consumer
reads an entry's content.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import posixpath
import stat
import tarfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Self, cast

import zstandard

from garrison.core.errors import GarrisonError, InputError, UnsafeArchiveError
from garrison.core.limits import DEFAULT_LIMITS, Limits
from garrison.image.interface import Entry, EntryType
from garrison.model import FileInfo

logger = logging.getLogger(__name__)

RATIO_GRACE = 4 * 1024 * 1024  # decompressed bytes before the ratio check applies
_HARDLINK_FILE_MAX = 1024 * 1024  # content kept per file so later hardlinks can be opened
_HARDLINK_TOTAL_MAX = 16 * 1024 * 1024
_CHUNK = 1 << 16

_MAGIC_GZIP = b"\x1f\x8b"
_MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"
_MAGIC_XZ = b"\xfd7zXZ\x00"
_MAGIC_BZIP2 = b"BZh"

_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # gzip.BadGzipFile included
    EOFError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
    tarfile.TarError,
    ValueError,
)

# raised by tarfile's header parser, not in its type stubs
_EOF_HEADER = cast(type[Exception], vars(tarfile)["EOFHeaderError"])
_EMPTY_HEADER = cast(type[Exception], vars(tarfile)["EmptyHeaderError"])

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


class _Counted(io.RawIOBase):
    """The compressed side: remembers a peeked prefix and counts bytes handed out."""

    def __init__(self, inner: BinaryIO, prefix: bytes) -> None:
        self._inner = inner
        self._prefix = prefix
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
        else:
            data = self._inner.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.count += n
        return n


class _Guarded(io.RawIOBase):
    """The decompressed side: counts bytes, enforces the bounds and turns decoder errors into
    :class:`InputError` (so ``tarfile`` and entry readers only ever see ours)."""

    def __init__(self, inner: Any, counted: _Counted, name: str, limits: Limits, compressed: bool) -> None:
        self._inner = inner
        self._counted = counted
        self._name = name
        self._limits = limits
        self._compressed = compressed
        self.total = 0
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except GarrisonError:
            raise
        except _DECODE_ERRORS as err:
            raise InputError(f"corrupt layer stream: {_describe(err)}", input_name=self._name) from err
        n = len(data)
        if n == 0:
            self.eof = True
            return 0
        buffer[:n] = data
        self.total += n
        if self.total > self._limits.max_layer_bytes:
            raise UnsafeArchiveError(
                f"layer expands beyond {self._limits.max_layer_bytes} bytes (GARRISON_MAX_LAYER_BYTES)",
                input_name=self._name,
            )
        if self._compressed and self.total > RATIO_GRACE:
            ratio = self.total / max(self._counted.count, 1)
            if ratio > self._limits.max_ratio:
                raise UnsafeArchiveError(
                    f"decompression ratio above {self._limits.max_ratio} (GARRISON_MAX_RATIO): "
                    f"{self._counted.count} bytes expand to more than {self.total}",
                    input_name=self._name,
                )
        return n

    def drain(self) -> None:
        while self.readinto(memoryview(bytearray(_CHUNK))):
            pass


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())[:200]


def _decompressor(kind: str, counted: _Counted) -> Any:
    buffered = io.BufferedReader(counted, buffer_size=_CHUNK)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True, closefd=False)
    if kind == "xz":
        return lzma.LZMAFile(buffered, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(buffered, mode="rb")
    return buffered


class _EndState:
    """How the tar stream ended, recorded from inside ``tarfile`` header parsing."""

    def __init__(self) -> None:
        self.reason = ""


def _tarinfo_class(state: _EndState) -> type[tarfile.TarInfo]:
    class _Info(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
            try:
                return super().frombuf(buf, encoding, errors)
            except _EOF_HEADER:
                state.reason = "zeros"
                raise
            except _EMPTY_HEADER:
                state.reason = "empty"
                raise
            except tarfile.HeaderError as err:
                state.reason = _describe(err)
                raise

    return _Info


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


class _MemberReader(io.RawIOBase):
    """Content of the current member; decoder and tar errors become :class:`InputError`. Small
    files read to the end are remembered so a later hardlink to them can be opened."""

    def __init__(
        self, inner: BinaryIO, name: str, path: str, size: int, remember: Callable[[str, bytes], None] | None
    ) -> None:
        self._inner = inner
        self._name = name
        self._path = path
        self._keep: bytearray | None = bytearray() if remember is not None and size <= _HARDLINK_FILE_MAX else None
        self._remember = remember
        self._size = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except GarrisonError:
            raise
        except _DECODE_ERRORS as err:
            raise InputError(f"{self._path}: cannot read member: {_describe(err)}", input_name=self._name) from err
        n = len(data)
        buffer[:n] = data
        if self._keep is not None:
            if n:
                self._keep.extend(data)
            elif self._remember is not None and len(self._keep) == self._size:
                self._remember(self._path, bytes(self._keep))
                self._keep = None
        return n


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


def _mode(member: tarfile.TarInfo) -> tuple[EntryType | None, int]:
    perm = member.mode & 0o7777
    if member.isreg():
        return "file", stat.S_IFREG | perm
    if member.isdir():
        return "dir", stat.S_IFDIR | perm
    if member.issym():
        return "symlink", stat.S_IFLNK | perm
    if member.islnk():
        return "hardlink", stat.S_IFREG | perm
    if member.isfifo():
        return "other", stat.S_IFIFO | perm
    return None, perm  # character and block devices, anything unknown


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
    except _DECODE_ERRORS as err:
        raise InputError(f"cannot read layer: {_describe(err)}", input_name=name) from err
    if not head:
        logger.debug("%s: empty layer blob", name)
        return
    kind = detect_compression(head)
    if media_type and kind != "tar" and kind not in media_type and not media_type.endswith((".tar", "tar")):
        logger.debug("%s: media type %s but the blob is %s", name, media_type, kind)
    counted = _Counted(blob, head)
    guarded = _Guarded(_decompressor(kind, counted), counted, name, limits, compressed=kind != "tar")
    stream = io.BufferedReader(guarded, buffer_size=_CHUNK)
    state = _EndState()
    try:
        tar = tarfile.open(fileobj=stream, mode="r|", tarinfo=_tarinfo_class(state))  # noqa: SIM115 - closed below
    except GarrisonError:
        raise
    except _DECODE_ERRORS as err:
        raise InputError(f"not a tar layer ({kind}): {_describe(err)}", input_name=name) from err
    with tar:
        yield from _members(tar, name, state, guarded)


def _members(tar: tarfile.TarFile, name: str, state: _EndState, guarded: _Guarded) -> Iterator[Entry]:
    hardlinks = _HardlinkCache()
    symlinks: set[str] = set()
    skipped = 0
    while True:
        try:
            member = tar.next()
        except GarrisonError:
            raise
        except _DECODE_ERRORS as err:
            raise InputError(f"corrupt tar stream: {_describe(err)}", input_name=name) from err
        if member is None:
            break
        cast(Any, tar).members.clear()  # tarfile keeps every header it has seen; memory must stay flat
        entry = _entry(tar, member, name, hardlinks, symlinks)
        if entry is None:
            skipped += 1
            continue
        yield entry
    _check_end(tar, name, state, guarded)
    if skipped:
        logger.debug("%s: skipped %d special member(s) (device nodes; unsafe paths are warned about one by one)", name, skipped)


def _check_end(tar: tarfile.TarFile, name: str, state: _EndState, guarded: _Guarded) -> None:
    if state.reason not in ("zeros", "empty"):
        raise InputError(f"corrupt tar stream at offset {tar.offset}: {state.reason or 'bad header'}", input_name=name)
    # read what is left (tar padding, the compressor's trailer) so truncation and checksum
    # errors of the compressed stream are noticed too
    guarded.drain()
    if guarded.total < tar.offset:
        raise InputError(f"truncated tar stream: {guarded.total} of at least {tar.offset} bytes", input_name=name)


def _entry(
    tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, hardlinks: _HardlinkCache, symlinks: set[str]
) -> Entry | None:
    path = normalize_member_path(member.name)
    if path is None:
        logger.warning("%s: skipping member with an absolute or escaping path: %r", name, member.name[:200])
        return None
    if path == "":
        return None
    if _through_symlink(path, symlinks):
        logger.warning("%s: skipping member %r written through a symlink of the same layer", name, path)
        return None
    etype, mode = _mode(member)
    if etype is None:
        logger.info("%s: skipping device node %r", name, path)
        return None
    directory, base = posixpath.split(path)
    if base.startswith(WHITEOUT_PREFIX):
        info = FileInfo(path, 0, mode)
        if base == OPAQUE_MARKER:
            return Entry(info, etype, opaque=directory)
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return None  # aufs metadata (.wh..wh.plnk, .wh..wh.aufs)
        return Entry(info, etype, whiteout=posixpath.join(directory, base[len(WHITEOUT_PREFIX) :]))
    if etype == "file":
        info = FileInfo(path, member.size, mode)

        def open_file() -> BinaryIO:
            try:
                inner = tar.extractfile(member)
            except (OSError, tarfile.TarError) as err:
                raise InputError(f"{path}: content is no longer available ({_describe(err)})", input_name=name) from err
            if inner is None:
                raise InputError(f"{path}: member has no content", input_name=name)
            raw = _MemberReader(cast(BinaryIO, inner), name, path, member.size, hardlinks.put)
            return cast(BinaryIO, io.BufferedReader(raw, buffer_size=_CHUNK))

        return Entry(info, "file", open=open_file)
    if etype == "symlink":
        symlinks.add(path)
        return Entry(FileInfo(path, 0, mode), "symlink", linkname=member.linkname)
    if etype == "hardlink":
        target = normalize_member_path(member.linkname)
        if not target:
            logger.warning("%s: skipping hardlink %r to an escaping target %r", name, path, member.linkname[:200])
            return None
        content = hardlinks.get(target)
        opener: Callable[[], BinaryIO] | None = None
        size = member.size
        if content is not None:
            data = content
            size = len(data)

            def opener() -> BinaryIO:
                return io.BytesIO(data)

        return Entry(FileInfo(path, size, mode), "hardlink", open=opener, linkname=target)
    return Entry(FileInfo(path, 0 if etype == "dir" else member.size, mode), etype)


def _through_symlink(path: str, symlinks: set[str]) -> bool:
    if not symlinks:
        return False
    parent = posixpath.dirname(path)
    while parent:
        if parent in symlinks:
            return True
        parent = posixpath.dirname(parent)
    return False
