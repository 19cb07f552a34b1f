"""Open an image from any transport by its reference.

Prefixes: ``docker-archive:PATH[:TAG]``, ``oci-archive:PATH[:TAG]``, ``oci:DIR[:TAG]`` (or
``oci-dir:``), ``dir:PATH`` / ``rootfs:PATH``, ``registry:REF`` / ``docker://REF``. Without a
prefix an existing file is sniffed (docker-archive or OCI tar), an existing directory is an OCI
layout when it has an ``oci-layout`` file and a root filesystem otherwise, and anything else is
a registry reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from garrison.core.errors import InputError, NotFoundError
from garrison.core.limits import DEFAULT_LIMITS, Limits
from garrison.image._oci import Platform, parse_platform
from garrison.image._tarindex import TarIndex
from garrison.image.docker_archive import DockerArchiveSource
from garrison.image.interface import ImageSource
from garrison.image.oci_archive import open_oci_archive
from garrison.image.oci_layout import open_oci_layout
from garrison.image.rootfs import RootfsSource

logger = logging.getLogger(__name__)

_PATHLIKE = ("/", "./", "../", "~")
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst")


def split_path_tag(text: str) -> tuple[Path, str | None]:
    """``PATH[:TAG]``: the whole text if it names an existing path, else the longest existing
    prefix before a ``:`` (tags such as ``repo:tag`` contain colons themselves)."""
    path = Path(text).expanduser()
    if path.exists() or ":" not in text:
        return path, None
    cut = len(text)
    while (cut := text.rfind(":", 0, cut)) > 0:
        head = Path(text[:cut]).expanduser()
        if head.exists():
            return head, text[cut + 1 :] or None
    return path, None


def sniff_archive(path: Path) -> str:
    """``docker-archive`` or ``oci-archive`` for an image tar, judged by its top-level files."""
    index = TarIndex(path)
    try:
        if index.has("manifest.json") or index.has("repositories"):
            return "docker-archive"
        if index.has("oci-layout") and index.has("index.json"):
            return "oci-archive"
    finally:
        index.close()
    raise InputError("not an image archive (neither docker-archive nor OCI layout tar)", input_name=str(path))


def open_image(
    ref: str,
    platform: str | None = None,
    insecure: bool = False,
    username: str | None = None,
    password: str | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
    timeout: float | None = None,
) -> ImageSource:
    """The :class:`ImageSource` for ``ref``; use it as a context manager."""
    wanted = parse_platform(platform) if platform else None

    def registry(text: str) -> ImageSource:
        from garrison.image.registry import RegistrySource  # httpx is heavy to import; only registries need it

        return RegistrySource(
            text, platform=wanted, insecure=insecure, username=username, password=password, timeout=timeout, limits=limits
        )

    def docker(text: str) -> ImageSource:
        path, tag = split_path_tag(text)
        return DockerArchiveSource(path, tag=tag, limits=limits)

    def oci_archive(text: str) -> ImageSource:
        path, tag = split_path_tag(text)
        return open_oci_archive(path, tag=tag, platform=wanted, limits=limits)

    def oci_dir(text: str) -> ImageSource:
        path, tag = split_path_tag(text)
        return open_oci_layout(path, tag=tag, platform=wanted, limits=limits)

    def rootfs(text: str) -> ImageSource:
        return RootfsSource(Path(text).expanduser())

    prefixes: dict[str, Callable[[str], ImageSource]] = {
        "docker-archive:": docker,
        "oci-archive:": oci_archive,
        "oci:": oci_dir,
        "oci-dir:": oci_dir,
        "dir:": rootfs,
        "rootfs:": rootfs,
        "registry:": registry,
        "docker://": registry,
    }
    for prefix, handler in prefixes.items():
        if ref.startswith(prefix):
            rest = ref[len(prefix) :]
            if not rest:
                raise InputError(f"nothing after {prefix}", input_name=ref)
            return handler(rest)
    if ref.split(":", 1)[0] in ("docker-daemon", "podman", "containerd", "containers-storage", "tarball"):
        raise InputError("this transport is not supported; export the image with docker save or skopeo", input_name=ref)
    return _unprefixed(ref, wanted, limits, registry)


def _unprefixed(
    ref: str, wanted: Platform | None, limits: Limits, registry: Callable[[str], ImageSource]
) -> ImageSource:
    path = Path(ref).expanduser()
    if path.is_file():
        kind = sniff_archive(path)
        if kind == "oci-archive":
            return open_oci_archive(path, platform=wanted, limits=limits)
        return DockerArchiveSource(path, limits=limits)
    if path.is_dir():
        if (path / "oci-layout").is_file():
            return open_oci_layout(path, platform=wanted, limits=limits)
        return RootfsSource(path)
    if path.exists():
        raise InputError("not a file or directory", input_name=ref)
    if ref.startswith(_PATHLIKE) or ref.endswith(_ARCHIVE_SUFFIXES):
        raise NotFoundError("no such file or directory", input_name=ref)
    return registry(ref)
