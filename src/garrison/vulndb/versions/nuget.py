"""NuGet versions: up to four numbers (missing ones are 0, leading zeros allowed), an optional
prerelease label compared as SemVer 2.0.0 but case-insensitively, build metadata ignored.
This is NuGet.Versioning's ``VersionComparer.Default`` order (``1.0`` == ``1.0.0.0``,
``1.0.0-RC.1`` == ``1.0.0-rc.1``)."""

from __future__ import annotations

import re
from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions._semver import Ident, prerelease_key
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_VERSION = re.compile(
    r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
).fullmatch

NugetKey = tuple[int, int, int, int, int, tuple[Ident, ...]]


def nuget_key(version: str) -> NugetKey:
    m = _VERSION(version.strip())
    if m is None:
        raise InvalidVersion(f"invalid nuget version {version!r}")
    a, b, c, d, pre = m.groups()
    nums = (int(a), int(b or 0), int(c or 0), int(d or 0))
    if pre:
        return (*nums, 0, prerelease_key(pre, fold_case=True))
    return (*nums, 1, ())


@register
class NugetScheme(VersionScheme):
    name: ClassVar[str] = "nuget"

    def key(self, version: str) -> NugetKey:
        return nuget_key(version)
