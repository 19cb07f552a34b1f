"""The local vulnerability database: one SQLite file, opened read-only for scans.

``VulnDB.open(path)`` checks the file is a Garrison DB of this schema version and raises
:class:`~garrison.core.errors.DatabaseError` (with the command that fixes it) when it is missing,
corrupt or of another version. Writing happens only through :mod:`garrison.vulndb.store`, which
builds a new file and renames it into place.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from garrison.core.errors import DatabaseError
from garrison.vulndb.schema import FORMAT, SCHEMA_VERSION, create_schema
from garrison.vulndb.status import DBStatus, read_status

logger = logging.getLogger(__name__)

FIX_HINT = "run 'garrison db import <advisories>' or 'garrison db update' to build it"

#: SQLite's default limit on host parameters is 999 on old builds; stay well below.
_CHUNK = 500

DEFAULT_MAX_AGE = timedelta(days=7)

_T = TypeVar("_T")


def default_db_path() -> Path:
    """``$GARRISON_DB``, else ``$XDG_CACHE_HOME/garrison/db/garrison.db`` (``~/.cache`` default)."""
    env = os.environ.get("GARRISON_DB")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "garrison" / "db" / "garrison.db"


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Raise DatabaseError unless ``conn`` is a Garrison DB of this schema version."""
    try:
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(
            f"not a Garrison vulnerability database ({exc}); {FIX_HINT}", input_name=str(path)
        ) from None
    if rows.get("format") != FORMAT:
        raise DatabaseError(f"not a Garrison vulnerability database; {FIX_HINT}", input_name=str(path))
    version = rows.get("schema_version", "")
    if version != str(SCHEMA_VERSION):
        raise DatabaseError(
            f"database schema version {version or '?'} is not the supported version {SCHEMA_VERSION}; {FIX_HINT}",
            input_name=str(path),
        )


class VulnDB:
    """A connection to the database plus the queries the matcher and ``db status`` need."""

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | str, readonly: bool = True) -> VulnDB:
        path = Path(path)
        if not path.is_file():
            raise DatabaseError(f"no vulnerability database here; {FIX_HINT}", input_name=str(path))
        try:
            if readonly:
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            else:
                conn = sqlite3.connect(str(path))
            check_schema(conn, path)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot open ({exc}); {FIX_HINT}", input_name=str(path)) from None
        return cls(conn, path, readonly)

    @classmethod
    def create(cls, path: Path | str) -> VulnDB:
        """A new, empty database at ``path`` (an existing file there is replaced)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        conn = sqlite3.connect(str(path))
        with conn:
            create_schema(conn)
        return cls(conn, path, readonly=False)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> VulnDB:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- status ----------------------------------------------------------------------------

    def status(self) -> DBStatus:
        return read_status(self.conn, self.path)

    def is_stale(self, max_age: timedelta = DEFAULT_MAX_AGE) -> bool:
        """True when the last import is older than ``max_age`` (or the DB was never filled)."""
        age = self.status().age
        return age is None or age > max_age

    # -- queries ---------------------------------------------------------------------------

    def _query(self, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"query failed ({exc}); {FIX_HINT}", input_name=str(self.path)) from None

    def affected_rows(self, ecosystem: str, packages: Sequence[str]) -> list[tuple[Any, ...]]:
        """Affected entries for ``packages`` in ``ecosystem``: (package, vuln_id, profile,
        advisory_url, form, extra) where ``profile`` and ``form`` are ids (:meth:`profiles`,
        :meth:`range_forms`) and ``extra`` is None unless the entry lists versions its ranges do
        not cover: then the JSON text ``[listed, fixed]`` (see :mod:`garrison.vulndb.schema`).
        Only what matching reads is fetched, mostly as small integers; rows are in insertion
        order per package, the order of the ``affected_pkg`` index (no sort step)."""
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(packages):
            marks = ",".join("?" * len(chunk))
            out.extend(
                self._query(
                    "SELECT package, vuln_id, profile, advisory_url, form, "  # noqa: S608 - placeholders
                    "CASE WHEN listed = '[]' THEN NULL ELSE '[' || listed || ',' || fixed || ']' END "
                    f"FROM affected WHERE ecosystem = ? AND package IN ({marks}) ORDER BY package, rowid",
                    [ecosystem, *chunk],
                )
            )
        return out

    def profiles(self) -> dict[int, tuple[str, str, str]]:
        """Every (source, status, severity) of affected entries by its id."""
        return {pid: (src, status, sev) for pid, src, status, sev in self._query("SELECT * FROM profiles", ())}

    def range_forms(self, ids: Sequence[int], stored: bool = True) -> list[tuple[int, bytes | str]]:
        """(id, form) of ``ids``: the stored ``marshal`` bytes, or the ranges JSON text when there
        are none (schemes with object keys) or ``stored`` is False."""
        column = "ifnull(form, ranges)" if stored else "ranges"
        out: list[tuple[int, bytes | str]] = []
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, {column} FROM range_forms WHERE id IN ({marks})"  # noqa: S608 - fixed names
            out.extend(self._query(sql, chunk))
        return out

    def meta_value(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def vulnerability_rows(self, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """(id, source, summary, details, published, modified, refs, cwes): what an advisory
        shows; ``refs`` and ``cwes`` are JSON lists, None when empty (most are)."""
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            out.extend(
                self._query(
                    "SELECT id, source, summary, details, published, modified, nullif(refs, '[]'), "  # noqa: S608
                    f"nullif(cwes, '[]') FROM vulnerabilities WHERE id IN ({marks}) ORDER BY id, feed",
                    chunk,
                )
            )
        return out

    def severity_rows(self, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """(vuln_id, kind, version, vector, score, source, feed, is_primary)."""
        out: list[tuple[Any, ...]] = []
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            out.extend(
                self._query(
                    "SELECT vuln_id, kind, version, vector, score, source, feed, is_primary FROM severities "  # noqa: S608 - placeholders only
                    f"WHERE vuln_id IN ({marks}) ORDER BY rowid",
                    chunk,
                )
            )
        return out

    def alias_map(self, ids: Sequence[str]) -> dict[str, tuple[set[str], set[str]]]:
        """For each id that has any, (its aliases, the ids it is related to), one hop through the
        index; ids without links are left out."""
        out: dict[str, tuple[set[str], set[str]]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT vuln_id, alias, kind FROM aliases WHERE vuln_id IN ({marks})"  # noqa: S608 - placeholders only
            for a, b, kind in self._query(sql, chunk):
                if b != a:
                    links = out.get(a)
                    if links is None:
                        links = out[a] = (set(), set())
                    links[0 if kind == "alias" else 1].add(b)
        for aliases, related in out.values():
            if related:
                related -= aliases
        return out

    def ecosystems(self) -> list[str]:
        return [r[0] for r in self._query("SELECT DISTINCT ecosystem FROM affected ORDER BY 1", ())]

    def packages(self, ecosystem: str) -> list[str]:
        return [
            r[0]
            for r in self._query("SELECT DISTINCT package FROM affected WHERE ecosystem = ? ORDER BY 1", (ecosystem,))
        ]
