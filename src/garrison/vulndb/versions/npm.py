"""npm versions and node-semver ranges.

Versions are SemVer 2.0.0 (a leading ``v`` or ``=`` is accepted, as ``semver.clean`` does).
``satisfies`` follows node-semver 7 (``includePrerelease`` off, not loose): ``||`` alternatives,
whitespace-separated comparator sets, hyphen ranges, x-ranges (``1.x``, ``1.2.*``, ``*``, ``""``),
``~`` / ``~>`` and ``^`` desugared into ``>=``/``<`` pairs with ``-0`` upper bounds, and the
prerelease rule: a prerelease version only satisfies a set when some comparator of that set has
a prerelease on the same ``major.minor.patch``. Hand-written because no maintained PyPI package
implements node-semver's range grammar.
"""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions._semver import SemverKey, bump, make_key, semver_key
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_X = r"0|[1-9]\d*|x|X|\*"
_ID = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_PARTIAL = rf"[v=\s]*({_X})(?:\.({_X})(?:\.({_X})(?:-?({_ID}(?:\.{_ID})*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?"
_COMPARATOR = re.compile(rf"(~>?|\^|[<>]=?|=)?{_PARTIAL}")
_HYPHEN = re.compile(r"\s*(" + re.sub(r"\((?!\?)", "(?:", _PARTIAL) + r")\s+-\s+(.+?)\s*")
_OP_SPACE = re.compile(r"(~>?|\^|[<>]=?|=)\s+")
_ANY: list[tuple[str, SemverKey]] = []
_NOTHING: list[tuple[str, SemverKey]] = [("<", (0, 0, 0, 0, ((0, 0, ""),)))]

Comparator = tuple[str, SemverKey]


def npm_key(version: str) -> SemverKey:
    text = version.strip().lstrip("=v").strip()
    return semver_key(text, "npm", allow_v=False)


def _is_x(part: str | None) -> bool:
    return part is None or part in ("x", "X", "*")


def _parse_partial(text: str, constraint: str) -> tuple[str, str | None, str | None, str | None, str | None]:
    m = _COMPARATOR.fullmatch(text)
    if m is None:
        raise InvalidVersion(f"bad npm range term {text!r} in {constraint!r}")
    op, major, minor, patch, pre = m.groups()
    return op or "", major, minor, patch, pre


def _desugar(term: str, constraint: str) -> list[Comparator]:
    op, mj, mn, pt, pre = _parse_partial(term, constraint)
    if op in ("~", "~>", "^"):
        if _is_x(mj):
            return _ANY
        major = int(mj)  # type: ignore[arg-type]
        if _is_x(mn):
            return [(">=", make_key(major, 0, 0, None)), ("<", bump((major, 0, 0, 1, ()), 0))]
        minor = int(mn)  # type: ignore[arg-type]
        if _is_x(pt):
            low = make_key(major, minor, 0, None)
            return [(">=", low), ("<", bump(low, 0 if op == "^" and major else 1))]
        low = make_key(major, minor, int(pt), pre)  # type: ignore[arg-type]
        if op != "^":
            return [(">=", low), ("<", bump(low, 1))]
        return [(">=", low), ("<", bump(low, 0 if major else 1 if minor else 2))]
    if op == "=":
        op = ""
    if _is_x(mj):
        return _NOTHING if op in ("<", ">") else _ANY
    major = int(mj)  # type: ignore[arg-type]
    if not (_is_x(mn) or _is_x(pt)):
        return [(op or "=", make_key(major, int(mn), int(pt), pre))]  # type: ignore[arg-type]
    x_minor = _is_x(mn)
    minor = 0 if x_minor else int(mn)  # type: ignore[arg-type]
    if op:
        if op == ">":
            op = ">="
            major, minor = (major + 1, 0) if x_minor else (major, minor + 1)
        elif op == "<=":
            op = "<"
            major, minor = (major + 1, 0) if x_minor else (major, minor + 1)
        low = make_key(major, minor, 0, None)
        return [(op, (major, minor, 0, 0, ((0, 0, ""),)) if op == "<" else low)]
    low = make_key(major, minor, 0, None)
    return [(">=", low), ("<", bump(low, 0 if x_minor else 1))]


def _hyphen(low: str, high: str, constraint: str) -> list[Comparator]:
    _, mj, mn, pt, pre = _parse_partial(low, constraint)
    out: list[Comparator] = []
    if not _is_x(mj):
        out.append((">=", make_key(int(mj), 0 if _is_x(mn) else int(mn), 0 if _is_x(pt) else int(pt), pre)))  # type: ignore[arg-type]
    _, mj, mn, pt, pre = _parse_partial(high, constraint)
    if _is_x(mj):
        return out
    major = int(mj)  # type: ignore[arg-type]
    if _is_x(mn):
        out.append(("<", (major + 1, 0, 0, 0, ((0, 0, ""),))))
    elif _is_x(pt):
        out.append(("<", (major, int(mn) + 1, 0, 0, ((0, 0, ""),))))  # type: ignore[arg-type]
    else:
        out.append(("<=", make_key(major, int(mn), int(pt), pre)))  # type: ignore[arg-type]
    return out


def parse_range(constraint: str) -> list[list[Comparator]]:
    """The comparator sets of a node-semver range (an empty set matches every version)."""
    sets: list[list[Comparator]] = []
    for alternative in re.split(r"\s*\|\|\s*", constraint.strip()):
        m = _HYPHEN.fullmatch(alternative)
        if m is not None:
            sets.append(_hyphen(m.group(1), m.group(2), constraint))
            continue
        comparators: list[Comparator] = []
        for term in _OP_SPACE.sub(r"\1", alternative).split():
            comparators.extend(_desugar(term, constraint))
        sets.append(comparators)
    return sets


def _test(op: str, v: SemverKey, c: SemverKey) -> bool:
    if op == "=":
        return v == c
    if op == "<":
        return v < c
    if op == "<=":
        return v <= c
    if op == ">":
        return v > c
    return v >= c


def satisfies_sets(v: SemverKey, sets: list[list[Comparator]]) -> bool:
    for comparators in sets:
        if not all(_test(op, v, c) for op, c in comparators):
            continue
        if v[3] == 1 or any(c[3] == 0 and c[:3] == v[:3] for _, c in comparators):
            return True
    return False


@register
class NpmScheme(VersionScheme):
    name: ClassVar[str] = "npm"

    def key(self, version: str) -> SemverKey:
        return npm_key(version)

    def satisfies(self, version: str, constraint: str) -> bool:
        return satisfies_sets(npm_key(version), parse_range(constraint))
