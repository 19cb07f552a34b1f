"""Alpine package versions, ordered as apk-tools 2 (``src/version.c``) orders them.

Hand-written: there is no Python implementation of apk-tools' tokenizer. It is reproduced
state for state: numbers separated by ``.`` (a run of leading zeros after a dot is its own token
worth minus its length, so ``1.01 < 1.1``), one lowercase letter after a number (``1.2a``),
suffixes ``_alpha _beta _pre _rc`` (before the release) and ``_cvs _svn _git _hg _p`` (after),
each with an optional number, then ``-rN``. The comparison reads token values pairwise and, at
the first pair of differing *next token types*, the version that continues with a "later" kind
of token sorts first (``1.2 < 1.2.1`` but ``1.2_rc1 < 1.2 < 1.2_p1 < 1.2-r1 < 1.2a``) — except
that a pre-release suffix always sorts first. The key is the flat sequence
``value, rank(next type), value, ...`` ending with the rank of the end, so tuple order is
apk's order.
"""

from __future__ import annotations

from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_INVALID, _DIGIT_OR_ZERO, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _REVISION_NO, _END = range(-1, 7)
_PRE = ("alpha", "beta", "pre", "rc")
_POST = ("cvs", "svn", "git", "hg", "p")
#: rank of a *next token type* in the key: later kinds of continuation sort first
_RANK = {_END: 1, _REVISION_NO: 2, _SUFFIX_NO: 3, _SUFFIX: 4, _LETTER: 5, _DIGIT: 6, _DIGIT_OR_ZERO: 7}
_PRE_SUFFIX_RANK = 0
_DIGITS = "0123456789"
_ALLOWED_BACKWARDS = {(_DIGIT_OR_ZERO, _DIGIT), (_SUFFIX, _SUFFIX_NO), (_DIGIT, _LETTER)}


def _next_type(prev: int, s: str, i: int) -> tuple[int, int]:
    """apk's ``next_token``: the type of the token starting at ``s[i]`` and where it starts."""
    if i >= len(s):
        return _END, i
    c = s[i]
    if prev in (_DIGIT, _DIGIT_OR_ZERO) and "a" <= c <= "z":
        n = _LETTER
    elif prev == _LETTER and c in _DIGITS:
        n = _DIGIT
    elif prev == _SUFFIX and c in _DIGITS:
        n = _SUFFIX_NO
    else:
        if c == ".":
            n = _DIGIT_OR_ZERO
        elif c == "_":
            n = _SUFFIX
        elif c == "-" and s[i + 1 : i + 2] == "r":
            n = _REVISION_NO
            i += 1
        else:
            n = _INVALID
        i += 1
    if n < prev and (n, prev) not in _ALLOWED_BACKWARDS:
        n = _INVALID
    return n, i


def _digits(s: str, i: int) -> int:
    j = i
    while j < len(s) and s[j] in _DIGITS:
        j += 1
    return j


def apk_key(version: str) -> tuple[int, ...]:
    s = version.strip()
    if not s:
        raise InvalidVersion(f"invalid apk version {version!r}: empty")
    out: list[int] = []
    t, i = _DIGIT, 0
    while True:
        nt = _INVALID
        if i >= len(s):  # a trailing "." or "-r": apk reads one more empty token
            out += (0, _RANK[_END])
            return tuple(out)
        if t == _DIGIT_OR_ZERO and s[i] == "0":
            j = i
            while j < len(s) and s[j] == "0":
                j += 1
            value, nt = i - j, _DIGIT
        elif t in (_DIGIT, _DIGIT_OR_ZERO, _SUFFIX_NO, _REVISION_NO):
            j = _digits(s, i)
            value = int(s[i:j]) if j > i else 0
        elif t == _LETTER:
            value, j = ord(s[i]), i + 1
        elif t == _SUFFIX:
            for v, name in enumerate(_PRE):
                if s.startswith(name, i):
                    value, j = v - len(_PRE), i + len(name)
                    break
            else:
                for v, name in enumerate(_POST):
                    if s.startswith(name, i):
                        value, j = v, i + len(name)
                        break
                else:
                    raise InvalidVersion(f"invalid apk version {version!r}: unknown suffix at {s[i:]!r}")
        else:  # pragma: no cover - the loop never reads an invalid or end token
            raise AssertionError(t)
        out.append(value)
        i = j
        if i >= len(s):
            out.append(_RANK[_END])
            return tuple(out)
        if nt != _INVALID:
            t = nt
        else:
            t, i = _next_type(t, s, i)
            if t == _INVALID:
                raise InvalidVersion(f"invalid apk version {version!r}")
        if t == _SUFFIX:
            out.append(_PRE_SUFFIX_RANK if any(s.startswith(p, i) for p in _PRE) else _RANK[_SUFFIX])
        else:
            out.append(_RANK[t])


@register
class ApkScheme(VersionScheme):
    name: ClassVar[str] = "apk"

    def key(self, version: str) -> tuple[int, ...]:
        return apk_key(version)
