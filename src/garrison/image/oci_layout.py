"""OCI image layouts (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``), as a directory or
through any other :class:`BlobStore` (the oci-archive source reads the same layout from a tar).

An image is chosen from ``index.json`` by tag (``org.opencontainers.image.ref.name`` or
containerd's ``io.containerd.image.name``) or, for multi-platform indexes, by platform. Every blob
is verified against its digest: small documents when read, layers as they stream.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO

from garrison.core.errors import InputError, NotFoundError
from garrison.core.limits import DEFAULT_LIMITS, Limits
from garrison.image._digest import parse_digest, read_bounded, verifying_reader
from garrison.image._oci import (
    CONTAINERD_NAME,
    REF_NAME,
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
from garrison.model import Artifact, ArtifactKind, Layer

logger = logging.getLogger(__name__)

_MAX_INDEX_DEPTH = 4


class BlobStore(ABC):
    """Where a layout's files live."""

    name: str

    @abstractmethod
    def read_file(self, path: str, limit: int) -> bytes | None:
        """A small top-level file (``oci-layout``, ``index.json``), or ``None`` if absent."""

    @abstractmethod
    def open_blob(self, algorithm: str, hexdigest: str) -> BinaryIO:
        """The blob as stored; raise :class:`NotFoundError` when it is missing."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the store."""


class DirectoryStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = str(root)

    def read_file(self, path: str, limit: int) -> bytes | None:
        target = self.root / path
        if not target.is_file():
            return None
        with target.open("rb") as f:
            return read_bounded(f, limit, input_name=f"{self.name}/{path}", what=path)

    def open_blob(self, algorithm: str, hexdigest: str) -> BinaryIO:
        path = self.root / "blobs" / algorithm / hexdigest
        try:
            return path.open("rb")
        except FileNotFoundError as err:
            raise NotFoundError(f"blob {algorithm}:{hexdigest} is missing from the layout", input_name=self.name) from err
        except OSError as err:
            raise InputError(f"cannot read blob {algorithm}:{hexdigest}: {err.strerror}", input_name=self.name) from err


class LayoutSource(ImageSource):
    """An image in an OCI layout held by ``store``."""

    def __init__(
        self,
        store: BlobStore,
        *,
        name: str,
        kind: ArtifactKind,
        tag: str | None = None,
        platform: Platform | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.store = store
        self.name = name
        self.kind = kind
        self.tag = tag
        self.platform = platform
        self.limits = limits
        self._artifact: Artifact | None = None

    def artifact(self) -> Artifact:
        if self._artifact is None:
            self._artifact = self._load()
        return self._artifact

    def open_layer(self, layer: Layer) -> BinaryIO:
        algorithm, hexdigest = parse_digest(layer.digest, input_name=self.name)
        blob = self.store.open_blob(algorithm, hexdigest)
        return verifying_reader(
            blob, layer.digest, size=layer.size or None, input_name=f"{self.name} blob {layer.digest}"
        )

    def close(self) -> None:
        self.store.close()

    def read_blob(self, desc: Descriptor, what: str) -> bytes:
        """A small blob (manifest, config), verified against its digest."""
        if desc.size > self.limits.max_manifest_bytes:
            raise InputError(f"{what} {desc.digest} is larger than {self.limits.max_manifest_bytes} bytes", input_name=self.name)
        algorithm, hexdigest = parse_digest(desc.digest, input_name=self.name)
        stream = verifying_reader(
            self.store.open_blob(algorithm, hexdigest),
            desc.digest,
            size=desc.size if desc.size >= 0 else None,
            input_name=f"{self.name} {what} {desc.digest}",
        )
        with stream:
            return read_bounded(stream, self.limits.max_manifest_bytes, input_name=self.name, what=what)

    def _load(self) -> Artifact:
        layout = self.store.read_file("oci-layout", 4096)
        if layout is None:
            raise InputError("not an OCI image layout (no oci-layout file)", input_name=self.name)
        version = load_json(layout, input_name=self.name, what="oci-layout").get("imageLayoutVersion")
        if not isinstance(version, str) or not version.startswith("1."):
            raise InputError(f"unsupported imageLayoutVersion {version!r}", input_name=self.name)
        raw_index = self.store.read_file("index.json", self.limits.max_manifest_bytes)
        if raw_index is None:
            raise InputError("OCI layout has no index.json", input_name=self.name)
        entries = parse_index(load_json(raw_index, input_name=self.name, what="index.json"), input_name=self.name)
        desc = self._choose(entries)
        names = _names(desc)
        for _ in range(_MAX_INDEX_DEPTH):
            doc = load_json(self.read_blob(desc, "manifest"), input_name=self.name, what=f"manifest {desc.digest}")
            if not is_index(doc, desc.media_type):
                break
            desc = select_platform(parse_index(doc, input_name=self.name), self.platform, input_name=self.name)
        else:
            raise InputError("indexes nested too deeply", input_name=self.name)
        manifest = parse_manifest(doc, input_name=self.name, media_type=desc.media_type)
        config = load_json(self.read_blob(manifest.config, "config"), input_name=self.name, what="image config")
        return artifact_from(
            name=self.name,
            kind=self.kind,
            config_doc=config,
            config_digest=manifest.config.digest,
            layers=[(d.digest, max(d.size, 0), d.media_type) for d in manifest.layers],
            input_name=self.name,
            manifest_digest=desc.digest,
            repo_tags=names,
        )

    def _choose(self, entries: list[Descriptor]) -> Descriptor:
        if not entries:
            raise NotFoundError("index.json lists no images", input_name=self.name)
        if self.tag:
            for entry in entries:
                ref = entry.annotation(REF_NAME)
                full = entry.annotation(CONTAINERD_NAME)
                if self.tag in (ref, full) or full.endswith(f":{self.tag}") or ref.endswith(f":{self.tag}"):
                    return entry
            known = ", ".join(sorted({e.annotation(REF_NAME) for e in entries if e.annotation(REF_NAME)})) or "none"
            raise NotFoundError(f"no image tagged {self.tag!r} in the layout (tags: {known})", input_name=self.name)
        if len(entries) == 1:
            return entries[0]
        if all(e.platform is not None for e in entries):
            return select_platform(entries, self.platform, input_name=self.name)
        known = ", ".join(sorted({e.annotation(REF_NAME) for e in entries if e.annotation(REF_NAME)})) or "untagged"
        raise InputError(f"the layout holds {len(entries)} images ({known}); name one as oci:DIR:TAG", input_name=self.name)


def _names(desc: Descriptor) -> tuple[str, ...]:
    full = desc.annotation(CONTAINERD_NAME)
    ref = desc.annotation(REF_NAME)
    if full:
        return (full,)
    if ref and (":" in ref or "/" in ref):
        return (ref,)
    return ()


def open_oci_layout(
    path: Path, *, tag: str | None = None, platform: Platform | None = None, limits: Limits = DEFAULT_LIMITS
) -> LayoutSource:
    """An image from an OCI layout directory."""
    if not path.exists():
        raise NotFoundError("no such directory", input_name=str(path))
    if not path.is_dir():
        raise InputError("an OCI layout must be a directory", input_name=str(path))
    name = f"{path}:{tag}" if tag else str(path)
    return LayoutSource(
        DirectoryStore(path), name=name, kind=ArtifactKind.OCI_LAYOUT, tag=tag, platform=platform, limits=limits
    )
