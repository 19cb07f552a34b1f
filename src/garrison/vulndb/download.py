"""HTTP downloads for ``db update``: conditional (ETag / Last-Modified) and resumable.

Each URL's validators are kept in ``<file>.meta.json`` next to the cached file. A request sends
``If-None-Match``/``If-Modified-Since`` when a cached copy exists (``304`` keeps it); an
interrupted download leaves ``<file>.part`` and the next attempt asks for the rest with
``Range`` + ``If-Range`` (a ``200`` answer restarts it).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from garrison.core.errors import RegistryError, UnsafeArchiveError
from garrison.core.limits import DEFAULT_LIMITS

logger = logging.getLogger(__name__)

MAX_DOWNLOAD = DEFAULT_LIMITS.max_file_bytes
_CHUNK = 1 << 16


@dataclass(slots=True)
class Fetched:
    url: str
    path: Path
    status: str  # downloaded, not-modified, resumed, missing, cached (kept from an interrupted run)
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "path": str(self.path), "status": self.status, "bytes": self.bytes}


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_meta_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    _meta_path(path).write_text(json.dumps(meta, indent=1, sort_keys=True))


def fetch(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    conditional: bool = True,
    missing_ok: bool = False,
) -> Fetched:
    """Download ``url`` to ``dest`` (conditionally, resuming a ``.part`` file)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta = _read_meta(dest)
    req_headers = dict(headers or {})
    if conditional and dest.is_file() and meta.get("url") == url:
        if meta.get("etag"):
            req_headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            req_headers["If-Modified-Since"] = meta["last_modified"]
    offset = part.stat().st_size if part.is_file() else 0
    part_meta = _read_meta(part)
    if offset and part_meta.get("url") == url and (part_meta.get("etag") or part_meta.get("last_modified")):
        req_headers["Range"] = f"bytes={offset}-"
        req_headers["If-Range"] = part_meta.get("etag") or part_meta["last_modified"]
    else:
        offset = 0
    try:
        with client.stream("GET", url, params=params, headers=req_headers) as resp:
            if resp.status_code == 304:
                logger.info("%s: not modified", url)
                return Fetched(url, dest, "not-modified", 0)
            if resp.status_code == 404 and missing_ok:
                return Fetched(url, dest, "missing", 0)
            if resp.status_code not in (200, 206):
                raise RegistryError(f"HTTP {resp.status_code} {resp.reason_phrase}", input_name=url)
            resumed = resp.status_code == 206 and offset > 0
            validators = {
                "url": url,
                "etag": resp.headers.get("ETag", ""),
                "last_modified": resp.headers.get("Last-Modified", ""),
            }
            _write_meta(part, validators)
            written = offset if resumed else 0
            with part.open("ab" if resumed else "wb") as fh:
                for chunk in resp.iter_bytes(_CHUNK):
                    written += len(chunk)
                    if written > MAX_DOWNLOAD:
                        raise UnsafeArchiveError("download exceeds the size limit", input_name=url)
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        raise RegistryError(f"download failed: {exc}", input_name=url) from None
    os.replace(part, dest)
    _meta_path(part).unlink(missing_ok=True)
    _write_meta(dest, validators)
    return Fetched(url, dest, "resumed" if resumed else "downloaded", written)
