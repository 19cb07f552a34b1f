"""crates.io versions (strict SemVer 2.0.0) and Cargo version requirements.

``satisfies`` follows the ``semver`` crate's ``VersionReq::matches``: comma-separated
comparators that must all match; a bare version means ``^``; operators ``=``, ``>``, ``>=``,
``<``, ``<=``, ``~``, ``^`` on partial versions (``1``, ``1.2``); wildcards ``*``, ``1.*``,
``1.2.*``. A prerelease version matches only if some comparator names a prerelease of the same
``major.minor.patch``. Hand-written because the semantics are the crate's, not PEP 440's.
"""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions._semver import SemverKey, prerelease_key, semver_key
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_NUM = r"0|[1-9]\d*"
_REQ = re.compile(
    rf"\s*(=|>=|>|<=|<|~|\^)?\s*(?:v)?({_NUM}|\*|x|X)(?:\.({_NUM}|\*|x|X)(?:\.({_NUM}|\*|x|X)"
    rf"(?:-({_ID}(?:\.{_ID})*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?\s*"
)

#: (op, major, minor, patch, prerelease flag+identifiers); None for a missing/wildcard part
Req = tuple[str, int | None, int | None, int | None, tuple[int, tuple[tuple[int, int, str], ...]]]
_RELEASE: tuple[int, tuple[tuple[int, int, str], ...]] = (1, ())


def parse_requirement(constraint: str) -> list[Req]:
    if not constraint.strip():
        raise InvalidVersion(f"empty cargo requirement {constraint!r}")
    out: list[Req] = []
    for term in constraint.split(","):
        m = _REQ.fullmatch(term)
        if m is None:
            raise InvalidVersion(f"bad cargo requirement {term.strip()!r} in {constraint!r}")
        op, *parts, pre = m.groups()
        nums = [None if p is None or p in "*xX" else int(p) for p in parts]
        wild = any(p is not None and p in "*xX" for p in parts)
        if wild:
            if op not in (None, "="):
                raise InvalidVersion(f"wildcard with an operator in cargo requirement {constraint!r}")
            if any(n is not None for n in nums[nums.index(None) :]):
                raise InvalidVersion(f"bad wildcard in cargo requirement {constraint!r}")
            op = "*"
        if pre and nums[2] is None:
            raise InvalidVersion(f"prerelease on a partial version in cargo requirement {constraint!r}")
        out.append((op or "^", nums[0], nums[1], nums[2], (0, prerelease_key(pre)) if pre else _RELEASE))
    return out


def _matches(req: Req, v: SemverKey) -> bool:
    op, major, minor, patch, pre = req
    vpre = (v[3], v[4])
    if op in ("=", "*"):
        return _exact(req, v, op == "=")
    if op == ">":
        return _greater(req, v)
    if op == ">=":
        return _exact(req, v, True) or _greater(req, v)
    if op == "<":
        return _less(req, v)
    if op == "<=":
        return _exact(req, v, True) or _less(req, v)
    if v[0] != major:
        return False
    if op == "~":
        if minor is not None and v[1] != minor:
            return False
        if patch is not None and v[2] != patch:
            return v[2] > patch
        return vpre >= pre
    if minor is None:
        return True
    if patch is None:
        return v[1] >= minor if major else v[1] == minor
    if major:
        if v[1] != minor:
            return v[1] > minor
        if v[2] != patch:
            return v[2] > patch
    elif minor:
        if v[1] != minor:
            return False
        if v[2] != patch:
            return v[2] > patch
    elif v[1] != minor or v[2] != patch:
        return False
    return vpre >= pre


def _exact(req: Req, v: SemverKey, check_pre: bool) -> bool:
    _, major, minor, patch, pre = req
    if (
        (major is not None and v[0] != major)
        or (minor is not None and v[1] != minor)
        or (patch is not None and v[2] != patch)
    ):
        return False
    return not check_pre or patch is None or (v[3], v[4]) == pre


def _greater(req: Req, v: SemverKey) -> bool:
    _, major, minor, patch, pre = req
    assert major is not None
    if v[0] != major:
        return v[0] > major
    if minor is None:
        return False
    if v[1] != minor:
        return v[1] > minor
    if patch is None:
        return False
    if v[2] != patch:
        return v[2] > patch
    return (v[3], v[4]) > pre


def _less(req: Req, v: SemverKey) -> bool:
    _, major, minor, patch, pre = req
    assert major is not None
    if v[0] != major:
        return v[0] < major
    if minor is None:
        return False
    if v[1] != minor:
        return v[1] < minor
    if patch is None:
        return False
    if v[2] != patch:
        return v[2] < patch
    return (v[3], v[4]) < pre


@register
class CargoScheme(VersionScheme):
    name: ClassVar[str] = "cargo"

    def key(self, version: str) -> SemverKey:
        return semver_key(version, "cargo", allow_v=False)

    def satisfies(self, version: str, constraint: str) -> bool:
        v = self.key(version)
        reqs = parse_requirement(constraint)
        if not all(_matches(r, v) for r in reqs):
            return False
        if v[3] == 1:
            return True
        return any(r[4][0] == 0 and (r[1], r[2], r[3]) == v[:3] for r in reqs)
