"""Plain SemVer 2.0.0 (section 11 precedence; build metadata ignored; a leading ``v`` allowed)."""

from __future__ import annotations

from typing import ClassVar

from garrison.vulndb.versions import register
from garrison.vulndb.versions._semver import SemverKey, semver_key
from garrison.vulndb.versions.interface import VersionScheme


@register
class SemverScheme(VersionScheme):
    name: ClassVar[str] = "semver"

    def key(self, version: str) -> SemverKey:
        return semver_key(version)
