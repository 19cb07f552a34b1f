"""Images from a registry over the OCI distribution API v2 (``/v2/<name>/manifests|blobs``).

Anonymous, HTTP basic and bearer-token access (the ``WWW-Authenticate`` challenge names the
token realm, service and scope); manifest lists and OCI indexes resolved by platform; Docker v2
schema 2 and OCI manifests; layers of any compression, streamed. Transient failures (429, 5xx,
timeouts, refused connections) are retried with exponential backoff honouring ``Retry-After``.
Every manifest, config and layer is verified against its digest. Failures raise
:class:`~garrison.core.errors.RegistryError` with one line naming the reference.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import httpx

from garrison import __version__
from garrison.core.errors import InputError, RegistryError
from garrison.core.limits import DEFAULT_LIMITS, Limits
from garrison.image._auth import Challenge, Credentials, find_credentials, parse_challenges
from garrison.image._digest import digest_bytes, parse_digest, verify_bytes, verifying_reader
from garrison.image._oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Platform,
    artifact_from,
    is_index,
    load_json,
    parse_index,
    parse_manifest,
    select_platform,
)
from garrison.image.interface import ImageSource
from garrison.image.reference import Reference, parse_reference
from garrison.model import Artifact, ArtifactKind, Layer

logger = logging.getLogger(__name__)

ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_CHUNK = 1 << 16
_MAX_DELAY = 30.0


def default_timeout() -> float:
    try:
        return float(os.environ.get("GARRISON_REGISTRY_TIMEOUT", "30"))
    except ValueError:
        return 30.0


class RegistryClient:
    """A small distribution-API client for one repository."""

    def __init__(
        self,
        ref: Reference,
        *,
        insecure: bool = False,
        credentials: Credentials | None = None,
        timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.ref = ref
        self.name = str(ref)
        self.base = f"{'http' if insecure else 'https'}://{ref.api_host}"
        self.credentials = credentials
        self.retries = max(retries, 0)
        self.backoff = backoff
        seconds = default_timeout() if timeout is None else timeout
        self._client = httpx.Client(
            timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
            follow_redirects=True,  # httpx drops Authorization when a redirect leaves the origin
            headers={"User-Agent": f"garrison/{__version__}"},
        )
        self._authorization: str | None = None

    def close(self) -> None:
        self._client.close()

    # -- transport -----------------------------------------------------------------------------

    def send(self, method: str, path: str, *, accept: str | None = None, stream: bool = False) -> httpx.Response:
        """Send a request, answering one auth challenge and retrying transient failures.
        Returns a response with a 2xx status; anything else raises :class:`RegistryError`."""
        url = f"{self.base}{path}"
        authenticated = False
        attempt = 0
        while True:
            headers = {"Accept": accept} if accept else {}
            if self._authorization:
                headers["Authorization"] = self._authorization
            try:
                request = self._client.build_request(method, url, headers=headers)
                response = self._client.send(request, stream=stream)
            except httpx.TimeoutException as err:
                if attempt < self.retries:
                    attempt += 1
                    self._sleep(attempt, None)
                    continue
                raise RegistryError(f"{self.ref.api_host} timed out ({type(err).__name__})", input_name=self.name) from err
            except httpx.ConnectError as err:
                if attempt < self.retries:
                    attempt += 1
                    self._sleep(attempt, None)
                    continue
                raise RegistryError(f"cannot connect to {self.ref.api_host}: {_one_line(err)}", input_name=self.name) from err
            except httpx.HTTPError as err:
                raise RegistryError(f"request to {self.ref.api_host} failed: {_one_line(err)}", input_name=self.name) from err
            status = response.status_code
            if status == 401 and not authenticated:
                header = response.headers.get("WWW-Authenticate", "")
                response.close()
                self._authenticate(header)
                authenticated = True
                continue
            if status in RETRY_STATUS and attempt < self.retries:
                retry_after = response.headers.get("Retry-After")
                response.close()
                attempt += 1
                self._sleep(attempt, retry_after)
                continue
            if 200 <= status < 300:
                return response
            response.close()
            raise RegistryError(_status_message(status, path, self.ref), input_name=self.name)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2 ** (attempt - 1)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after.strip()))
        delay = min(delay, _MAX_DELAY)
        logger.debug("%s: retry %d in %.1f s", self.name, attempt, delay)
        time.sleep(delay)

    def _authenticate(self, header: str) -> None:
        challenges = parse_challenges(header)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            self._authorization = f"Bearer {self._token(bearer)}"
            return
        if any(c.scheme == "basic" for c in challenges) or not challenges:
            if self.credentials is None:
                raise RegistryError(
                    "authentication required: pass --username/--password, set GARRISON_REGISTRY_USERNAME/"
                    "GARRISON_REGISTRY_PASSWORD or log in with docker login",
                    input_name=self.name,
                )
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            self._authorization = f"Basic {base64.b64encode(pair).decode('ascii')}"
            return
        schemes = ", ".join(c.scheme for c in challenges)
        raise RegistryError(f"unsupported authentication scheme(s): {schemes}", input_name=self.name)

    def _token(self, challenge: Challenge) -> str:
        realm = challenge.params.get("realm")
        if not realm or not realm.startswith(("https://", "http://")):
            raise RegistryError(f"bearer challenge without a usable realm: {realm!r}", input_name=self.name)
        params = {"scope": challenge.params.get("scope") or f"repository:{self.ref.repository}:pull"}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        auth = httpx.BasicAuth(self.credentials.username, self.credentials.password) if self.credentials else None
        try:
            response = self._client.get(realm, params=params, auth=auth)
        except httpx.TimeoutException as err:
            raise RegistryError(f"token service {realm} timed out", input_name=self.name) from err
        except httpx.HTTPError as err:
            raise RegistryError(f"token service {realm} failed: {_one_line(err)}", input_name=self.name) from err
        if response.status_code in (401, 403):
            raise RegistryError(f"token service {realm} refused the credentials (HTTP {response.status_code})", input_name=self.name)
        if response.status_code != 200:
            raise RegistryError(f"token service {realm} answered HTTP {response.status_code}", input_name=self.name)
        try:
            body = response.json()
        except ValueError as err:
            raise RegistryError(f"token service {realm} sent no JSON", input_name=self.name) from err
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token service {realm} sent no token", input_name=self.name)
        return token

    # -- API -----------------------------------------------------------------------------------

    def read_small(self, path: str, limit: int, *, accept: str | None = None) -> tuple[bytes, str]:
        """A bounded document and its content type."""
        response = self.send("GET", path, accept=accept, stream=True)
        try:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise InputError(f"{path} is larger than {limit} bytes", input_name=self.name)
            data = bytearray()
            for chunk in response.iter_raw(_CHUNK):
                data.extend(chunk)
                if len(data) > limit:
                    raise InputError(f"{path} is larger than {limit} bytes", input_name=self.name)
        except httpx.TimeoutException as err:
            raise RegistryError(f"{self.ref.api_host} timed out while sending {path}", input_name=self.name) from err
        except httpx.HTTPError as err:
            raise RegistryError(f"reading {path} failed: {_one_line(err)}", input_name=self.name) from err
        finally:
            response.close()
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return bytes(data), content_type

    def manifest(self, reference: str, limit: int) -> tuple[bytes, str]:
        return self.read_small(f"/v2/{self.ref.repository}/manifests/{reference}", limit, accept=ACCEPT)

    def open_blob(self, digest: str) -> BinaryIO:
        response = self.send("GET", f"/v2/{self.ref.repository}/blobs/{digest}", stream=True)
        return cast(BinaryIO, io.BufferedReader(_ResponseStream(response, self.name), buffer_size=_CHUNK))


class _ResponseStream(io.RawIOBase):
    """A streamed HTTP body as a file; transport errors become :class:`RegistryError`."""

    def __init__(self, response: httpx.Response, name: str) -> None:
        self._response = response
        self._chunks: Iterator[bytes] = response.iter_raw(_CHUNK)
        self._pending = b""
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
            except httpx.TimeoutException as err:
                raise RegistryError("registry timed out while sending a blob", input_name=self._name) from err
            except httpx.HTTPError as err:
                raise RegistryError(f"blob download failed: {_one_line(err)}", input_name=self._name) from err
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            super().close()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__


def _status_message(status: int, path: str, ref: Reference) -> str:
    what = "manifest" if "/manifests/" in path else "blob" if "/blobs/" in path else path
    if status == 401:
        return f"HTTP 401 for the {what}: authentication failed"
    if status == 403:
        return f"HTTP 403 for the {what}: access denied"
    if status == 404:
        target = ref.reference if what == "manifest" else path.rsplit("/", 1)[-1]
        return f"HTTP 404: {what} {target} not found in {ref.repository}"
    if status == 429:
        return f"HTTP 429 for the {what}: rate limited by the registry, retries exhausted"
    if status >= 500:
        return f"HTTP {status} for the {what}: registry server error, retries exhausted"
    return f"HTTP {status} for the {what}"


class RegistrySource(ImageSource):
    """An image pulled lazily from a registry: the manifest and config when :meth:`artifact` is
    called, each layer when it is opened."""

    def __init__(
        self,
        reference: str,
        *,
        platform: Platform | None = None,
        insecure: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.text = reference
        self.ref = parse_reference(reference)
        self.platform = platform
        self.limits = limits
        self.client = RegistryClient(
            self.ref,
            insecure=insecure,
            credentials=find_credentials(self.ref.registry, username, password),
            timeout=timeout,
            retries=retries,
            backoff=backoff,
        )
        self._artifact: Artifact | None = None

    def artifact(self) -> Artifact:
        if self._artifact is None:
            self._artifact = self._load()
        return self._artifact

    def open_layer(self, layer: Layer) -> BinaryIO:
        parse_digest(layer.digest, input_name=self.text)
        return verifying_reader(
            self.client.open_blob(layer.digest),
            layer.digest,
            size=layer.size or None,
            input_name=f"{self.text} blob {layer.digest}",
        )

    def close(self) -> None:
        self.client.close()

    def _manifest(self, reference: str, expected: str | None) -> tuple[dict[str, Any], str, str]:
        data, content_type = self.client.manifest(reference, self.limits.max_manifest_bytes)
        if expected:
            verify_bytes(data, expected, input_name=f"{self.text} manifest")
            digest = expected
        else:
            digest = digest_bytes(data)
        doc = load_json(data, input_name=self.text, what="manifest")
        return doc, content_type, digest

    def _load(self) -> Artifact:
        doc, media_type, digest = self._manifest(self.ref.reference, self.ref.digest)
        for _ in range(4):
            if not is_index(doc, media_type):
                break
            chosen: Descriptor = select_platform(parse_index(doc, input_name=self.text), self.platform, input_name=self.text)
            doc, media_type, digest = self._manifest(chosen.digest, chosen.digest)
            media_type = media_type or chosen.media_type
        else:
            raise InputError("indexes nested too deeply", input_name=self.text)
        manifest = parse_manifest(doc, input_name=self.text, media_type=media_type)
        if manifest.config.size > self.limits.max_manifest_bytes:
            raise InputError(f"image config is larger than {self.limits.max_manifest_bytes} bytes", input_name=self.text)
        blob = self.client.open_blob(manifest.config.digest)
        reader = verifying_reader(
            blob, manifest.config.digest, size=manifest.config.size if manifest.config.size >= 0 else None,
            input_name=f"{self.text} config {manifest.config.digest}",
        )
        with reader:
            raw = reader.read(self.limits.max_manifest_bytes + 1)
        if len(raw) > self.limits.max_manifest_bytes:
            raise InputError(f"image config is larger than {self.limits.max_manifest_bytes} bytes", input_name=self.text)
        config = load_json(raw, input_name=self.text, what="image config")
        repo = f"{self.ref.registry}/{self.ref.repository}"
        return artifact_from(
            name=self.text,
            kind=ArtifactKind.REGISTRY,
            config_doc=config,
            config_digest=manifest.config.digest,
            layers=[(d.digest, max(d.size, 0), d.media_type) for d in manifest.layers],
            input_name=self.text,
            manifest_digest=digest,
            repo_tags=(f"{repo}:{self.ref.tag}",) if self.ref.tag else (),
            repo_digests=(f"{repo}@{digest}",),
        )
