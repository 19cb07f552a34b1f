"""Package URLs for cataloged packages (purl-spec), built with packageurl-python."""

from __future__ import annotations

from collections.abc import Iterable

from packageurl import PackageURL

from garrison.model.core import OperatingSystem, Package

_OS_TYPES = {"deb", "apk", "rpm"}


def purl_for(pkg: Package, os: OperatingSystem | None = None) -> str:
    """The purl of ``pkg``; OS packages carry the distro as namespace and qualifier."""
    qualifiers: dict[str, str] = {}
    namespace = pkg.namespace
    version = pkg.version
    if pkg.type in _OS_TYPES:
        if os is not None:
            namespace = namespace or os.family
            qualifiers["distro"] = f"{os.family}-{os.version}"
        if pkg.arch:
            qualifiers["arch"] = pkg.arch
        if pkg.type == "rpm" and pkg.epoch:
            qualifiers["epoch"] = str(pkg.epoch)
            # purl-spec: the rpm version is version-release without the epoch
            version = version.split(":", 1)[1] if ":" in version else version
        if pkg.source_name and pkg.source_name != pkg.name:
            src = pkg.source_name
            if pkg.source_version and pkg.source_version != pkg.version:
                src = f"{src}@{pkg.source_version}"
            qualifiers["upstream"] = src
    name = pkg.name
    if pkg.type == "pypi":
        name = name.lower().replace("_", "-")
    return PackageURL(
        type=pkg.type,
        namespace=namespace or None,
        name=name,
        version=version or None,
        qualifiers=qualifiers or None,
    ).to_string()


def assign_purls(packages: Iterable[Package], os: OperatingSystem | None) -> None:
    """Fill ``purl`` on every package that has none yet."""
    for pkg in packages:
        if not pkg.purl:
            pkg.purl = purl_for(pkg, os)
