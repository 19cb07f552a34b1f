"""Version schemes by name. Each module in this package registers one scheme.

``get_scheme("deb").compare("1:1.0-1", "1.1-1")``; ``scheme_for_package_type("pypi")``.
"""

from __future__ import annotations

import importlib
import pkgutil

from garrison.vulndb.versions.interface import InvalidVersion, VersionScheme

_SCHEMES: dict[str, VersionScheme] = {}
_LOADED = False

#: purl type -> scheme name
PACKAGE_TYPE_SCHEMES = {
    "deb": "deb",
    "apk": "apk",
    "rpm": "rpm",
    "pypi": "pep440",
    "npm": "npm",
    "golang": "go",
    "maven": "maven",
    "gem": "gem",
    "cargo": "cargo",
    "composer": "composer",
    "nuget": "nuget",
}


def register(scheme_cls: type[VersionScheme]) -> type[VersionScheme]:
    """Class decorator registering a scheme under its ``name``; duplicates are an error."""
    if scheme_cls.name in _SCHEMES:
        raise ValueError(f"version scheme {scheme_cls.name!r} registered twice")
    _SCHEMES[scheme_cls.name] = scheme_cls()
    return scheme_cls


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in ("interface", "constraints") and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def get_scheme(name: str) -> VersionScheme:
    """The scheme registered as ``name``. Its module (named like the scheme) is imported alone
    first: a scan of one distro needs one scheme, and importing all of them (their regular
    expressions compiled) was a noticeable part of a cold match."""
    scheme = _SCHEMES.get(name)
    if scheme is not None:
        return scheme
    if name.isidentifier() and not name.startswith("_") and name not in ("interface", "constraints"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            pass
        scheme = _SCHEMES.get(name)
        if scheme is not None:
            return scheme
    _load()
    try:
        return _SCHEMES[name]
    except KeyError:
        raise KeyError(f"unknown version scheme {name!r}; known: {', '.join(sorted(_SCHEMES))}") from None


def scheme_for_package_type(purl_type: str) -> VersionScheme:
    return get_scheme(PACKAGE_TYPE_SCHEMES.get(purl_type, "generic"))


def schemes() -> list[str]:
    _load()
    return sorted(_SCHEMES)


__all__ = ["PACKAGE_TYPE_SCHEMES", "InvalidVersion", "VersionScheme", "get_scheme", "register", "scheme_for_package_type", "schemes"]
