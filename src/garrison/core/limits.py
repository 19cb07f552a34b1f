"""Bounds that protect against hostile input (decompression bombs, huge files)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class Limits:
    max_layer_bytes: int = 16 * 1024**3  # decompressed size of one layer
    max_image_bytes: int = 64 * 1024**3  # decompressed size of all layers together
    max_ratio: int = 200  # decompressed/compressed ratio before a stream counts as a bomb
    max_file_bytes: int = 512 * 1024**2  # one file handed to a cataloger
    max_manifest_bytes: int = 4 * 1024**2  # manifests, indexes, configs

    @classmethod
    def from_env(cls) -> Limits:
        d = cls()
        return cls(
            max_layer_bytes=_env_int("GARRISON_MAX_LAYER_BYTES", d.max_layer_bytes),
            max_image_bytes=_env_int("GARRISON_MAX_IMAGE_BYTES", d.max_image_bytes),
            max_ratio=_env_int("GARRISON_MAX_RATIO", d.max_ratio),
            max_file_bytes=_env_int("GARRISON_MAX_FILE_BYTES", d.max_file_bytes),
            max_manifest_bytes=d.max_manifest_bytes,
        )


DEFAULT_LIMITS = Limits()
