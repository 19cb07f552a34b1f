"""Image references as Docker understands them: ``[registry[:port]/]repository[:tag][@digest]``.

A first component with a ``.`` or ``:`` (or ``localhost``) is a registry host; otherwise the
image is on Docker Hub, whose API host is ``registry-1.docker.io`` and whose one-component
repositories live under ``library/``. Written here rather than taken from a library because the
grammar is short and the Python packages that implement it pull in a whole registry client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from garrison.core.errors import InputError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,}$")
_HOST = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


@dataclass(frozen=True, slots=True)
class Reference:
    registry: str  # as written (docker.io for Docker Hub)
    repository: str  # with library/ for official Hub images
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What to ask the manifests endpoint for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(value: str) -> Reference:
    """Parse a reference, filling in Docker Hub, ``library/`` and ``latest`` the way Docker does."""
    text = value.strip()
    if not text or len(text) > 1024 or any(c.isspace() for c in text):
        raise InputError("not an image reference", input_name=repr(value[:100]))
    rest, _, digest = text.partition("@")
    if digest and not _DIGEST.match(digest):
        raise InputError(f"malformed digest {digest!r}", input_name=value)
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost") and _HOST.match(first):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    tag: str | None = None
    name, colon, maybe_tag = path.rpartition(":")
    if colon and "/" not in maybe_tag:
        path, tag = name, maybe_tag
        if not _TAG.match(tag):
            raise InputError(f"malformed tag {tag!r}", input_name=value)
    components = path.split("/")
    if not path or not all(_COMPONENT.match(c) for c in components):
        raise InputError("malformed repository name (lowercase letters, digits and separators only)", input_name=value)
    if registry in ("index.docker.io", DOCKER_HUB_API):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and len(components) == 1:
        path = f"library/{path}"
    if tag is None and not digest:
        tag = "latest"
    return Reference(registry, path, tag, digest or None)
