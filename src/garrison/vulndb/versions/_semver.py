"""SemVer 2.0.0 parsing into ordered keys, shared by the semver, npm, cargo, go and nuget schemes.

Hand-written rather than using the ``semver`` package: the schemes need a hashable tuple key
(not an object compared in Python on every comparison) and small per-ecosystem differences
(a leading ``v``, NuGet's fourth number and case-insensitive labels, Go's shorthand forms).

A key is ``(major, minor, patch, release_flag, prerelease)``: ``release_flag`` is 1 for a
release and 0 for a prerelease, so ``1.0.0-rc.1 < 1.0.0``; prerelease identifiers become
``(0, n, "")`` when numeric and ``(1, 0, text)`` otherwise, so numeric ones sort first and a
shorter list of equal identifiers sorts first, exactly as SemVer section 11 says. Build
metadata is ignored.
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.interface import InvalidVersion

Ident = tuple[int, int, str]
SemverKey = tuple[int, int, int, int, tuple[Ident, ...]]

_CORE = r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_PRE = rf"(?:-({_IDENT}(?:\.{_IDENT})*))?"
_BUILD = r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
SEMVER_RE = re.compile(_CORE + _PRE + _BUILD)
_SEMVER = SEMVER_RE.fullmatch


def prerelease_key(pre: str, fold_case: bool = False) -> tuple[Ident, ...]:
    out: list[Ident] = []
    for ident in pre.split("."):
        if ident.isdigit():
            out.append((0, int(ident), ""))
        else:
            out.append((1, 0, ident.lower() if fold_case else ident))
    return tuple(out)


def make_key(major: int, minor: int, patch: int, pre: str | None) -> SemverKey:
    if pre:
        return (major, minor, patch, 0, prerelease_key(pre))
    return (major, minor, patch, 1, ())


def semver_key(version: str, scheme: str = "semver", allow_v: bool = True) -> SemverKey:
    """Key of a strict SemVer 2.0.0 version (optionally after a leading ``v``)."""
    text = version.strip()
    if allow_v and text[:1] in ("v", "V"):
        text = text[1:]
    m = _SEMVER(text)
    if m is None:
        raise InvalidVersion(f"invalid {scheme} version {version!r}")
    major, minor, patch, pre, _build = m.groups()
    return make_key(int(major), int(minor), int(patch), pre)


def bump(key: SemverKey, part: int) -> SemverKey:
    """The lowest prerelease (``-0``) of the next major (0), minor (1) or patch (2) release."""
    major, minor, patch = key[0], key[1], key[2]
    if part == 0:
        return (major + 1, 0, 0, 0, ((0, 0, ""),))
    if part == 1:
        return (major, minor + 1, 0, 0, ((0, 0, ""),))
    return (major, minor, patch + 1, 0, ((0, 0, ""),))
