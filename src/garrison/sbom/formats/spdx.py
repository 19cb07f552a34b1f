"""Reading SPDX 2.x JSON back into packages, the operating system and the artifact.

Hand-written over the decoded JSON: the only Python SPDX library (spdx-tools) is a large dependency
for the few fields needed here (purl external refs, name, version, declared licence, annotations,
the OPERATING_SYSTEM package and the described package).
"""

from __future__ import annotations

import logging
from typing import Any

from garrison.model import Artifact, ArtifactKind, Layer, OperatingSystem, Package
from garrison.sbom.formats._common import (
    FACT_KEYS,
    OS_TYPES,
    Doc,
    package_from_purl,
    package_without_purl,
    split_and,
)

logger = logging.getLogger(__name__)

SPDX_VERSIONS = ("SPDX-2.1", "SPDX-2.2", "SPDX-2.3")
_BUILT_FROM = "built package from:"
_OS_PURPOSES = ("OPERATING_SYSTEM", "OPERATING-SYSTEM")
#: Trivy writes its facts as attribution texts ``Key: value``
_TRIVY_ATTRIBUTIONS = {
    "LayerDiffID": "aquasecurity:trivy:LayerDiffID",
    "SrcName": "aquasecurity:trivy:SrcName",
    "FilePath": "aquasecurity:trivy:FilePath",
}


def decode_spdx(doc: dict[str, Any], name: str) -> tuple[Artifact, list[Package], OperatingSystem | None]:
    d = Doc(name)
    version = d.text(doc, "spdxVersion", "document")
    if version not in SPDX_VERSIONS:
        raise d.error(f"unsupported spdxVersion {version!r} (supported: {', '.join(SPDX_VERSIONS)})")
    creation = d.obj(doc.get("creationInfo") or {}, "creationInfo")
    extracted: dict[str, str] = {}
    for info in d.list_of_objects(doc, "hasExtractedLicensingInfos", "document"):
        lid = d.text(info, "licenseId", "hasExtractedLicensingInfos")
        extracted[lid] = d.text(info, "name", "hasExtractedLicensingInfos") or lid

    described = _described(d, doc)
    packages: list[Package] = []
    os_: OperatingSystem | None = None
    distro_hint: OperatingSystem | None = None
    artifact = Artifact(name=name, kind=ArtifactKind.SBOM, created=d.text(creation, "created", "creationInfo"))
    skipped = 0
    for i, item in enumerate(d.list_of_objects(doc, "packages", "document")):
        where = f"packages[{i}]"
        spdx_id = d.text(item, "SPDXID", where)
        pname = d.text(item, "name", where)
        pversion = d.text(item, "versionInfo", where)
        purpose = d.text(item, "primaryPackagePurpose", where)
        annotations = _annotations(d, item, where)
        if purpose in _OS_PURPOSES or spdx_id.startswith("SPDXRef-OperatingSystem"):
            if os_ is None and pname.strip():
                os_ = OperatingSystem(
                    family=pname.strip().lower(),
                    version=pversion,
                    name=annotations.get("garrison:os:name", "") or d.text(item, "description", where),
                    codename=annotations.get("garrison:os:codename", ""),
                )
            continue
        purl = _purl(d, item, where)
        if (spdx_id in described and not purl.startswith("pkg:")) or purpose == "CONTAINER":
            _fill_artifact(d, artifact, item, where, annotations)
            continue
        facts = {FACT_KEYS[k]: v for k, v in annotations.items() if k in FACT_KEYS}
        source_info = d.text(item, "sourceInfo", where)
        if source_info.startswith(_BUILT_FROM) and "source_name" not in facts:
            src_name, _, src_version = source_info[len(_BUILT_FROM) :].strip().partition(" ")
            if src_name:
                facts["source_name"] = src_name
                facts.setdefault("source_version", src_version.strip())
        licenses = _licenses(d, item, where, extracted)
        if purl:
            decoded = package_from_purl(
                purl, doc_name=pname, doc_version=pversion, facts=facts, licenses=licenses, cataloger="sbom-spdx"
            )
            if decoded is None:
                skipped += 1
                continue
            pkg, hint = decoded
            if distro_hint is None and pkg.type in OS_TYPES:
                distro_hint = hint
        else:
            maybe = package_without_purl(
                doc_name=pname, doc_version=pversion, facts=facts, licenses=licenses, cataloger="sbom-spdx"
            )
            if maybe is None:
                skipped += 1
                continue
            pkg = maybe
        packages.append(pkg)
    if skipped:
        logger.info("%s: %d package(s) without a usable purl were not read", name, skipped)
    return artifact, packages, os_ or distro_hint


def _described(d: Doc, doc: dict[str, Any]) -> set[str]:
    ids: set[str] = set()
    raw = doc.get("documentDescribes")
    if isinstance(raw, list):
        ids.update(x for x in raw if isinstance(x, str))
    elif raw is not None:
        raise d.error("documentDescribes is not an array")
    for rel in d.list_of_objects(doc, "relationships", "document"):
        if d.text(rel, "relationshipType", "relationships") == "DESCRIBES":
            if d.text(rel, "spdxElementId", "relationships") == "SPDXRef-DOCUMENT":
                ids.add(d.text(rel, "relatedSpdxElement", "relationships"))
        elif d.text(rel, "relationshipType", "relationships") == "DESCRIBED_BY":
            ids.add(d.text(rel, "spdxElementId", "relationships"))
    return ids


def _purl(d: Doc, item: dict[str, Any], where: str) -> str:
    for ref in d.list_of_objects(item, "externalRefs", where):
        if d.text(ref, "referenceType", f"{where}.externalRefs") == "purl":
            return d.text(ref, "referenceLocator", f"{where}.externalRefs").strip()
    return ""


def _annotations(d: Doc, item: dict[str, Any], where: str) -> dict[str, str]:
    """``garrison:key=value`` annotations and Trivy's ``Key: value`` attribution texts (first value wins)."""
    facts: dict[str, str] = {}
    for ann in d.list_of_objects(item, "annotations", where):
        comment = d.text(ann, "comment", f"{where}.annotations")
        if comment.startswith("garrison:") and "=" in comment:
            key, _, value = comment.partition("=")
            facts.setdefault(key, value)
    texts = item.get("attributionTexts")
    if texts is not None and not isinstance(texts, list):
        raise d.error(f"{where}.attributionTexts is not an array")
    for text in texts or []:
        if not isinstance(text, str):
            raise d.error(f"{where}.attributionTexts holds a non-string")
        key, sep, value = text.partition(": ")
        if sep and key in _TRIVY_ATTRIBUTIONS:
            facts.setdefault(_TRIVY_ATTRIBUTIONS[key], value)
        elif sep and key in ("ImageID", "RepoTag", "RepoDigest"):
            facts.setdefault(f"trivy:{key}", value)
    return facts


def _licenses(d: Doc, item: dict[str, Any], where: str, extracted: dict[str, str]) -> tuple[str, ...]:
    expression = d.text(item, "licenseDeclared", where)
    if expression in ("", "NOASSERTION", "NONE"):
        expression = d.text(item, "licenseConcluded", where)
    if expression in ("", "NOASSERTION", "NONE"):
        return ()
    out: list[str] = []
    for term in split_and(expression):
        value = extracted.get(term, term)
        if value not in out:
            out.append(value)
    return tuple(out)


def _fill_artifact(d: Doc, artifact: Artifact, item: dict[str, Any], where: str, facts: dict[str, str]) -> None:
    """The described (root) package: image digest, id, tags and layers."""
    tags: list[str] = []
    digests: list[str] = []
    layers: list[tuple[str, str]] = []
    for ann in d.list_of_objects(item, "annotations", where):
        key, _, value = d.text(ann, "comment", f"{where}.annotations").partition("=")
        if key == "garrison:image:repo_tag":
            tags.append(value)
        elif key == "garrison:image:repo_digest":
            digests.append(value)
        elif key.startswith("garrison:image:layer:"):
            layers.append((key, value))
    for text in item.get("attributionTexts") or []:
        key, sep, value = str(text).partition(": ")
        if sep and key == "RepoTag":
            tags.append(value)
        elif sep and key == "RepoDigest":
            digests.append(value)
    artifact.digest = facts.get("garrison:image:digest", "")
    artifact.image_id = facts.get("garrison:image:id", "") or facts.get("trivy:ImageID", "")
    artifact.repo_tags = tuple(dict.fromkeys(tags))
    artifact.repo_digests = tuple(dict.fromkeys(digests))
    artifact.architecture = facts.get("garrison:image:architecture", "")
    artifact.layers = [Layer(digest="", diff_id=v) for _, v in sorted(layers) if v]
