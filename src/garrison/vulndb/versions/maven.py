"""Maven versions, ordered as Maven 3.8's ``ComparableVersion`` orders them.

Parsing follows ``ComparableVersion.parseVersion``: lower-cased, ``.`` separates items, ``-``
and every switch between digits and letters open a nested list, a qualifier after ``.`` is
treated as after ``-`` (``1.x == 1-x``), one-letter ``a b m`` before a digit mean alpha, beta,
milestone, ``ga final release`` are the empty qualifier and ``cr`` is ``rc``; then each list
drops trailing "null" items (``0``, ``""``, empty lists). Qualifiers order as ``alpha < beta <
milestone < rc < snapshot < "" < sp < anything else`` (the others by text). A shorter list is
compared with "nothing", and a list compares with nothing as its first non-null item does
(MNG-6964). Hand-written because no Python package implements ComparableVersion.

Maven's order is not a total order in rare mixed cases (``1.0.ga.1`` style items next to
padded ones), so the key is a small object comparing the parsed items with Maven's own rules
rather than a tuple; equal keys (and hashes) mean ``compareTo == 0``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_RELEASE = str(_QUALIFIERS.index(""))

#: an item is an int, a comparable-qualifier string, or a tuple of items (a list item)
Item = Any


def _string_item(value: str, followed_by_digit: bool) -> str:
    if followed_by_digit and len(value) == 1:
        value = _SHORT.get(value, value)
    value = _ALIASES.get(value, value)
    if value in _QUALIFIERS:
        return str(_QUALIFIERS.index(value))
    return f"{len(_QUALIFIERS)}-{value}"


def _item(is_digit: bool, text: str) -> Item:
    return int(text) if is_digit else _string_item(text, False)


def _is_null(item: Item) -> bool:
    return bool(item == 0 or item == _RELEASE or item == ())


def _normalize(items: list[Any]) -> tuple[Item, ...]:
    if items and isinstance(items[-1], list):
        items[-1] = _normalize(items[-1])
    i = len(items) - 1
    while i >= 0:
        last = items[i]
        if _is_null(last):
            del items[i]
        elif not isinstance(last, tuple):
            break
        i -= 1
    return tuple(items)


def parse(version: str) -> tuple[Item, ...]:
    text = version.strip().lower()
    if not text or any(c.isspace() for c in text):
        raise InvalidVersion(f"invalid maven version {version!r}")
    root: list[Any] = []
    cur = root
    is_digit = False
    start = 0

    def nest() -> list[Any]:
        new: list[Any] = []
        cur.append(new)
        return new

    for i, c in enumerate(text):
        if c in ".-":
            cur.append(0 if i == start else _item(is_digit, text[start:i]))
            start = i + 1
            if c == "-":
                cur = nest()
        elif c.isdecimal():
            if not is_digit and i > start:
                if cur:  # "1.x1": the qualifier goes in a list of its own, as after "-"
                    cur = nest()
                cur.append(_string_item(text[start:i], True))
                start = i
                cur = nest()
            is_digit = True
        else:
            if is_digit and i > start:
                cur.append(int(text[start:i]))
                start = i
                cur = nest()
            is_digit = False
    if len(text) > start:
        if not is_digit and cur:
            cur = nest()
        cur.append(_item(is_digit, text[start:]))
    return _normalize(root)


def _null_sign(item: Item) -> int:
    if isinstance(item, int):
        return 1 if item else 0
    if isinstance(item, str):
        return (item > _RELEASE) - (item < _RELEASE)
    for sub in item:
        sign = _null_sign(sub)
        if sign:
            return sign
    return 0


def compare_items(a: Item, b: Item) -> int:
    if isinstance(a, int):
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1
    if isinstance(a, str):
        if isinstance(b, str):
            return (a > b) - (a < b)
        return -1
    if isinstance(b, int):
        return -1
    if isinstance(b, str):
        return 1
    for i in range(max(len(a), len(b))):
        if i >= len(a):
            result = -_null_sign(b[i])
        elif i >= len(b):
            result = _null_sign(a[i])
        else:
            result = compare_items(a[i], b[i])
        if result:
            return result
    return 0


class MavenKey:
    """Parsed ``ComparableVersion`` items ordered by Maven's rules."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Item, ...]) -> None:
        self.items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MavenKey) and self.items == other.items

    def __hash__(self) -> int:
        return hash(self.items)

    def __lt__(self, other: MavenKey) -> bool:
        return compare_items(self.items, other.items) < 0

    def __le__(self, other: MavenKey) -> bool:
        return compare_items(self.items, other.items) <= 0

    def __gt__(self, other: MavenKey) -> bool:
        return compare_items(self.items, other.items) > 0

    def __ge__(self, other: MavenKey) -> bool:
        return compare_items(self.items, other.items) >= 0

    def __repr__(self) -> str:
        return f"MavenKey({self.items!r})"


@register
class MavenScheme(VersionScheme):
    name: ClassVar[str] = "maven"

    def key(self, version: str) -> MavenKey:
        return MavenKey(parse(version))
