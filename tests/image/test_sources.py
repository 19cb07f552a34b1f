"""Image sources on the real test images: docker-archive (classic, Docker 25+ and legacy), OCI
layout and archive (gzip and zstd), rootfs, the open_image dispatcher, and fuzzed documents."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._images import require_image
from tests.image.conftest import BuiltImage, make_layer

from garrison.core.errors import GarrisonError, InputError, NotFoundError
from garrison.image._oci import parse_platform
from garrison.image.directory import iter_directory
from garrison.image.docker_archive import DockerArchiveSource
from garrison.image.interface import ImageSource
from garrison.image.layers import iter_layer
from garrison.image.oci_layout import open_oci_layout
from garrison.image.open import open_image
from garrison.image.rootfs import RootfsSource
from garrison.model import ArtifactKind, Layer

APP_CREATED_BY = [
    "mmdebstrap --variant=minbase bookworm",
    "RUN pip install --target /usr/local/lib/python3.11/site-packages requests==2.19.1 Jinja2==2.10 six==1.10.0",
    "RUN npm install lodash@4.17.15 minimist@1.2.0 express@4.17.1",
    "COPY hello /usr/local/bin/hello",
    "RUN rm -rf /etc/issue.net six /etc/apt/apt.conf.d/*",
]

pytestmark = pytest.mark.images


def _walk(source: ImageSource) -> dict[str, set[str]]:
    """Paths of every layer (by diff_id), reading each blob to the end (digest verified)."""
    out: dict[str, set[str]] = {}
    for layer in source.artifact().layers:
        with source.open_layer(layer) as blob:
            out[layer.diff_id] = {e.info.path for e in iter_layer(blob, name=layer.digest, media_type=layer.media_type)}
            blob.read()
    return out


@pytest.fixture(scope="module")
def app_reference() -> dict[str, set[str]]:
    with DockerArchiveSource(require_image("app-docker-archive")) as source:
        return _walk(source)


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("app-docker-archive", ArtifactKind.DOCKER_ARCHIVE),
        ("app-oci-layout", ArtifactKind.OCI_LAYOUT),
        ("app-oci-archive", ArtifactKind.OCI_ARCHIVE),
        ("app-oci-layout-zstd", ArtifactKind.OCI_LAYOUT),
    ],
)
def test_app_image_every_format(image: str, kind: ArtifactKind, app_reference: dict[str, set[str]]) -> None:
    with open_image(str(require_image(image))) as source:
        artifact = source.artifact()
        assert artifact.kind == kind
        assert artifact.architecture == "amd64" and artifact.os_name == "linux"
        assert artifact.created == "2025-01-01T00:00:00Z"
        assert [layer.created_by for layer in artifact.layers] == APP_CREATED_BY
        assert artifact.image_id.startswith("sha256:")
        assert "PYTHONPATH=/usr/local/lib/python3.11/site-packages" in artifact.config["Env"]
        if kind != ArtifactKind.DOCKER_ARCHIVE:
            assert artifact.digest.startswith("sha256:")
            expected = "zstd" if "zstd" in image else "gzip"
            assert all(layer.media_type.endswith(expected) for layer in artifact.layers)
        else:
            assert artifact.repo_tags == ("garrison-test/app:1.0",)
        # same content in every format: the uncompressed layers are identical
        assert _walk(source) == app_reference
    go_layer = next(v for v in app_reference.values() if "usr/local/bin/hello" in v)
    assert go_layer == {"usr", "usr/local", "usr/local/bin", "usr/local/bin/hello"}


def test_image_ids_agree_across_formats() -> None:
    ids = set()
    for name in ("app-docker-archive", "app-oci-layout", "app-oci-archive", "app-oci-layout-zstd"):
        with open_image(str(require_image(name))) as source:
            artifact = source.artifact()
            ids.add(tuple(layer.diff_id for layer in artifact.layers))
    assert len(ids) == 1


def test_oci_in_docker_save_archive() -> None:
    path = require_image("debian-bookworm-moby25-archive")
    with open_image(f"docker-archive:{path}") as source:
        artifact = source.artifact()
        index = json.loads(tarfile.open(path).extractfile("index.json").read())  # type: ignore[union-attr]
        assert artifact.digest == index["manifests"][0]["digest"]
        assert artifact.repo_tags == ("garrison-test/debian:bookworm",)
        assert artifact.layers[0].digest != artifact.layers[0].diff_id  # a gzip blob named by digest
        paths = _walk(source)[artifact.layers[0].diff_id]
    assert "var/lib/dpkg/status" in paths


def test_bullseye_and_bookworm_differ() -> None:
    found = {}
    for name in ("debian-bookworm-oci-archive", "debian-bullseye-oci-archive"):
        with open_image(f"oci-archive:{require_image(name)}") as source:
            layer = source.artifact().layers[0]
            with source.open_layer(layer) as blob:
                for entry in iter_layer(blob, name=name):
                    if entry.info.path == "etc/debian_version" and entry.open:
                        with entry.open() as f:
                            found[name] = f.read().decode().strip()
                blob.read()
    assert found["debian-bookworm-oci-archive"].startswith("12.")
    assert found["debian-bullseye-oci-archive"].startswith("11.")


def test_rootfs_source_and_directory_walk() -> None:
    root = require_image("debian-bookworm-rootfs")
    with open_image(f"rootfs:{root}") as source:
        assert isinstance(source, RootfsSource)
        assert source.artifact().kind == ArtifactKind.ROOTFS
        with pytest.raises(InputError):
            source.open_layer(source.artifact().layers[0] if source.artifact().layers else _fake_layer())
    with open_image(str(root)) as source:  # a plain directory without oci-layout
        assert source.artifact().kind == ArtifactKind.ROOTFS
    entries = {e.info.path: e for e in iter_directory(root)}
    assert entries["etc/os-release"].type == "symlink"
    assert entries["etc/os-release"].linkname == "../usr/lib/os-release"
    assert entries["var/lib/dpkg/status"].type == "file"
    with entries["usr/lib/os-release"].open() as f:  # type: ignore[misc]
        assert b"bookworm" in f.read()
    assert not any(p.startswith("dev/") and e.type == "file" for p, e in entries.items())
    assert "dev/null" not in entries  # device node skipped


def _fake_layer() -> Layer:
    return Layer("sha256:" + "0" * 64, "sha256:" + "0" * 64)


def test_directory_walk_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside")
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f.txt").write_text("inside")
    (root / "escape").symlink_to(outside)
    (root / "a" / "loop").symlink_to("..")
    import os

    os.mkfifo(root / "fifo")
    entries = {e.info.path: e for e in iter_directory(root)}
    assert set(entries) == {"a", "a/f.txt", "a/loop", "escape"}
    assert entries["escape"].type == "symlink" and entries["escape"].open is None
    with pytest.raises(NotFoundError):
        list(iter_directory(tmp_path / "missing"))
    with pytest.raises(InputError):
        list(iter_directory(root / "a" / "f.txt"))


def test_directory_walk_skips_proc_of_live_system() -> None:
    seen = []
    for entry in iter_directory(Path("/")):
        seen.append(entry.info.path)
        if len(seen) > 2000:
            break
    assert not any(p.startswith(("proc/", "sys/")) for p in seen)


def test_multiarch_layout_platform_selection(multiarch_layout: tuple[Path, dict[str, BuiltImage]]) -> None:
    layout, built = multiarch_layout
    with open_image(f"oci:{layout}") as source:
        assert source.artifact().digest == built["amd64"].manifest_digest
    with open_image(f"oci:{layout}:multi", platform="linux/arm64") as source:
        artifact = source.artifact()
        assert artifact.digest == built["arm64"].manifest_digest
        assert artifact.architecture == "arm64/v8"
        assert artifact.layers[0].created_by == "ADD files /"  # empty_layer history skipped
        assert artifact.config["Labels"] == {"arch": "arm64"}
    with pytest.raises(NotFoundError, match=r"no image for platform linux/s390x \(available: linux/amd64, linux/arm64/v8\)"):
        open_image(str(layout), platform="linux/s390x").artifact()
    with pytest.raises(NotFoundError, match="no image tagged 'nope'"):
        open_image(f"oci:{layout}:nope").artifact()
    with pytest.raises(InputError, match="os/arch"):
        open_image(str(layout), platform="amd64")


def test_corrupted_blob_in_layout_is_digest_mismatch(tmp_path: Path, multiarch_layout: tuple[Path, dict[str, BuiltImage]]) -> None:
    layout, built = multiarch_layout
    copy = tmp_path / "layout"
    shutil.copytree(layout, copy)
    blob = copy / "blobs" / "sha256" / built["amd64"].layer_digests[0].split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with open_oci_layout(copy, platform=parse_platform("linux/amd64")) as source:
        layer = source.artifact().layers[0]
        with pytest.raises(InputError, match="digest mismatch"), source.open_layer(layer) as stream:
            stream.read()
    blob.unlink()
    with open_oci_layout(copy) as source, pytest.raises(NotFoundError, match="missing"):
        source.open_layer(source.artifact().layers[0])


def test_open_image_dispatch_and_errors(tmp_path: Path) -> None:
    with open_image(str(require_image("debian-bookworm-oci-archive"))) as source:
        assert source.artifact().kind == ArtifactKind.OCI_ARCHIVE  # sniffed
    with open_image(f"docker-archive:{require_image('debian-bookworm-docker-archive')}:garrison-test/debian:bookworm") as source:
        assert source.artifact().repo_tags == ("garrison-test/debian:bookworm",)
    with pytest.raises(NotFoundError, match="no image tagged"):
        open_image(f"docker-archive:{require_image('debian-bookworm-docker-archive')}:other:tag").artifact()
    with pytest.raises(NotFoundError):
        open_image("./missing-image.tar")
    with pytest.raises(NotFoundError):
        open_image(f"docker-archive:{tmp_path / 'nope.tar'}")
    with pytest.raises(InputError, match="not supported"):
        open_image("docker-daemon:alpine:latest")
    with pytest.raises(InputError, match="nothing after"):
        open_image("oci:")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(InputError, match="not a tar archive"):
        open_image(str(junk))
    empty_tar = tmp_path / "empty.tar"
    with tarfile.open(empty_tar, "w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(InputError, match="not an image archive"):
        open_image(str(empty_tar))
    with pytest.raises(InputError, match="OCI archive"):
        DockerArchiveSource(require_image("debian-bookworm-oci-archive")).artifact()


def _legacy_archive(path: Path) -> str:
    """A pre-1.10 docker save: repositories + <id>/json + <id>/layer.tar, two layers."""
    layers = [make_layer({"etc": None, "etc/base": b"base\n"}, compress="none")[0], make_layer({"etc/app": b"app\n"}, compress="none")[0]]
    ids = [hashlib.sha256(f"layer{i}".encode()).hexdigest() for i in range(2)]
    with tarfile.open(path, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for i, (layer_id, data) in enumerate(zip(ids, layers)):
            meta: dict[str, object] = {"id": layer_id, "created": "2015-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
                    "container_config": {"Cmd": ["/bin/sh", "-c", f"step {i}"]}, "config": {"Env": ["A=1"]}}
            if i:
                meta["parent"] = ids[i - 1]
            add(f"{layer_id}/json", json.dumps(meta).encode())
            add(f"{layer_id}/layer.tar", data)
            add(f"{layer_id}/VERSION", b"1.0")
        add("repositories", json.dumps({"legacy/app": {"old": ids[1]}}).encode())
    return ids[1]


def test_legacy_docker_archive(tmp_path: Path) -> None:
    path = tmp_path / "legacy.tar"
    top = _legacy_archive(path)
    with open_image(str(path)) as source:
        artifact = source.artifact()
        assert artifact.repo_tags == ("legacy/app:old",)
        assert artifact.image_id == f"sha256:{top}"
        assert [layer.created_by for layer in artifact.layers] == ["/bin/sh -c step 0", "/bin/sh -c step 1"]
        assert _walk(source) == {
            artifact.layers[0].diff_id: {"etc", "etc/base"},
            artifact.layers[1].diff_id: {"etc/app"},
        }


def _archive_with(tmp_path: Path, manifest: bytes, extra: dict[str, bytes] | None = None) -> Path:
    path = tmp_path / "fuzz.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in {"manifest.json": manifest, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


_REAL_MANIFEST = json.dumps([{"Config": "cfg.json", "RepoTags": ["a/b:c"], "Layers": ["l/layer.tar"]}]).encode()
_LAYER, _DIFF = make_layer({"f": b"x"}, compress="none")
_CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [_DIFF]}, "history": [{"created_by": "x"}]}).encode()


def test_small_archive_round_trip(tmp_path: Path) -> None:
    path = _archive_with(tmp_path, _REAL_MANIFEST, {"cfg.json": _CONFIG, "l/layer.tar": _LAYER})
    with DockerArchiveSource(path) as source:
        assert source.artifact().layers[0].digest == _DIFF
        assert _walk(source) == {_DIFF: {"f"}}


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["Config", "Layers", "RepoTags", "rootfs", "diff_ids", "x"]), children, max_size=4),
    max_leaves=15,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(_json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200), st.integers(0, len(_REAL_MANIFEST)).map(lambda n: _REAL_MANIFEST[:n])))
def test_fuzz_manifest_json(tmp_path: Path, data: bytes) -> None:
    path = _archive_with(tmp_path, data, {"cfg.json": _CONFIG, "l/layer.tar": _LAYER})
    try:
        with DockerArchiveSource(path) as source:
            source.artifact()
    except GarrisonError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(_json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)), config=st.one_of(st.just(_CONFIG), _json_values.map(lambda v: json.dumps(v).encode())))
def test_fuzz_oci_index_and_config(tmp_path: Path, data: bytes, config: bytes, multiarch_layout: tuple[Path, dict[str, BuiltImage]]) -> None:
    layout, built = multiarch_layout
    copy = tmp_path / "fz"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(layout, copy)
    (copy / "index.json").write_bytes(data)
    try:
        with open_oci_layout(copy) as source:
            source.artifact()
    except GarrisonError:
        pass
    # a config replaced by garbage under its own (recomputed) digest must also fail cleanly
    (copy / "index.json").write_bytes((layout / "index.json").read_bytes())
    cfg_hex = hashlib.sha256(config).hexdigest()
    (copy / "blobs" / "sha256" / cfg_hex).write_bytes(config)
    amd = copy / "blobs" / "sha256" / built["amd64"].manifest_digest.split(":")[1]
    manifest = json.loads(amd.read_bytes())
    manifest["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{cfg_hex}", "size": len(config)}
    raw = json.dumps(manifest).encode()
    (copy / "blobs" / "sha256" / hashlib.sha256(raw).hexdigest()).write_bytes(raw)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + hashlib.sha256(raw).hexdigest(), "size": len(raw)}]}
    (copy / "index.json").write_text(json.dumps(index))
    try:
        with open_oci_layout(copy) as source:
            artifact = source.artifact()
        assert config == _CONFIG or artifact.layers is not None
    except GarrisonError:
        pass
