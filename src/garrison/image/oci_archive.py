"""OCI layouts packed in a tar (``oci-archive``, as ``skopeo copy ... oci-archive:`` writes),
read in place through a :class:`~garrison.image._tarindex.TarIndex`."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from garrison.core.limits import DEFAULT_LIMITS, Limits
from garrison.image._oci import Platform
from garrison.image._tarindex import TarIndex
from garrison.image.oci_layout import BlobStore, LayoutSource
from garrison.model import ArtifactKind


class TarStore(BlobStore):
    def __init__(self, index: TarIndex) -> None:
        self.index = index
        self.name = index.name

    def read_file(self, path: str, limit: int) -> bytes | None:
        if not self.index.has(path):
            return None
        return self.index.read(path, limit)

    def open_blob(self, algorithm: str, hexdigest: str) -> BinaryIO:
        return self.index.open(f"blobs/{algorithm}/{hexdigest}")

    def close(self) -> None:
        self.index.close()


def open_oci_archive(
    path: Path, *, tag: str | None = None, platform: Platform | None = None, limits: Limits = DEFAULT_LIMITS
) -> LayoutSource:
    """An image from an oci-archive tar."""
    index = TarIndex(path)
    name = f"{path}:{tag}" if tag else str(path)
    return LayoutSource(
        TarStore(index), name=name, kind=ArtifactKind.OCI_ARCHIVE, tag=tag, platform=platform, limits=limits
    )
