"""Python package versions (PEP 440), ordered by ``packaging.version.Version``.

The key is the ``Version`` object itself (hashable, ordered, ``1.0 == 1.0.0``); parsed versions
are cached because the same few strings recur across advisories. Legacy versions that
``packaging`` rejects raise :class:`InvalidVersion`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from packaging.version import InvalidVersion as _PackagingInvalid
from packaging.version import Version

from garrison.vulndb.versions import register
from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme


@lru_cache(maxsize=65536)
def _parse(text: str) -> Version | None:
    try:
        return Version(text)
    except _PackagingInvalid:
        return None


def pep440_key(version: str) -> Version:
    parsed = _parse(version)
    if parsed is None:
        raise InvalidVersion(f"invalid pep440 version {version!r}")
    return parsed


@register
class Pep440Scheme(VersionScheme):
    name: ClassVar[str] = "pep440"

    def key(self, version: str) -> Version:
        return pep440_key(version)

    def satisfies(self, version: str, constraint: str) -> bool:
        """PEP 440 specifiers (``>=1.0,<2``, ``~=1.4``, ``==1.*``), prereleases included."""
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            spec = SpecifierSet(constraint)
        except InvalidSpecifier as exc:
            raise InvalidVersion(f"invalid pep440 specifier {constraint!r}") from exc
        return spec.contains(pep440_key(version), prereleases=True)
