"""An unpacked root filesystem (``rootfs:DIR`` / ``dir:DIR``) as an image source with no layers:
the scan pipeline walks it with :func:`garrison.image.directory.iter_directory`."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from garrison.core.errors import InputError, NotFoundError
from garrison.image.interface import ImageSource
from garrison.model import Artifact, ArtifactKind, Layer


class RootfsSource(ImageSource):
    def __init__(self, root: Path) -> None:
        if not root.exists():
            raise NotFoundError("no such directory", input_name=str(root))
        if not root.is_dir():
            raise InputError("a root filesystem must be a directory", input_name=str(root))
        self.root = root

    def artifact(self) -> Artifact:
        return Artifact(name=str(self.root), kind=ArtifactKind.ROOTFS)

    def open_layer(self, layer: Layer) -> BinaryIO:
        raise InputError("a root filesystem has no layers; walk it with iter_directory", input_name=str(self.root))
