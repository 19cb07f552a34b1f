"""Debian package versions (``[epoch:]upstream[-revision]``), ordered as dpkg orders them.

Hand-written: python-debian's ``Version`` compares with a Python loop on every comparison; the
matcher wants one hashable key per version. The key maps each of upstream and revision to a
flat tuple alternating non-digit runs and integers, exactly dpkg's ``verrevcmp``: a non-digit
run is re-encoded so that plain string order is dpkg's character order (``~`` before the end of
the run, the end before letters, letters before everything else), each run ends with a
terminator, and the tuple always ends on a non-digit position so that a shorter version is
compared with "nothing" the way dpkg pads it.
"""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_TILDE = "\x01"
_END = "\x02"
#: letters keep their code point; ``~`` sorts below the end marker; other characters above letters
_TABLE = {ord("~"): _TILDE} | {ord(c): chr(0x100 + ord(c)) for c in ".+-:"}
_SPLIT = re.compile(r"(\d+)").split
_UPSTREAM = re.compile(r"[A-Za-z0-9.+~:-]+").fullmatch
_REVISION = re.compile(r"[A-Za-z0-9.+~]*").fullmatch

DebKey = tuple[int, tuple[str | int, ...], tuple[str | int, ...]]


_LEX: dict[str, str] = {}  # encoded non-digit runs; there are few distinct ones ("." "-" "+deb" "u" ...)


def _lex(run: str) -> str:
    enc = _LEX.get(run)
    if enc is None:
        if len(_LEX) > 50_000:
            _LEX.clear()
        enc = _LEX[run] = run.translate(_TABLE) + _END
    return enc


def _part(text: str) -> tuple[str | int, ...]:
    parts: list[str] = _SPLIT(text)
    if parts[-1] or len(parts) == 1:
        parts += ("0", "")
    lex = _LEX
    out: list[str | int] = [lex[p] if p in lex else _lex(p) for p in parts]
    out[1::2] = map(int, parts[1::2])
    return tuple(out)


def deb_key(version: str) -> DebKey:
    text = version.strip()
    epoch = 0
    if ":" in text:
        head, text = text.split(":", 1)
        if not head.isdigit() or not head.isascii():
            raise InvalidVersion(f"invalid deb version {version!r}: epoch is not a number")
        epoch = int(head)
    revision = ""
    if "-" in text:
        text, revision = text.rsplit("-", 1)
        if not revision:
            raise InvalidVersion(f"invalid deb version {version!r}: empty revision")
    if not text or _UPSTREAM(text) is None or _REVISION(revision) is None:
        raise InvalidVersion(f"invalid deb version {version!r}")
    return (epoch, _part(text), _part(revision))


@register
class DebScheme(VersionScheme):
    """dpkg ordering: epoch, then upstream, then revision (a missing revision equals ``0``)."""

    name: ClassVar[str] = "deb"

    def key(self, version: str) -> DebKey:
        return deb_key(version)
