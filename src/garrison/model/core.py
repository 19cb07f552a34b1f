"""The domain model shared by every Garrison component.

Plain ``dataclasses`` with ``slots``: the matcher handles tens of thousands of packages a second
and pydantic's validation cost would dominate it. Objects are built by our own parsers, which
validate their input; the model only carries data. Serialisation is ``to_dict``/``from_dict`` so
layer-cache entries and JSON reports round-trip exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """Severity of a finding, ordered so comparisons work (``>= Severity.HIGH``)."""

    UNKNOWN = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: str | None) -> Severity:
        """Parse a severity word from any source (``moderate`` and ``important`` included)."""
        if not value:
            return cls.UNKNOWN
        word = value.strip().upper()
        word = _SEVERITY_SYNONYMS.get(word, word)
        try:
            return cls[word]
        except KeyError:
            return cls.UNKNOWN

    @classmethod
    def from_cvss_score(cls, score: float | None) -> Severity:
        """Qualitative rating of a CVSS v3/v4 base score (FIRST's table)."""
        if score is None:
            return cls.UNKNOWN
        if score >= 9.0:
            return cls.CRITICAL
        if score >= 7.0:
            return cls.HIGH
        if score >= 4.0:
            return cls.MEDIUM
        if score > 0.0:
            return cls.LOW
        return cls.UNKNOWN


_SEVERITY_SYNONYMS = {
    "MODERATE": "MEDIUM",
    "IMPORTANT": "HIGH",
    "NEGLIGIBLE": "LOW",
    "UNIMPORTANT": "LOW",
    "NONE": "UNKNOWN",
    "NOT YET ASSIGNED": "UNKNOWN",
}


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file seen in a layer or directory: POSIX path relative to the root, no leading ``/``."""

    path: str
    size: int
    mode: int = 0o100644  # st_mode, file type bits included

    @property
    def executable(self) -> bool:
        return bool(self.mode & 0o111) and (self.mode & 0o170000) == 0o100000


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    """The distribution an artifact is built on (``family`` as in os-release ``ID``)."""

    family: str  # debian, ubuntu, alpine, almalinux, rhel, centos, fedora, ...
    version: str  # VERSION_ID (``12``, ``3.18.4``, ``9.3``)
    name: str = ""  # PRETTY_NAME
    codename: str = ""  # VERSION_CODENAME (bookworm)
    eol: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "version": self.version,
            "name": self.name,
            "codename": self.codename,
            "eol": self.eol,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OperatingSystem:
        return cls(d["family"], d["version"], d.get("name", ""), d.get("codename", ""), d.get("eol", False))


@dataclass(slots=True)
class Package:
    """One installed or declared package.

    ``type`` is the purl type (``deb``, ``apk``, ``rpm``, ``pypi``, ``npm``, ``golang``, ``maven``,
    ``gem``, ``cargo``, ``composer``, ``nuget``); ``namespace`` the purl namespace where the
    ecosystem has one (Maven group, npm scope without ``@``, the Go module path's head). ``purl`` is
    filled by :func:`garrison.model.purl.assign_purls` once the OS is known.
    """

    name: str
    version: str
    type: str
    cataloger: str = ""
    path: str = ""  # file the package was found in, relative to the root
    layer: str | None = None  # diff_id of the layer that introduced it
    namespace: str | None = None
    source_name: str | None = None  # OS packages: the source package
    source_version: str | None = None
    arch: str | None = None
    epoch: int | None = None  # rpm epoch, kept apart for matching
    licenses: tuple[str, ...] = ()
    dev: bool = False
    optional: bool = False
    purl: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str | None, str, str]:
        """Identity used for de-duplication: type, namespace, name, version."""
        return (self.type, self.namespace, self.name, self.version)

    @property
    def bom_ref(self) -> str:
        return self.purl or f"{self.type}:{self.namespace or ''}/{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "version": self.version, "type": self.type}
        for key in (
            "cataloger",
            "path",
            "layer",
            "namespace",
            "source_name",
            "source_version",
            "arch",
            "epoch",
            "purl",
        ):
            value = getattr(self, key)
            if value not in (None, ""):
                d[key] = value
        if self.licenses:
            d["licenses"] = list(self.licenses)
        if self.dev:
            d["dev"] = True
        if self.optional:
            d["optional"] = True
        if self.metadata:
            d["metadata"] = self.metadata
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Package:
        return cls(
            name=d["name"],
            version=d["version"],
            type=d["type"],
            cataloger=d.get("cataloger", ""),
            path=d.get("path", ""),
            layer=d.get("layer"),
            namespace=d.get("namespace"),
            source_name=d.get("source_name"),
            source_version=d.get("source_version"),
            arch=d.get("arch"),
            epoch=d.get("epoch"),
            licenses=tuple(d.get("licenses", ())),
            dev=d.get("dev", False),
            optional=d.get("optional", False),
            purl=d.get("purl", ""),
            metadata=d.get("metadata", {}),
        )


@dataclass(frozen=True, slots=True)
class Layer:
    """One image layer: ``digest`` of the blob as stored, ``diff_id`` of the uncompressed tar."""

    digest: str
    diff_id: str
    size: int = 0
    media_type: str = ""
    created_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "diff_id": self.diff_id,
            "size": self.size,
            "media_type": self.media_type,
            "created_by": self.created_by,
        }


class ArtifactKind(enum.StrEnum):
    DOCKER_ARCHIVE = "docker-archive"
    OCI_LAYOUT = "oci-layout"
    OCI_ARCHIVE = "oci-archive"
    REGISTRY = "registry"
    ROOTFS = "rootfs"
    FILESYSTEM = "filesystem"
    SBOM = "sbom"


@dataclass(slots=True)
class Artifact:
    """What was scanned: an image (from any source), a directory or an SBOM."""

    name: str
    kind: ArtifactKind
    digest: str = ""  # manifest digest for images
    image_id: str = ""  # config digest
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    created: str = ""  # RFC 3339
    architecture: str = ""
    os_name: str = ""  # config os (linux)
    layers: list[Layer] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # image config "config" object
    #: the image config's ``history`` entries as written (empty-layer steps included); not part
    #: of ``to_dict`` (reports carry each layer's ``created_by``), read by the image posture checks
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": str(self.kind),
            "digest": self.digest,
            "image_id": self.image_id,
            "repo_tags": list(self.repo_tags),
            "repo_digests": list(self.repo_digests),
            "created": self.created,
            "architecture": self.architecture,
            "os": self.os_name,
            "layers": [layer.to_dict() for layer in self.layers],
            "config": self.config,
        }


class FindingKind(enum.StrEnum):
    VULNERABILITY = "vulnerability"
    SECRET = "secret"  # noqa: S105 - a finding kind, not a password
    MISCONFIGURATION = "misconfiguration"
    LICENSE = "license"


class VulnStatus(enum.StrEnum):
    """Distribution status of a vulnerability for a package (kept and filterable)."""

    FIXED = "fixed"  # a fixed version exists
    AFFECTED = "affected"  # no fix yet
    WILL_NOT_FIX = "will_not_fix"
    NO_DSA = "no-dsa"  # minor issue, fixed in a point release if at all
    POSTPONED = "postponed"
    UNIMPORTANT = "unimportant"
    END_OF_LIFE = "end_of_life"
    UNDER_INVESTIGATION = "under_investigation"


@dataclass(frozen=True, slots=True)
class CVSS:
    version: str  # "2.0", "3.0", "3.1", "4.0"
    vector: str
    score: float
    source: str  # nvd, ghsa, osv, debian, ...

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "vector": self.vector, "score": self.score, "source": self.source}


@dataclass(slots=True)
class Vulnerability:
    """An advisory as the database knows it."""

    id: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    details: str = ""
    severity: Severity = Severity.UNKNOWN
    severity_source: str = ""
    cvss: tuple[CVSS, ...] = ()
    references: tuple[str, ...] = ()
    cwes: tuple[str, ...] = ()
    published: str = ""
    modified: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "aliases": list(self.aliases),
            "summary": self.summary,
            "details": self.details,
            "severity": self.severity.name,
            "severity_source": self.severity_source,
            "cvss": [c.to_dict() for c in self.cvss],
            "references": list(self.references),
            "cwes": list(self.cwes),
            "published": self.published,
            "modified": self.modified,
        }


@dataclass(frozen=True, slots=True)
class Suppression:
    """Why a finding is not counted: ignore file, VEX statement, inline annotation, baseline."""

    kind: str  # ignorefile, vex, annotation, baseline
    justification: str = ""
    source: str = ""  # file that suppressed it
    state: str = "not_affected"  # CycloneDX analysis state
    expires: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "justification": self.justification,
            "source": self.source,
            "state": self.state,
            "expires": self.expires,
        }


@dataclass(slots=True)
class VulnMatch:
    """Why a package matched a vulnerability: everything a finding needs to explain itself."""

    vulnerability: Vulnerability
    package: Package
    installed_version: str
    fixed_versions: tuple[str, ...] = ()
    status: VulnStatus = VulnStatus.AFFECTED
    matched_range: str = ""  # human-readable, e.g. ">=1.0.0, <1.2.3" or "< 3.0.8-1~deb12u1"
    data_source: str = ""  # osv:PyPI, debian-dsa, debian-tracker, alpine-secdb, ...
    data_source_url: str = ""
    matched_by: str = ""  # package name the advisory names (source package for distros)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vulnerability": self.vulnerability.to_dict(),
            "package": self.package.to_dict(),
            "installed_version": self.installed_version,
            "fixed_versions": list(self.fixed_versions),
            "status": str(self.status),
            "matched_range": self.matched_range,
            "data_source": self.data_source,
            "data_source_url": self.data_source_url,
            "matched_by": self.matched_by,
        }


@dataclass(frozen=True, slots=True)
class SecretMatch:
    rule_id: str
    category: str
    title: str
    path: str
    line: int
    redacted: str  # the matched line with the secret masked
    layer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "category": self.category,
            "title": self.title,
            "path": self.path,
            "line": self.line,
            "redacted": self.redacted,
            "layer": self.layer,
        }


@dataclass(slots=True)
class Finding:
    """One thing to act on. Exactly one of ``vuln``/``secret`` (later: control) is set."""

    id: str  # CVE/GHSA/... id, secret rule id, control id
    kind: FindingKind
    severity: Severity
    title: str
    target: str  # group heading: "debian 12 (deb)", "python-pkg", a file path
    vuln: VulnMatch | None = None
    secret: SecretMatch | None = None
    suppression: Suppression | None = None

    @property
    def suppressed(self) -> bool:
        return self.suppression is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "kind": str(self.kind),
            "severity": self.severity.name,
            "title": self.title,
            "target": self.target,
        }
        if self.vuln is not None:
            d["vulnerability"] = self.vuln.to_dict()
        if self.secret is not None:
            d["secret"] = self.secret.to_dict()
        if self.suppression is not None:
            d["suppression"] = self.suppression.to_dict()
        return d
