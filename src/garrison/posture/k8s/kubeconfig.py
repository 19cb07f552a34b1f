"""Kubeconfig loading and credential resolution, compatible with ``kubectl``.

Sources, in kubectl's order: an explicit ``--kubeconfig`` file (must exist); else ``$KUBECONFIG``,
a colon-separated list merged the way client-go's ``ClientConfigLoadingRules`` does (files that
do not exist are skipped; for ``clusters``, ``users`` and ``contexts`` the first file to define a
name wins, and the first file to set ``current-context`` wins); else ``~/.kube/config``; else the
in-cluster service account (``KUBERNETES_SERVICE_HOST``/``_PORT`` plus the token and CA under
``/var/run/secrets/kubernetes.io/serviceaccount``). Relative paths in a file (CA, client
certificate and key, token file) resolve against that file's directory, as in client-go.

Users may authenticate with a client certificate and key (files or ``-data``), a bearer token
(``token`` or ``tokenFile``; the file wins, as in client-go's ``rest.Config``), basic auth, or an
exec credential plugin (``client.authentication.k8s.io/v1`` and ``v1beta1``): the command runs
with the user's environment plus ``env``, gets ``KUBERNETES_EXEC_INFO``, and prints an
``ExecCredential`` whose ``status`` carries a token or a client certificate; the result is
cached in-process until its ``expirationTimestamp``.

client-go's loader is Go-only and the ``kubernetes`` Python client pulls in a large generated
API surface we do not need; this module implements the documented rules directly so every
failure can be a one-line error naming the file and the key.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from garrison.core.errors import ConfigError, GarrisonError, NotFoundError

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
MAX_KUBECONFIG_BYTES = 16 * 1024**2
EXEC_TIMEOUT = 60.0


class KubeconfigError(ConfigError):
    """A kubeconfig that cannot be used: names the file and the key."""


class CredentialError(GarrisonError):
    """A credential plugin or token file failed."""


@dataclass(frozen=True, slots=True)
class ExecConfig:
    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    provide_cluster_info: bool = False
    install_hint: str = ""
    source: str = ""  # file and user name, for messages


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """Everything needed to reach and authenticate to one API server."""

    context: str
    server: str
    namespace: str = ""
    ca_data: bytes | None = None
    insecure: bool = False
    tls_server_name: str = ""
    proxy_url: str = ""
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    token: str = ""
    token_file: Path | None = None
    username: str = ""
    password: str = ""
    exec: ExecConfig | None = None
    source: str = ""  # the kubeconfig file(s) or "in-cluster"

    def bearer_token(self) -> str:
        """The bearer token: the token file's current contents when set, else ``token``."""
        if self.token_file is not None:
            try:
                return self.token_file.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise CredentialError(
                    f"cannot read token file: {err.strerror}", input_name=str(self.token_file)
                ) from None
        return self.token


@dataclass(slots=True)
class _Merged:
    clusters: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    users: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    contexts: dict[str, tuple[dict[str, Any], Path]] = field(default_factory=dict)
    current: str = ""
    current_file: Path | None = None
    files: list[Path] = field(default_factory=list)


def _read_file(path: Path) -> dict[str, Any]:
    name = str(path)
    try:
        if path.stat().st_size > MAX_KUBECONFIG_BYTES:
            raise KubeconfigError(f"larger than {MAX_KUBECONFIG_BYTES} bytes", input_name=name)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise KubeconfigError("not UTF-8 text", input_name=name) from None
    except OSError as err:
        raise NotFoundError(f"cannot read kubeconfig: {err.strerror}", input_name=name) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise KubeconfigError(f"invalid YAML{where}: {problem}", input_name=name) from None
    except RecursionError:
        raise KubeconfigError("invalid YAML: nesting too deep", input_name=name) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise KubeconfigError(f"is a {type(doc).__name__}, not a kubeconfig mapping", input_name=name)
    kind = doc.get("kind")
    if kind not in (None, "Config"):
        raise KubeconfigError(f"kind: expected Config, got {kind!r}", input_name=name)
    return doc


def _named_list(doc: dict[str, Any], key: str, inner: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise KubeconfigError(f"{key}: expected a list", input_name=str(path))
    out: list[tuple[str, dict[str, Any]]] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise KubeconfigError(f"{key}[{i}].name: expected a non-empty string", input_name=str(path))
        body = entry.get(inner)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise KubeconfigError(f"{key}[{i}].{inner}: expected a mapping", input_name=str(path))
        out.append((entry["name"], body))
    return out


def _merge(paths: list[Path]) -> _Merged:
    merged = _Merged()
    for path in paths:
        doc = _read_file(path)
        merged.files.append(path)
        for key, inner, target in (
            ("clusters", "cluster", merged.clusters),
            ("users", "user", merged.users),
            ("contexts", "context", merged.contexts),
        ):
            for name, body in _named_list(doc, key, inner, path):
                target.setdefault(name, (body, path))  # the first file to define a name wins
        current = doc.get("current-context")
        if current is not None and not isinstance(current, str):
            raise KubeconfigError("current-context: expected a string", input_name=str(path))
        if current and not merged.current:
            merged.current, merged.current_file = current, path
    return merged


def kubeconfig_paths(explicit: str | Path | None = None, environ: dict[str, str] | None = None) -> list[Path]:
    """The files to merge: ``explicit`` alone, else ``$KUBECONFIG``'s existing entries, else
    ``~/.kube/config`` when it exists. An empty list means "no kubeconfig"."""
    env = os.environ if environ is None else environ
    if explicit is not None and str(explicit):
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise NotFoundError("kubeconfig file not found", input_name=str(path))
        return [path]
    listed = env.get("KUBECONFIG", "")
    if listed:
        seen: list[Path] = []
        for entry in listed.split(os.pathsep):
            if not entry:
                continue
            path = Path(entry).expanduser()
            if path.is_file() and path not in seen:
                seen.append(path)
        return seen
    home = Path(env.get("HOME") or Path.home())
    default = home / ".kube" / "config"
    return [default] if default.is_file() else []


def _string(body: dict[str, Any], key: str, where: str, file: Path) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise KubeconfigError(f"{where}.{key}: expected a string", input_name=str(file))
    return value


def _bool(body: dict[str, Any], key: str, where: str, file: Path) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise KubeconfigError(f"{where}.{key}: expected true or false", input_name=str(file))
    return value


def _b64(body: dict[str, Any], key: str, where: str, file: Path) -> bytes | None:
    text = _string(body, key, where, file)
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise KubeconfigError(f"{where}.{key}: not valid base64", input_name=str(file)) from None


def _file_bytes(body: dict[str, Any], key: str, where: str, file: Path) -> bytes | None:
    text = _string(body, key, where, file)
    if not text:
        return None
    path = _resolve(text, file)
    try:
        return path.read_bytes()
    except OSError as err:
        raise KubeconfigError(f"{where}.{key}: cannot read {path}: {err.strerror}", input_name=str(file)) from None


def _resolve(text: str, file: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else file.parent / path


def _data_or_file(body: dict[str, Any], key: str, where: str, file: Path) -> bytes | None:
    data = _b64(body, f"{key}-data", where, file)
    return data if data is not None else _file_bytes(body, key, where, file)


def _exec_config(body: Any, where: str, file: Path) -> ExecConfig:
    name = str(file)
    if not isinstance(body, dict):
        raise KubeconfigError(f"{where}: expected a mapping", input_name=name)
    command = _string(body, "command", where, file)
    if not command:
        raise KubeconfigError(f"{where}.command: required", input_name=name)
    api_version = _string(body, "apiVersion", where, file)
    if api_version not in EXEC_API_VERSIONS:
        raise KubeconfigError(
            f"{where}.apiVersion: {api_version or 'missing'}; use one of {', '.join(EXEC_API_VERSIONS)}",
            input_name=name,
        )
    args = body.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise KubeconfigError(f"{where}.args: expected a list of strings", input_name=name)
    env_list = body.get("env") or []
    env: list[tuple[str, str]] = []
    if not isinstance(env_list, list):
        raise KubeconfigError(f"{where}.env: expected a list", input_name=name)
    for i, item in enumerate(env_list):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise KubeconfigError(f"{where}.env[{i}]: expected name and value strings", input_name=name)
        env.append((item["name"], item["value"]))
    if body.get("interactiveMode") == "Always":
        raise KubeconfigError(
            f"{where}.interactiveMode: Always needs a terminal; a scan runs the plugin non-interactively",
            input_name=name,
        )
    # a relative command containing a slash is relative to the kubeconfig's directory (client-go)
    if os.sep in command and not Path(command).is_absolute():
        command = str(file.parent / command)
    return ExecConfig(
        command=command,
        api_version=api_version,
        args=tuple(args),
        env=tuple(env),
        provide_cluster_info=_bool(body, "provideClusterInfo", where, file),
        install_hint=_string(body, "installHint", where, file),
        source=f"{file} ({where})",
    )


def load(
    kubeconfig: str | Path | None = None,
    context: str | None = None,
    environ: dict[str, str] | None = None,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
) -> ClusterConfig:
    """Resolve the cluster, user and namespace to use (see the module docstring)."""
    env = dict(os.environ if environ is None else environ)
    paths = kubeconfig_paths(kubeconfig, env)
    if not paths:
        if context:
            raise ConfigError(f"context {context!r} requested but no kubeconfig was found")
        return in_cluster(env, service_account_dir)
    merged = _merge(paths)
    label = os.pathsep.join(str(p) for p in merged.files)
    name = context or merged.current
    if not name:
        raise KubeconfigError("current-context is not set; pass --context", input_name=label)
    if name not in merged.contexts:
        known = ", ".join(sorted(merged.contexts)) or "none"
        raise KubeconfigError(f"context {name!r} not found (contexts: {known})", input_name=label)
    ctx, ctx_file = merged.contexts[name]
    where = f"contexts[{name}]"
    cluster_name = _string(ctx, "cluster", where, ctx_file)
    user_name = _string(ctx, "user", where, ctx_file)
    if not cluster_name or cluster_name not in merged.clusters:
        raise KubeconfigError(f"{where}.cluster: cluster {cluster_name!r} not found", input_name=str(ctx_file))
    cluster, cluster_file = merged.clusters[cluster_name]
    cw = f"clusters[{cluster_name}]"
    server = _string(cluster, "server", cw, cluster_file).rstrip("/")
    if not server:
        raise KubeconfigError(f"{cw}.server: required", input_name=str(cluster_file))
    if not server.startswith(("https://", "http://")):
        raise KubeconfigError(f"{cw}.server: {server!r} is not an http(s) URL", input_name=str(cluster_file))
    config = ClusterConfig(
        context=name,
        server=server,
        namespace=_string(ctx, "namespace", where, ctx_file),
        ca_data=_data_or_file(cluster, "certificate-authority", cw, cluster_file),
        insecure=_bool(cluster, "insecure-skip-tls-verify", cw, cluster_file),
        tls_server_name=_string(cluster, "tls-server-name", cw, cluster_file),
        proxy_url=_string(cluster, "proxy-url", cw, cluster_file),
        source=label,
    )
    if not user_name:
        return config
    if user_name not in merged.users:
        raise KubeconfigError(f"{where}.user: user {user_name!r} not found", input_name=str(ctx_file))
    user, user_file = merged.users[user_name]
    uw = f"users[{user_name}]"
    token_file = _string(user, "tokenFile", uw, user_file)
    exec_body = user.get("exec")
    config = replace(
        config,
        client_cert_data=_data_or_file(user, "client-certificate", uw, user_file),
        client_key_data=_data_or_file(user, "client-key", uw, user_file),
        token=_string(user, "token", uw, user_file),
        token_file=_resolve(token_file, user_file) if token_file else None,
        username=_string(user, "username", uw, user_file),
        password=_string(user, "password", uw, user_file),
        exec=_exec_config(exec_body, f"{uw}.exec", user_file) if exec_body is not None else None,
    )
    if (config.client_cert_data is None) != (config.client_key_data is None):
        raise KubeconfigError(
            f"{uw}: client-certificate and client-key must be given together", input_name=str(user_file)
        )
    if user.get("auth-provider") is not None and config.exec is None and not config.bearer_token():
        raise KubeconfigError(
            f"{uw}.auth-provider: auth providers were removed from kubectl; use an exec plugin",
            input_name=str(user_file),
        )
    return config


def in_cluster(environ: dict[str, str], service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> ClusterConfig:
    """The in-cluster configuration (client-go ``rest.InClusterConfig``)."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError(
            "no kubeconfig found (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not running in a cluster "
            "(KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset)"
        )
    token_path = service_account_dir / "token"
    if not token_path.is_file():
        raise NotFoundError("in-cluster service account token not found", input_name=str(token_path))
    ca_path = service_account_dir / "ca.crt"
    try:
        ca = ca_path.read_bytes()
    except OSError as err:
        raise NotFoundError(f"cannot read in-cluster CA: {err.strerror}", input_name=str(ca_path)) from None
    namespace_path = service_account_dir / "namespace"
    namespace = namespace_path.read_text(encoding="utf-8").strip() if namespace_path.is_file() else ""
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return ClusterConfig(
        context="in-cluster",
        server=f"https://{hostport}",
        namespace=namespace,
        ca_data=ca,
        token_file=token_path,
        source="in-cluster",
    )


# --- exec credential plugins -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecResult:
    token: str = ""
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    expires: float | None = None  # epoch seconds


_cache: dict[tuple[Any, ...], ExecResult] = {}
_cache_lock = threading.Lock()


def clear_exec_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _parse_time(text: str, source: str) -> float:
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CredentialError(f"exec plugin: bad status.expirationTimestamp {text!r}", input_name=source) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def run_exec(config: ClusterConfig, now: float | None = None) -> ExecResult:
    """Run (or reuse the cached result of) the exec credential plugin of ``config``."""
    spec = config.exec
    if spec is None:
        raise CredentialError("no exec plugin configured", input_name=config.source)
    key = (spec.command, spec.args, spec.env, spec.api_version, config.server)
    current = time.time() if now is None else now
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and (cached.expires is None or cached.expires > current):
            return cached
    exec_spec: dict[str, Any] = {"interactive": False}
    if spec.provide_cluster_info:
        cluster: dict[str, Any] = {"server": config.server, "insecure-skip-tls-verify": config.insecure}
        if config.ca_data:
            cluster["certificate-authority-data"] = base64.b64encode(config.ca_data).decode()
        if config.tls_server_name:
            cluster["tls-server-name"] = config.tls_server_name
        if config.proxy_url:
            cluster["proxy-url"] = config.proxy_url
        exec_spec["cluster"] = cluster
    info = {"apiVersion": spec.api_version, "kind": "ExecCredential", "spec": exec_spec}
    env = dict(os.environ)
    env.update(dict(spec.env))
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        proc = subprocess.run(
            [spec.command, *spec.args],
            env=env,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=EXEC_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        hint = f"; {spec.install_hint}" if spec.install_hint else ""
        raise CredentialError(f"exec plugin {spec.command!r} not found{hint}", input_name=spec.source) from None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CredentialError(f"exec plugin {spec.command!r} failed: {err}", input_name=spec.source) from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit code {proc.returncode}"
        raise CredentialError(f"exec plugin {spec.command!r} failed: {detail}", input_name=spec.source)
    result = parse_exec_credential(proc.stdout, spec.api_version, spec.source)
    with _cache_lock:
        _cache[key] = result
    return result


def parse_exec_credential(data: bytes | str, api_version: str, source: str = "ExecCredential") -> ExecResult:
    """Parse an ``ExecCredential`` printed by a plugin; one-line errors for anything malformed."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise CredentialError("exec plugin did not print a JSON ExecCredential", input_name=source) from None
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise CredentialError("exec plugin output is not an ExecCredential", input_name=source)
    if doc.get("apiVersion") != api_version:
        raise CredentialError(
            f"exec plugin returned apiVersion {doc.get('apiVersion')!r}, expected {api_version!r}", input_name=source
        )
    status = doc.get("status")
    if not isinstance(status, dict):
        raise CredentialError("exec plugin ExecCredential has no status", input_name=source)
    token = status.get("token") or ""
    cert = status.get("clientCertificateData") or ""
    key = status.get("clientKeyData") or ""
    if not isinstance(token, str) or not isinstance(cert, str) or not isinstance(key, str):
        raise CredentialError("exec plugin status fields must be strings", input_name=source)
    if bool(cert) != bool(key):
        raise CredentialError(
            "exec plugin status: clientCertificateData and clientKeyData must be given together", input_name=source
        )
    if not token and not cert:
        raise CredentialError("exec plugin status has neither token nor clientCertificateData", input_name=source)
    expiry = status.get("expirationTimestamp")
    expires = None
    if expiry is not None:
        if not isinstance(expiry, str):
            raise CredentialError("exec plugin status.expirationTimestamp must be a string", input_name=source)
        expires = _parse_time(expiry, source)
    return ExecResult(
        token=token,
        client_cert_data=cert.encode() if cert else None,
        client_key_data=key.encode() if key else None,
        expires=expires,
    )
