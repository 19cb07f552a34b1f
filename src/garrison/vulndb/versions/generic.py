"""A tolerant fallback order for ecosystems without a scheme of their own.

The version is split into runs of digits and runs of letters (everything else only separates);
numbers compare numerically, letters case-insensitively, a number sorts after letters at the
same position, and a version that is a prefix of another sorts first. Any non-empty string has
a key; strings with no letters or digits sort before all others, by their text.
"""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_RUNS = re.compile(r"[0-9]+|[^\W\d_]+").findall

GenericKey = tuple[tuple[int, int, str], ...]


def generic_key(version: str) -> GenericKey:
    if not version:
        raise InvalidVersion("empty version")
    runs = _RUNS(version)
    if not runs:
        return ((0, 0, version),)
    return tuple((2, int(r), "") if "0" <= r[0] <= "9" else (1, 0, r.lower()) for r in runs)


@register
class GenericScheme(VersionScheme):
    name: ClassVar[str] = "generic"

    def key(self, version: str) -> GenericKey:
        return generic_key(version)
