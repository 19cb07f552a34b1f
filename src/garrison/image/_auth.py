"""Registry credentials and authentication challenges.

Credentials come, in order, from the caller, from ``GARRISON_REGISTRY_USERNAME`` /
``GARRISON_REGISTRY_PASSWORD``, and from the ``auths`` of ``$DOCKER_CONFIG/config.json`` (default
``~/.docker/config.json``). Credential helpers (``credsStore``/``credHelpers``) are not run.
``WWW-Authenticate`` challenges are parsed per RFC 7235 (auth-params with quoted strings), which
httpx does not expose.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _host_of(key: str) -> str:
    key = re.sub(r"^[a-z]+://", "", key.strip())
    return key.split("/", 1)[0]


def find_credentials(registry: str, username: str | None = None, password: str | None = None) -> Credentials | None:
    """Credentials for ``registry`` (a host[:port] as written in the reference)."""
    if username:
        return Credentials(username, password or "")
    env_user = os.environ.get("GARRISON_REGISTRY_USERNAME")
    if env_user:
        return Credentials(env_user, os.environ.get("GARRISON_REGISTRY_PASSWORD", ""))
    return _from_docker_config(registry, docker_config_path())


def _from_docker_config(registry: str, path: Path) -> Credentials | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        logger.warning("%s: ignoring unreadable Docker config: %s", path, err)
        return None
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = set(_HUB_KEYS) if registry in ("docker.io", "registry-1.docker.io", "index.docker.io") else {registry}
    for key, value in auths.items():
        if not isinstance(key, str) or not isinstance(value, dict):
            continue
        if key not in wanted and _host_of(key) not in wanted:
            continue
        user, password = value.get("username"), value.get("password")
        if isinstance(user, str) and isinstance(password, str) and user:
            return Credentials(user, password)
        auth = value.get("auth")
        if isinstance(auth, str) and auth:
            try:
                decoded = base64.b64decode(auth, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                logger.warning("%s: auth for %s is not base64 user:password", path, key)
                continue
            user, sep, password = decoded.partition(":")
            if sep and user:
                return Credentials(user, password)
    return None


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: basic, bearer
    params: dict[str, str]


_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf"\s*({_TCHARS})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TCHARS}))\s*(?:,|$)")
_SCHEME = re.compile(rf"\s*({_TCHARS})(?:\s+|$)")


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges of a ``WWW-Authenticate`` value, e.g.
    ``Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull"``."""
    out: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        while pos < len(text) and text[pos] in ", ":
            pos += 1
        m = _SCHEME.match(text, pos)
        if m is None:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        while pos < len(text):
            p = _PARAM.match(text, pos)
            if p is None:
                break
            value = p.group(2)
            value = re.sub(r"\\(.)", r"\1", value) if value is not None else p.group(3)
            params[p.group(1).lower()] = value
            pos = p.end()
        out.append(Challenge(scheme, params))
        if not params and pos < len(text) and _PARAM.match(text, pos) is None and _SCHEME.match(text, pos) is None:
            break
    return out
