"""SPDX 2.3 JSON: the artifact, its operating system and every package, related by DESCRIBES/CONTAINS.

Written as plain dicts (no SPDX library is a project dependency, and the document is small and
fixed-shape); checked against the official 2.3 schema in tests. Identifiers and the namespace are
derived from content, so equal input gives byte-identical output. Garrison's own per-package facts
(layer, path, source package) travel as annotations ``garrison:<key>=<value>`` so they can be read back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from garrison.model import ArtifactKind, Package, ScanResult
from garrison.report._common import (
    OS_TYPES,
    content_fingerprint,
    dump_json,
    image_reference,
    is_image,
    license_ref,
    oci_purl,
    package_key,
    paused_gc,
    short_hash,
    sorted_packages,
    spdx_expression,
    spdx_license_id,
    stable_uuid,
)

SPDX_VERSION = "SPDX-2.3"
NOASSERTION = "NOASSERTION"
EPOCH = "1970-01-01T00:00:00Z"


def render_spdx(result: ScanResult) -> str:
    with paused_gc():
        return dump_json(spdx_document(result), record_depth=1)


class _Licenses:
    """Builds licence expressions; names that are not SPDX ids become ``LicenseRef-`` entries."""

    def __init__(self) -> None:
        self.extracted: dict[str, str] = {}

    def term(self, value: str) -> str:
        value = value.strip()
        lid = spdx_license_id(value)
        if lid:
            return lid
        if spdx_expression(value):
            return f"({value})"
        ref = license_ref(value)
        self.extracted[ref] = value
        return ref

    def expression(self, values: tuple[str, ...]) -> str:
        terms: list[str] = []
        for v in values:
            if v.strip() and (t := self.term(v)) not in terms:
                terms.append(t)
        return " AND ".join(terms) if terms else NOASSERTION

    def infos(self) -> list[dict[str, Any]]:
        return [
            {"licenseId": ref, "name": name, "extractedText": name} for ref, name in sorted(self.extracted.items())
        ]


def _spdx_id(prefix: str, *parts: str) -> str:
    return f"SPDXRef-{prefix}-{short_hash(*parts)}"


def _annotations(created: str, tool: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"annotationDate": created, "annotationType": "OTHER", "annotator": f"Tool: {tool}", "comment": f"garrison:{k}={v}"}
        for k, v in sorted(pairs)
        if v
    ]


def spdx_document(result: ScanResult) -> dict[str, Any]:
    a = result.artifact
    tool = f"garrison-{result.tool_version or 'unknown'}"
    created = result.created or EPOCH
    lic = _Licenses()
    fingerprint = content_fingerprint(result)
    kind = "image" if is_image(a) else "filesystem" if a.kind == ArtifactKind.FILESYSTEM else str(a.kind)
    namespace = f"https://garrison.invalid/spdx/{kind}/{quote(a.name, safe='')}-{stable_uuid('spdx', *fingerprint)}"

    root_id = _spdx_id("Artifact", a.name, str(a.kind), a.digest)
    root: dict[str, Any] = {
        "SPDXID": root_id,
        "name": image_reference(a) if is_image(a) else a.name,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER" if is_image(a) else "APPLICATION",
    }
    if a.digest:
        root["versionInfo"] = a.digest
    purl = oci_purl(a) if is_image(a) else ""
    if purl:
        root["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]
    pairs = [("artifact:name", a.name), ("artifact:kind", str(a.kind)), ("image:digest", a.digest)]
    pairs += [("image:id", a.image_id), ("image:architecture", a.architecture), ("image:created", a.created)]
    pairs += [("image:repo_tag", t) for t in a.repo_tags] + [("image:repo_digest", d) for d in a.repo_digests]
    pairs += [(f"image:layer:{i:03d}", layer.diff_id) for i, layer in enumerate(a.layers)]
    ann = _annotations(created, tool, pairs)
    if ann:
        root["annotations"] = ann

    packages: list[dict[str, Any]] = [root]
    relationships: list[dict[str, str]] = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root_id}
    ]
    os_id = ""
    if result.os is not None:
        os_ = result.os
        os_id = _spdx_id("OperatingSystem", os_.family, os_.version)
        os_pkg: dict[str, Any] = {
            "SPDXID": os_id,
            "name": os_.family,
            "versionInfo": os_.version,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "primaryPackagePurpose": "OPERATING_SYSTEM",
        }
        if os_.name:
            os_pkg["description"] = os_.name
        os_ann = _annotations(created, tool, [("os:codename", os_.codename), ("os:name", os_.name)])
        if os_ann:
            os_pkg["annotations"] = os_ann
        packages.append(os_pkg)
        relationships.append({"spdxElementId": root_id, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id})

    used: set[str] = {root_id, os_id}
    for pkg in sorted_packages(result.packages):
        spdx_id = _spdx_id("Package", *package_key(pkg))
        n = 1
        while spdx_id in used:
            n += 1
            spdx_id = _spdx_id("Package", *package_key(pkg), str(n))
        used.add(spdx_id)
        packages.append(_package(pkg, spdx_id, lic, created, tool))
        parent = os_id if os_id and pkg.type in OS_TYPES else root_id
        relationships.append({"spdxElementId": parent, "relationshipType": "CONTAINS", "relatedSpdxElement": spdx_id})

    doc: dict[str, Any] = {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": a.name,
        "documentNamespace": namespace,
        "creationInfo": {"created": created, "creators": [f"Tool: {tool}"]},
        "packages": sorted(packages, key=lambda p: str(p["SPDXID"])),
        "relationships": sorted(
            relationships, key=lambda r: (r["relationshipType"] != "DESCRIBES", r["spdxElementId"], r["relatedSpdxElement"])
        ),
    }
    infos = lic.infos()
    if infos:
        doc["hasExtractedLicensingInfos"] = infos
    return doc


def _package(pkg: Package, spdx_id: str, lic: _Licenses, created: str, tool: str) -> dict[str, Any]:
    out: dict[str, Any] = {"SPDXID": spdx_id, "name": pkg.name}
    if pkg.version:
        out["versionInfo"] = pkg.version
    out["downloadLocation"] = NOASSERTION
    out["filesAnalyzed"] = False
    out["licenseConcluded"] = NOASSERTION
    out["licenseDeclared"] = lic.expression(pkg.licenses)
    out["copyrightText"] = NOASSERTION
    if pkg.purl:
        out["externalRefs"] = [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": pkg.purl}
        ]
    out["primaryPackagePurpose"] = "LIBRARY"
    if pkg.source_name:
        out["sourceInfo"] = f"built package from: {pkg.source_name} {pkg.source_version or ''}".rstrip()
    pairs = [
        ("layer:diff_id", pkg.layer or ""),
        ("package:path", pkg.path),
        ("package:cataloger", pkg.cataloger),
        ("package:source_name", pkg.source_name or ""),
        ("package:source_version", pkg.source_version or ""),
        ("package:arch", pkg.arch or ""),
        ("package:epoch", "" if pkg.epoch is None else str(pkg.epoch)),
        ("package:type", pkg.type),
        ("package:namespace", pkg.namespace or ""),
        ("package:dev", "true" if pkg.dev else ""),
        ("package:optional", "true" if pkg.optional else ""),
    ]
    ann = _annotations(created, tool, pairs)
    if ann:
        out["annotations"] = ann
    return out
