"""Helpers shared by the ingest modules: bounded reads of files and zip members, JSON loading
and type checks that turn malformed input into :class:`~garrison.core.errors.InputError`."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError, UnsafeArchiveError
from garrison.core.limits import DEFAULT_LIMITS

MAX_BYTES = DEFAULT_LIMITS.max_file_bytes


def read_bytes(path: Path) -> bytes:
    """A file's bytes (gunzipped when it ends in ``.gz``), bounded by the file size limit."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"file too large ({size} bytes)", input_name=str(path))
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", input_name=str(path)) from None
    if path.name.endswith(".gz"):
        data = gunzip(data, str(path))
    return data


def gunzip(data: bytes, name: str) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            out = fh.read(MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"bad gzip data: {exc}", input_name=name) from None
    if len(out) > MAX_BYTES:
        raise UnsafeArchiveError("decompresses beyond the size limit", input_name=name)
    return out


def zip_members(path: Path, suffix: str = ".json") -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` for every member ending in ``suffix``, size-bounded."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise InputError(f"not a readable zip file: {exc}", input_name=str(path)) from None
    with zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(suffix):
                continue
            name = f"{path}:{info.filename}"
            if info.file_size > MAX_BYTES:
                raise UnsafeArchiveError(f"member expands to {info.file_size} bytes", input_name=name)
            try:
                with zf.open(info) as fh:
                    data = fh.read(MAX_BYTES + 1)
            except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as exc:
                raise InputError(f"cannot read zip member: {exc}", input_name=name) from None
            if len(data) > MAX_BYTES:
                raise UnsafeArchiveError("member expands beyond the size limit", input_name=name)
            yield name, data


def zip_snapshot(path: Path) -> str:
    """Newest member timestamp of a zip (the snapshot's commit time for osv.dev-style exports)."""
    try:
        with zipfile.ZipFile(path) as zf:
            stamps = [info.date_time for info in zf.infolist()]
    except (OSError, zipfile.BadZipFile, ValueError):
        return ""
    if not stamps:
        return ""
    try:
        return datetime(*max(stamps), tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return ""


def file_snapshot(path: Path) -> str:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OSError, ValueError, OverflowError):
        return ""


def load_json(data: bytes | str, name: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"invalid JSON: {exc}", input_name=name) from None


def as_dict(value: Any, what: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{what} must be an object, not {type(value).__name__}", input_name=name)
    return value


def as_list(value: Any, what: str, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{what} must be a list, not {type(value).__name__}", input_name=name)
    return value


def as_str(value: Any, what: str, name: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InputError(
            f"{what} must be a non-empty string" if required else f"{what} must be a string", input_name=name
        )
    return value


def str_list(value: Any, what: str, name: str) -> list[str]:
    items = as_list(value, what, name)
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"{what} must hold strings, not {type(item).__name__}", input_name=name)
    return items


def real_time(value: str) -> str:
    """``value`` unless it is the zero time Go's repository stores (``0001-01-01...``)."""
    return "" if not value or value.startswith("0001-01-01") else value
