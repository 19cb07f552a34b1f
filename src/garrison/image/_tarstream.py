"""A lean, forward-only tar reader fed by a background decompression thread.

Why not ``tarfile``: profiling the layer walk showed ``tarfile``'s stream mode (``r|``) spending
most of its time in Python-level plumbing: every 512-byte header goes through ``_Stream.read``,
``_Stream.__read`` and ``TarInfo.frombuf`` (thirteen field conversions, most of which a layer scan
never uses), and skipped content is "seeked" over in 16 KiB reads through the same layers. This
reader parses only what the walker needs (name, link name, size, mode, type), skips content by
moving an offset over buffered chunks, and hands out content as slices of those chunks.

The formats understood are the ones container tooling writes: ustar (with ``prefix``), pax
extended and global headers (``path``, ``linkpath``, ``size``), GNU long names and long link
names (``L``/``K``) and old V7 headers. Header parsing follows CPython's ``tarfile`` (checksum
accepted signed or unsigned, base-256 numbers, ``AREGTYPE`` names ending in ``/`` are
directories, content is present only for regular and unknown types, the first extension header
of a chain wins). Extension payloads (pax records, long names) are bounded to
:data:`MAX_EXTENSION` bytes.

GNU sparse members are read as ``tarfile`` reads them: the old GNU format (type ``S``, up to four
map entries in the header plus extension blocks of 21), and the pax formats 0.0
(``GNU.sparse.offset``/``numbytes`` records), 0.1 (``GNU.sparse.map``) and 1.0 (the map in
decimal lines at the start of the data area), with ``GNU.sparse.name`` and
``GNU.sparse.realsize``/``size`` naming the file. Such a member is handed out as a regular file of
its real size whose holes read as zeros; its data segments are stored back to back, as GNU tar
writes them. Maps that are not increasing, run past the real size or do not add up to the stored
data are refused, and so is a real size above the layer bound (holes would otherwise be a
decompression bomb that costs no compressed bytes).

Decompression (gzip, zstd, xz, bzip2) and the digest check of the blob being read run in a
producer thread: ``zlib``, ``zstandard``, ``lzma``, ``bz2`` and ``hashlib`` release the GIL, so
on a multi-core machine they overlap with the header parsing and cataloguing done by the
consumer. A bounded queue of :data:`CHUNK`-sized pieces keeps memory flat. Errors met by the
producer (corrupt streams, the decompression-bomb bounds) are handed to the consumer and raised
where it would have met them.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import queue
import re
import struct
import threading
import zlib
from typing import Any, BinaryIO

import zstandard

from garrison.core.errors import GarrisonError, InputError, UnsafeArchiveError
from garrison.core.limits import Limits

RATIO_GRACE = 4 * 1024 * 1024  # decompressed bytes before the ratio check applies
CHUNK = 1 << 20
QUEUE_DEPTH = 4
MAX_EXTENSION = 1 << 20  # bytes of one pax header or GNU long name

BLOCK = 512
_ZEROS = bytes(BLOCK)
_SIGNED = struct.Struct("148b8x356b")
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
_SPARSE_OFFSET = re.compile(rb"\d+ GNU.sparse.offset=(\d+)\n")
_SPARSE_NUMBYTES = re.compile(rb"\d+ GNU.sparse.numbytes=(\d+)\n")
_SPARSE_10 = "\x00sparse-1.0"  # marks a pax 1.0 sparse member (its map is in the data area)
_SPARSE_MAP = "\x00sparse-map"  # pax 0.0 map, as "offset,numbytes,..." (records repeat keys)

REGULAR = frozenset((b"0", b"\x00", b"7"))
# types tarfile knows; content follows only regular members and unknown types
_SUPPORTED = frozenset((b"0", b"\x00", b"1", b"2", b"5", b"6", b"7", b"3", b"4", b"L", b"K", b"S"))
_EXTENSION = frozenset((b"x", b"X", b"g", b"L", b"K"))

DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # gzip.BadGzipFile included
    EOFError,
    zlib.error,
    lzma.LZMAError,
    zstandard.ZstdError,
    ValueError,
)


def describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return " ".join(text.split())[:200]


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


def _decompressor(kind: str, counted: _Counted) -> Any:
    buffered = io.BufferedReader(counted, buffer_size=CHUNK)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=buffered, mode="rb")
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True, closefd=False)
    if kind == "xz":
        return lzma.LZMAFile(buffered, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(buffered, mode="rb")
    return None


class ChunkFeed:
    """Decompressed pieces of a blob, produced by a daemon thread, with the bomb guards applied.

    ``next()`` returns the next piece, ``b""`` at the end, and raises what the producer met.
    ``total`` is the number of decompressed bytes produced so far. ``close()`` stops the producer
    (it is idempotent and must be called when the consumer stops early).
    """

    def __init__(self, blob: BinaryIO, head: bytes, kind: str, name: str, limits: Limits) -> None:
        self._blob = blob
        self._head = head
        self._counted = _Counted(blob, head)
        self._decomp = _decompressor(kind, self._counted)
        self._name = name
        self._limits = limits
        self.limits = limits
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(QUEUE_DEPTH)
        self._stop = threading.Event()
        self._done = False
        self.total = 0
        self._thread = threading.Thread(target=self._run, name=f"layer-feed {name}"[:60], daemon=True)
        self._thread.start()

    def _read_raw(self) -> bytes:
        if self._decomp is not None:
            return bytes(self._decomp.read(CHUNK))
        if self._head:
            data, self._head = self._head, b""
            return data + self._blob.read(CHUNK - len(data))
        return self._blob.read(CHUNK)

    def _produce(self) -> bytes:
        try:
            data = self._read_raw()
        except GarrisonError:
            raise
        except DECODE_ERRORS as err:
            raise InputError(f"corrupt layer stream: {describe(err)}", input_name=self._name) from err
        self.total += len(data)
        limits = self._limits
        if self.total > limits.max_layer_bytes:
            raise UnsafeArchiveError(
                f"layer expands beyond {limits.max_layer_bytes} bytes (GARRISON_MAX_LAYER_BYTES)", input_name=self._name
            )
        if self._decomp is not None and self.total > RATIO_GRACE:
            ratio = self.total / max(self._counted.count, 1)
            if ratio > limits.max_ratio:
                raise UnsafeArchiveError(
                    f"decompression ratio above {limits.max_ratio} (GARRISON_MAX_RATIO): "
                    f"{self._counted.count} bytes expand to more than {self.total}",
                    input_name=self._name,
                )
        return data

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while True:
                data = self._produce()
                if not self._put(data) or not data:
                    return
        except BaseException as err:  # handed to the consumer, raised there
            self._put(err)

    def next(self) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        return item

    def close(self) -> None:
        self._stop.set()
        self._done = True
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()


class Header:
    """What the walker needs from one tar member."""

    __slots__ = ("linkname", "mode", "name", "offset", "size", "type")

    def __init__(self, name: str, linkname: str, size: int, mode: int, type_: bytes, offset: int) -> None:
        self.name = name
        self.linkname = linkname
        self.size = size
        self.mode = mode
        self.type = type_
        self.offset = offset

    @property
    def has_data(self) -> bool:
        return self.type in REGULAR or self.type not in _SUPPORTED


class HeaderError(Exception):
    """A malformed header; ``str()`` is the reason (as ``tarfile`` words it)."""


def _nts(field: bytes) -> str:
    cut = field.find(b"\x00")
    if cut != -1:
        field = field[:cut]
    return field.decode("utf-8", "surrogateescape")


def _nti(field: bytes) -> int:
    first = field[0]
    if first in (0o200, 0o377):
        n = int.from_bytes(field[1:], "big")
        if first == 0o377:
            n = -(256 ** (len(field) - 1) - n)
        return n
    cut = field.find(b"\x00")
    if cut != -1:
        field = field[:cut]
    try:
        return int(field.strip() or b"0", 8)
    except ValueError:
        raise HeaderError("invalid header") from None


def _checksum_ok(block: bytes) -> bool:
    stored = _nti(block[148:156])
    # the unsigned byte sum of the header (chksum field counted as spaces), in C: adler32's low
    # half is 1 + the byte sum modulo 65521, exact for 256 bytes (at most 65,280)
    adler = zlib.adler32
    unsigned = (adler(block[:256]) & 0xFFFF) + (adler(block[256:]) & 0xFFFF) - 2 - sum(block[148:156]) + 256
    if stored == unsigned:
        return True
    signed: int = sum(_SIGNED.unpack(block)) + 256
    return stored == signed


class TarStream:
    """Headers and content of a tar stream read from a :class:`ChunkFeed`, strictly forward.

    ``next_header()`` skips whatever is left of the previous member's content (and its padding)
    and returns the next member, or ``None`` at the end; ``end_reason`` then says how the archive
    ended (``"zeros"``, ``"empty"`` or a header error). ``read(n)`` reads the current member's
    content. ``offset`` counts the bytes of the tar stream consumed so far.
    """

    def __init__(self, feed: ChunkFeed, name: str, kind: str = "tar") -> None:
        self._feed = feed
        self._name = name
        self._kind = kind
        self._buf = b""
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]
        self._left = 0  # content bytes of the current member not yet consumed
        self._pad = 0  # padding after them
        self._global: dict[str, str] = {}
        self._sparse: list[tuple[int, int]] | None = None  # data segments of a sparse member
        self._lpos = 0  # logical position in the sparse member
        self._lsize = 0  # its real size
        self._seg = 0  # index of the first segment that ends after _lpos
        self.end_reason = ""
        self.end_offset = 0

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _take(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the stream)."""
        pos = self._pos
        end = pos + n
        buf = self._buf
        if end <= len(buf):
            self._pos = end
            return buf[pos:end]
        parts = [buf[pos:]]
        need = n - len(parts[0])
        self._base += len(buf)
        self._buf = b""
        self._pos = 0
        while need > 0:
            data = self._feed.next()
            if not data:
                break
            if len(data) <= need:
                parts.append(data)
                need -= len(data)
                self._base += len(data)
            else:
                parts.append(data[:need])
                self._buf = data
                self._pos = need
                need = 0
        return b"".join(parts)

    def _skip(self, n: int) -> int:
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            return n
        skipped = avail
        self._base += len(self._buf)
        self._buf = b""
        self._pos = 0
        while skipped < n:
            data = self._feed.next()
            if not data:
                break
            step = min(len(data), n - skipped)
            skipped += step
            if step < len(data):
                self._buf = data
                self._pos = step
            else:
                self._base += len(data)
        return skipped

    def read(self, n: int = -1) -> bytes:
        """Content of the current member: up to ``n`` bytes, all that is left when ``n < 0``."""
        if self._sparse is not None:
            return self._read_sparse(n)
        if n < 0 or n > self._left:
            n = self._left
        if n == 0:
            return b""
        data = self._take(n)
        self._left -= len(data)
        if len(data) < n:
            self._left = 0
            raise InputError(f"unexpected end of data at offset {self.offset}", input_name=self._name)
        return data

    def _read_sparse(self, n: int) -> bytes:
        """Logical content of a sparse member: stored segments, zeros in the holes."""
        segments = self._sparse
        assert segments is not None
        remaining = self._lsize - self._lpos
        if n < 0 or n > remaining:
            n = remaining
        parts: list[bytes] = []
        while n > 0:
            while self._seg < len(segments) and sum(segments[self._seg]) <= self._lpos:
                self._seg += 1
            start, length = segments[self._seg] if self._seg < len(segments) else (self._lsize, 0)
            if self._lpos < start:  # a hole
                step = min(n, start - self._lpos)
                parts.append(bytes(step))
            else:
                step = min(n, start + length - self._lpos)
                data = self._take(step)
                self._left -= len(data)
                if len(data) < step:
                    self._left = 0
                    raise InputError(f"unexpected end of data at offset {self.offset}", input_name=self._name)
                parts.append(data)
            self._lpos += step
            n -= step
        return b"".join(parts)

    def _start_sparse(self, header: Header, segments: list[tuple[int, int]], start: int) -> None:
        """Check the map of a sparse member against its sizes and expose it as a regular file."""
        real = header.size
        pos = 0
        kept: list[tuple[int, int]] = []
        for offset, length in segments:
            if length == 0 and 0 <= offset <= real:  # unused header slots, GNU's end marker
                continue
            if offset < 0 or length < 0 or offset < pos or offset + length > real:
                raise InputError(f"corrupt sparse map of {header.name!r} at offset {start}", input_name=self._name)
            kept.append((offset, length))
            pos = offset + length
        if sum(length for _o, length in kept) != self._left:
            raise InputError(
                f"sparse map of {header.name!r} at offset {start} does not match its {self._left} stored bytes",
                input_name=self._name,
            )
        limit = self._feed.limits.max_layer_bytes
        if real > limit:
            raise UnsafeArchiveError(
                f"sparse member {header.name!r} expands beyond {limit} bytes (GARRISON_MAX_LAYER_BYTES)",
                input_name=self._name,
            )
        self._sparse = kept
        self._lsize = real
        header.type = b"0"

    def _sparse_10_map(self, header: Header, start: int) -> list[tuple[int, int]]:
        """The pax 1.0 map: decimal lines (a count, then offset/size pairs) in whole blocks at the
        start of the member's data, which it then no longer counts."""
        buf = b""
        numbers: list[int] = []
        count = -1
        while count < 0 or len(numbers) < 2 * count:
            if b"\n" not in buf:
                if len(buf) > MAX_EXTENSION or self._left < BLOCK:
                    raise InputError(f"corrupt sparse map of {header.name!r} at offset {start}", input_name=self._name)
                block = self._take(BLOCK)
                if len(block) < BLOCK:
                    raise InputError(f"unexpected end of data at offset {self.offset}", input_name=self._name)
                self._left -= BLOCK
                buf += block
                continue
            line, buf = buf.split(b"\n", 1)
            try:
                value = int(line)
            except ValueError:
                raise InputError(f"corrupt sparse map of {header.name!r} at offset {start}", input_name=self._name) from None
            if count < 0:
                count = value
            else:
                numbers.append(value)
        return list(zip(numbers[::2], numbers[1::2], strict=True))

    def _gnu_sparse(self, block: bytes, start: int) -> tuple[list[tuple[int, int]], int]:
        """Map and real size of an old-format GNU sparse header (type ``S``) and its extension
        blocks (as ``tarfile``: header entries are all kept, zero entries of extensions dropped)."""
        segments: list[tuple[int, int]] = []
        try:
            segments += [(_nti(block[p : p + 12]), _nti(block[p + 12 : p + 24])) for p in range(386, 482, 24)]
            extended = block[482]
            real = _nti(block[483:495])
            while extended:
                ext = self._take(BLOCK)
                if len(ext) < BLOCK:
                    raise HeaderError("unexpected end of data")
                for pos in range(0, 21 * 24, 24):
                    offset, length = _nti(ext[pos : pos + 12]), _nti(ext[pos + 12 : pos + 24])
                    if offset and length:
                        segments.append((offset, length))
                if len(segments) > MAX_EXTENSION // 24:
                    raise HeaderError("sparse map too long")
                extended = ext[504]
        except HeaderError as err:
            raise InputError(f"corrupt sparse header at offset {start}: {err}", input_name=self._name) from None
        return segments, real

    def _block(self) -> bytes:
        return self._take(BLOCK)

    def _finish_member(self) -> None:
        self._sparse = None
        self._lpos = self._lsize = self._seg = 0
        want = self._left + self._pad
        if want and self._skip(want) < want:
            self._left = self._pad = 0
            raise InputError(f"unexpected end of data at offset {self.offset}", input_name=self._name)
        self._left = self._pad = 0

    def _extension(self, size: int) -> bytes:
        if size < 0 or size > MAX_EXTENSION:
            raise InputError(f"extension header of {size} bytes at offset {self.offset}", input_name=self._name)
        padded = -(-size // BLOCK) * BLOCK
        data = self._take(padded)
        if len(data) < padded:
            raise HeaderError("unexpected end of data")
        return data[:size]

    def next_header(self) -> Header | None:
        self._finish_member()
        local: dict[str, str] = {}
        first = True
        while True:
            start = self.offset
            try:
                block = self._block()
                if not block:
                    raise HeaderError("empty")
                if len(block) != BLOCK:
                    raise HeaderError("truncated header")
                if block == _ZEROS:
                    raise HeaderError("zeros")
                if not _checksum_ok(block):
                    raise HeaderError("bad checksum")
                header = self._parse(block, start)
                if header.type in _EXTENSION:
                    self._extend(header, local)
                    first = False
                    continue
            except HeaderError as err:
                reason = str(err)
                if not first:  # an extension header must be followed by a member
                    raise InputError(
                        f"corrupt tar stream at offset {start}: {reason} after an extension header", input_name=self._name
                    ) from None
                if start == 0 and reason != "zeros":
                    raise InputError(
                        f"not a tar layer ({self._kind}): {'empty file' if reason == 'empty' else reason}",
                        input_name=self._name,
                    ) from None
                self.end_reason = reason
                self.end_offset = start
                return None
            if header.type == b"S":
                segments, real = self._gnu_sparse(block, start)
                self._apply(header, local)
                self._begin_data(header, start)
                header.size = real
                self._start_sparse(header, segments, start)
                return header
            self._apply(header, local)
            sparse = local.get(_SPARSE_MAP) if local else None
            if sparse is None and local and local.get(_SPARSE_10) and header.has_data:
                sparse = ""
            if sparse is not None and header.has_data:
                self._begin_data(header, start)
                try:
                    header.size = _sparse_size(local)
                    numbers = [int(x) for x in sparse.split(",")] if sparse.strip() else []
                except ValueError:
                    raise InputError(f"corrupt sparse header at offset {start}", input_name=self._name) from None
                if sparse:
                    segments = list(zip(numbers[::2], numbers[1::2], strict=False))
                else:
                    segments = self._sparse_10_map(header, start)
                self._start_sparse(header, segments, start)
                return header
            if header.has_data:
                self._begin_data(header, start)
            return header

    def _begin_data(self, header: Header, start: int) -> None:
        if header.size < 0:
            raise InputError(f"negative member size at offset {start}", input_name=self._name)
        self._left = header.size
        self._pad = -header.size % BLOCK

    def _extend(self, header: Header, local: dict[str, str]) -> None:
        """Record a pax header or GNU long name; the first one of a chain wins (as in tarfile)."""
        payload = self._extension(header.size)
        if header.type in (b"L", b"K"):
            local.setdefault("path" if header.type == b"L" else "linkpath", _nts(payload))
            return
        records = _pax_records(payload)
        if header.type != b"g" and any(k.startswith("GNU.sparse.") for k in records) and _SPARSE_MAP not in local:
            # which sparse format, in tarfile's order of precedence: 0.1, 0.0, 1.0
            try:
                if "GNU.sparse.map" in records:
                    local.setdefault(_SPARSE_MAP, records["GNU.sparse.map"])
                elif "GNU.sparse.size" in records:
                    offsets = [int(m) for m in _SPARSE_OFFSET.findall(payload)]
                    sizes = [int(m) for m in _SPARSE_NUMBYTES.findall(payload)]
                    local.setdefault(_SPARSE_MAP, ",".join(f"{o},{n}" for o, n in zip(offsets, sizes, strict=False)))
                elif records.get("GNU.sparse.major") == "1" and records.get("GNU.sparse.minor") == "0":
                    local.setdefault(_SPARSE_10, "1")
            except ValueError:  # pragma: no cover - the patterns only match digits
                raise InputError(f"corrupt sparse map at offset {header.offset}", input_name=self._name) from None
        for key, value in records.items():
            if header.type == b"g":
                self._global[key] = value
            else:
                local.setdefault(key, value)

    def _apply(self, header: Header, local: dict[str, str]) -> None:
        for source in (self._global, local):
            if not source:
                continue
            if "path" in source:
                header.name = source["path"].rstrip("/")
            if "GNU.sparse.name" in source:
                header.name = source["GNU.sparse.name"]
            if "linkpath" in source:
                header.linkname = source["linkpath"]
            if "size" in source:
                try:
                    header.size = int(source["size"])
                except ValueError:
                    header.size = 0
        if header.type == b"5":
            header.name = header.name.rstrip("/")

    @staticmethod
    def _parse(block: bytes, offset: int) -> Header:
        name = _nts(block[0:100])
        kind = block[156:157]
        prefix = block[345:500]
        if kind == b"\x00" and name.endswith("/"):
            kind = b"5"
        if kind == b"5":
            name = name.rstrip("/")
        if prefix[0] and kind not in (b"L", b"K", b"S"):
            name = _nts(prefix) + "/" + name
        return Header(name, _nts(block[157:257]), _nti(block[124:136]), _nti(block[100:108]), kind, offset)


def _sparse_size(local: dict[str, str]) -> int:
    """Real size of a pax sparse member (``GNU.sparse.realsize`` for 1.0, ``size`` before)."""
    for key in ("GNU.sparse.realsize", "GNU.sparse.size"):
        if key in local:
            return int(local[key])  # ValueError: the caller reports the header as corrupt
    return 0


def _pax_records(buf: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while True:
        match = _PAX_RECORD.match(buf, pos)
        if not match:
            break
        length = int(match.group(1))
        if length == 0:
            raise HeaderError("invalid header")
        value = buf[match.end(2) + 1 : match.start(1) + length - 1]
        keyword = match.group(2).decode("utf-8", "surrogateescape")
        out[keyword] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out
