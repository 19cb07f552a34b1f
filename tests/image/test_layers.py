"""iter_layer on real layers of the test images and on hostile, corrupt and fuzzed streams."""

from __future__ import annotations

import gzip
import io
import logging
import random
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._images import require_image
from tests.image.conftest import make_layer

from garrison.core.errors import InputError, UnsafeArchiveError
from garrison.core.limits import Limits
from garrison.image.docker_archive import DockerArchiveSource
from garrison.image.interface import Entry
from garrison.image.layers import detect_compression, iter_layer, normalize_member_path

pytestmark = pytest.mark.images


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _entries(data: bytes, **kw: object) -> list[Entry]:
    return list(iter_layer(io.BytesIO(data), name="test-layer", **kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def app_layers() -> dict[str, bytes]:
    """The uncompressed layers of the real app image, by created_by prefix (base skipped)."""
    source = DockerArchiveSource(require_image("app-docker-archive"))
    out: dict[str, bytes] = {}
    with source:
        for layer in source.artifact().layers[1:]:
            with source.open_layer(layer) as blob:
                out[layer.created_by.split()[0] + ":" + layer.created_by.split()[-1]] = blob.read()
    return out


def _by_prefix(layers: dict[str, bytes], prefix: str) -> bytes:
    return next(v for k, v in layers.items() if k.startswith(prefix))


def test_whiteout_layer_of_real_image(app_layers: dict[str, bytes]) -> None:
    entries = []
    contents = {}
    for entry in iter_layer(io.BytesIO(_by_prefix(app_layers, "RUN:/etc/apt/apt.conf.d/*")), name="wh"):
        entries.append(entry)
        if entry.open is not None:
            with entry.open() as f:
                contents[entry.info.path] = f.read()
    whiteouts = sorted(e.whiteout for e in entries if e.whiteout)
    opaques = [e.opaque for e in entries if e.opaque is not None]
    assert whiteouts == [
        "etc/issue.net",
        "usr/local/lib/python3.11/site-packages/six-1.10.0.dist-info",
        "usr/local/lib/python3.11/site-packages/six.py",
    ]
    assert opaques == ["etc/apt/apt.conf.d"]
    assert contents == {"etc/apt/apt.conf.d/99garrison": b'APT::Install-Recommends "false";\n'}
    # content is only valid until the iterator advances
    with pytest.raises(InputError, match="no longer available"):
        next(e for e in entries if e.open is not None).open()  # type: ignore[misc]


def test_python_layer_entries_and_content(app_layers: dict[str, bytes]) -> None:
    layer = _by_prefix(app_layers, "RUN:six==1.10.0")
    seen = {}
    for entry in iter_layer(io.BytesIO(gzip.compress(layer)), name="py", media_type="application/vnd.oci.image.layer.v1.tar+gzip"):
        if entry.info.path.endswith("requests-2.19.1.dist-info/METADATA"):
            assert entry.open is not None
            with entry.open() as f:
                seen["metadata"] = f.read()
        assert not entry.info.path.startswith(("/", "./", "../"))
    assert b"Name: requests" in seen["metadata"]
    assert b"Version: 2.19.1" in seen["metadata"]


def test_same_entries_for_every_compression(app_layers: dict[str, bytes]) -> None:
    raw = _by_prefix(app_layers, "RUN:express@4.17.1")
    expected = [(e.info.path, e.type, e.info.size) for e in _entries(raw)]
    assert any(p.endswith("node_modules/lodash/package.json") for p, _, _ in expected)
    for blob in (gzip.compress(raw), zstandard.ZstdCompressor().compress(raw)):
        assert [(e.info.path, e.type, e.info.size) for e in _entries(blob)] == expected


def test_detect_compression_by_magic_not_media_type(app_layers: dict[str, bytes]) -> None:
    raw = _by_prefix(app_layers, "COPY:/usr/local/bin/hello")
    zst = zstandard.ZstdCompressor().compress(raw)
    assert detect_compression(zst) == "zstd"
    assert detect_compression(gzip.compress(raw)) == "gzip"
    assert detect_compression(raw) == "tar"
    # mislabelled: says gzip, is zstd
    found = []
    for entry in iter_layer(io.BytesIO(zst), name="z", media_type="application/vnd.docker.image.rootfs.diff.tar.gzip"):
        if entry.info.path == "usr/local/bin/hello":
            assert entry.info.executable
            with entry.open() as f:  # type: ignore[misc]
                found.append(f.read(4))
    assert found == [b"\x7fELF"]


def test_real_base_layer_devices_skipped_hardlinks_kept(caplog: pytest.LogCaptureFixture) -> None:
    source = DockerArchiveSource(require_image("debian-bookworm-docker-archive"))
    with source, caplog.at_level(logging.DEBUG, logger="garrison.image.layers"), source.open_layer(source.artifact().layers[0]) as blob:
        entries = list(iter_layer(blob, name="bookworm"))
        blob.read()
    paths = {e.info.path: e for e in entries}
    assert "etc/os-release" in paths and paths["etc/os-release"].type == "symlink"
    assert paths["etc/os-release"].linkname == "../usr/lib/os-release"
    assert "dev/null" not in paths  # device node
    assert "var/lib/dpkg/status" in paths
    assert any(e.type == "hardlink" for e in entries)
    assert "skipped 8 special member(s)" in caplog.text
    # device nodes in a base image are normal: nothing at warning level
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_hostile_members_skipped() -> None:
    dev = _info("dev/sda", tarfile.BLKTYPE)
    chr_ = _info("dev/mem", tarfile.CHRTYPE)
    data = _tar(
        [
            (_info("ok.txt"), b"fine"),
            (_info("../escape.txt"), b"evil"),
            (_info("a/../../escape2.txt"), b"evil"),
            (_info("/etc/passwd"), b"root::0:0"),
            (dev, None),
            (chr_, None),
            (_info("link", tarfile.SYMTYPE, "/etc"), None),
            (_info("link/shadow"), b"written through a symlink"),
            (_info("hard", tarfile.LNKTYPE, "../../etc/shadow"), None),
            (_info("./b/./c/../d.txt"), b"normalised"),
        ]
    )
    entries = _entries(data)
    paths = [e.info.path for e in entries]
    assert paths == ["ok.txt", "link", "b/d.txt"]
    link = entries[1]
    assert link.type == "symlink" and link.linkname == "/etc" and link.open is None


def test_directory_replaced_by_symlink_later_in_the_layer() -> None:
    """A directory seen (and found safe) earlier is replaced by a symlink: later members under
    it are written through the link and skipped, nested or not."""
    data = _tar(
        [
            (_info("z", tarfile.SYMTYPE, "/tmp"), None),  # from here on, paths are checked against links
            (_info("d/x"), b"fine"),
            (_info("a/b/c.txt"), b"fine"),
            (_info("d", tarfile.SYMTYPE, "/etc"), None),
            (_info("d/shadow"), b"through the link"),
            (_info("a", tarfile.SYMTYPE, "/root"), None),
            (_info("a/b/evil"), b"through the link"),
            (_info("e/f/g"), b"fine"),
        ]
    )
    assert [e.info.path for e in _entries(data)] == ["z", "d/x", "a/b/c.txt", "d", "a", "e/f/g"]


def test_hardlink_to_file_read_earlier_is_openable() -> None:
    data = _tar([(_info("bin/a"), b"content of a"), (_info("bin/b", tarfile.LNKTYPE, "bin/a"), None), (_info("bin/c", tarfile.LNKTYPE, "bin/zz"), None)])
    it = iter_layer(io.BytesIO(data), name="hl")
    first = next(it)
    with first.open() as f:  # type: ignore[misc]
        assert f.read() == b"content of a"
    second = next(it)
    assert second.type == "hardlink" and second.linkname == "bin/a"
    assert second.open is not None
    assert second.open().read() == b"content of a"
    third = next(it)
    assert third.type == "hardlink" and third.open is None
    assert list(it) == []


def test_gzip_bomb_rejected_by_ratio() -> None:
    raw = _tar([(_info("zeros"), bytes(100 * 1024 * 1024))])
    bomb = gzip.compress(raw, compresslevel=9)
    assert len(bomb) < 200_000
    with pytest.raises(UnsafeArchiveError, match="decompression ratio above 50"):
        for entry in iter_layer(io.BytesIO(bomb), name="bomb", limits=Limits(max_ratio=50)):
            if entry.open:
                entry.open().read()


def test_bomb_rejected_even_when_entries_are_not_read() -> None:
    raw = _tar([(_info("zeros"), bytes(100 * 1024 * 1024))])
    bomb = zstandard.ZstdCompressor(level=3).compress(raw)
    with pytest.raises(UnsafeArchiveError, match="bomb-z"):
        _entries_named(bomb, "bomb-z", Limits(max_ratio=100))


def _entries_named(data: bytes, name: str, limits: Limits) -> list[Entry]:
    return list(iter_layer(io.BytesIO(data), name=name, limits=limits))


def test_layer_size_limit() -> None:
    raw = _tar([(_info("big"), b"x" * (3 * 1024 * 1024))])
    with pytest.raises(UnsafeArchiveError, match="beyond 1048576 bytes"):
        _entries_named(raw, "big-layer", Limits(max_layer_bytes=1024 * 1024))
    assert len(_entries_named(raw, "ok", Limits(max_layer_bytes=4 * 1024 * 1024))) == 1


@pytest.mark.parametrize("cut", [100, 700, 5000, -600, -1])
def test_truncated_gzip_raises_input_error(cut: int) -> None:
    rnd = random.Random(cut)
    raw = _tar([(_info(f"f{i}"), rnd.randbytes(3000)) for i in range(8)])
    blob = gzip.compress(raw)
    with pytest.raises(InputError, match="trunc-layer"):
        for entry in iter_layer(io.BytesIO(blob[:cut]), name="trunc-layer"):
            if entry.open:
                entry.open().read()


@pytest.mark.parametrize("cut", [300, 1100, 2600])
def test_truncated_plain_tar_raises_input_error(cut: int) -> None:
    raw = _tar([(_info(f"f{i}"), bytes([65 + i]) * 1000) for i in range(4)])
    with pytest.raises(InputError, match="plain-trunc"):
        list(iter_layer(io.BytesIO(raw[:cut]), name="plain-trunc"))


def test_corrupt_header_in_the_middle() -> None:
    raw = bytearray(_tar([(_info("a"), b"A" * 512), (_info("b"), b"B" * 512)]))
    raw[1024 + 100] ^= 0xFF  # second header: checksum no longer matches
    with pytest.raises(InputError, match="corrupt tar stream"):
        _entries(bytes(raw))


def test_not_a_tar_and_encrypted() -> None:
    with pytest.raises(InputError, match="not a tar layer"):
        _entries(b'{"schemaVersion": 2}' + bytes(600))
    with pytest.raises(InputError, match="encrypted layers are not supported"):
        _entries(b"x", media_type="application/vnd.oci.image.layer.v1.tar+gzip+encrypted")
    assert _entries(b"") == []


def test_reading_content_after_truncation_is_input_error() -> None:
    raw = _tar([(_info("big"), random.Random(1).randbytes(100_000))])
    blob = gzip.compress(raw)[:2000]
    entries = iter_layer(io.BytesIO(blob), name="mid")
    with pytest.raises(InputError, match="mid"):
        for entry in entries:
            entry.open().read()  # type: ignore[misc]


def test_normalize_member_path() -> None:
    assert normalize_member_path("./usr//bin/") == "usr/bin"
    assert normalize_member_path(".") == ""
    assert normalize_member_path("a/../b") == "b"
    assert normalize_member_path("a/../../b") is None
    assert normalize_member_path("/abs") is None
    assert normalize_member_path("nul\x00byte") is None


# -- fuzzing ---------------------------------------------------------------------------------

_SMALL_FILES: dict[str, bytes | None] = {
    "etc": None,
    "etc/os-release": Path("/usr/lib/os-release").read_bytes() if Path("/usr/lib/os-release").exists() else b"ID=debian\n",
    "usr/lib/python3/dist-packages/pkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
    "etc/.wh.motd": b"",
}
_GZ, _ = make_layer(_SMALL_FILES, compress="gzip")
_ZS, _ = make_layer(_SMALL_FILES, compress="zstd")
_RAW, _ = make_layer(_SMALL_FILES, compress="none")


def _consume(data: bytes) -> None:
    try:
        for entry in iter_layer(io.BytesIO(data), name="fuzz", limits=Limits(max_layer_bytes=10 * 1024 * 1024)):
            if entry.open is not None:
                with entry.open() as f:
                    f.read()
    except InputError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=st.sampled_from([_GZ, _ZS, _RAW]), cut=st.integers(min_value=0, max_value=4096))
def test_fuzz_truncation(blob: bytes, cut: int) -> None:
    _consume(blob[: min(cut, len(blob))])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blob=st.sampled_from([_GZ, _ZS, _RAW]),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=10**6), st.integers(min_value=1, max_value=255)), min_size=1, max_size=6),
)
def test_fuzz_byte_flips(blob: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(blob)
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    _consume(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    _consume(data)
