"""The cataloger plugin interface.

A cataloger looks at one file at a time. The layer walker asks every registered cataloger
whether it wants a path (:meth:`Cataloger.required`, called for every file, so it must be cheap:
string tests on the path and ``FileInfo``), reads the file once, and hands the content to each
cataloger that asked for it. Results are cached per layer, keyed by the cataloger's ``version``:
bump it whenever the output for the same input changes.

Path hints (``suffixes``, ``prefixes``, ``contains``, ``executables``) are an optional, cheaper
*necessary* condition of ``required``: whenever ``required`` is true, the lower-cased path with a
leading ``/`` ends with one of ``suffixes``, or the path starts with one of ``prefixes``, or
contains one of ``contains``, or the file is executable and ``executables`` is set. The walker
combines the hints of all catalogers (:func:`combined_prefilter`) into one test per file and only
asks ``required`` about the few files that pass it: a layer has tens of thousands of files and
a dozen catalogers, and asking each of them about each file was a visible part of a scan. A
cataloger without hints is asked about every file, as before.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import BinaryIO, ClassVar

from garrison.core.errors import InputError
from garrison.model import FileInfo, Package


class CatalogError(InputError):
    """A package database or lock file is malformed. Raised with ``input_name`` = file path."""


class CatalogInput:
    """The file a cataloger asked for. ``read()`` gives the bytes; ``open()`` a seekable stream.

    Large files are spooled to disk by the walker, so prefer ``open()`` for formats that can be
    read piecewise (jars, ELF binaries, rpmdb).
    """

    __slots__ = ("_data", "_opener", "info", "mode")

    def __init__(
        self,
        info: FileInfo,
        data: bytes | None = None,
        opener: Callable[[], BinaryIO] | None = None,
        mode: str = "image",
    ) -> None:
        if data is None and opener is None:
            raise ValueError("CatalogInput needs data or an opener")
        self.info = info
        self._data = data
        self._opener = opener
        self.mode = mode  # "image" or "fs"

    @property
    def path(self) -> str:
        return self.info.path

    def read(self) -> bytes:
        if self._data is None:
            assert self._opener is not None
            with self._opener() as f:
                self._data = f.read()
        return self._data

    def open(self) -> BinaryIO:
        if self._data is not None:
            return io.BytesIO(self._data)
        assert self._opener is not None
        return self._opener()


class Cataloger(ABC):
    """Finds packages in files. Subclasses are registered with :func:`garrison.sbom.registry.cataloger`."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    #: where the cataloger applies: installed packages in images and rootfs ("image"),
    #: lock files and manifests in source trees ("fs"), or both.
    modes: ClassVar[frozenset[str]] = frozenset({"image", "fs"})
    #: files above this size are not handed over (the walker reports them as skipped)
    max_size: ClassVar[int] = 64 * 1024 * 1024
    #: path hints (see the module docstring); all empty: ``required`` is asked about every file
    suffixes: ClassVar[tuple[str, ...]] = ()
    prefixes: ClassVar[tuple[str, ...]] = ()
    contains: ClassVar[tuple[str, ...]] = ()
    executables: ClassVar[bool] = False

    @classmethod
    def hinted(cls) -> bool:
        return bool(cls.suffixes or cls.prefixes or cls.contains or cls.executables)

    @classmethod
    def hint_matches(cls, path: str, info: FileInfo) -> bool:
        """The necessary condition the hints state (true for every file when there are none)."""
        if not cls.hinted():
            return True
        if cls.executables and info.executable:
            return True
        lower = "/" + path.lower()
        return (
            lower.endswith(cls.suffixes) or path.startswith(cls.prefixes) or any(c in lower for c in cls.contains)
        )

    @abstractmethod
    def required(self, path: str, info: FileInfo) -> bool:
        """Whether this cataloger wants the file at ``path`` (relative, no leading ``/``)."""

    @abstractmethod
    def catalog(self, inp: CatalogInput) -> list[Package]:
        """The packages the file declares. Set ``name``, ``version``, ``type`` and what else the
        format gives; the walker fills ``path``, ``layer`` and ``cataloger``. Raise
        :class:`CatalogError` for malformed content; return ``[]`` for files that are not the
        format after all (a package.json without a version, an ELF without Go build info)."""


def combined_prefilter(catalogers: list[Cataloger]) -> Callable[[str, FileInfo], bool]:
    """One test that is true for every file any of ``catalogers`` could want (a superset)."""
    if not all(c.hinted() for c in catalogers):
        return lambda _path, _info: True
    suffixes = tuple(sorted({s for c in catalogers for s in c.suffixes}))
    prefixes = tuple(sorted({p for c in catalogers for p in c.prefixes}))
    contains = tuple(sorted({x for c in catalogers for x in c.contains}))
    executables = any(c.executables for c in catalogers)

    def maybe(path: str, info: FileInfo) -> bool:
        if executables and info.executable:
            return True
        lower = "/" + path.lower()
        if lower.endswith(suffixes) or path.startswith(prefixes):
            return True
        return any(x in lower for x in contains) if contains else False

    return maybe
