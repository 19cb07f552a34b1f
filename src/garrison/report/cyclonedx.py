"""CycloneDX 1.6 JSON: an SBOM (``sbom`` mode) or an SBOM with vulnerabilities and VEX analysis (scan mode).

The document is built as plain dicts in a fixed order rather than through cyclonedx-python-lib's
object model: serialising 5,000 components and 20,000 vulnerabilities through the library takes
several seconds, and its output order is not under our control. The result is checked against the
library's bundled 1.6 schema in strict mode (see :mod:`garrison.report.validate`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from garrison.model import CVSS, Finding, FindingKind, OperatingSystem, Package, ScanResult, Severity, Suppression
from garrison.report._common import (
    OS_TYPES,
    content_fingerprint,
    dump_json,
    image_reference,
    is_image,
    oci_purl,
    package_key,
    paused_gc,
    rfc3339,
    sorted_findings,
    sorted_packages,
    spdx_expression,
    spdx_license_id,
    stable_uuid,
    unique_refs,
)

SPEC_VERSION = "1.6"
PROP = "garrison"

_CVSS_METHOD = {"2.0": "CVSSv2", "3.0": "CVSSv3", "3.1": "CVSSv31", "4.0": "CVSSv4"}
_ANALYSIS_STATES = frozenset(
    {"resolved", "resolved_with_pedigree", "exploitable", "in_triage", "false_positive", "not_affected"}
)
_STATE_ALIASES = {"fixed": "resolved", "under_investigation": "in_triage", "affected": "exploitable"}
_JUSTIFICATIONS = frozenset(
    {
        "code_not_present",
        "code_not_reachable",
        "requires_configuration",
        "requires_dependency",
        "requires_environment",
        "protected_by_compiler",
        "protected_at_runtime",
        "protected_at_perimeter",
        "protected_by_mitigating_control",
    }
)
_CWE = re.compile(r"^CWE-(\d+)$")


def render_cyclonedx(result: ScanResult, *, vulnerabilities: bool = True) -> str:
    """The CycloneDX JSON text; ``vulnerabilities=False`` gives a plain SBOM."""
    with paused_gc():
        return dump_json(cyclonedx_document(result, vulnerabilities=vulnerabilities), record_depth=1)


def cyclonedx_document(result: ScanResult, *, vulnerabilities: bool = True) -> dict[str, Any]:
    packages = sorted_packages(result.packages)
    refs = unique_refs(packages)
    root_ref, root = _root_component(result)
    components: list[dict[str, Any]] = []
    os_ref = ""
    if result.os is not None:
        os_ref = str(stable_uuid("os", result.os.family, result.os.version))
        components.append(_os_component(os_ref, result.os))
    emitted: set[str] = set()
    for pkg in packages:
        ref = refs[package_key(pkg)]
        if ref not in emitted:  # the same package reported twice (same purl, file and layer) is one component
            emitted.add(ref)
            components.append(_component(pkg, ref))
    components.sort(key=lambda c: str(c["bom-ref"]))

    mode = "scan" if vulnerabilities else "sbom"
    findings = sorted_findings(result.findings)
    doc: dict[str, Any] = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{stable_uuid('cyclonedx', mode, *content_fingerprint(result, findings))}",
        "version": 1,
        "metadata": _metadata(result, root),
        "components": components,
        "dependencies": _dependencies(root_ref, os_ref, packages, refs),
    }
    if vulnerabilities:
        doc["vulnerabilities"] = _vulnerabilities(findings, refs)
    return doc


def _props(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": n, "value": v} for n, v in sorted(set(pairs)) if v != ""]


def _metadata(result: ScanResult, root: dict[str, Any]) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "application", "name": "garrison"}
    if result.tool_version:
        tool["version"] = result.tool_version
    meta: dict[str, Any] = {}
    created = rfc3339(result.created)
    if created:
        meta["timestamp"] = created
    meta["tools"] = {"components": [tool]}
    meta["component"] = root
    props = _props([(f"{PROP}:scanner", s) for s in result.scanners])
    if props:
        meta["properties"] = props
    return meta


def _root_component(result: ScanResult) -> tuple[str, dict[str, Any]]:
    a = result.artifact
    purl = oci_purl(a) if is_image(a) else ""
    ref = purl or str(stable_uuid("artifact", a.name, str(a.kind), a.digest))
    comp: dict[str, Any] = {
        "bom-ref": ref,
        "type": "container" if is_image(a) else "application",
        "name": image_reference(a) if is_image(a) else a.name,
    }
    if a.digest:
        comp["version"] = a.digest
    if purl:
        comp["purl"] = purl
    pairs = [(f"{PROP}:artifact:name", a.name), (f"{PROP}:artifact:kind", str(a.kind))]
    pairs += [
        (f"{PROP}:image:digest", a.digest),
        (f"{PROP}:image:id", a.image_id),
        (f"{PROP}:image:architecture", a.architecture),
        (f"{PROP}:image:os", a.os_name),
        (f"{PROP}:image:created", a.created),
    ]
    pairs += [(f"{PROP}:image:repo_tag", t) for t in a.repo_tags]
    pairs += [(f"{PROP}:image:repo_digest", d) for d in a.repo_digests]
    pairs += [(f"{PROP}:image:layer:{i:03d}", layer.diff_id) for i, layer in enumerate(a.layers)]
    comp["properties"] = _props(pairs)
    return ref, comp


def _os_component(ref: str, os_: OperatingSystem) -> dict[str, Any]:
    comp: dict[str, Any] = {"bom-ref": ref, "type": "operating-system", "name": os_.family, "version": os_.version}
    if os_.name:
        comp["description"] = os_.name
    pairs = [(f"{PROP}:os:codename", os_.codename), (f"{PROP}:os:name", os_.name)]
    if os_.eol:
        pairs.append((f"{PROP}:os:eol", "true"))
    props = _props(pairs)
    if props:
        comp["properties"] = props
    return comp


def licenses(values: tuple[str, ...]) -> list[dict[str, Any]]:
    """CycloneDX licence choices: SPDX ids as ``id``, other names as ``name``, one compound as ``expression``."""
    if len(values) == 1 and not spdx_license_id(values[0]) and spdx_expression(values[0]):
        return [{"expression": values[0].strip()}]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for value in values:
        value = value.strip()
        if not value or value in seen:
            continue
        seen.add(value)
        lid = spdx_license_id(value)
        out.append({"license": {"id": lid} if lid else {"name": value}})
    return out


def _component(pkg: Package, ref: str) -> dict[str, Any]:
    comp: dict[str, Any] = {"bom-ref": ref, "type": "library"}
    if pkg.namespace and pkg.type not in OS_TYPES:
        comp["group"] = pkg.namespace
    comp["name"] = pkg.name
    if pkg.version:
        comp["version"] = pkg.version
    if pkg.dev:
        comp["scope"] = "excluded"
    elif pkg.optional:
        comp["scope"] = "optional"
    lic = licenses(pkg.licenses)
    if lic:
        comp["licenses"] = lic
    if pkg.purl:
        comp["purl"] = pkg.purl
    pairs = [
        (f"{PROP}:layer:diff_id", pkg.layer or ""),
        (f"{PROP}:package:path", pkg.path),
        (f"{PROP}:package:cataloger", pkg.cataloger),
        (f"{PROP}:package:source_name", pkg.source_name or ""),
        (f"{PROP}:package:source_version", pkg.source_version or ""),
        (f"{PROP}:package:arch", pkg.arch or ""),
        (f"{PROP}:package:epoch", "" if pkg.epoch is None else str(pkg.epoch)),
        (f"{PROP}:package:type", pkg.type),
    ]
    if pkg.namespace:
        pairs.append((f"{PROP}:package:namespace", pkg.namespace))
    if pkg.dev:
        pairs.append((f"{PROP}:package:dev", "true"))
    if pkg.optional:
        pairs.append((f"{PROP}:package:optional", "true"))
    comp["properties"] = _props(pairs)
    return comp


def _dependencies(
    root_ref: str, os_ref: str, packages: list[Package], refs: dict[tuple[str, str, str], str]
) -> list[dict[str, Any]]:
    top: set[str] = set()
    under_os: set[str] = set()
    for pkg in packages:
        ref = refs[package_key(pkg)]
        (under_os if os_ref and pkg.type in OS_TYPES else top).add(ref)
    if os_ref:
        top.add(os_ref)
    deps = [{"ref": root_ref, "dependsOn": sorted(top)}]
    if os_ref:
        deps.append({"ref": os_ref, "dependsOn": sorted(under_os)})
    return sorted(deps, key=lambda d: str(d["ref"]))


def _analysis_key(s: Suppression | None) -> tuple[str, ...]:
    return () if s is None else (s.state, s.justification, s.kind, s.source)


def _vulnerabilities(findings: list[Finding], refs: dict[tuple[str, str, str], str]) -> list[dict[str, Any]]:
    """``findings`` sorted; one entry per vulnerability id and suppression."""
    groups: dict[tuple[str, tuple[str, ...]], list[Finding]] = defaultdict(list)
    for f in findings:
        if f.kind == FindingKind.VULNERABILITY and f.vuln is not None:
            groups[(f.id, _analysis_key(f.suppression))].append(f)
    return [_vulnerability(groups[key], refs) for key in sorted(groups)]


def _severity_word(sev: Severity) -> str:
    return "unknown" if sev == Severity.UNKNOWN else sev.name.lower()


def _cvss_severity(c: CVSS) -> str:
    if c.version.startswith("2"):
        if c.score >= 7.0:
            return "high"
        if c.score >= 4.0:
            return "medium"
        return "low" if c.score > 0 else "none"
    sev = Severity.from_cvss_score(c.score)
    return "none" if sev == Severity.UNKNOWN else sev.name.lower()


def _rating(c: CVSS) -> dict[str, Any]:
    rating: dict[str, Any] = {"source": {"name": c.source or "unknown"}, "score": c.score}
    rating["severity"] = _cvss_severity(c)
    rating["method"] = _CVSS_METHOD.get(c.version, "other")
    if c.vector:
        rating["vector"] = c.vector
    return rating


def advisory_url(vid: str) -> str:
    """Public page of a vulnerability id, where its origin is known."""
    if vid.startswith("CVE-"):
        return f"https://nvd.nist.gov/vuln/detail/{vid}"
    if vid.startswith("GHSA-"):
        return f"https://github.com/advisories/{vid}"
    if vid.startswith(("PYSEC-", "GO-", "RUSTSEC-", "OSV-", "ALSA-", "ALBA-", "ALEA-")):
        return f"https://osv.dev/vulnerability/{vid}"
    if vid.startswith(("DSA-", "DLA-")):
        return f"https://security-tracker.debian.org/tracker/{vid}"
    return ""


def _source_name(vid: str) -> str:
    prefix = vid.split("-", 1)[0]
    return {"CVE": "NVD", "GHSA": "GitHub", "PYSEC": "OSV", "GO": "Go", "RUSTSEC": "RustSec"}.get(prefix, prefix)


def _vulnerability(group: list[Finding], refs: dict[tuple[str, str, str], str]) -> dict[str, Any]:
    first = group[0]
    assert first.vuln is not None
    match = first.vuln
    v = match.vulnerability
    entry: dict[str, Any] = {"id": v.id}
    source: dict[str, Any] = {"name": match.data_source or v.severity_source or "garrison"}
    url = match.data_source_url if match.data_source_url.startswith("http") else advisory_url(v.id)
    if url:
        source["url"] = url
    entry["source"] = source
    aliases = sorted({a for a in v.aliases if a and a != v.id})
    if aliases:
        entry["references"] = [
            {"id": a, "source": {"name": _source_name(a), **({"url": u} if (u := advisory_url(a)) else {})}}
            for a in aliases
        ]
    ratings = [_rating(c) for c in sorted(v.cvss, key=lambda c: (c.source, c.version, c.vector))]
    ratings.append(
        {
            "source": {"name": v.severity_source or "garrison"},
            "severity": _severity_word(first.severity),
            "method": "other",
            "justification": "severity Garrison reports for this vulnerability",
        }
    )
    entry["ratings"] = ratings
    cwes = sorted({int(m.group(1)) for c in v.cwes if (m := _CWE.match(c.strip().upper()))})
    if cwes:
        entry["cwes"] = cwes
    if v.summary or v.details:
        entry["description"] = v.summary or v.details
    if v.summary and v.details:
        entry["detail"] = v.details
    advice = sorted(
        {
            f"Upgrade {f.vuln.package.name} to {', '.join(f.vuln.fixed_versions)}"
            for f in group
            if f.vuln is not None and f.vuln.fixed_versions
        }
    )
    if advice:
        entry["recommendation"] = "; ".join(advice)
    advisories = sorted({r for r in v.references if r.startswith(("http://", "https://"))})
    if advisories:
        entry["advisories"] = [{"url": r} for r in advisories]
    published, updated = rfc3339(v.published), rfc3339(v.modified)
    if published:
        entry["published"] = published
    if updated:
        entry["updated"] = updated
    if first.suppression is not None:
        entry["analysis"] = _analysis(first.suppression)
    entry["affects"] = _affects(group, refs)
    pairs = [(f"{PROP}:status", str(f.vuln.status)) for f in group if f.vuln is not None]
    pairs += [(f"{PROP}:data_source", f.vuln.data_source) for f in group if f.vuln is not None]
    props = _props(pairs)
    if props:
        entry["properties"] = props
    return entry


def _analysis(s: Suppression) -> dict[str, Any]:
    state = _STATE_ALIASES.get(s.state, s.state)
    analysis: dict[str, Any] = {"state": state if state in _ANALYSIS_STATES else "not_affected"}
    if s.justification in _JUSTIFICATIONS:
        analysis["justification"] = s.justification
    where = f"{s.kind} {s.source}".strip()
    text = s.justification or "suppressed"
    analysis["detail"] = f"{text} (suppressed by {where})" if where else text
    return analysis


def _affects(group: list[Finding], refs: dict[tuple[str, str, str], str]) -> list[dict[str, Any]]:
    by_ref: dict[str, list[dict[str, str]]] = {}
    for f in group:
        assert f.vuln is not None
        ref = refs.get(package_key(f.vuln.package), f.vuln.package.bom_ref)
        versions = by_ref.setdefault(ref, [])
        wanted = [{"version": f.vuln.installed_version, "status": "affected"}] if f.vuln.installed_version else []
        wanted += [{"version": fv, "status": "unaffected"} for fv in f.vuln.fixed_versions if fv]
        for version in wanted:
            if version not in versions:
                versions.append(version)
    out: list[dict[str, Any]] = []
    for ref in sorted(by_ref):
        item: dict[str, Any] = {"ref": ref}
        if by_ref[ref]:
            item["versions"] = by_ref[ref]
        out.append(item)
    return out
