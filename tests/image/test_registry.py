"""The registry source against a real docker-registry on loopback (and a token-checking proxy
in front of it for the bearer flow and injected faults)."""

from __future__ import annotations

import base64
import json
import socket
import threading
from pathlib import Path

import pytest
from tests._images import require_image
from tests.image.conftest import BuiltImage, Proxy, Registry, free_port

from garrison.core.errors import InputError, NotFoundError, RegistryError
from garrison.image._oci import parse_platform
from garrison.image.interface import ImageSource
from garrison.image.layers import iter_layer
from garrison.image.open import open_image
from garrison.image.registry import RegistrySource
from garrison.model import ArtifactKind

pytestmark = [pytest.mark.registry, pytest.mark.images]


def _paths(source: ImageSource) -> set[str]:
    out: set[str] = set()
    artifact = source.artifact()
    for layer in artifact.layers:
        with source.open_layer(layer) as blob:
            out |= {e.info.path for e in iter_layer(blob, name=layer.digest)}
            blob.read()
    return out


def test_pull_by_tag_and_by_digest(registry: Registry, pushed: dict[str, str]) -> None:
    with open_image(f"registry:{pushed['bookworm']}", insecure=True) as source:
        artifact = source.artifact()
        assert artifact.kind == ArtifactKind.REGISTRY
        assert artifact.repo_tags == (f"{pushed['bookworm']}",)
        assert artifact.repo_digests == (f"{registry.host}/garrison/debian@{artifact.digest}",)
        assert artifact.layers[0].created_by == "mmdebstrap --variant=minbase bookworm"
        assert artifact.layers[0].media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        by_tag = artifact
        assert "var/lib/dpkg/status" in _paths(source)
    ref = f"{registry.host}/garrison/debian@{by_tag.digest}"
    with open_image(f"docker://{ref}", insecure=True) as source:
        artifact = source.artifact()
        assert artifact.digest == by_tag.digest
        assert artifact.image_id == by_tag.image_id
        assert [layer.diff_id for layer in artifact.layers] == [layer.diff_id for layer in by_tag.layers]
    # the same image from the archive it was pushed from has the same layers
    with open_image(str(require_image("debian-bookworm-docker-archive"))) as archive:
        assert [layer.diff_id for layer in archive.artifact().layers] == [layer.diff_id for layer in by_tag.layers]


def test_wrong_digest_in_reference(registry: Registry, pushed: dict[str, str]) -> None:
    with open_image(pushed["bookworm"], insecure=True) as source:
        digest = source.artifact().digest
    wrong = digest[:-4] + ("0000" if not digest.endswith("0000") else "1111")
    with pytest.raises(RegistryError, match="404"):
        open_image(f"{registry.host}/garrison/debian@{wrong}", insecure=True).artifact()


def test_platform_selection(registry: Registry, pushed: dict[str, str], multiarch_layout: tuple[Path, dict[str, BuiltImage]]) -> None:
    _, built = multiarch_layout
    with open_image(pushed["multi"], insecure=True) as source:
        assert source.artifact().digest == built["amd64"].manifest_digest
    with open_image(pushed["multi"], insecure=True, platform="linux/arm64/v8") as source:
        artifact = source.artifact()
        assert artifact.digest == built["arm64"].manifest_digest
        assert artifact.architecture == "arm64/v8"
        assert _paths(source) == {"etc", "etc/os-release"}
    with pytest.raises(NotFoundError, match="linux/riscv64"):
        RegistrySource(pushed["multi"], insecure=True, platform=parse_platform("linux/riscv64")).artifact()
    # the index itself by digest, then a platform
    index_ref = f"{registry.host}/garrison/multi@{built['index'].manifest_digest}"
    with open_image(index_ref, insecure=True, platform="linux/arm64") as source:
        assert source.artifact().digest == built["arm64"].manifest_digest


def test_zstd_layers(pushed: dict[str, str]) -> None:
    with open_image(pushed["app-zstd"], insecure=True) as source:
        artifact = source.artifact()
        assert all(layer.media_type.endswith("+zstd") for layer in artifact.layers)
        paths = _paths(source)
    assert "usr/local/bin/hello" in paths
    assert "srv/web/node_modules/lodash/package.json" in paths


def test_not_found_errors(registry: Registry, pushed: dict[str, str]) -> None:
    with pytest.raises(RegistryError, match=r"garrison/debian:nope.*404.*manifest nope not found"):
        open_image(f"{registry.host}/garrison/debian:nope", insecure=True).artifact()
    with pytest.raises(RegistryError, match="404"):
        open_image(f"{registry.host}/garrison/absent:1", insecure=True).artifact()


def test_connection_refused_and_plain_https_error() -> None:
    port = free_port()
    source = RegistrySource(f"127.0.0.1:{port}/x/y:1", insecure=True, retries=1, backoff=0.01, timeout=2)
    with pytest.raises(RegistryError, match=f"127.0.0.1:{port}/x/y:1: cannot connect to 127.0.0.1:{port}"):
        source.artifact()


def test_timeout(proxy: Proxy) -> None:
    proxy.faults["/manifests/"] = ["hang", "hang"]
    source = RegistrySource(f"{proxy.host}/garrison/debian:bookworm", insecure=True, timeout=0.5, retries=1, backoff=0.01)
    with pytest.raises(RegistryError, match="timed out"):
        source.artifact()


def test_bearer_token_flow(proxy: Proxy, pushed: dict[str, str]) -> None:
    proxy.token_user = ("alice", "wonderland")
    with open_image(f"{proxy.host}/garrison/multi:1", insecure=True, username="alice", password="wonderland") as source:
        assert source.artifact().architecture == "amd64"
        assert _paths(source) == {"etc", "etc/os-release"}
    token_requests = [r for r in proxy.requests if r[0].startswith("/token")]
    assert len(token_requests) == 1  # one token for the whole pull
    assert "scope=repository%3Agarrison%2Fmulti%3Apull" in token_requests[0][0]
    assert "service=garrison-test" in token_requests[0][0]
    assert token_requests[0][1] == "Basic " + base64.b64encode(b"alice:wonderland").decode()
    assert all(r[1] == f"Bearer {proxy.token}" for r in proxy.requests[-3:])
    with pytest.raises(RegistryError, match=r"token service .* refused the credentials"):
        open_image(f"{proxy.host}/garrison/multi:1", insecure=True, username="alice", password="wrong").artifact()


def test_retries_on_429_and_5xx_then_gives_up(proxy: Proxy) -> None:
    proxy.faults["/manifests/"] = [503, 429]
    source = RegistrySource(f"{proxy.host}/garrison/multi:1", insecure=True, retries=3, backoff=0.01)
    assert source.artifact().architecture == "amd64"
    proxy.faults["/manifests/"] = [500] * 10
    with pytest.raises(RegistryError, match="HTTP 500 for the manifest: registry server error, retries exhausted"):
        RegistrySource(f"{proxy.host}/garrison/multi:1", insecure=True, retries=2, backoff=0.01).artifact()
    proxy.faults["/manifests/"] = [403]
    with pytest.raises(RegistryError, match="403"):
        RegistrySource(f"{proxy.host}/garrison/multi:1", insecure=True, retries=2, backoff=0.01).artifact()


def test_basic_auth_registry(auth_registry: Registry) -> None:
    ref = auth_registry.push(f"oci:{require_image('app-oci-layout')}:1.0", "garrison/app:basic")
    with pytest.raises(RegistryError, match="authentication required"):
        open_image(ref, insecure=True).artifact()
    with pytest.raises(RegistryError, match="401"):
        open_image(ref, insecure=True, username="garrison", password="wrong").artifact()
    with open_image(ref, insecure=True, username="garrison", password="s3cret-pass") as source:
        assert len(source.artifact().layers) == 5


def test_credentials_from_env_and_docker_config(auth_registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ref = auth_registry.push(f"oci:{require_image('app-oci-layout')}:1.0", "garrison/app:cfg")
    monkeypatch.setenv("GARRISON_REGISTRY_USERNAME", "garrison")
    monkeypatch.setenv("GARRISON_REGISTRY_PASSWORD", "s3cret-pass")
    assert open_image(ref, insecure=True).artifact().layers
    monkeypatch.delenv("GARRISON_REGISTRY_USERNAME")
    monkeypatch.delenv("GARRISON_REGISTRY_PASSWORD")
    auth = base64.b64encode(b"garrison:s3cret-pass").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {f"http://{auth_registry.host}": {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert open_image(ref, insecure=True).artifact().layers


def test_corrupted_blob_on_registry_disk(registry: Registry, tmp_path: Path) -> None:
    from tests.image.conftest import make_multiarch_layout

    # an image of its own: corrupting a shared blob would break other tests
    layout = tmp_path / "own"
    built = make_multiarch_layout(layout, tag="own")
    ref = registry.push(f"oci:{layout}:own", "garrison/corrupt:1", all_images=True, preserve=True)
    path = registry.blob_path(built["amd64"].layer_digests[0])
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with open_image(ref, insecure=True) as source:
        layer = source.artifact().layers[0]
        with pytest.raises(InputError, match="digest mismatch"), source.open_layer(layer) as blob:
            blob.read()


def test_blob_stream_cut_short(proxy: Proxy) -> None:
    """A server that sends fewer bytes than declared: the reader fails, never returns short data."""
    port = free_port()
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen(4)

    def serve() -> None:
        for _ in range(2):  # the client may stop after one: the test's close ends the wait
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: application/json\r\n\r\n{\"sche")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(RegistryError, match=f"127.0.0.1:{port}/a/b:1"):
            RegistrySource(f"127.0.0.1:{port}/a/b:1", insecure=True, retries=0, timeout=5).artifact()
    finally:
        server.close()
