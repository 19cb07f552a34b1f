"""Helpers shared by the renderers: stable ordering, identifiers, licences, severities, counts."""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from garrison.model import Artifact, ArtifactKind, Finding, FindingKind, Package, ScanResult, Severity

#: purl types whose packages belong to the operating system
OS_TYPES = frozenset({"deb", "apk", "rpm"})

#: namespace of every deterministic UUID Garrison derives (uuid5 of "garrison.dev")
GARRISON_NS = uuid.uuid5(uuid.NAMESPACE_DNS, "garrison.dev")

IMAGE_KINDS = frozenset(
    {ArtifactKind.DOCKER_ARCHIVE, ArtifactKind.OCI_LAYOUT, ArtifactKind.OCI_ARCHIVE, ArtifactKind.REGISTRY}
)

_SEVERITY_ORDER = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.UNKNOWN)


def is_image(artifact: Artifact) -> bool:
    """An image from any source (a root filesystem counts: it is an unpacked image)."""
    return artifact.kind in IMAGE_KINDS or artifact.kind == ArtifactKind.ROOTFS


def package_sort_key(pkg: Package) -> tuple[str, str, str, str, str, str]:
    return (pkg.type, pkg.namespace or "", pkg.name, pkg.version, pkg.path, pkg.bom_ref)


def sorted_packages(packages: Iterable[Package]) -> list[Package]:
    return sorted(packages, key=package_sort_key)


def finding_sort_key(f: Finding) -> tuple[str, int, str, str, str, str]:
    pkg = f.vuln.package if f.vuln else None
    where = pkg.path if pkg else (f.secret.path if f.secret else "")
    line = f"{f.secret.line:09d}" if f.secret else ""
    return (f.target, -int(f.severity), f.id, pkg.name if pkg else "", where, line)


def sorted_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=finding_sort_key)


def package_key(pkg: Package) -> tuple[str, str, str]:
    """Identity of a package within one result: its bom-ref, the file it came from and its layer."""
    return (pkg.bom_ref, pkg.path, pkg.layer or "")


def unique_refs(packages: list[Package]) -> dict[tuple[str, str, str], str]:
    """A unique bom-ref for every package; a purl seen twice (two lock files) gets a stable suffix."""
    refs: dict[tuple[str, str, str], str] = {}
    used: set[str] = set()
    for pkg in packages:
        key = package_key(pkg)
        if key in refs:
            continue
        ref = pkg.bom_ref
        if ref in used:
            ref = f"{ref}#{short_hash(pkg.path, pkg.layer or '')}"
            n = 1
            while ref in used:
                n += 1
                ref = f"{pkg.bom_ref}#{short_hash(pkg.path, pkg.layer or '', str(n))}"
        used.add(ref)
        refs[key] = ref
    return refs


def short_hash(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:length]


def stable_uuid(*parts: str) -> uuid.UUID:
    """A UUID that depends only on ``parts`` (uuid5 in Garrison's namespace)."""
    return uuid.uuid5(GARRISON_NS, "\x00".join(parts))


def content_fingerprint(result: ScanResult, findings: list[Finding] | None = None) -> list[str]:
    """What identifies a result's content, for deterministic serial numbers and namespaces.

    ``findings`` may pass ``result.findings`` already sorted, to save sorting them twice.
    """
    a = result.artifact
    parts = [a.name, str(a.kind), a.digest, a.image_id, result.created, result.tool_version]
    if result.os is not None:
        parts.append(f"os:{result.os.family}:{result.os.version}")
    parts.extend(f"pkg:{pkg.bom_ref}:{pkg.path}:{pkg.layer or ''}" for pkg in sorted_packages(result.packages))
    for f in findings if findings is not None else sorted_findings(result.findings):
        pkg_ref = f.vuln.package.bom_ref if f.vuln else ""
        state = f.suppression.state if f.suppression else ""
        parts.append(f"finding:{f.kind}:{f.id}:{pkg_ref}:{f.target}:{state}")
    return parts


def short_layer(diff_id: str | None, length: int = 12) -> str:
    if not diff_id:
        return ""
    return diff_id.split(":", 1)[-1][:length]


def image_reference(artifact: Artifact) -> str:
    """The best human reference to the scanned artifact: first tag, else its name."""
    return artifact.repo_tags[0] if artifact.repo_tags else artifact.name


def split_reference(ref: str) -> tuple[str, str]:
    """``registry/repo:tag`` -> (``registry/repo``, ``tag``); a digest reference keeps no tag."""
    ref = ref.split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, ""


def oci_purl(artifact: Artifact) -> str:
    """``pkg:oci`` purl of an image with a known manifest digest, else ``""``."""
    if not artifact.digest or not artifact.digest.startswith("sha256:"):
        return ""
    from packageurl import PackageURL

    repo, tag = split_reference(image_reference(artifact))
    name = repo.rsplit("/", 1)[-1].strip().lower() or "image"  # packageurl drops a blank name
    qualifiers: dict[str, str] = {}
    if "/" in repo:
        qualifiers["repository_url"] = repo.lower()
    if tag:
        qualifiers["tag"] = tag
    if artifact.architecture:
        qualifiers["arch"] = artifact.architecture
    return str(PackageURL(type="oci", name=name, version=artifact.digest, qualifiers=qualifiers or None).to_string())


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {sev.name: counts.get(sev, 0) for sev in _SEVERITY_ORDER}


def summary(result: ScanResult) -> dict[str, Any]:
    """Counts for the JSON report and the table's closing line."""
    active = [f for f in result.findings if not f.suppressed]
    by_kind = Counter(str(f.kind) for f in active)
    return {
        "packages": len(result.packages),
        "findings": len(active),
        "suppressed": len(result.findings) - len(active),
        "by_severity": severity_counts(active),
        "by_kind": {kind.value: by_kind.get(kind.value, 0) for kind in FindingKind},
    }


def max_cvss(finding: Finding) -> float | None:
    if finding.vuln is None or not finding.vuln.vulnerability.cvss:
        return None
    return max(c.score for c in finding.vuln.vulnerability.cvss)


#: representative scores for a severity without a CVSS score (the middle of FIRST's bands)
SEVERITY_SCORE = {
    Severity.CRITICAL: 9.5,
    Severity.HIGH: 8.0,
    Severity.MEDIUM: 5.5,
    Severity.LOW: 2.0,
    Severity.UNKNOWN: 0.0,
}


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def rfc3339(value: str) -> str | None:
    """``value`` if it is a well-formed RFC 3339 timestamp, else ``None``."""
    if not value or not _RFC3339.match(value):
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value


@lru_cache(maxsize=1)
def _spdx_ids() -> dict[str, str]:
    """Lower-cased SPDX licence id -> id, from the list cyclonedx-python-lib validates against.

    ``cyclonedx.spdx.fixup_id`` does the same lookup, but importing that module also builds the
    whole ``license_expression`` symbol table (about 40 ms, a sixth of a warm ``garrison sbom``
    run), which only :func:`spdx_expression` needs, and only for some strings.
    """
    spec = importlib.util.find_spec("cyclonedx")
    path = Path(next(iter(spec.submodule_search_locations or ()), "")) if spec else Path()
    path = path / "schema" / "_res" / "spdx.SNAPSHOT.schema.json"
    if not path.is_file():  # a cyclonedx-python-lib that moved its data: ask the library
        from cyclonedx.schema._res import SPDX_JSON

        path = Path(SPDX_JSON)
    ids = json.loads(path.read_bytes()).get("enum", [])
    return {str(i).lower(): str(i) for i in ids}


@lru_cache(maxsize=8192)
def spdx_license_id(value: str) -> str | None:
    """The SPDX licence id ``value`` names (case-insensitively), else ``None``."""
    return _spdx_ids().get(value.strip().lower())


_EXPR_SPLIT = re.compile(r"[\s()]+")
_EXPR_OPERATORS = frozenset({"and", "or", "with"})


@lru_cache(maxsize=1)
def _licensing_keys() -> tuple[frozenset[str], tuple[str, ...]]:
    """Every licence key the SPDX ``Licensing`` of ``license_expression`` knows (lower case), and
    the few that contain spaces, read from the index that library builds its ``Licensing`` from."""
    spec = importlib.util.find_spec("license_expression")
    base = Path(next(iter(spec.submodule_search_locations or ()), "")) if spec else Path()
    index = json.loads((base / "data" / "scancode-licensedb-index.json").read_bytes())
    keys: set[str] = set()
    for lic in index:
        for key in (lic.get("spdx_license_key"), *(lic.get("other_spdx_license_keys") or ())):
            if key:
                keys.add(str(key).lower())
    return frozenset(keys), tuple(k for k in keys if _EXPR_SPLIT.search(k))


def _maybe_expression(value: str) -> bool:
    """False when ``value`` certainly is no valid expression: a word that is neither an operator
    nor a known key (``+`` suffix allowed) is an unknown key to ``license_expression`` too. This
    spares loading that library (about 35 ms) for the usual Debian names (``GPL-2+``, ``Expat``)."""
    try:
        keys, spaced = _licensing_keys()
    except (OSError, ValueError):
        return True
    low = value.lower()
    if any(k in low for k in spaced):
        return True
    for word in _EXPR_SPLIT.split(low):
        if word and word not in _EXPR_OPERATORS and word not in keys and word.rstrip("+") not in keys:
            return False
    return True


@lru_cache(maxsize=8192)
def spdx_expression(value: str) -> bool:
    """True when ``value`` is a valid SPDX licence expression made of listed ids."""
    if not _maybe_expression(value):
        return False
    from cyclonedx.spdx import is_expression

    return bool(is_expression(value.strip()))


def license_ref(name: str) -> str:
    """``LicenseRef-`` id for a licence name that is not an SPDX id (letters, digits, ``.`` and ``-``)."""
    cleaned = re.sub(r"[^A-Za-z0-9.\-]+", "-", name.strip()).strip("-")
    return f"LicenseRef-{cleaned or 'unknown'}-{short_hash(name, length=8)}"


def dump_json(obj: Any, *, record_depth: int) -> str:
    """JSON text with objects indented by two spaces and list items one per line.

    Items of arrays nested ``record_depth`` or more levels deep (components, vulnerabilities,
    results, properties, ...) are written each on a single line by the C encoder:
    ``json.dumps(indent=...)`` runs the pure-Python encoder and takes seconds on a 20,000-finding
    report, and one record per line keeps diffs of reports readable. Key order is insertion order.
    """
    parts: list[str] = []
    _dump(obj, record_depth, 0, parts)
    parts.append("\n")
    return "".join(parts)


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def _dump(obj: Any, record_depth: int, depth: int, out: list[str]) -> None:
    pad = "  " * (depth + 1)
    if isinstance(obj, dict) and obj:
        out.append("{")
        for i, (key, value) in enumerate(obj.items()):
            out.append(("," if i else "") + "\n" + pad + json.dumps(str(key), ensure_ascii=False) + ": ")
            _dump(value, record_depth, depth + 1, out)
        out.append("\n" + "  " * depth + "}")
    elif isinstance(obj, list) and obj and any(isinstance(v, dict | list) for v in obj):
        out.append("[")
        for i, value in enumerate(obj):
            out.append(("," if i else "") + "\n" + pad)
            if depth >= record_depth:
                out.append(_compact(value))
            else:
                _dump(value, record_depth, depth + 1, out)
        out.append("\n" + "  " * depth + "]")
    else:
        out.append(_compact(obj))


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large report is built.

    Building a report allocates hundreds of thousands of small dicts and no cycles; generational
    collections triggered by those allocations otherwise take about half the rendering time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
