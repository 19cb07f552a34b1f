"""Parsing shared by every image source: OCI and Docker v2 schema 2 manifests and indexes, image
configs, platform selection, and building the :class:`~garrison.model.Artifact`.

The documents are small JSON objects; each field is checked for type before use so a malformed
or hostile document raises :class:`InputError` naming the input instead of a ``KeyError``.
"""

from __future__ import annotations

import json
import platform as _host
from dataclasses import dataclass
from typing import Any

from garrison.core.errors import InputError, NotFoundError
from garrison.image._digest import check_digest
from garrison.model import Artifact, ArtifactKind, Layer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def load_json(data: bytes, *, input_name: str, what: str) -> dict[str, Any]:
    """Parse a JSON object, or raise :class:`InputError` saying which document is broken."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise InputError(f"{what} is not valid JSON: {err}", input_name=input_name) from err
    if not isinstance(value, dict):
        raise InputError(f"{what} is not a JSON object", input_name=input_name)
    return value


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: tuple[tuple[str, str], ...] = ()

    def annotation(self, key: str) -> str:
        return dict(self.annotations).get(key, "")


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def parse_platform(value: str) -> Platform:
    """``os/arch[/variant]`` as given to ``--platform``."""
    parts = value.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InputError(f"platform must be os/arch[/variant], got {value!r}", input_name="--platform")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def host_platform() -> Platform:
    machine = _host.machine().lower()
    arch, variant = {
        "x86_64": ("amd64", ""),
        "amd64": ("amd64", ""),
        "aarch64": ("arm64", "v8"),
        "arm64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", ""),
        "i386": ("386", ""),
        "ppc64le": ("ppc64le", ""),
        "s390x": ("s390x", ""),
        "riscv64": ("riscv64", ""),
    }.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def _str(d: dict[str, Any], key: str, *, input_name: str, what: str, required: bool = True) -> str:
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{what}: field {key!r} is missing or not a string", input_name=input_name)
    return value


def parse_descriptor(d: object, *, input_name: str, what: str) -> Descriptor:
    if not isinstance(d, dict):
        raise InputError(f"{what}: descriptor is not an object", input_name=input_name)
    media_type = _str(d, "mediaType", input_name=input_name, what=what, required=False)
    digest = check_digest(_str(d, "digest", input_name=input_name, what=what), input_name=input_name)
    size = d.get("size", -1)
    if not isinstance(size, int) or isinstance(size, bool) or size < -1:
        raise InputError(f"{what}: descriptor size is not a non-negative integer", input_name=input_name)
    plat = None
    raw_platform = d.get("platform")
    if isinstance(raw_platform, dict):
        os_ = raw_platform.get("os")
        arch = raw_platform.get("architecture")
        variant = raw_platform.get("variant", "")
        if isinstance(os_, str) and isinstance(arch, str) and isinstance(variant, str):
            plat = Platform(os_, arch, variant)
    annotations: tuple[tuple[str, str], ...] = ()
    raw_ann = d.get("annotations")
    if isinstance(raw_ann, dict):
        annotations = tuple(sorted((str(k), str(v)) for k, v in raw_ann.items()))
    return Descriptor(media_type, digest, size, plat, annotations)


def is_index(doc: dict[str, Any], media_type: str = "") -> bool:
    kind = doc.get("mediaType") or media_type
    if kind in INDEX_TYPES:
        return True
    return kind not in MANIFEST_TYPES and "manifests" in doc and "layers" not in doc


def parse_index(doc: dict[str, Any], *, input_name: str) -> list[Descriptor]:
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise InputError("index has no 'manifests' list", input_name=input_name)
    return [parse_descriptor(m, input_name=input_name, what="index entry") for m in manifests]


@dataclass(frozen=True, slots=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str


def parse_manifest(doc: dict[str, Any], *, input_name: str, media_type: str = "") -> Manifest:
    kind = doc.get("mediaType") or media_type
    if kind in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise InputError(
            "Docker image manifest schema 1 is not supported (deprecated since 2017)", input_name=input_name
        )
    if doc.get("schemaVersion") != 2:
        raise InputError("manifest schemaVersion is not 2", input_name=input_name)
    if is_index(doc, media_type):
        raise InputError("expected an image manifest, found an index", input_name=input_name)
    config = parse_descriptor(doc.get("config"), input_name=input_name, what="manifest config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InputError("manifest has no 'layers' list", input_name=input_name)
    parsed = tuple(parse_descriptor(item, input_name=input_name, what="manifest layer") for item in layers)
    return Manifest(config, parsed, str(kind or OCI_MANIFEST))


def select_platform(entries: list[Descriptor], wanted: Platform | None, *, input_name: str) -> Descriptor:
    """Pick the manifest for ``wanted`` (default linux/amd64, then the host) from an index."""
    images = [e for e in entries if e.platform is None or e.platform.os != "unknown"]
    if not images:
        raise NotFoundError("index lists no image manifests", input_name=input_name)
    with_platform = [e for e in images if e.platform is not None]
    if wanted is None and not with_platform and len(images) == 1:
        return images[0]
    candidates = [wanted] if wanted is not None else [Platform("linux", "amd64"), host_platform()]
    for want in candidates:
        match = _match(with_platform, want)
        if match is not None:
            return match
    if wanted is None and len(images) == 1:
        return images[0]
    available = ", ".join(str(e.platform) for e in with_platform) or "none declared"
    want_text = str(wanted) if wanted is not None else "linux/amd64 or the host's platform"
    raise NotFoundError(f"no image for platform {want_text} (available: {available})", input_name=input_name)


def _match(entries: list[Descriptor], want: Platform) -> Descriptor | None:
    same = [
        e for e in entries if e.platform and e.platform.os == want.os and e.platform.architecture == want.architecture
    ]
    if not same:
        return None
    if want.variant:
        exact = [e for e in same if e.platform and e.platform.variant == want.variant]
        if exact:
            return exact[0]
        if want.architecture == "arm64" and want.variant == "v8":
            plain = [e for e in same if e.platform and not e.platform.variant]
            return plain[0] if plain else None
        return None
    plain = [e for e in same if e.platform and not e.platform.variant]
    return (plain or same)[0]


def artifact_from(
    *,
    name: str,
    kind: ArtifactKind,
    config_doc: dict[str, Any],
    config_digest: str,
    layers: list[tuple[str, int, str]],
    input_name: str,
    manifest_digest: str = "",
    repo_tags: tuple[str, ...] = (),
    repo_digests: tuple[str, ...] = (),
) -> Artifact:
    """Build the artifact from an image config and the layer blobs ``(digest, size, media type)``
    in manifest order. The config's ``rootfs.diff_ids`` must match the layers one to one."""
    rootfs = config_doc.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise InputError("image config has no rootfs.diff_ids", input_name=input_name)
    if len(diff_ids) != len(layers):
        raise InputError(
            f"image config lists {len(diff_ids)} diff_ids but the manifest {len(layers)} layers", input_name=input_name
        )
    diff_ids = [check_digest(d, input_name=input_name) for d in diff_ids]
    created_by = _created_by(config_doc.get("history"), len(layers))
    out = [
        Layer(digest=digest, diff_id=diff_id, size=size, media_type=media_type, created_by=created_by[i])
        for i, ((digest, size, media_type), diff_id) in enumerate(zip(layers, diff_ids, strict=True))
    ]
    inner = config_doc.get("config")
    if not isinstance(inner, dict):
        inner = config_doc.get("container_config") if isinstance(config_doc.get("container_config"), dict) else {}
    created = config_doc.get("created")
    arch = config_doc.get("architecture")
    os_name = config_doc.get("os")
    variant = config_doc.get("variant")
    architecture = arch if isinstance(arch, str) else ""
    if architecture and isinstance(variant, str) and variant:
        architecture = f"{architecture}/{variant}"
    return Artifact(
        name=name,
        kind=kind,
        digest=manifest_digest,
        image_id=config_digest,
        repo_tags=repo_tags,
        repo_digests=repo_digests,
        created=created if isinstance(created, str) else "",
        architecture=architecture,
        os_name=os_name if isinstance(os_name, str) else "",
        layers=out,
        config=dict(inner) if isinstance(inner, dict) else {},
        history=[h for h in history if isinstance(h, dict)]
        if isinstance(history := config_doc.get("history"), list)
        else [],
    )


def _created_by(history: object, count: int) -> list[str]:
    """``created_by`` of each non-empty history entry, aligned with the layers."""
    result = [""] * count
    if not isinstance(history, list):
        return result
    steps = [
        h.get("created_by") if isinstance(h.get("created_by"), str) else ""
        for h in history
        if isinstance(h, dict) and not h.get("empty_layer")
    ]
    if len(steps) != count:
        return result  # history does not describe these layers; better empty than wrong
    return [str(s) for s in steps]
