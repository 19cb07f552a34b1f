"""Generic range expressions: ``>=1.0, <2.0`` (comma or space = AND, ``||`` = OR)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from garrison.vulndb.versions.interface import VersionScheme

_TERM = re.compile(r"\s*(<=|>=|==|!=|<|>|=)?\s*([^\s,<>=!]+)\s*")


def satisfies_generic(scheme: VersionScheme, version: str, constraint: str) -> bool:
    key = scheme.key(version)
    for alternative in constraint.split("||"):
        ok = True
        terms = [t for t in re.split(r"[,\s]+(?=[<>=!])|,", alternative) if t.strip()]
        for term in terms:
            m = _TERM.fullmatch(term)
            if not m:
                from garrison.vulndb.versions.interface import InvalidVersion

                raise InvalidVersion(f"bad constraint term {term!r} in {constraint!r}")
            op, ver = m.group(1) or "=", m.group(2)
            other = scheme.key(ver)
            if not _apply(op, key, other):
                ok = False
                break
        if ok:
            return True
    return False


def _apply(op: str, a: Any, b: Any) -> bool:
    if op in ("=", "=="):
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)
