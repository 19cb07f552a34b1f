"""Composer (Packagist) versions and constraints.

Versions are normalised as Composer's ``VersionParser::normalize`` does (``v1.2`` ->
``1.2.0.0``, ``1.0-beta2`` -> ``1.0.0.0-beta2``, ``1.0.x-dev`` -> ``1.0.9999999.9999999-dev``,
stability aliases ``a b p pl rc`` expanded) and then ordered as PHP's ``version_compare``
orders the normalised string: four numbers, then ``dev < alpha < beta < RC < (a number) <
patch``; a number left over in the longer version makes it greater, a word left over is
compared with a number. Branches (``dev-main``) have no order and are rejected.

``satisfies`` takes Composer constraints: ``||`` (or ``|``) alternatives of ``,``- or
space-separated comparators; ``^``, ``~``, wildcards (``1.0.*``) and hyphen ranges expand to
bounds with ``-dev`` lower ends, as Composer expands them. Hand-written because Composer's
semantics are not available in Python.
"""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_MODIFIER = r"[._-]?(?:(stable|beta|b|rc|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?"
_CLASSICAL = re.compile(r"v?(\d{1,5}|x|\*)(\.(?:\d+|x|\*))?(\.(?:\d+|x|\*))?(\.(?:\d+|x|\*))?" + _MODIFIER, re.I)
_DATE = re.compile(r"v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3}){0,2})" + _MODIFIER, re.I)
_STABILITY = {"a": "alpha", "alpha": "alpha", "b": "beta", "beta": "beta", "rc": "RC", "p": "patch",
              "pl": "patch", "patch": "patch", "stable": ""}  # fmt: skip
#: PHP version_compare's special forms (first prefix match wins); a number ranks 4
_FORMS = (("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3), ("#", 4),
          ("pl", 5), ("p", 5))  # fmt: skip
_END = (4, -1)
_WILD = "9999999"

ComposerKey = tuple[tuple[int, int], ...]


def normalize(version: str) -> str:
    text = version.strip()
    m = _CLASSICAL.fullmatch(text)
    if m is not None:
        nums = [(g or "").lstrip(".") for g in m.groups()[:4]]
        wild = next((i for i, n in enumerate(nums) if n in ("x", "X", "*")), None)
        if wild is not None:  # a branch alias such as 1.0.x-dev: every later number is a wildcard
            if any(nums[wild + 1 :]):
                raise InvalidVersion(f"invalid composer version {version!r}")
            nums = nums[:wild] + [_WILD] * (4 - wild)
        nums = [n or "0" for n in nums]
        head = ".".join(nums)
        mod_index = 4
    else:
        m = _DATE.fullmatch(text)
        if m is None:
            raise InvalidVersion(f"invalid composer version {version!r}")
        head = re.sub(r"\D", ".", m.group(1))
        mod_index = 1
    stability, number, dev = m.group(mod_index + 1), m.group(mod_index + 2), m.group(mod_index + 3)
    if stability:
        word = _STABILITY[stability.lower()]
        if word:
            head += "-" + word + (number.lstrip(".-") if number else "")
    if dev:
        head += "-dev"
    return head


def _form_rank(word: str) -> int:
    for name, rank in _FORMS:
        if word.startswith(name):
            return rank
    return -6


def composer_key(version: str) -> ComposerKey:
    """``version_compare`` order of the normalised version as a tuple."""
    text = normalize(version)
    # PHP canonicalisation: separators -_+ become ".", and a dot goes between letters and digits
    text = re.sub(r"[-_+]", ".", text)
    parts = re.findall(r"\d+|[^\d.]+", text)
    out: list[tuple[int, int]] = []
    for part in parts:
        if part[0].isdigit():
            out.append((4, int(part)))
        else:
            out.append((_form_rank(part), 0))
    out.append(_END)
    return tuple(out)


def _bound(version: str, op: str) -> tuple[str, ComposerKey]:
    return (op, composer_key(version))


def _next(parts: list[int], index: int) -> str:
    bumped = [*parts[:index], parts[index] + 1] + [0] * (3 - index)
    return ".".join(map(str, bumped)) + "-dev"


def _numbers(text: str, constraint: str) -> list[int]:
    m = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?", text)
    if m is None:
        raise InvalidVersion(f"bad composer constraint {text!r} in {constraint!r}")
    return [int(g) for g in m.groups() if g is not None]


def _expand(term: str, constraint: str) -> list[tuple[str, ComposerKey]]:
    if term in ("*", "x", "X"):
        return []
    m = re.fullmatch(r"(\^|~|>=|<=|!=|==|=|<>|>|<)?\s*(.+)", term)
    if m is None:  # pragma: no cover - the pattern matches any non-empty term
        raise InvalidVersion(f"bad composer constraint {term!r}")
    op, text = m.group(1) or "", m.group(2)
    if op in ("^", "~"):
        base = re.sub(r"[-@].*$", "", text)
        nums = _numbers(base, constraint)
        low = _bound(text, ">=") if "-" in text else _bound(".".join(map(str, nums)) + "-dev", ">=")
        if op == "~":
            index = max(len(nums) - 2, 0)
        else:
            index = next((i for i, n in enumerate(nums) if n != 0), len(nums) - 1)
            index = min(index, 2)
        full = [*nums, 0, 0, 0, 0][:4]
        return [low, ("<", composer_key(_next(full, index)))]
    wild = re.fullmatch(r"v?(\d+(?:\.\d+)*)\.[x*]", text, re.I)
    if wild is not None and op in ("", "=", "=="):
        nums = [int(n) for n in wild.group(1).split(".")]
        full = [*nums, 0, 0, 0, 0][:4]
        return [_bound(".".join(map(str, nums)) + "-dev", ">="), ("<", composer_key(_next(full, len(nums) - 1)))]
    key = composer_key(text)
    has_stability = bool(re.search(r"[a-z]", normalize(text), re.I))
    if op in ("<", ">=") and not has_stability:
        key = composer_key(normalize(text) + "-dev")
    return [({"": "==", "=": "==", "<>": "!="}.get(op, op), key)]


def _hyphen(low: str, high: str, constraint: str) -> list[tuple[str, ComposerKey]]:
    lower = _bound(low + ("" if re.search(r"[a-z]", low[1:], re.I) else "-dev"), ">=")
    nums = _numbers(re.sub(r"[-@].*$", "", high), constraint)
    if len(nums) < 3 and not re.search(r"[a-z]", high[1:], re.I):
        full = [*nums, 0, 0, 0, 0][:4]
        return [lower, ("<", composer_key(_next(full, len(nums) - 1)))]
    return [lower, ("<=", composer_key(high))]


def parse_constraint(constraint: str) -> list[list[tuple[str, ComposerKey]]]:
    out: list[list[tuple[str, ComposerKey]]] = []
    for alternative in re.split(r"\s*\|\|?\s*", constraint.strip()):
        hy = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alternative)
        if hy is not None:
            out.append(_hyphen(hy.group(1), hy.group(2), constraint))
            continue
        terms = re.split(r"\s*,\s*|\s+", re.sub(r"(\^|~|>=|<=|!=|==|<>|=|>|<)\s+", r"\1", alternative))
        comps: list[tuple[str, ComposerKey]] = []
        for term in terms:
            if term:
                comps += _expand(term, constraint)
        out.append(comps)
    return out


def _apply(op: str, a: ComposerKey, b: ComposerKey) -> bool:
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


@register
class ComposerScheme(VersionScheme):
    name: ClassVar[str] = "composer"

    def key(self, version: str) -> ComposerKey:
        return composer_key(version)

    def satisfies(self, version: str, constraint: str) -> bool:
        v = composer_key(version)
        return any(all(_apply(op, v, k) for op, k in comps) for comps in parse_constraint(constraint))
