"""A loopback HTTPS server that replays recorded Kubernetes API payloads.

No API server can run on this machine, so the tests serve objects recorded from real clusters
(tests/assets/posture/cluster, see its README) the way kube-apiserver serves them: discovery
documents as recorded, list responses built around the recorded objects with their
``apiVersion``/``kind`` removed from the items (list items carry neither), ``limit``/``continue``
pagination with an opaque token, ``PartialObjectMetadataList`` when that is what the client
accepts, the recorded 403 Status for forbidden kinds, and 401 for requests without the expected
credentials. TLS is real (:mod:`garrison.admission.certs`), client certificates are verified
against a CA made here.
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from garrison.admission.certs import CertBundle, generate

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "posture" / "cluster"
METADATA_ONLY = "as=PartialObjectMetadataList"

#: list path -> recorded object files served in that list
RECORDED: dict[str, list[str]] = {
    "/api/v1/namespaces": ["k9s/ns.json"],
    "/api/v1/pods": ["k9s/po_init.json", "k9s/p1.json"],
    "/apis/apps/v1/deployments": ["k9s/dp.json"],
    "/apis/apps/v1/replicasets": ["k9s/rs.json"],
    "/apis/apps/v1/statefulsets": ["k9s/sts.json"],
    "/apis/apps/v1/daemonsets": [],
    "/apis/batch/v1/jobs": [],
    "/apis/batch/v1/cronjobs": ["k9s/cj.json"],
    "/api/v1/services": ["k9s/svc.json"],
    "/apis/networking.k8s.io/v1/ingresses": [],
    "/apis/networking.k8s.io/v1/networkpolicies": ["k9s/np.json"],
    "/api/v1/serviceaccounts": ["k9s/sa.json"],
    "/apis/rbac.authorization.k8s.io/v1/roles": ["k9s/ro.json"],
    "/apis/rbac.authorization.k8s.io/v1/rolebindings": ["k9s/rb.json"],
    "/apis/rbac.authorization.k8s.io/v1/clusterroles": [],
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings": ["k9s/crb.json"],
    "/api/v1/configmaps": [],
    "/api/v1/secrets": ["k9s/sec.json"],
    "/api/v1/nodes": [],
}
KIND_OF = {
    "namespaces": "Namespace",
    "pods": "Pod",
    "deployments": "Deployment",
    "replicasets": "ReplicaSet",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
    "jobs": "Job",
    "cronjobs": "CronJob",
    "services": "Service",
    "ingresses": "Ingress",
    "networkpolicies": "NetworkPolicy",
    "serviceaccounts": "ServiceAccount",
    "roles": "Role",
    "rolebindings": "RoleBinding",
    "clusterroles": "ClusterRole",
    "clusterrolebindings": "ClusterRoleBinding",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "nodes": "Node",
}


def recorded(name: str) -> dict[str, Any]:
    doc = json.loads((ASSETS / name).read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    peer_cn: str


@dataclass
class Replay:
    """What the server answers; tests tweak it before or between requests."""

    bearer: str | None = None
    basic: tuple[str, str] | None = None
    client_cn: str | None = None
    forbidden: dict[str, str] = field(default_factory=dict)  # path -> recorded Status file
    flaky: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)  # path -> [(status, Retry-After)]
    hide_groups: set[str] = field(default_factory=set)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authorized(self, headers: dict[str, str], cn: str) -> bool:
        auth = headers.get("authorization", "")
        if self.bearer is not None and auth == f"Bearer {self.bearer}":
            return True
        if self.basic is not None:
            raw = base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
            if auth == f"Basic {raw}":
                return True
        return self.client_cn is not None and cn == self.client_cn


def _items(path: str) -> list[dict[str, Any]]:
    out = []
    for name in RECORDED[path]:
        item = recorded(name)
        item.pop("apiVersion", None)
        item.pop("kind", None)
        out.append(item)
    return out


def _split_namespaced(path: str) -> tuple[str, str | None]:
    """``/api/v1/namespaces/NS/pods`` -> (``/api/v1/pods``, NS)."""
    parts = path.split("/")
    if "namespaces" in parts:
        i = parts.index("namespaces")
        if len(parts) == i + 3:
            return "/".join(parts[:i] + parts[i + 2 :]), parts[i + 1]
    return path, None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        replay = self.server.replay
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        cn = ""
        for rdn in (cert or {}).get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
        with replay.lock:
            replay.requests.append(Seen(url.path, parse_qs(url.query), headers, cn))
            flaky = replay.flaky.get(url.path)
            failure = flaky.pop(0) if flaky else None
        if failure is not None:
            status, retry_after = failure
            self._send(status, b"", {"Retry-After": retry_after} if retry_after else None)
            return
        if not replay.authorized(headers, cn):
            body = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Unauthorized",
                "reason": "Unauthorized",
                "code": 401,
            }
            self._send(401, json.dumps(body).encode())
            return
        if url.path == "/api":
            self._send(200, (ASSETS / "discovery/api.json").read_bytes())
            return
        if url.path == "/apis":
            doc = recorded("discovery/apis.json")
            doc["groups"] = [g for g in doc["groups"] if g["name"] not in replay.hide_groups]
            self._send(200, json.dumps(doc).encode())
            return
        if url.path in replay.forbidden:
            self._send(403, (ASSETS / replay.forbidden[url.path]).read_bytes())
            return
        base, namespace = _split_namespaced(url.path)
        group = base.split("/")[2] if base.startswith("/apis/") else ""
        if base not in RECORDED or group in replay.hide_groups:
            self._send(404, b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}')
            return
        self._send(200, json.dumps(self._list(base, namespace, parse_qs(url.query), headers)).encode())

    def _list(self, base: str, namespace: str | None, query: dict[str, list[str]], headers: dict[str, str]) -> Any:
        items = _items(base)
        if namespace is not None:
            items = [i for i in items if i.get("metadata", {}).get("namespace") == namespace]
        start = int(base64.b64decode(query["continue"][0]).decode()) if "continue" in query else 0
        limit = int(query["limit"][0]) if "limit" in query else len(items) or 1
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": "87290200"}
        if start + limit < len(items):
            meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
        group_version = base.rsplit("/", 1)[0].removeprefix("/apis/").removeprefix("/api/")
        kind = KIND_OF[base.rsplit("/", 1)[1]]
        if METADATA_ONLY in headers.get("accept", ""):
            return {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": [{"metadata": i.get("metadata", {})} for i in page],
            }
        return {"kind": f"{kind}List", "apiVersion": group_version, "metadata": meta, "items": page}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replay: Replay, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.replay = replay
        self.socket = context.wrap_socket(self.socket, server_side=True)


@dataclass
class ClientCA:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def client_ca(common_name: str) -> ClientCA:
    """A CA and a client certificate (``clientAuth``) for ``common_name``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "replay-client-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ClientCA(
        ca.public_bytes(pem),
        cert.public_bytes(pem),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@dataclass
class Running:
    url: str
    replay: Replay
    server_certs: CertBundle
    client: ClientCA


@contextmanager
def serve(tmp: Path, replay: Replay) -> Iterator[Running]:
    bundle = generate(["localhost", "127.0.0.1"])
    paths = bundle.write(tmp / "tls")
    clients = client_ca("replay-admin")
    (tmp / "tls" / "client-ca.crt").write_bytes(clients.ca_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths["cert"], paths["key"])
    ctx.load_verify_locations(cadata=clients.ca_pem.decode())
    ctx.verify_mode = ssl.CERT_OPTIONAL
    server = _Server(replay, ctx)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Running(f"https://127.0.0.1:{server.server_address[1]}", replay, bundle, clients)
    finally:
        server.shutdown()
        server.server_close()
