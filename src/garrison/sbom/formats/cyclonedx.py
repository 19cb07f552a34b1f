"""Reading CycloneDX JSON (spec 1.2 to 1.7) back into packages, the operating system and the artifact.

Hand-written over the decoded JSON: cyclonedx-python-lib can write BOMs but has no stable reader for
JSON documents, and only a handful of fields matter here (purl, name, version, licences, properties,
the operating-system component and the metadata component).
"""

from __future__ import annotations

import logging
from typing import Any

from garrison.model import Artifact, ArtifactKind, Layer, OperatingSystem, Package
from garrison.sbom.formats._common import FACT_KEYS, OS_TYPES, Doc, package_from_purl, package_without_purl

logger = logging.getLogger(__name__)

SPEC_VERSIONS = ("1.2", "1.3", "1.4", "1.5", "1.6", "1.7")
_MAX_DEPTH = 64


def decode_cyclonedx(doc: dict[str, Any], name: str) -> tuple[Artifact, list[Package], OperatingSystem | None]:
    d = Doc(name)
    version = d.text(doc, "specVersion", "bom")
    if version not in SPEC_VERSIONS:
        raise d.error(f"unsupported CycloneDX specVersion {version!r} (supported: {', '.join(SPEC_VERSIONS)})")
    metadata = d.obj(doc.get("metadata") or {}, "metadata")
    root = d.obj(metadata.get("component") or {}, "metadata.component")
    artifact = _artifact(d, name, metadata, root)

    packages: list[Package] = []
    os_: OperatingSystem | None = None
    distro_hint: OperatingSystem | None = None
    skipped = 0
    stack: list[tuple[dict[str, Any], int, str]] = [
        (c, 0, f"components[{i}]") for i, c in enumerate(d.list_of_objects(doc, "components", "bom"))
    ]
    stack.reverse()
    while stack:
        comp, depth, where = stack.pop()
        if depth < _MAX_DEPTH:
            children = d.list_of_objects(comp, "components", where)
            stack.extend((c, depth + 1, f"{where}.components[{i}]") for i, c in reversed(list(enumerate(children))))
        ctype = d.text(comp, "type", where)
        facts = _facts(d, comp, where)
        if ctype == "operating-system":
            if os_ is None:
                os_ = _operating_system(d, comp, where, facts)
            continue
        cname = d.text(comp, "name", where)
        cversion = d.text(comp, "version", where)
        licenses = _licenses(d, comp, where)
        purl = d.text(comp, "purl", where)
        if purl:
            decoded = package_from_purl(
                purl, doc_name=cname, doc_version=cversion, facts=facts, licenses=licenses, cataloger="sbom-cyclonedx"
            )
            if decoded is None:
                skipped += 1
                continue
            pkg, hint = decoded
            if distro_hint is None and pkg.type in OS_TYPES:
                distro_hint = hint
        else:
            maybe = package_without_purl(
                doc_name=cname, doc_version=cversion, facts=facts, licenses=licenses, cataloger="sbom-cyclonedx"
            )
            if maybe is None:
                skipped += 1
                continue
            pkg = maybe
        scope = d.text(comp, "scope", where)
        if scope == "excluded":
            pkg.dev = True
        elif scope == "optional":
            pkg.optional = True
        packages.append(pkg)
    if skipped:
        logger.info("%s: %d component(s) without a usable purl were not read", name, skipped)
    return artifact, packages, os_ or distro_hint


def _facts(d: Doc, comp: dict[str, Any], where: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for prop in d.list_of_objects(comp, "properties", where):
        key = FACT_KEYS.get(d.text(prop, "name", f"{where}.properties"))
        if key and key not in facts:
            facts[key] = d.text(prop, "value", f"{where}.properties")
    return facts


def _props(d: Doc, comp: dict[str, Any], where: str) -> list[tuple[str, str]]:
    return [
        (d.text(p, "name", f"{where}.properties"), d.text(p, "value", f"{where}.properties"))
        for p in d.list_of_objects(comp, "properties", where)
    ]


def _licenses(d: Doc, comp: dict[str, Any], where: str) -> tuple[str, ...]:
    out: list[str] = []
    for choice in d.list_of_objects(comp, "licenses", where):
        if "expression" in choice:
            value = d.text(choice, "expression", f"{where}.licenses")
        else:
            lic = d.obj(choice.get("license") or {}, f"{where}.licenses[].license")
            value = d.text(lic, "id", f"{where}.licenses") or d.text(lic, "name", f"{where}.licenses")
        if value and value not in out:
            out.append(value)
    return tuple(out)


def _operating_system(d: Doc, comp: dict[str, Any], where: str, facts: dict[str, str]) -> OperatingSystem | None:
    family = d.text(comp, "name", where).strip().lower()
    if not family:
        return None
    props = dict(reversed(_props(d, comp, where)))
    return OperatingSystem(
        family=family,
        version=d.text(comp, "version", where),
        name=props.get("garrison:os:name", "") or d.text(comp, "description", where),
        codename=props.get("garrison:os:codename", ""),
        eol=props.get("garrison:os:eol") == "true",
    )


def _artifact(d: Doc, name: str, metadata: dict[str, Any], root: dict[str, Any]) -> Artifact:
    props = _props(d, root, "metadata.component")

    def values(*keys: str) -> list[str]:
        return [v for k, v in props if k in keys and v]

    def first(*keys: str) -> str:
        found = values(*keys)
        return found[0] if found else ""

    layers = sorted((k, v) for k, v in props if k.startswith("garrison:image:layer:") and v)
    return Artifact(
        name=name,
        kind=ArtifactKind.SBOM,
        digest=first("garrison:image:digest"),
        image_id=first("garrison:image:id", "aquasecurity:trivy:ImageID"),
        repo_tags=tuple(values("garrison:image:repo_tag", "aquasecurity:trivy:RepoTag")),
        repo_digests=tuple(values("garrison:image:repo_digest", "aquasecurity:trivy:RepoDigest")),
        created=d.text(metadata, "timestamp", "metadata"),
        architecture=first("garrison:image:architecture"),
        os_name=first("garrison:image:os"),
        layers=[Layer(digest="", diff_id=v) for _, v in layers],
    )
