"""Read the objects the posture controls need from a live Kubernetes API server.

:class:`ApiClient` speaks plain HTTPS with :mod:`httpx` (TLS from the kubeconfig's CA, client
certificate, bearer token, basic auth or exec plugin, see :mod:`.kubeconfig`). :func:`snapshot`
runs API discovery (``/api`` and ``/apis``) so kinds whose group/version the server does not
serve (for example ``policy/v1beta1`` PodSecurityPolicies on 1.25+) are skipped with a note, then
lists every kind in :data:`KINDS` with ``limit``/``continue`` pagination.

* A 403 on one kind is a warning: the scan goes on with what the credentials may read.
* 429 and 5xx answers and transport errors are retried with ``Retry-After`` (capped) or an
  exponential backoff; a 401 is fatal (with an exec plugin, the plugin is run once more first).
* Secrets are requested as ``PartialObjectMetadataList`` (``Accept:
  application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1``) so their values never
  leave the API server; anything but metadata in the answer is dropped all the same.
* List items carry no ``apiVersion``/``kind``: both are filled from the request. Each object's
  location is ``cluster:<context>/<namespace>/<Kind>/<name>`` (cluster-scoped objects have no
  namespace segment) with line 0.
* As kubescape does, ReplicaSets owned by Deployments, Jobs owned by CronJobs and Pods with a
  controller owner are left out: their owner carries the same pod template, so each finding is
  reported once, on the object a user edits.

The official ``kubernetes`` Python client would add a large generated API and its own config
loader for a handful of list calls; raw lists also keep unknown fields the controls may read.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from garrison.core.errors import GarrisonError
from garrison.posture.k8s import kubeconfig as kc
from garrison.posture.k8s.objects import K8sObject
from garrison.posture.model import Location

logger = logging.getLogger(__name__)

JSON = "application/json"
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 10.0
MAX_PAGES = 100_000


class ClusterError(GarrisonError):
    """The API server cannot be reached, or refused the credentials."""


@dataclass(frozen=True, slots=True)
class ResourceKind:
    kind: str
    plural: str
    namespaced: bool
    versions: tuple[str, ...]  # group/version, most preferred first ("v1" for the core group)
    metadata_only: bool = False


KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("Namespace", "namespaces", False, ("v1",)),
    ResourceKind("Pod", "pods", True, ("v1",)),
    ResourceKind("Deployment", "deployments", True, ("apps/v1",)),
    ResourceKind("ReplicaSet", "replicasets", True, ("apps/v1",)),
    ResourceKind("StatefulSet", "statefulsets", True, ("apps/v1",)),
    ResourceKind("DaemonSet", "daemonsets", True, ("apps/v1",)),
    ResourceKind("Job", "jobs", True, ("batch/v1",)),
    ResourceKind("CronJob", "cronjobs", True, ("batch/v1", "batch/v1beta1")),
    ResourceKind("Service", "services", True, ("v1",)),
    ResourceKind("Ingress", "ingresses", True, ("networking.k8s.io/v1", "networking.k8s.io/v1beta1")),
    ResourceKind("NetworkPolicy", "networkpolicies", True, ("networking.k8s.io/v1",)),
    ResourceKind("ServiceAccount", "serviceaccounts", True, ("v1",)),
    ResourceKind("Role", "roles", True, ("rbac.authorization.k8s.io/v1",)),
    ResourceKind("RoleBinding", "rolebindings", True, ("rbac.authorization.k8s.io/v1",)),
    ResourceKind("ClusterRole", "clusterroles", False, ("rbac.authorization.k8s.io/v1",)),
    ResourceKind("ClusterRoleBinding", "clusterrolebindings", False, ("rbac.authorization.k8s.io/v1",)),
    ResourceKind("ConfigMap", "configmaps", True, ("v1",)),
    ResourceKind("Secret", "secrets", True, ("v1",), metadata_only=True),
    ResourceKind("PodSecurityPolicy", "podsecuritypolicies", False, ("policy/v1beta1",)),
)
NODES = ResourceKind("Node", "nodes", False, ("v1",))

#: owner kinds whose children are left out (see the module docstring)
_SKIP_OWNED = {"ReplicaSet": {"Deployment"}, "Job": {"CronJob"}}


@dataclass(slots=True)
class Snapshot:
    """What one scan read: the objects, and what it could not read."""

    context: str
    server: str
    objects: list[K8sObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    skipped_owned: int = 0
    kubelet_versions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str]


def _ssl_context(config: kc.ClusterConfig, cert: bytes | None, key: bytes | None) -> ssl.SSLContext | bool:
    if config.insecure:
        if cert is None:
            return False
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.ca_data:
        ctx = ssl.create_default_context()
        try:
            ctx.load_verify_locations(cadata=config.ca_data.decode("ascii", "replace"))
        except ssl.SSLError as err:
            raise kc.KubeconfigError(
                f"certificate-authority of context {config.context!r} is not a PEM certificate ({err.reason})",
                input_name=config.source,
            ) from None
    else:
        ctx = ssl.create_default_context()
    if cert is not None and key is not None:
        # the ssl module loads certificates only from files: write them to a private directory
        with tempfile.TemporaryDirectory(prefix="garrison-kube-") as tmp:
            cert_path, key_path = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            for path, data in ((cert_path, cert), (key_path, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            try:
                ctx.load_cert_chain(cert_path, key_path)
            except ssl.SSLError as err:
                raise kc.KubeconfigError(
                    f"client-certificate/client-key of context {config.context!r} do not load ({err.reason})",
                    input_name=config.source,
                ) from None
    return ctx


class ApiClient:
    """A small Kubernetes API client: authenticated GETs with retries."""

    def __init__(
        self,
        config: kc.ClusterConfig,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.retries = retries
        self.sleep = sleep
        self._timeout = timeout
        self._exec: kc.ExecResult | None = None
        self._client = self._build()

    def _build(self) -> httpx.Client:
        cfg = self.config
        cert, key = cfg.client_cert_data, cfg.client_key_data
        if cfg.exec is not None:
            self._exec = kc.run_exec(cfg)
            if self._exec.client_cert_data is not None:
                cert, key = self._exec.client_cert_data, self._exec.client_key_data
        verify = _ssl_context(cfg, cert, key)
        try:
            return httpx.Client(
                base_url=cfg.server,
                verify=verify,
                timeout=self._timeout,
                proxy=cfg.proxy_url or None,
                trust_env=False,
                headers={"User-Agent": "garrison-posture"},
            )
        except (ImportError, ValueError) as err:  # e.g. a socks5:// proxy without socksio, a bad URL
            raise kc.KubeconfigError(
                f"proxy-url {cfg.proxy_url!r} of context {cfg.context!r} cannot be used: {err}", input_name=cfg.source
            ) from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _auth_headers(self) -> dict[str, str]:
        cfg = self.config
        if cfg.token_file is not None or cfg.token:
            return {"Authorization": f"Bearer {cfg.bearer_token()}"}
        if cfg.username or cfg.password:
            raw = f"{cfg.username}:{cfg.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if self._exec is not None and self._exec.token:
            return {"Authorization": f"Bearer {self._exec.token}"}
        return {}

    def get(self, path: str, params: dict[str, str | int] | None = None, accept: str = JSON) -> Response:
        """GET ``path``; retries 429/5xx and transport errors; raises :class:`ClusterError` on a 401
        or when the server stays unreachable."""
        extensions = {"sni_hostname": self.config.tls_server_name} if self.config.tls_server_name else None
        reauthenticated = False
        attempt = 0
        while True:
            if self._exec is not None and self._exec.expires is not None and self._exec.expires <= time.time():
                self._reauthenticate()
            headers = {"Accept": accept, **self._auth_headers()}
            try:
                resp = self._client.get(path, params=params, headers=headers, extensions=extensions)
            except httpx.TransportError as err:
                if attempt >= self.retries:
                    raise ClusterError(
                        f"cannot reach the API server: {type(err).__name__}: {err}", input_name=self.config.server
                    ) from None
                self.sleep(min(MAX_RETRY_AFTER, 0.25 * 2**attempt))
                attempt += 1
                continue
            if resp.status_code == 401:
                if self.config.exec is not None and not reauthenticated:
                    reauthenticated = True
                    self._reauthenticate()
                    continue
                raise ClusterError(
                    f"401 Unauthorized for {path}: the credentials of context {self.config.context!r} were refused",
                    input_name=self.config.server,
                )
            if resp.status_code in RETRY_STATUSES and attempt < self.retries:
                self.sleep(_retry_delay(resp.headers.get("Retry-After"), attempt))
                attempt += 1
                continue
            try:
                body = resp.json() if resp.content else None
            except ValueError:
                body = None
            return Response(resp.status_code, body, dict(resp.headers))

    def _reauthenticate(self) -> None:
        kc.clear_exec_cache()
        self._client.close()
        self._client = self._build()

    def list(self, path: str, *, page_size: int = 500, accept: str = JSON) -> Iterator[dict[str, Any]] | Response:
        """All items of the list at ``path``, following ``continue`` tokens; returns the error
        :class:`Response` instead when the first page fails."""
        first = self.get(path, {"limit": page_size}, accept)
        if first.status != 200:
            return first
        return self._pages(path, first, page_size, accept)

    def _pages(self, path: str, first: Response, page_size: int, accept: str) -> Iterator[dict[str, Any]]:
        page = first
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = page.body if isinstance(page.body, dict) else {}
            items = body.get("items")
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    yield item
            meta = body.get("metadata")
            token = meta.get("continue") if isinstance(meta, dict) else None
            if not token or not isinstance(token, str):
                return
            if token in seen:
                raise ClusterError(f"{path}: the server repeated a continue token", input_name=self.config.server)
            seen.add(token)
            page = self.get(path, {"limit": page_size, "continue": token}, accept)
            if page.status != 200:
                raise ClusterError(
                    f"{path}: page after continue failed: {_status_message(page)}", input_name=self.config.server
                )
        raise ClusterError(f"{path}: more than {MAX_PAGES} pages", input_name=self.config.server)


def _retry_delay(header: str | None, attempt: int) -> float:
    """Seconds to wait: ``Retry-After`` (seconds form, capped) or an exponential backoff."""
    delay = -1.0
    if header:
        try:
            delay = float(header)
        except ValueError:
            delay = -1.0
    if delay < 0 or delay != delay:  # absent, unparsable, negative or NaN
        delay = 0.25 * 2**attempt
    return min(MAX_RETRY_AFTER, delay)


def _status_message(resp: Response) -> str:
    body = resp.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return f"{resp.status} {body['message']}"
    return f"HTTP {resp.status}"


def served_versions(client: ApiClient) -> set[str]:
    """Group/versions the server serves, from ``/api`` and ``/apis``."""
    core = client.get("/api")
    if core.status != 200 or not isinstance(core.body, dict):
        raise ClusterError(f"API discovery failed on /api: {_status_message(core)}", input_name=client.config.server)
    served = {v for v in core.body.get("versions") or [] if isinstance(v, str)}
    groups = client.get("/apis")
    if groups.status != 200 or not isinstance(groups.body, dict):
        raise ClusterError(f"API discovery failed on /apis: {_status_message(groups)}", input_name=client.config.server)
    for group in groups.body.get("groups") or []:
        if not isinstance(group, dict):
            continue
        for version in group.get("versions") or []:
            if isinstance(version, dict) and isinstance(version.get("groupVersion"), str):
                served.add(version["groupVersion"])
    return served


def _prefix(group_version: str) -> str:
    return f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"


def location_for(context: str, kind: str, namespace: str, name: str) -> Location:
    middle = f"{namespace}/" if namespace else ""
    return Location(file=f"cluster:{context}/{middle}{kind}/{name}", line=0, end_line=0)


def to_object(item: dict[str, Any], rk: ResourceKind, group_version: str, context: str) -> K8sObject:
    """A :class:`K8sObject` for one list item (kind and apiVersion filled; secrets: metadata only)."""
    raw_meta = item.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    doc: dict[str, Any] = {"metadata": meta} if rk.metadata_only else dict(item)
    doc["apiVersion"] = group_version
    doc["kind"] = rk.kind
    name, namespace = meta.get("name"), meta.get("namespace")
    where = location_for(
        context,
        rk.kind,
        str(namespace) if isinstance(namespace, str) else "",
        str(name) if isinstance(name, str) else "",
    )
    return K8sObject(doc=doc, location=where, _lines={})


def _owned_by(obj: K8sObject, kinds: set[str] | None) -> bool:
    owners = obj.metadata.get("ownerReferences")
    if not isinstance(owners, list):
        return False
    for ref in owners:
        if not isinstance(ref, dict):
            continue
        if kinds is None and ref.get("controller") is True:
            return True
        if kinds is not None and ref.get("kind") in kinds:
            return True
    return False


def _skip(obj: K8sObject) -> bool:
    if obj.kind == "Pod":
        return _owned_by(obj, None)
    owners = _SKIP_OWNED.get(obj.kind)
    return owners is not None and _owned_by(obj, owners)


def snapshot(
    client: ApiClient,
    *,
    namespaces: Iterable[str] = (),
    exclude_namespaces: Iterable[str] = (),
    kinds: Iterable[ResourceKind] = KINDS,
    page_size: int = 500,
    skip_owned: bool = True,
) -> Snapshot:
    """List every kind of ``kinds`` the server serves (see the module docstring)."""
    cfg = client.config
    snap = Snapshot(context=cfg.context, server=cfg.server)
    served = served_versions(client)
    only = [n for n in dict.fromkeys(namespaces) if n]
    excluded = set(exclude_namespaces)
    for rk in kinds:
        group_version = next((v for v in rk.versions if v in served), None)
        if group_version is None:
            snap.notes.append(f"{rk.plural}: {' / '.join(rk.versions)} not served by the API server; skipped")
            continue
        paths = (
            [f"{_prefix(group_version)}/namespaces/{ns}/{rk.plural}" for ns in only]
            if rk.namespaced and only
            else [f"{_prefix(group_version)}/{rk.plural}"]
        )
        count = 0
        for path in paths:
            listed = client.list(path, page_size=page_size, accept=METADATA_ONLY if rk.metadata_only else JSON)
            if isinstance(listed, Response):
                _list_failed(snap, rk, path, listed)
                continue
            for item in listed:
                obj = to_object(item, rk, group_version, cfg.context)
                ns = obj.name if rk.kind == "Namespace" else obj.namespace
                if ns and (ns in excluded or (only and rk.kind == "Namespace" and ns not in only)):
                    continue
                if skip_owned and _skip(obj):
                    snap.skipped_owned += 1
                    continue
                snap.objects.append(obj)
                count += 1
        snap.counts[rk.kind] = snap.counts.get(rk.kind, 0) + count
    _node_versions(client, snap, served)
    return snap


def _list_failed(snap: Snapshot, rk: ResourceKind, path: str, resp: Response) -> None:
    if resp.status == 403:
        snap.warnings.append(f"{rk.plural}: forbidden ({_status_message(resp)}); continuing without them")
    elif resp.status == 404:
        snap.notes.append(f"{rk.plural}: {path} not found; skipped")
    elif resp.status == 406 and rk.metadata_only:
        snap.warnings.append(
            f"{rk.plural}: the server cannot list metadata only (406); skipped so that no value is read"
        )
    else:
        snap.warnings.append(f"{rk.plural}: list failed ({_status_message(resp)}); continuing without them")


def _node_versions(client: ApiClient, snap: Snapshot, served: set[str]) -> None:
    if "v1" not in served:
        return
    listed = client.list("/api/v1/nodes", accept=JSON)
    if isinstance(listed, Response):
        snap.notes.append(f"nodes: {_status_message(listed)}; kubelet versions unknown")
        return
    versions: set[str] = set()
    for node in listed:
        info = node.get("status", {}).get("nodeInfo", {}) if isinstance(node.get("status"), dict) else {}
        version = info.get("kubeletVersion") if isinstance(info, dict) else None
        if isinstance(version, str):
            versions.add(version)
    snap.kubelet_versions = sorted(versions)


def scan_cluster(
    kubeconfig: str | Path | None = None,
    context: str | None = None,
    *,
    namespaces: Iterable[str] = (),
    exclude_namespaces: Iterable[str] = (),
    timeout: float = 30.0,
    page_size: int = 500,
    environ: dict[str, str] | None = None,
    service_account_dir: Path = kc.SERVICE_ACCOUNT_DIR,
    kinds: Iterable[ResourceKind] = KINDS,
    skip_owned: bool = True,
) -> Snapshot:
    """Resolve the kubeconfig, connect and list: the whole read path in one call."""
    config = kc.load(kubeconfig, context, environ=environ, service_account_dir=service_account_dir)
    with ApiClient(config, timeout=timeout) as client:
        return snapshot(
            client,
            namespaces=namespaces,
            exclude_namespaces=exclude_namespaces,
            page_size=page_size,
            kinds=kinds,
            skip_owned=skip_owned,
        )
