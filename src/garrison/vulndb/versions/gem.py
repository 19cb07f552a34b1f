"""RubyGems versions, ordered as ``Gem::Version#<=>`` orders them, and gem requirements.

``-`` becomes ``.pre.``; segments are runs of digits (numbers) and of letters (strings, which
make the version a prerelease and sort before any number); trailing zeros of the release part
and of the prerelease part are dropped (``canonical_segments``); the shorter list is padded
with zeros. Hand-written because no Python package implements Gem::Version.

The key run-length encodes zeros so that padding compares correctly: each non-zero segment
becomes ``(2, -zeros_before, n)`` for a number or ``(0, zeros_before, s)`` for a string, and the
end ``(1,)`` sits between the two, as an endless run of zeros does.
"""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_PATTERN = re.compile(r"\s*([0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?\s*")
_SEGMENTS = re.compile(r"[0-9]+|[a-zA-Z]+").findall
_REQUIREMENT = re.compile(r"\s*(=|!=|>=|<=|>|<|~>)?\s*(\S+)\s*")
_END: tuple[int] = (1,)

Segment = int | str
GemKey = tuple[tuple[int, int, Segment] | tuple[int], ...]


def segments(version: str) -> list[Segment]:
    m = _PATTERN.fullmatch(version)
    if m is None:
        raise InvalidVersion(f"invalid gem version {version!r}")
    text = (m.group(1) or "0").replace("-", ".pre.")
    return [int(s) if s[0] <= "9" else s for s in _SEGMENTS(text)]


def canonical_segments(segs: list[Segment]) -> list[Segment]:
    first_str = next((i for i, s in enumerate(segs) if isinstance(s, str)), len(segs))
    out: list[Segment] = []
    for part in (segs[:first_str], segs[first_str:]):
        while part and part[-1] == 0:
            part.pop()
        out += part
    return out


def gem_key(version: str) -> GemKey:
    out: list[tuple[int, int, Segment] | tuple[int]] = []
    zeros = 0
    for seg in canonical_segments(segments(version)):
        if isinstance(seg, str):
            out.append((0, zeros, seg))
            zeros = 0
        elif seg == 0:
            zeros += 1
        else:
            out.append((2, -zeros, seg))
            zeros = 0
    out.append(_END)
    return tuple(out)


def _release(segs: list[Segment]) -> list[Segment]:
    segs = list(segs)
    while any(isinstance(s, str) for s in segs):
        segs.pop()
    return segs


def _bump(version: str) -> str:
    segs = _release(segments(version))
    if len(segs) > 1:
        segs.pop()
    last = segs[-1]
    assert isinstance(last, int)
    segs[-1] = last + 1
    return ".".join(map(str, segs))


@register
class GemScheme(VersionScheme):
    name: ClassVar[str] = "gem"

    def key(self, version: str) -> GemKey:
        return gem_key(version)

    def satisfies(self, version: str, constraint: str) -> bool:
        """Comma-separated gem requirements (``>= 1.0, < 2``, ``~> 2.1``, ``!= 1.5``); all must hold."""
        v = gem_key(version)
        for term in constraint.split(","):
            m = _REQUIREMENT.fullmatch(term)
            if m is None:
                raise InvalidVersion(f"bad gem requirement {term.strip()!r} in {constraint!r}")
            op, text = m.group(1) or "=", m.group(2)
            r = gem_key(text)
            if op == "~>":
                release = ".".join(map(str, _release(segments(version)))) or "0"
                ok = v >= r and gem_key(release) < gem_key(_bump(text))
            else:
                ok = {"=": v == r, "!=": v != r, ">": v > r, "<": v < r, ">=": v >= r, "<=": v <= r}[op]
            if not ok:
                return False
        return True
