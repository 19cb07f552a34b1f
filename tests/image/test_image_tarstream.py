"""The lean tar reader behind iter_layer: agreement with CPython's tarfile on every header format
container tools write, GNU sparse members in every format GNU tar writes (built with the real
``tar --sparse``), refusal of corrupt sparse maps and oversized extension headers, the producer
thread's lifetime, and fuzzing of the reader itself."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from garrison.core.errors import InputError
from garrison.core.limits import Limits
from garrison.image._tarindex import TarIndex
from garrison.image._tarstream import MAX_EXTENSION, ChunkFeed, Header, TarStream
from garrison.image.interface import Entry
from garrison.image.layers import detect_compression, iter_layer

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}
_KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE]


def _headers(data: bytes, limits: Limits | None = None) -> list[tuple[str, str, int, int, bytes, bytes]]:
    """(name, linkname, size, mode, type, content) of every member, read by the lean reader."""
    blob = io.BytesIO(data)
    head = blob.read(8)
    kind = detect_compression(head)
    feed = ChunkFeed(blob, head, kind, "t", limits or Limits())
    out = []
    try:
        tar = TarStream(feed, "t", kind)
        while (h := tar.next_header()) is not None:
            content = tar.read() if h.has_data else b""
            out.append((h.name, h.linkname, h.size, h.mode, h.type, content))
    finally:
        feed.close()
    return out


def _reference(data: bytes) -> list[tuple[str, str, int, int, bytes, bytes]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            out.append((m.name, m.linkname, m.size, m.mode, m.type, f.read() if f else b""))
    return out


def _build(members: list[tuple[str, bytes, bytes, str, int]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, content, link, mode in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            info.linkname = link
            info.mtime = 1_700_000_000
            if kind in (tarfile.REGTYPE, tarfile.CONTTYPE):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buf.getvalue()


_segment = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="/\\"), min_size=1, max_size=40)
_name = st.lists(_segment, min_size=1, max_size=8).map("/".join)
_member = st.tuples(
    _name,
    st.sampled_from(_KINDS),
    st.binary(max_size=1500),
    _name,
    st.integers(min_value=0, max_value=0o7777),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=st.lists(_member, min_size=0, max_size=12), fmt=st.sampled_from(["gnu", "pax"]))
def test_agrees_with_tarfile(members: list[tuple[str, bytes, bytes, str, int]], fmt: str) -> None:
    data = _build(members, FORMATS[fmt])
    assert _headers(data) == _reference(data)
    assert _headers(gzip.compress(data)) == _reference(data)


@pytest.mark.parametrize("fmt", ["ustar", "gnu", "pax"])
def test_long_names_and_links_in_every_format(fmt: str) -> None:
    long_dir = "usr/lib/" + "/".join(f"segment-{i:02d}" for i in range(12))  # > 100 chars, < 155+100
    members = [
        (f"{long_dir}/file.txt", tarfile.REGTYPE, b"hello", "", 0o644),
        (f"{long_dir}/link", tarfile.SYMTYPE, b"", f"../{long_dir}/file.txt"[:99] if fmt == "ustar" else f"/{long_dir}/file.txt", 0o777),
        ("etc/dir/", tarfile.DIRTYPE, b"", "", 0o755),
    ]
    data = _build(members, FORMATS[fmt])
    got = _headers(data)
    assert got == _reference(data)
    assert got[0][0] == f"{long_dir}/file.txt" and got[0][5] == b"hello"
    assert got[2][0] == "etc/dir" and got[2][4] == tarfile.DIRTYPE


def _raw_header(name: bytes, kind: bytes, size: int, *, signed_extra: bool = False, size_field: bytes | None = None) -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\x00"
    block[124:136] = size_field if size_field is not None else b"%011o\x00" % size
    block[156:157] = kind
    block[257:263] = b"ustar\x00"
    block[263:265] = b"00"
    if signed_extra:
        block[300] = 0xFF  # a byte >= 0x80 makes the signed and unsigned checksums differ
    block[148:156] = b" " * 8
    signed = sum(b - 256 if b > 127 else b for b in block)
    chk = signed if signed_extra else sum(block)
    block[148:156] = b"%06o\x00 " % chk
    return bytes(block)


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def test_signed_checksum_and_base256_size_accepted() -> None:
    data = _raw_header(b"a", b"0", 3, signed_extra=True) + _pad(b"abc")
    big = _raw_header(b"b", b"0", 0, size_field=b"\x80" + (5).to_bytes(11, "big")) + _pad(b"12345")
    got = _headers(data + big + bytes(1024))
    assert [(g[0], g[5]) for g in got] == [("a", b"abc"), ("b", b"12345")]


def _sparse_sources(root: Path) -> dict[str, bytes]:
    """Files with holes: one large hole, many segments (more than the four map entries of an old
    GNU header, so extension blocks are needed), a hole at the end, and a plain file."""
    files = {
        "big.img": [(3 << 20, b"middle" * 100), (9 << 20, b"tail")],
        "many.bin": [(i * 131072, bytes([65 + i % 26]) * 5000) for i in range(30)],
        "ends-in-hole.bin": [(0, b"head" * 300)],
    }
    sizes = {"big.img": 12 << 20, "many.bin": 30 * 131072 + 4096, "ends-in-hole.bin": 1 << 20}
    root.mkdir()
    out: dict[str, bytes] = {}
    for name, segments in files.items():
        with (root / name).open("wb") as f:
            for offset, data in segments:
                f.seek(offset)
                f.write(data)
            f.truncate(sizes[name])
        out[name] = (root / name).read_bytes()
    (root / "plain.txt").write_bytes(b"plain\n")
    out["plain.txt"] = b"plain\n"
    return out


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(["--format=gnu"], id="gnu-old"),
        pytest.param(["--format=posix", "--sparse-version=0.0"], id="pax-0.0"),
        pytest.param(["--format=posix", "--sparse-version=0.1"], id="pax-0.1"),
        pytest.param(["--format=posix", "--sparse-version=1.0"], id="pax-1.0"),
    ],
)
def test_gnu_tar_sparse_members_read_like_tarfile(tmp_path: Path, options: list[str]) -> None:
    files = _sparse_sources(tmp_path / "src")
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", *options, "-cf", str(archive), "-C", str(tmp_path / "src"), "."], check=True)
    data = archive.read_bytes()
    assert len(data) < 2 << 20  # the holes really are holes in the archive
    ref = {name.removeprefix("./"): (size, content) for name, _l, size, _m, _t, content in _reference(data)}
    for blob in (data, gzip.compress(data)):
        got = {}
        for entry in iter_layer(io.BytesIO(blob), name="sparse"):
            if entry.type == "file":
                assert entry.open is not None
                with entry.open() as f:
                    head = f.read(7)  # partial reads across holes and segments too
                    got[entry.info.path] = (entry.info.size, head + f.read())
        assert got == {name: (len(content), content) for name, content in files.items()}
        assert {name: got[name] for name in files} == {name: ref[name] for name in files}


def _old_gnu_sparse(segments: list[tuple[int, int]], real: int, stored: int) -> bytes:
    block = bytearray(_raw_header(b"s.img", b"S", stored))
    for i, (offset, length) in enumerate(segments[:4]):
        block[386 + 24 * i : 398 + 24 * i] = b"%011o\x00" % offset
        block[398 + 24 * i : 410 + 24 * i] = b"%011o\x00" % length
    block[483:495] = b"%011o\x00" % real
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block) + _pad(b"D" * stored) + bytes(1024)


def test_old_gnu_sparse_header_read_like_tarfile() -> None:
    data = _old_gnu_sparse([(2, 3), (10, 2)], 16, 5)
    assert _headers(data)[0][5] == _reference(data)[0][5] == b"\x00\x00DDD\x00\x00\x00\x00\x00DD\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("segments", "real", "stored", "needle"),
    [
        pytest.param([(10, 2), (2, 3)], 16, 5, "corrupt sparse map", id="not-increasing"),
        pytest.param([(2, 30)], 16, 30, "corrupt sparse map", id="past-real-size"),
        pytest.param([(2, 3)], 16, 9, "does not match", id="stored-size-mismatch"),
        pytest.param([(0, 1)], 1 << 40, 1, "expands beyond", id="hole-bomb"),
    ],
)
def test_bad_sparse_maps_refused(segments: list[tuple[int, int]], real: int, stored: int, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        _headers(_old_gnu_sparse(segments, real, stored), Limits(max_layer_bytes=1 << 30))


def test_pax_sparse_1_0_bad_map_refused() -> None:
    records = b"".join(b"%d %s" % (len(r) + 3, r) for r in (b"GNU.sparse.major=1\n", b"GNU.sparse.minor=0\n"))
    body = _pad(b"2\n0\nx\n")
    data = _raw_header(b"PaxHeaders/x", b"x", len(records)) + _pad(records) + _raw_header(b"x", b"0", len(body)) + body
    with pytest.raises(InputError, match="corrupt sparse map"):
        _headers(data + bytes(1024))


def test_oversized_extension_header_refused() -> None:
    data = _raw_header(b"././@LongLink", b"L", MAX_EXTENSION + 1) + bytes(2048)
    with pytest.raises(InputError, match="extension header"):
        _headers(data)


def test_extension_header_without_member_is_corrupt() -> None:
    name = b"x" * 200 + b"\x00"
    data = _raw_header(b"././@LongLink", b"L", len(name)) + _pad(name) + bytes(1024)
    with pytest.raises(InputError, match="after an extension header"):
        _headers(data)


def test_first_extension_header_of_a_chain_wins() -> None:
    record = b"path=from-pax\n"
    pax = b"%d %s" % (len(record) + 3, record)
    longname = b"from-gnu\x00"
    data = (
        _raw_header(b"PaxHeaders/x", b"x", len(pax))
        + _pad(pax)
        + _raw_header(b"././@LongLink", b"L", len(longname))
        + _pad(longname)
        + _raw_header(b"short", b"0", 0)
        + bytes(1024)
    )
    assert _headers(data)[0][0] == _reference(data)[0][0] == "from-pax"


def test_producer_thread_stops_when_the_walk_is_abandoned() -> None:
    data = _build([(f"f{i}", tarfile.REGTYPE, bytes(600_000), "", 0o644) for i in range(40)], tarfile.PAX_FORMAT)
    before = threading.active_count()
    it = cast(Generator[Entry, None, None], iter_layer(io.BytesIO(data), name="abandoned"))
    next(it)
    assert threading.active_count() == before + 1
    it.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_content_after_advancing_and_partial_reads() -> None:
    data = _build([("a", tarfile.REGTYPE, b"0123456789" * 300, "", 0o644), ("b", tarfile.REGTYPE, b"B", "", 0o644)], tarfile.PAX_FORMAT)
    it = iter_layer(io.BytesIO(data), name="partial")
    first = next(it)
    assert first.open is not None
    with first.open() as f:
        assert f.read(5) == b"01234"
        assert f.read(3) == b"567"
    second = next(it)  # the unread rest of "a" is skipped
    assert second.open is not None and second.open().read() == b"B"
    with pytest.raises(InputError, match="no longer available"):
        first.open()


def test_tarindex_positional_reads_match_tarfile(tmp_path: Path) -> None:
    outer = tmp_path / "outer.tar"
    payload = bytes(range(256)) * 5000
    with tarfile.open(outer, "w") as tar:
        for name, content in (("one", b"first"), ("two/layer.tar", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    index = TarIndex(outer)
    try:
        with index.open("two/layer.tar") as f:
            assert f.read(10) == payload[:10]
            assert f.read() == payload[10:]
        assert index.read("one", 100) == b"first"
    finally:
        index.close()


# -- fuzzing ---------------------------------------------------------------------------------

_SEED = _build(
    [
        ("usr/" + "long-directory-name/" * 8 + "f", tarfile.REGTYPE, b"x" * 700, "", 0o644),
        ("l", tarfile.SYMTYPE, b"", "usr/" + "t" * 150, 0o777),
        ("h", tarfile.LNKTYPE, b"", "l", 0o644),
    ],
    tarfile.PAX_FORMAT,
)
_SEED_GNU = _build([("d/" * 60 + "f", tarfile.REGTYPE, b"y" * 100, "", 0o600)], tarfile.GNU_FORMAT)
_SPARSE_PAX = b"".join(b"%d %s" % (len(r) + 3, r) for r in (b"GNU.sparse.map=2,3,700,2\n", b"GNU.sparse.size=900\n"))
_SEED_SPARSE = (
    _old_gnu_sparse([(2, 3), (10, 2)], 16, 5)[:-1024]
    + _raw_header(b"PaxHeaders/p", b"x", len(_SPARSE_PAX))
    + _pad(_SPARSE_PAX)
    + _raw_header(b"p", b"0", 5)
    + _pad(b"EEEEE")
    + bytes(1024)
)


def _consume(data: bytes) -> None:
    try:
        for h in _headers(data, Limits(max_layer_bytes=4 * 1024 * 1024)):
            assert h[2] >= 0 or h[4] not in (b"0", b"\x00", b"7")
            assert len(h[5]) <= 4 * 1024 * 1024
    except InputError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blob=st.sampled_from([_SEED, _SEED_GNU, _SEED_SPARSE]),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=255)), min_size=1, max_size=8),
)
def test_fuzz_reader_byte_flips(blob: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(blob)
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    _consume(bytes(data))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=st.sampled_from([_SEED, _SEED_GNU, _SEED_SPARSE]), cut=st.integers(min_value=1, max_value=6000))
def test_fuzz_reader_truncation(blob: bytes, cut: int) -> None:
    _consume(blob[:cut])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=512, max_size=512), max_size=4))
def test_fuzz_reader_random_blocks(blocks: list[bytes]) -> None:
    _consume(b"".join(blocks))


def test_sparse_seed_reads_like_tarfile() -> None:
    got = [(h[0], h[2], h[5]) for h in _headers(_SEED_SPARSE)]
    assert got == [(r[0], r[2], r[5]) for r in _reference(_SEED_SPARSE)]
    assert got[1][2] == bytes(2) + b"EEE" + bytes(695) + b"EE" + bytes(198)


def test_header_type_has_data() -> None:
    assert Header("a", "", 1, 0, b"0", 0).has_data
    assert Header("a", "", 1, 0, b"V", 0).has_data  # unknown types carry data, as in tarfile
    assert not Header("a", "", 1, 0, b"5", 0).has_data
