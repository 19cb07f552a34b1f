"""Mutation: JSONPatch (RFC 6902) operations that add hardened securityContext defaults to
the pod specs of an object (a Pod or a workload's pod template).

Only absent fields are added; a value the user wrote is never changed (an explicit
``runAsNonRoot: false`` stays, and the validating policies then decide). Patch paths escape
``~`` and ``/`` as RFC 6901 requires.
"""

from __future__ import annotations

import copy
from typing import Any

from garrison.posture.k8s.objects import TEMPLATE_PATHS

Patch = list[dict[str, Any]]


def pointer(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _ensure(root: dict[str, Any], base: list[str | int], keys: list[str], value: Any, ops: Patch) -> None:
    """Add ``value`` at ``base + keys`` unless something is already there; the op adds the
    first missing mapping with the rest nested in it."""
    cur: Any = root
    for part in base:
        cur = cur[part]
    path: list[str | int] = list(base)
    for i, key in enumerate(keys):
        if not isinstance(cur, dict):
            return  # a non-mapping where a mapping belongs: leave it to validation
        if key not in cur or cur[key] is None:
            nested: Any = value
            for inner in reversed(keys[i + 1 :]):
                nested = {inner: nested}
            op = "replace" if key in cur else "add"
            ops.append({"op": op, "path": pointer([*path, key]), "value": copy.deepcopy(nested)})
            cur[key] = nested
            return
        cur = cur[key]
        path.append(key)


def _spec_paths(doc: dict[str, Any]) -> list[list[str | int]]:
    kind = doc.get("kind")
    if kind == "Pod":
        return [["spec"]] if isinstance(doc.get("spec"), dict) else []
    keys = TEMPLATE_PATHS.get(str(kind))
    if keys is None:
        return []
    cur: Any = doc
    for key in (*keys, "spec"):
        if not isinstance(cur, dict) or not isinstance(cur.get(key), dict):
            return []
        cur = cur[key]
    return [[*keys, "spec"]]


def mutation_patch(obj: dict[str, Any], settings: dict[str, Any]) -> Patch:
    """The JSONPatch that applies ``settings`` (the config's ``mutation`` section) to ``obj``."""
    if not settings:
        return []
    doc = copy.deepcopy(obj)
    ops: Patch = []
    for base in _spec_paths(doc):
        spec: Any = doc
        for part in base:
            spec = spec[part]
        if settings.get("runAsNonRoot"):
            _ensure(doc, base, ["securityContext", "runAsNonRoot"], True, ops)
        profile = settings.get("seccompProfile")
        if profile:
            _ensure(doc, base, ["securityContext", "seccompProfile"], {"type": profile}, ops)
        for field in ("initContainers", "containers"):
            containers = spec.get(field)
            if not isinstance(containers, list):
                continue
            for i, container in enumerate(containers):
                if not isinstance(container, dict):
                    continue
                cbase: list[str | int] = [*base, field, i]
                if settings.get("allowPrivilegeEscalation") is False:
                    _ensure(doc, cbase, ["securityContext", "allowPrivilegeEscalation"], False, ops)
                if settings.get("dropAllCapabilities"):
                    _ensure(doc, cbase, ["securityContext", "capabilities", "drop"], ["ALL"], ops)
                    sc = container.get("securityContext")
                    caps = sc.get("capabilities") if isinstance(sc, dict) else None
                    drop = caps.get("drop") if isinstance(caps, dict) else None
                    if isinstance(drop, list) and "ALL" not in drop:
                        ops.append({"op": "add", "path": pointer([*cbase, "securityContext", "capabilities", "drop", "-"]), "value": "ALL"})
                        drop.append("ALL")
    return ops
