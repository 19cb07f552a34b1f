"""Interfaces of the image package: sources that yield an Artifact and layer blobs, and the
entries a layer (or a directory) yields when streamed."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Literal

from garrison.model import Artifact, FileInfo, Layer

EntryType = Literal["file", "dir", "symlink", "hardlink", "other"]


@dataclass(slots=True)
class Entry:
    """One member of a layer tar or one file of a directory tree.

    ``info.path`` is normalised (POSIX, relative, no ``./``, no ``..``). For whiteouts,
    ``whiteout`` names the path the layer deletes (``.wh.<name>``) and ``opaque`` the directory
    whose lower contents it hides (``.wh..wh..opq``); such entries carry no content. ``open``
    returns the content and is valid only until the iterator advances.
    """

    info: FileInfo
    type: EntryType
    open: Callable[[], BinaryIO] | None = None
    linkname: str = ""
    whiteout: str | None = None
    opaque: str | None = None


class ImageSource(ABC):
    """An image from any transport. Use as a context manager."""

    @abstractmethod
    def artifact(self) -> Artifact:
        """Manifest and config, parsed: layers in order (base first), with diff_ids."""

    @abstractmethod
    def open_layer(self, layer: Layer) -> BinaryIO:
        """The layer blob as stored (compressed or not). Reading it to the end verifies its
        digest; a mismatch raises :class:`garrison.core.errors.InputError`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
