"""Ecosystem names: which version scheme orders each OSV ecosystem, how package names are
normalised on both sides of a match, and which ecosystems an installed package is looked up in.
"""

from __future__ import annotations

import re

from garrison.model import OperatingSystem, Package

#: OSV ecosystem (the part before any ``:``) -> version scheme name.
ECOSYSTEM_SCHEMES = {
    "PyPI": "pep440",
    "npm": "npm",
    "Go": "go",
    "crates.io": "cargo",
    "Maven": "maven",
    "RubyGems": "gem",
    "Packagist": "composer",
    "NuGet": "nuget",
    "Debian": "deb",
    "Ubuntu": "deb",
    "Alpine": "apk",
    "AlmaLinux": "rpm",
    "Rocky Linux": "rpm",
    "Red Hat": "rpm",
    "SUSE": "rpm",
    "openSUSE": "rpm",
    "Mageia": "rpm",
    "openEuler": "rpm",
    "Photon OS": "rpm",
}

#: purl type -> OSV ecosystem for language packages.
PURL_ECOSYSTEMS = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "cargo": "crates.io",
    "maven": "Maven",
    "gem": "RubyGems",
    "composer": "Packagist",
    "nuget": "NuGet",
}

#: Debian codenames -> the numeric release OSV and Garrison use (``Debian:<major>``).
DEBIAN_RELEASES = {
    "potato": "2.2",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "sid": "sid",
    "unstable": "sid",
}

#: Red Hat rebuilds whose packages are matched against AlmaLinux's advisories of the same major.
RHEL_LIKE = frozenset({"almalinux", "rocky", "rhel", "centos", "ol", "oracle", "redhat", "fedora-eln"})

_PEP503 = re.compile(r"[-_.]+")


def base_ecosystem(ecosystem: str) -> str:
    return ecosystem.split(":", 1)[0]


def scheme_name(ecosystem: str) -> str | None:
    """The version scheme for an ecosystem string (``Debian:12`` -> ``deb``); None if unknown."""
    return ECOSYSTEM_SCHEMES.get(base_ecosystem(ecosystem))


def normalise_name(ecosystem: str, name: str) -> str:
    """The form package names are stored and looked up in (PEP 503 for PyPI; lower case where
    the ecosystem's names are case-insensitive)."""
    base = base_ecosystem(ecosystem)
    if base == "PyPI":
        return _PEP503.sub("-", name).lower()
    if base in ("NuGet", "Packagist", "Alpine"):
        return name.lower()
    return name


def debian_ecosystem(codename_or_version: str) -> str | None:
    """``Debian:<major>`` for a codename (``bookworm``) or VERSION_ID (``12``, ``12.5``)."""
    value = codename_or_version.strip().lower()
    if value in DEBIAN_RELEASES:
        return f"Debian:{DEBIAN_RELEASES[value]}"
    if re.fullmatch(r"\d+(\.\d+)*", value):
        major = value.split(".")[0]
        if major in ("2", "3"):  # potato/woody/sarge used two-part numbers
            return f"Debian:{'.'.join(value.split('.')[:2])}"
        return f"Debian:{major}"
    return None


def os_ecosystems(os: OperatingSystem) -> list[str]:
    """Ecosystems an OS's own packages are looked up in, most specific first."""
    family = os.family.lower()
    version = os.version.strip()
    if family == "debian":
        eco = debian_ecosystem(version) if version else None
        if eco is None and os.codename:
            eco = debian_ecosystem(os.codename)
        return [eco or "Debian:sid"]
    if family == "ubuntu":
        return [f"Ubuntu:{version}", f"Ubuntu:{version}:LTS"] if version else []
    if family == "alpine":
        parts = version.split(".")
        if len(parts) >= 2 and parts[0].isdigit():
            return [f"Alpine:v{parts[0]}.{parts[1]}"]
        if version.startswith("edge") or "_alpha" in version:
            return ["Alpine:edge"]
        return []
    if family in RHEL_LIKE:
        major = version.split(".")[0]
        if not major.isdigit():
            return []
        out = [f"AlmaLinux:{major}"]
        if family == "rocky":
            out.insert(0, f"Rocky Linux:{major}")
        return out
    return []


def package_ecosystems(pkg: Package, os: OperatingSystem | None) -> list[str]:
    """Ecosystems to look ``pkg`` up in: the distro's for OS packages, the registry's otherwise."""
    if pkg.type in ("deb", "apk", "rpm"):
        if os is None:
            return []
        family = os.family.lower()
        wanted = {"deb": ("debian", "ubuntu"), "apk": ("alpine",), "rpm": tuple(RHEL_LIKE)}[pkg.type]
        return os_ecosystems(os) if family in wanted else []
    eco = PURL_ECOSYSTEMS.get(pkg.type)
    return [eco] if eco else []


def package_lookup_name(pkg: Package) -> str:
    """The name advisories use for ``pkg``: source package for distros, ecosystem-qualified
    names for Maven (``group:artifact``), npm scopes, Go module paths and Packagist vendors."""
    t = pkg.type
    if t in ("deb", "apk"):
        return pkg.source_name or pkg.name
    if t == "rpm":
        return pkg.name
    ns = pkg.namespace
    if t == "maven":
        return f"{ns}:{pkg.name}" if ns else pkg.name
    if t == "npm":
        if ns:
            return f"{ns if ns.startswith('@') else '@' + ns}/{pkg.name}"
        return pkg.name
    if t in ("golang", "composer"):
        return f"{ns}/{pkg.name}" if ns else pkg.name
    return pkg.name
