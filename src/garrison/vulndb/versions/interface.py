"""Version schemes: exact per-ecosystem ordering of version strings.

Each scheme module registers one :class:`VersionScheme` under a name (``deb``, ``rpm``, ``apk``,
``pep440``, ``semver``, ``npm``, ``go``, ``maven``, ``gem``, ``cargo``, ``composer``, ``nuget``,
``generic``). ``key()`` turns a version into a value whose ordering (``<``, ``==``) is the
scheme's ordering, so the matcher parses each installed version once and compares keys.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from garrison.core.errors import InputError


class InvalidVersion(InputError):
    """The string is not a valid version in this scheme."""


class VersionScheme(ABC):
    name: ClassVar[str]

    @abstractmethod
    def key(self, version: str) -> Any:
        """A totally ordered key for ``version``; raises :class:`InvalidVersion`."""

    def compare(self, a: str, b: str) -> int:
        """-1, 0 or 1 as ``a`` sorts before, equal to, or after ``b``."""
        ka, kb = self.key(a), self.key(b)
        return int((ka > kb) - (ka < kb))

    def valid(self, version: str) -> bool:
        try:
            self.key(version)
        except InvalidVersion:
            return False
        return True

    def satisfies(self, version: str, constraint: str) -> bool:
        """Whether ``version`` satisfies a range expression in the ecosystem's own syntax
        (``>=1.0, <2.0``; npm ``^1.2 || ~2.0``; gem ``~> 2.1``; ...). Schemes without a native
        syntax accept comma-separated ``op version`` terms."""
        from garrison.vulndb.versions.constraints import satisfies_generic

        return satisfies_generic(self, version, constraint)
