"""Java archives (jar, war, ear, par, sar, and Jenkins' jpi/hpi), nested archives included.

Every ``pom.properties`` in an archive is a package (shaded jars carry several). The
archive's own artifact comes from its ``pom.properties`` when one matches the file name (or
when the name carries no version and the archive has pom.properties at all); otherwise from
``META-INF/MANIFEST.MF`` (Implementation-*, Bundle-*, Specification-* in Trivy's order), and
failing that from the file name (``name-1.2.3.jar``, no group). Archives inside archives
(``WEB-INF/lib``, ``BOOT-INF/lib``, ``lib/`` of an ear) are read the same way, up to
:data:`MAX_DEPTH` levels and :data:`MAX_TOTAL_BYTES` of nested content, so a zip bomb is
refused rather than expanded. A corrupt top-level archive raises :class:`CatalogError`; a
corrupt nested one is skipped with a log message.
"""

from __future__ import annotations

import io
import logging
import posixpath
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from garrison.model import FileInfo, Package
from garrison.sbom.catalogers._java_meta import (
    Coordinates,
    coordinates_from_manifest,
    coordinates_from_pom_properties,
    parse_file_name,
    parse_manifest,
    parse_properties,
)
from garrison.sbom.catalogers.interface import Cataloger, CatalogError, CatalogInput
from garrison.sbom.registry import cataloger

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi")
#: archives nested deeper than this below the scanned file are not opened
MAX_DEPTH = 4
#: bound on the uncompressed bytes of nested archives and metadata files read from one file
MAX_TOTAL_BYTES = 2 * 1024**3
#: nested archives up to this size are read into memory, larger ones spooled to disk
_IN_MEMORY = 32 * 1024 * 1024
#: bound on one MANIFEST.MF or pom.properties
_MAX_META = 1024 * 1024

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
)


class _Bomb(Exception):
    """Nested content beyond the bound: aborts the whole file."""


@dataclass(slots=True)
class _Budget:
    remaining: int

    def take(self, n: int, what: str) -> None:
        if n > self.remaining:
            raise _Bomb(f"{what} would expand the archive beyond {MAX_TOTAL_BYTES} bytes")
        self.remaining -= n


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> bytes | None:
    """A small member (manifest, pom.properties), or ``None`` when it is over the bound."""
    if info.file_size > _MAX_META:
        logger.debug("%s: %d bytes, skipped", info.filename, info.file_size)
        return None
    budget.take(info.file_size, info.filename)
    with zf.open(info) as f:
        return f.read(_MAX_META + 1)[:_MAX_META]


@contextmanager
def _nested_stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> Iterator[IO[bytes]]:
    budget.take(info.file_size, info.filename)
    with zf.open(info) as src:
        if info.file_size <= _IN_MEMORY:
            yield io.BytesIO(src.read(info.file_size + 1))
            return
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(src, spool, 1024 * 1024)
            spool.seek(0)
            yield spool


def _package(coords: Coordinates, path: str, source: str, extra: dict[str, Any] | None = None) -> Package:
    meta: dict[str, Any] = {"source": source}
    if extra:
        meta.update(extra)
    return Package(
        name=coords.artifact,
        version=coords.version,
        type="maven",
        namespace=coords.group or None,
        path=path,
        metadata=meta,
    )


def _own_artifact(path: str, poms: list[Coordinates], manifest: dict[str, str] | None) -> Package | None:
    """The archive's own package when none of its pom.properties describes it."""
    file_props = parse_file_name(path)
    if poms:
        if file_props is None:
            return None  # no version in the name: the pom.properties are the archive's own
        artifact, version = file_props
        if any(p.artifact == artifact and p.version == version for p in poms):
            return None
    if manifest:
        coords = coordinates_from_manifest(manifest)
        # a title with spaces is a display name, not an artifactId; fall back to the file name
        if coords.complete and not any(c.isspace() for c in coords.artifact):
            return _package(coords, path, "manifest")
    if file_props is not None:
        return _package(Coordinates("", file_props[0], file_props[1]), path, "filename")
    return None


def _scan(zf: zipfile.ZipFile, path: str, depth: int, budget: _Budget, out: list[Package]) -> None:
    poms: list[Coordinates] = []
    manifest: dict[str, str] | None = None
    nested: list[zipfile.ZipInfo] = []
    for info in zf.infolist():
        if info.is_dir():
            continue
        name = info.filename
        base = posixpath.basename(name)
        if base == "pom.properties":
            data = _read_member(zf, info, budget)
            if data is None:
                continue
            try:
                coords = coordinates_from_pom_properties(parse_properties(data))
            except ValueError as err:
                logger.debug("%s!%s: %s", path, name, err)
                continue
            if coords.complete:
                poms.append(coords)
                out.append(_package(coords, path, "pom.properties", {"pom_properties": name}))
        elif name.upper() == "META-INF/MANIFEST.MF":
            data = _read_member(zf, info, budget)
            if data is not None:
                manifest = parse_manifest(data)
        elif is_archive(name):
            nested.append(info)
    own = _own_artifact(path, poms, manifest)
    if own is not None:
        out.append(own)
    for info in nested:
        inner_path = f"{path}/{info.filename}"
        if depth >= MAX_DEPTH:
            logger.warning("%s: nested deeper than %d archives, not opened", inner_path, MAX_DEPTH)
            continue
        found: list[Package] = []
        try:
            with _nested_stream(zf, info, budget) as stream, zipfile.ZipFile(stream) as inner:
                _scan(inner, inner_path, depth + 1, budget, found)
        except _ZIP_ERRORS as err:
            logger.info("%s: unreadable nested archive skipped: %s", inner_path, err)
            continue
        out.extend(found)


def _dedupe(pkgs: list[Package]) -> list[Package]:
    seen: set[tuple[str | None, str, str, str]] = set()
    out: list[Package] = []
    for pkg in pkgs:
        key = (pkg.namespace, pkg.name, pkg.version, pkg.path)
        if key not in seen:
            seen.add(key)
            out.append(pkg)
    return out


def catalog_archive(stream: IO[bytes], path: str) -> list[Package]:
    """Packages in the Java archive ``stream`` (named ``path``)."""
    out: list[Package] = []
    budget = _Budget(MAX_TOTAL_BYTES)
    try:
        with zipfile.ZipFile(stream) as zf:
            _scan(zf, path, 0, budget, out)
    except _Bomb as err:
        raise CatalogError(str(err), input_name=path) from None
    except _ZIP_ERRORS as err:
        raise CatalogError(f"corrupt archive: {type(err).__name__}: {err}", input_name=path) from None
    return _dedupe(out)


@cataloger
class JavaArchiveCataloger(Cataloger):
    """Maven artifacts in Java archives."""

    name = "java-archive"
    version = 1
    max_size = 1024 * 1024 * 1024
    suffixes = ARCHIVE_SUFFIXES

    def required(self, path: str, info: FileInfo) -> bool:
        return is_archive(path) and (info.mode & 0o170000) == 0o100000 and 22 <= info.size <= self.max_size

    def catalog(self, inp: CatalogInput) -> list[Package]:
        with inp.open() as f:
            return catalog_archive(f, inp.path)
