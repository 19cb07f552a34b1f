"""Shared decoding helpers: typed access that fails with :class:`InputError`, and purl -> Package."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from packageurl import PackageURL

from garrison.core.errors import InputError
from garrison.model import OperatingSystem, Package

logger = logging.getLogger(__name__)

OS_TYPES = frozenset({"deb", "apk", "rpm"})

#: property / annotation names (Garrison's own, Trivy's and Syft's) -> Package field
FACT_KEYS: dict[str, str] = {
    "garrison:layer:diff_id": "layer",
    "garrison:package:path": "path",
    "garrison:package:cataloger": "cataloger",
    "garrison:package:source_name": "source_name",
    "garrison:package:source_version": "source_version",
    "garrison:package:arch": "arch",
    "garrison:package:epoch": "epoch",
    "garrison:package:type": "type",
    "garrison:package:namespace": "namespace",
    "garrison:package:dev": "dev",
    "garrison:package:optional": "optional",
    "aquasecurity:trivy:LayerDiffID": "layer",
    "aquasecurity:trivy:FilePath": "path",
    "aquasecurity:trivy:SrcName": "source_name",
    "aquasecurity:trivy:SrcVersion": "trivy_src_version",
    "aquasecurity:trivy:SrcRelease": "trivy_src_release",
    "aquasecurity:trivy:SrcEpoch": "trivy_src_epoch",
    "syft:location:0:layerID": "layer",
    "syft:location:0:path": "path",
    "syft:package:foundBy": "cataloger",
}


class Doc:
    """Typed access to one decoded JSON document; every type mismatch is an InputError naming the file."""

    def __init__(self, name: str) -> None:
        self.name = name

    def error(self, message: str) -> InputError:
        return InputError(message, input_name=self.name)

    def obj(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{what} is not an object")
        return value

    def list_of_objects(self, parent: Mapping[str, Any], key: str, what: str) -> list[dict[str, Any]]:
        value = parent.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(f"{what}.{key} is not an array")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{what}.{key}[{i}] is not an object")
        return value

    def text(self, parent: Mapping[str, Any], key: str, what: str) -> str:
        value = parent.get(key)
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(f"{what}.{key} is not a string")
        return str(value)


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.lower())


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def package_from_purl(
    purl: str, *, doc_name: str, doc_version: str, facts: Mapping[str, str], licenses: tuple[str, ...], cataloger: str
) -> tuple[Package, OperatingSystem | None] | None:
    """A package from its purl and the document's facts, plus the OS its ``distro`` qualifier names.

    ``None`` when the purl cannot be parsed (a logged warning: one bad entry should not sink an SBOM).
    """
    try:
        parsed = PackageURL.from_string(purl)
    except ValueError as exc:
        logger.warning("skipping package with unparsable purl %r: %s", purl[:200], exc)
        return None
    qualifiers = dict(parsed.qualifiers or {})
    ptype = str(parsed.type or "").lower()
    name = str(parsed.name or "")
    purl_namespace = str(parsed.namespace or "")
    name_has_namespace = False
    if doc_name and purl_namespace and normalize_name(doc_name) == normalize_name(f"{purl_namespace}/{name}"):
        name, name_has_namespace = doc_name, True  # the document's name carries the scope (@babel/core)
    elif doc_name and normalize_name(doc_name) == normalize_name(name):
        name = doc_name  # keep the document's spelling (PyPI names are normalised in purls)
    version = str(parsed.version or "") or doc_version
    epoch = _int(facts["epoch"]) if facts.get("epoch") else None
    if ptype == "rpm":
        q_epoch = _int(str(qualifiers.get("epoch", "")))
        epoch = epoch if epoch is not None else q_epoch
        if epoch is not None and version and not re.match(r"^\d+:", version):
            version = f"{epoch}:{version}"
    namespace: str | None
    if "namespace" in facts:
        namespace = facts["namespace"] or None
    elif ptype in OS_TYPES or name_has_namespace:
        namespace = None
    else:
        namespace = purl_namespace.lstrip("@") or None
    source_name = facts.get("source_name") or None
    source_version = facts.get("source_version") or None
    upstream = str(qualifiers.get("upstream", ""))
    if not source_name and upstream:
        source_name, _, up_version = upstream.partition("@")
        source_version = source_version or up_version or None
    if source_name and not source_version and facts.get("trivy_src_version"):
        source_version = facts["trivy_src_version"]
        if facts.get("trivy_src_release"):
            source_version += f"-{facts['trivy_src_release']}"
        if facts.get("trivy_src_epoch") and facts["trivy_src_epoch"] != "0":
            source_version = f"{facts['trivy_src_epoch']}:{source_version}"
    pkg = Package(
        name=name,
        version=version,
        type=facts.get("type") or ptype,
        cataloger=facts.get("cataloger") or cataloger,
        path=facts.get("path", ""),
        layer=facts.get("layer") or None,
        namespace=namespace,
        source_name=source_name,
        source_version=source_version,
        arch=facts.get("arch") or (str(qualifiers["arch"]) if qualifiers.get("arch") else None),
        epoch=epoch,
        licenses=licenses,
        dev=facts.get("dev") == "true",
        optional=facts.get("optional") == "true",
        purl=purl,
    )
    return pkg, os_from_distro(str(qualifiers.get("distro", "")), str(parsed.namespace or ""))


def package_without_purl(
    *, doc_name: str, doc_version: str, facts: Mapping[str, str], licenses: tuple[str, ...], cataloger: str
) -> Package | None:
    """A package Garrison itself wrote without a purl (its type is in the facts); else ``None``."""
    if not facts.get("type") or not doc_name:
        return None
    return Package(
        name=doc_name,
        version=doc_version,
        type=facts["type"],
        cataloger=facts.get("cataloger") or cataloger,
        path=facts.get("path", ""),
        layer=facts.get("layer") or None,
        namespace=facts.get("namespace") or None,
        source_name=facts.get("source_name") or None,
        source_version=facts.get("source_version") or None,
        arch=facts.get("arch") or None,
        epoch=_int(facts["epoch"]) if facts.get("epoch") else None,
        licenses=licenses,
        dev=facts.get("dev") == "true",
        optional=facts.get("optional") == "true",
    )


def os_from_distro(distro: str, namespace: str) -> OperatingSystem | None:
    """``distro=debian-12`` -> debian 12; ``distro=bookworm`` with namespace debian -> debian bookworm."""
    if not distro:
        return None
    family, sep, version = distro.partition("-")
    if sep and version[:1].isdigit() and family:
        return OperatingSystem(family=family.lower(), version=version)
    if namespace:
        return OperatingSystem(family=namespace.lower(), version=distro)
    return None


def split_and(expression: str) -> list[str]:
    """Top-level ``AND`` terms of an SPDX licence expression, outer parentheses removed."""
    terms: list[str] = []
    depth = 0
    start = 0
    tokens = re.finditer(r"\(|\)|\s+AND\s+", expression)
    for tok in tokens:
        text = tok.group(0)
        if text == "(":
            depth += 1
        elif text == ")":
            depth = max(depth - 1, 0)
        elif depth == 0:
            terms.append(expression[start : tok.start()])
            start = tok.end()
    terms.append(expression[start:])
    out = []
    for term in terms:
        term = term.strip()
        while term.startswith("(") and term.endswith(")") and _balanced(term[1:-1]):
            term = term[1:-1].strip()
        if term:
            out.append(term)
    return out


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0
