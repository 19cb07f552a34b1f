"""Installed rpm packages, read from the rpmdb in SQLite, Berkeley DB hash or NDB format.

Reported per package: ``name``, ``version`` as ``[epoch:]version-release``, ``epoch``, ``arch``,
the ``License`` tag as the single licence expression, and the source package's name and
``version-release`` parsed from the ``SOURCERPM`` file name. ``gpg-pubkey`` entries (imported
signing keys, not software) are skipped. Metadata: ``source_rpm``, ``vendor``, ``size`` and the
modularity label of module streams.
"""

from __future__ import annotations

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._rpmdb import RpmdbError, read_blobs
from garrison.sbom.catalogers._rpmheader import HeaderError, package_from_header
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

RPMDB_PATHS = frozenset(
    {
        "var/lib/rpm/rpmdb.sqlite",
        "usr/lib/sysimage/rpm/rpmdb.sqlite",
        "var/lib/rpm/Packages",
        "usr/lib/sysimage/rpm/Packages",
        "var/lib/rpm/Packages.db",
        "usr/lib/sysimage/rpm/Packages.db",
    }
)


def packages_from_blobs(blobs: list[bytes]) -> list[Package]:
    """Packages of the header blobs; raises :class:`HeaderError` naming the bad record."""
    out: list[Package] = []
    for index, blob in enumerate(blobs):
        try:
            pkg = package_from_header(blob)
        except HeaderError as err:
            raise HeaderError(f"record {index + 1}: {err}") from None
        if pkg is not None:
            out.append(pkg)
    return out


@cataloger
class RpmCataloger(Cataloger):
    """The rpm database of Red Hat, SUSE, Amazon, Mariner and other rpm-based images."""

    name = "rpm"
    version = 1
    modes = frozenset({"image"})
    max_size = 1024 * 1024 * 1024
    suffixes = tuple(sorted(f"/{p.lower()}" for p in RPMDB_PATHS))

    def required(self, path: str, info: FileInfo) -> bool:
        return path in RPMDB_PATHS

    def catalog(self, inp: CatalogInput) -> list[Package]:
        try:
            with inp.open() as stream:
                fmt, blobs = read_blobs(stream)
            packages = packages_from_blobs(blobs)
        except RpmdbError as err:
            raise CatalogError(f"malformed rpmdb: {err}", input_name=inp.path) from None
        except HeaderError as err:
            raise CatalogError(f"malformed rpm header: {err}", input_name=inp.path) from None
        for pkg in packages:
            pkg.metadata["rpmdb"] = fmt
        return packages
