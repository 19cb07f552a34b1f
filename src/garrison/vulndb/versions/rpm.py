"""RPM versions ``[epoch:]version[-release]``, ordered as rpm >= 4.15 orders them.

Hand-written: no maintained PyPI package implements ``rpmvercmp``. The key turns version and
release into tuples of segments, as ``rpmvercmp`` splits them (runs of digits, runs of ASCII
letters, ``~`` and ``^``; any other character only separates), each tagged with its rank at a
position: ``~`` < end of string < ``^`` < letters < digits. Numbers compare numerically, letters
as bytes. Epochs default to 0. A missing release sorts before any release, which is what
``rpm.vercmp`` does for a full EVR; comparing only versions (release ignored on one side) is not
a total order and is not offered.
"""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_TOKENS = re.compile(r"(\d+)|([A-Za-z]+)|(~)|\^").findall
_TILDE: tuple[int] = (0,)
_STOP: tuple[int] = (1,)
_CARET: tuple[int] = (2,)

Segment = tuple[int] | tuple[int, str] | tuple[int, int]
RpmKey = tuple[int, tuple[Segment, ...], tuple[Segment, ...]]


def segments(text: str) -> tuple[Segment, ...]:
    """``rpmvercmp``'s view of one string, ending in the end-of-string marker."""
    out: list[Segment] = [
        (4, int(num)) if num else (3, alpha) if alpha else _TILDE if tilde else _CARET
        for num, alpha, tilde in _TOKENS(text)
    ]
    out.append(_STOP)
    return tuple(out)


def rpm_key(version: str) -> RpmKey:
    text = version.strip()
    if not text or any(c.isspace() for c in text):
        raise InvalidVersion(f"invalid rpm version {version!r}")
    epoch = 0
    if ":" in text:
        head, text = text.split(":", 1)
        if not head:
            head = "0"
        if not head.isdigit() or not head.isascii():
            raise InvalidVersion(f"invalid rpm version {version!r}: epoch is not a number")
        epoch = int(head)
    release = ""
    if "-" in text:
        text, release = text.rsplit("-", 1)
    if not text:
        raise InvalidVersion(f"invalid rpm version {version!r}: empty version")
    return (epoch, segments(text), segments(release) if release else ())


@register
class RpmScheme(VersionScheme):
    """Epoch (numeric), then version, then release, each with ``rpmvercmp``."""

    name: ClassVar[str] = "rpm"

    def key(self, version: str) -> RpmKey:
        return rpm_key(version)
