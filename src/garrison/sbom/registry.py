"""Registry of catalogers. Adding a cataloger is adding one module under ``catalogers/``.

The registry is an object so tests can build their own; ``default_registry()`` discovers every
module in :mod:`garrison.sbom.catalogers` (and ``garrison.catalogers`` entry points) once.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import TypeVar

from garrison.sbom.catalogers.interface import Cataloger

C = TypeVar("C", bound=type[Cataloger])


class DuplicateCatalogerError(ValueError):
    pass


class CatalogerRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, Cataloger] = {}

    def register(self, cls: type[Cataloger]) -> None:
        if cls.name in self._by_name:
            raise DuplicateCatalogerError(f"cataloger {cls.name!r} registered twice")
        self._by_name[cls.name] = cls()

    def __iter__(self) -> Iterator[Cataloger]:
        return iter(self._by_name[n] for n in sorted(self._by_name))

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Cataloger:
        return self._by_name[name]

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def select(self, mode: str, names: list[str] | None = None) -> list[Cataloger]:
        """Catalogers for ``mode`` ("image" or "fs"), optionally limited to ``names``."""
        chosen = [c for c in self if mode in c.modes]
        if names:
            unknown = set(names) - set(self._by_name)
            if unknown:
                from garrison.core.errors import ConfigError

                raise ConfigError(f"unknown cataloger(s): {', '.join(sorted(unknown))}; known: {', '.join(self.names())}")
            chosen = [c for c in chosen if c.name in names]
        return chosen

    def fingerprint(self, catalogers: list[Cataloger]) -> str:
        """Feeds the layer-cache key: changes whenever a cataloger's version or the set changes."""
        text = ",".join(f"{c.name}@{c.version}" for c in sorted(catalogers, key=lambda c: c.name))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_DEFAULT: CatalogerRegistry | None = None
_PENDING: list[type[Cataloger]] = []


def cataloger(cls: C) -> C:
    """Class decorator: register ``cls`` in the default registry."""
    _PENDING.append(cls)
    if _DEFAULT is not None:
        _DEFAULT.register(cls)
    return cls


def default_registry() -> CatalogerRegistry:
    global _DEFAULT
    if _DEFAULT is None:
        reg = CatalogerRegistry()
        import garrison.sbom.catalogers as pkg

        for mod in pkgutil.iter_modules(pkg.__path__):
            if mod.name != "interface" and not mod.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{mod.name}")
        for ep in entry_points(group="garrison.catalogers"):
            ep.load()
        for cls in _PENDING:
            reg.register(cls)
        _DEFAULT = reg
    return _DEFAULT


def registry_with(*classes: type[Cataloger]) -> CatalogerRegistry:
    """A fresh registry holding just ``classes`` (for tests)."""
    reg = CatalogerRegistry()
    for cls in classes:
        reg.register(cls)
    return reg


Factory = Callable[[], CatalogerRegistry]
