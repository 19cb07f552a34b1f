"""``docker save`` archives: ``manifest.json`` with a config and layer tars, the legacy
``repositories`` + ``<id>/json`` form, and the OCI-layout-inside-docker-save form Docker 25+
writes (``blobs/sha256/...`` paths plus ``index.json``).

Layers are read in place from the tar. Their digests are checked as they stream: against the
``blobs/<alg>/<hex>`` name when the archive names them by digest, otherwise against the config's
``diff_id`` for uncompressed layers (what ``docker save`` writes). A compressed layer with no
digest in its name is hashed once while the artifact is built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any, BinaryIO

from garrison.core.errors import GarrisonError, InputError, NotFoundError
from garrison.core.limits import DEFAULT_LIMITS, Limits
from garrison.image._digest import check_digest, digest_bytes, verify_bytes, verifying_reader
from garrison.image._oci import CONTAINERD_NAME, artifact_from, load_json, parse_index
from garrison.image._tarindex import TarIndex
from garrison.image.interface import ImageSource
from garrison.image.layers import detect_compression
from garrison.model import Artifact, ArtifactKind, Layer

logger = logging.getLogger(__name__)

_BLOB_PATH = re.compile(r"^(?:.*/)?blobs/(sha256|sha512)/([0-9a-f]{64}|[0-9a-f]{128})$")
_HEX_NAME = re.compile(r"^(?:.*/)?([0-9a-f]{64})(?:\.json|/layer\.tar|\.tar)?$")
_MEDIA = {
    "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "zstd": "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "tar": "application/vnd.docker.image.rootfs.diff.tar",
}


def _named_digest(path: str) -> str | None:
    match = _BLOB_PATH.match(path)
    return f"{match.group(1)}:{match.group(2)}" if match else None


class DockerArchiveSource(ImageSource):
    """An image from a ``docker save`` tar; ``tag`` picks one of several saved images."""

    def __init__(self, path: Path, *, tag: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.path = path
        self.tag = tag
        self.limits = limits
        self.name = f"{path}:{tag}" if tag else str(path)
        self._tar = TarIndex(path)
        self._paths: dict[str, str] = {}
        self._artifact: Artifact | None = None

    def artifact(self) -> Artifact:
        if self._artifact is None:
            try:
                self._artifact = self._load()
            except GarrisonError:
                raise
            except (OSError, EOFError, ValueError) as err:
                raise InputError(f"cannot read archive: {err}", input_name=self.name) from err
        return self._artifact

    def open_layer(self, layer: Layer) -> BinaryIO:
        path = self._paths.get(layer.digest)
        if path is None:
            raise NotFoundError(f"layer {layer.digest} is not in this archive", input_name=self.name)
        return verifying_reader(
            self._tar.open(path), layer.digest, size=layer.size, input_name=f"{self.name} layer {path}"
        )

    def close(self) -> None:
        self._tar.close()

    def _load(self) -> Artifact:
        if self._tar.has("manifest.json"):
            return self._load_manifest()
        if self._tar.has("repositories"):
            return self._load_legacy()
        if self._tar.has("oci-layout"):
            raise InputError("this is an OCI archive, not a docker-archive; use oci-archive:PATH", input_name=self.name)
        raise InputError("not a docker-archive (no manifest.json or repositories)", input_name=self.name)

    def _pick(self, entries: list[Any]) -> dict[str, Any]:
        images = [e for e in entries if isinstance(e, dict)]
        if not images or len(images) != len(entries):
            raise InputError("manifest.json is not a list of image objects", input_name=self.name)
        if self.tag:
            for image in images:
                tags = image.get("RepoTags") or []
                if isinstance(tags, list) and any(t == self.tag or t.endswith(f"/{self.tag}") for t in tags if isinstance(t, str)):
                    return image
            if self.tag.startswith("@") and self.tag[1:].isdigit() and int(self.tag[1:]) < len(images):
                return images[int(self.tag[1:])]
            raise NotFoundError(f"no image tagged {self.tag!r} in the archive", input_name=self.name)
        if len(images) > 1:
            tags = sorted({t for i in images for t in (i.get("RepoTags") or []) if isinstance(t, str)})
            raise InputError(
                f"the archive holds {len(images)} images ({', '.join(tags) or 'untagged'}); "
                "name one as docker-archive:PATH:TAG",
                input_name=self.name,
            )
        return images[0]

    def _load_manifest(self) -> Artifact:
        raw = self._tar.read("manifest.json", self.limits.max_manifest_bytes)
        try:
            entries = json.loads(raw)
        except (ValueError, RecursionError) as err:
            raise InputError(f"manifest.json is not valid JSON: {err}", input_name=self.name) from err
        if not isinstance(entries, list):
            raise InputError("manifest.json is not a list", input_name=self.name)
        image = self._pick(entries)
        config_path = image.get("Config")
        layer_paths = image.get("Layers")
        if not isinstance(config_path, str) or not isinstance(layer_paths, list):
            raise InputError("manifest.json entry lacks Config or Layers", input_name=self.name)
        if not all(isinstance(p, str) for p in layer_paths):
            raise InputError("manifest.json Layers are not all paths", input_name=self.name)
        tags = tuple(t for t in (image.get("RepoTags") or []) if isinstance(t, str))
        config_raw = self._tar.read(config_path, self.limits.max_manifest_bytes)
        named = _named_digest(config_path)
        hex_name = _HEX_NAME.match(config_path)
        if named is None and hex_name is not None:
            named = f"sha256:{hex_name.group(1)}"
        if named is not None:
            verify_bytes(config_raw, named, input_name=f"{self.name} config {config_path}")
        config = load_json(config_raw, input_name=self.name, what="image config")
        diff_ids = _diff_ids(config, self.name)
        if len(diff_ids) != len(layer_paths):
            raise InputError(
                f"config lists {len(diff_ids)} diff_ids but manifest.json {len(layer_paths)} layers",
                input_name=self.name,
            )
        blobs = [self._layer_blob(path, diff_id) for path, diff_id in zip(layer_paths, diff_ids, strict=True)]
        return artifact_from(
            name=self.name,
            kind=ArtifactKind.DOCKER_ARCHIVE,
            config_doc=config,
            config_digest=digest_bytes(config_raw),
            layers=blobs,
            input_name=self.name,
            manifest_digest=self._manifest_digest(tags),
            repo_tags=tags,
        )

    def _layer_blob(self, path: str, diff_id: str) -> tuple[str, int, str]:
        size = self._tar.size(path)
        with self._tar.open(path) as stream:
            head = stream.read(8)
        kind = detect_compression(head)
        digest = _named_digest(path)
        if digest is None:
            digest = diff_id if kind == "tar" else self._hash(path)
        self._paths[digest] = path
        return digest, size, _MEDIA.get(kind, f"application/vnd.docker.image.rootfs.diff.tar.{kind}")

    def _hash(self, path: str) -> str:
        logger.debug("%s: hashing compressed layer %s", self.name, path)
        digest = hashlib.sha256()
        with self._tar.open(path) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        return f"sha256:{digest.hexdigest()}"

    def _manifest_digest(self, tags: tuple[str, ...]) -> str:
        """Docker 25+ archives carry an OCI index naming the manifest of each saved image."""
        if not self._tar.has("index.json"):
            return ""
        try:
            index = load_json(self._tar.read("index.json", self.limits.max_manifest_bytes), input_name=self.name, what="index.json")
            entries = parse_index(index, input_name=self.name)
        except InputError as err:
            logger.debug("%s: ignoring index.json: %s", self.name, err)
            return ""
        for entry in entries:
            full = entry.annotation(CONTAINERD_NAME)
            if full and any(full == t or full.endswith(f"/{t}") for t in tags):
                return entry.digest
        return entries[0].digest if len(entries) == 1 else ""

    def _load_legacy(self) -> Artifact:
        """``repositories`` + ``<id>/json`` + ``<id>/layer.tar`` (docker before 1.10)."""
        repos = load_json(self._tar.read("repositories", self.limits.max_manifest_bytes), input_name=self.name, what="repositories")
        choices: list[tuple[str, str]] = []
        for repo, tags in repos.items():
            if isinstance(tags, dict):
                choices.extend((f"{repo}:{tag}", top) for tag, top in tags.items() if isinstance(top, str))
        if self.tag:
            choices = [c for c in choices if c[0] == self.tag or c[0].endswith(f"/{self.tag}")]
        if len(choices) != 1:
            raise InputError(f"repositories names {len(choices)} matching images; name one as docker-archive:PATH:TAG", input_name=self.name)
        ref, top = choices[0]
        chain: list[tuple[str, dict[str, Any]]] = []
        current: str | None = top
        while current:
            if not re.fullmatch(r"[0-9a-f]{64}", current) or len(chain) > 256:
                raise InputError(f"bad legacy layer id {current[:80]!r}", input_name=self.name)
            meta = load_json(self._tar.read(f"{current}/json", self.limits.max_manifest_bytes), input_name=self.name, what=f"{current}/json")
            chain.append((current, meta))
            parent = meta.get("parent")
            current = parent if isinstance(parent, str) and parent else None
        chain.reverse()
        layers = []
        history = []
        for layer_id, meta in chain:
            path = f"{layer_id}/layer.tar"
            digest = self._hash(path)
            self._paths[digest] = path
            layers.append((digest, self._tar.size(path), _MEDIA["tar"]))
            container = meta.get("container_config")
            cmd = container.get("Cmd") if isinstance(container, dict) else None
            history.append({"created_by": " ".join(c for c in cmd if isinstance(c, str)) if isinstance(cmd, list) else ""})
        top_meta = dict(chain[-1][1])
        top_meta["rootfs"] = {"type": "layers", "diff_ids": [d for d, _, _ in layers]}
        top_meta["history"] = history
        return artifact_from(
            name=self.name,
            kind=ArtifactKind.DOCKER_ARCHIVE,
            config_doc=top_meta,
            config_digest=f"sha256:{top}",
            layers=layers,
            input_name=self.name,
            repo_tags=(ref,),
        )


def _diff_ids(config: dict[str, Any], name: str) -> list[str]:
    rootfs = config.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(ids, list):
        raise InputError("image config has no rootfs.diff_ids", input_name=name)
    return [check_digest(d, input_name=name) for d in ids]


def open_docker_archive(path: Path, *, tag: str | None = None, limits: Limits = DEFAULT_LIMITS) -> DockerArchiveSource:
    return DockerArchiveSource(path, tag=tag, limits=limits)
