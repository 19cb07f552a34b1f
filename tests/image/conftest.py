"""Fixtures for the image sources: hand-built small images, the real test images and a real
registry (Debian's docker-registry) on loopback, plus a token-checking proxy in front of it."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from tests._images import require_image

REGISTRY_BIN = "/usr/bin/docker-registry"
EPOCH = 1700000000


# -- small images built by hand -------------------------------------------------------------


def make_layer(files: dict[str, bytes | None], *, compress: str = "gzip") -> tuple[bytes, str]:
    """A layer tar (``None`` content = directory) and its diff_id; compressed as asked."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = EPOCH
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(content))
    raw = buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    if compress == "gzip":
        return gzip.compress(raw, mtime=0), diff_id
    if compress == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(raw), diff_id
    return raw, diff_id


def _put(blobs: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


@dataclass
class BuiltImage:
    arch: str
    manifest_digest: str
    config_digest: str
    layer_digests: list[str] = field(default_factory=list)


def write_image(blobs: Path, arch: str, files: dict[str, bytes | None], variant: str = "") -> tuple[dict[str, object], BuiltImage]:
    """Write one single-platform OCI image's blobs; return its index descriptor."""
    layer, diff_id = make_layer(files)
    layer_desc = _put(blobs, layer) | {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}
    config = {
        "architecture": arch,
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"arch": arch}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {"created_by": "ADD files /"},
            {"created_by": "ENV PATH=/usr/bin:/bin", "empty_layer": True},
        ],
    }
    if variant:
        config["variant"] = variant
    config_desc = _put(blobs, json.dumps(config).encode()) | {"mediaType": "application/vnd.oci.image.config.v1+json"}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = _put(blobs, json.dumps(manifest).encode()) | {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "platform": {"os": "linux", "architecture": arch} | ({"variant": variant} if variant else {}),
    }
    built = BuiltImage(arch, str(manifest_desc["digest"]), str(config_desc["digest"]), [str(layer_desc["digest"])])
    return manifest_desc, built


def make_multiarch_layout(root: Path, tag: str = "multi") -> dict[str, BuiltImage]:
    """An OCI layout whose index.json points at an image index with amd64 and arm64/v8 images."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    built: dict[str, BuiltImage] = {}
    descriptors = []
    for arch, variant in (("amd64", ""), ("arm64", "v8")):
        files = {"etc": None, "etc/os-release": f'ID=garrison\nVERSION_ID="1"\nARCH={arch}\n'.encode()}
        desc, image = write_image(blobs, arch, files, variant)
        descriptors.append(desc)
        built[arch] = image
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}
    index_desc = _put(blobs, json.dumps(index).encode()) | {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [index_desc]}))
    built["index"] = BuiltImage("", str(index_desc["digest"]), "")
    return built


@pytest.fixture(scope="session")
def multiarch_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, BuiltImage]]:
    root = tmp_path_factory.mktemp("multiarch") / "layout"
    return root, make_multiarch_layout(root)


# -- a real registry --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    storage: Path
    username: str = ""
    password: str = ""

    def push(self, source: str, name: str, *, all_images: bool = False, preserve: bool = False) -> str:
        """skopeo copy SOURCE docker://HOST/NAME; returns the reference pushed."""
        ref = f"{self.host}/{name}"
        cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if self.username:
            cmd += ["--dest-creds", f"{self.username}:{self.password}"]
        if all_images:
            cmd.append("--all")
        if preserve:
            cmd.append("--preserve-digests")
        subprocess.run([*cmd, source, f"docker://{ref}"], check=True, capture_output=True, timeout=300)
        return ref

    def blob_path(self, digest: str) -> Path:
        hexdigest = digest.split(":", 1)[1]
        return self.storage / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"


def _start_registry(root: Path, htpasswd: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    storage = root / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = [
        "version: 0.1",
        "log:",
        "  level: error",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    if htpasswd is not None:
        config += ["auth:", "  htpasswd:", "    realm: garrison-test", f"    path: {htpasswd}"]
    (root / "config.yml").write_text("\n".join(config) + "\n")
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {(root / 'registry.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{host}/v2/", timeout=1).status_code in (200, 401):
                return proc, host
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("docker-registry did not come up")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry on loopback, for the whole session."""
    assert Path(REGISTRY_BIN).exists(), "docker-registry is not installed (apt-get install docker-registry)"
    root = tmp_path_factory.mktemp("registry")
    proc, host = _start_registry(root)
    try:
        yield Registry(host, root / "storage")
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that requires HTTP basic auth (htpasswd with bcrypt, as the registry demands)."""
    assert shutil.which("htpasswd"), "htpasswd is not installed (apt-get install apache2-utils)"
    root = tmp_path_factory.mktemp("auth-registry")
    htpasswd = root / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "garrison", "s3cret-pass"], check=True, capture_output=True)
    proc, host = _start_registry(root, htpasswd)
    try:
        yield Registry(host, root / "storage", "garrison", "s3cret-pass")
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def pushed(registry: Registry, multiarch_layout: tuple[Path, dict[str, BuiltImage]]) -> dict[str, str]:
    """Images pushed once per session: name -> reference."""
    layout, _ = multiarch_layout
    return {
        "bookworm": registry.push(f"docker-archive:{require_image('debian-bookworm-docker-archive')}", "garrison/debian:bookworm"),
        "app-zstd": registry.push(
            f"oci:{require_image('app-oci-layout-zstd')}:1.0", "garrison/app:zstd", preserve=True
        ),
        "multi": registry.push(f"oci:{layout}:multi", "garrison/multi:1", all_images=True, preserve=True),
    }


# -- a token-checking, fault-injecting proxy in front of the real registry ---------------------


@dataclass
class Proxy:
    """``http://HOST/v2/...`` requires a bearer token issued by ``/token`` (which itself wants
    basic credentials when ``token_user`` is set), then forwards to the real registry. ``faults``
    maps a path substring to a list of actions consumed one per request: an HTTP status to send
    instead, or ``"hang"`` to stall longer than any client timeout."""

    host: str
    upstream: str
    token: str = "tok-" + os.urandom(8).hex()
    token_user: tuple[str, str] | None = None
    faults: dict[str, list[int | str]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (path, authorization, scope)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_for(self, path: str) -> int | str | None:
        with self.lock:
            for key, actions in self.faults.items():
                if key in path and actions:
                    return actions.pop(0)
        return None


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            auth = self.headers.get("Authorization", "")
            proxy.requests.append((self.path, auth, ""))
            if self.path.startswith("/token"):
                self._token(auth)
                return
            fault = proxy.fault_for(self.path)
            if fault == "hang":
                time.sleep(3)
                self._send(200, b"{}")
                return
            if isinstance(fault, int):
                self._send(fault, b'{"errors":[{"code":"INJECTED"}]}', {"Retry-After": "0"})
                return
            if auth != f"Bearer {proxy.token}":
                repo = self.path.split("/")[2] + "/" + self.path.split("/")[3] if self.path.count("/") > 3 else ""
                challenge = (
                    f'Bearer realm="http://{proxy.host}/token",service="garrison-test",'
                    f'scope="repository:{repo}:pull"'
                )
                self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept",)}
            with httpx.stream("GET", f"http://{proxy.upstream}{self.path}", headers=headers, timeout=30) as up:
                body = up.read()
                keep = {k: v for k, v in up.headers.items() if k.lower() in ("content-type", "docker-content-digest")}
                self._send(up.status_code, body, keep)

        def _token(self, auth: str) -> None:
            if proxy.token_user is not None:
                import base64

                user, password = proxy.token_user
                expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                if auth != expected:
                    self._send(401, b'{"details":"bad credentials"}')
                    return
            proxy.requests[-1] = (self.path, auth, self.path)
            self._send(200, json.dumps({"token": proxy.token, "expires_in": 300}).encode(), {"Content-Type": "application/json"})

    return Handler


@pytest.fixture
def proxy(registry: Registry) -> Iterator[Proxy]:
    port = free_port()
    state = Proxy(host=f"127.0.0.1:{port}", upstream=registry.host)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
