"""Header blobs out of an rpmdb in any of its three on-disk formats.

* SQLite (rpm >= 4.16: Fedora 33+, RHEL 9, CBL-Mariner, Amazon Linux 2023): table ``Packages``
  ``(hnum, blob)``. The file is spooled to a private temporary copy and opened read-only and
  immutable, so SQLite neither needs nor creates ``-wal``/``-shm`` files.
* Berkeley DB hash (``Packages``): see :mod:`._bdb`; keys are native-endian header numbers,
  key 0 holds rpm's instance counter and is skipped.
* NDB (``Packages.db``): see :mod:`._ndb`.

The format is recognised from the content, not the file name.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from garrison.sbom.catalogers._bdb import BdbError, is_bdb_hash, read_bdb_hash
from garrison.sbom.catalogers._ndb import NdbError, is_ndb, read_ndb

SQLITE_MAGIC = b"SQLite format 3\0"


class RpmdbError(ValueError):
    """The rpmdb cannot be read."""


def detect_format(head: bytes) -> str | None:
    """``sqlite``, ``bdb``, ``ndb`` or None, from the first bytes of the file."""
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if is_ndb(head):
        return "ndb"
    if is_bdb_hash(head):
        return "bdb"
    return None


def read_blobs(stream: BinaryIO) -> tuple[str, list[bytes]]:
    """(format, header blobs) of the rpmdb in ``stream`` (seekable)."""
    head = stream.read(64)
    stream.seek(0)
    fmt = detect_format(head)
    try:
        if fmt == "sqlite":
            return fmt, _sqlite_blobs(stream)
        if fmt == "ndb":
            return fmt, [blob for _, blob in read_ndb(stream)]
        if fmt == "bdb":
            return fmt, list(_bdb_blobs(stream))
    except (BdbError, NdbError) as err:
        raise RpmdbError(str(err)) from None
    raise RpmdbError("not an rpm database (unknown format)")


def _bdb_blobs(stream: BinaryIO) -> Iterator[bytes]:
    for key, value in read_bdb_hash(stream):
        if len(key) == 4 and key == b"\0\0\0\0":
            continue  # the header instance counter
        yield value


def _sqlite_blobs(stream: BinaryIO) -> list[bytes]:
    with tempfile.TemporaryDirectory(prefix="garrison-rpmdb-") as tmp:
        path = Path(tmp) / "rpmdb.sqlite"
        with path.open("wb") as out:
            shutil.copyfileobj(stream, out, 1024 * 1024)
        uri = f"{path.as_uri()}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as err:
            raise RpmdbError(f"cannot open SQLite rpmdb: {err}") from None
        try:
            rows = conn.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
        except sqlite3.Error as err:
            raise RpmdbError(f"cannot read SQLite rpmdb: {err}") from None
        finally:
            conn.close()
    blobs: list[bytes] = []
    for (blob,) in rows:
        if not isinstance(blob, bytes):
            raise RpmdbError(f"Packages row holds {type(blob).__name__}, not a header blob")
        blobs.append(blob)
    return blobs
