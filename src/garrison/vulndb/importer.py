"""``garrison db import``: sniff advisory files, parse them and write them into the database.

A path may be one file (OSV record or ``all.zip``, ``DSA.list``/``DLA.list``, the Debian tracker
JSON, an Alpine secdb YAML/JSON file, an NVD API 2.0 response or 1.1 feed ``.json[.gz]``) or a
directory tree holding any mix of them. Files of no known kind (licences, READMEs, JSON schemas)
are reported as skipped.

Error policy: a file of a known kind that is malformed raises
:class:`~garrison.core.errors.InputError` naming the file and the whole import fails; nothing is
half-written. :func:`import_path` runs in one SQLite transaction (rolled back on error);
:func:`import_paths` additionally builds into a temporary copy of the database next to it and
renames it into place only when everything succeeded, so readers never see a partial file.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.core.errors import DatabaseError, InputError, NotFoundError
from garrison.vulndb.db import VulnDB, check_schema
from garrison.vulndb.ingest import alpine, debian, nvd, osv
from garrison.vulndb.ingest._common import file_snapshot, load_json, read_bytes, zip_members, zip_snapshot
from garrison.vulndb.records import Advisory, FeedInfo
from garrison.vulndb.schema import FORMAT, MIGRATABLE, migrate
from garrison.vulndb.sources import feed_url
from garrison.vulndb.store import FeedCounts, Store

logger = logging.getLogger(__name__)

_IGNORED_DIRS = {".git", "__pycache__", ".svn"}


@dataclass(slots=True)
class ImportSummary:
    """Per-feed counts of one import, plus the files read and the files skipped."""

    db: str = ""
    feeds: dict[str, FeedCounts] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "feeds": {name: counts.to_dict() for name, counts in sorted(self.feeds.items())},
            "records": sum(c.records for c in self.feeds.values()),
            "files": len(self.files),
            "skipped": sorted(self.skipped),
            "seconds": round(self.seconds, 3),
        }


# -- sniffing --------------------------------------------------------------------------------


def _json_kind(doc: Any) -> str | None:
    if osv.looks_like_osv(doc):
        return "osv"
    if nvd.looks_like_nvd(doc):
        return "nvd"
    if alpine.looks_like_secdb(doc):
        return "alpine"
    if debian.looks_like_tracker(doc):
        return "debian-tracker"
    return None


def _advisories_from_doc(kind: str, doc: Any, path: Path) -> Iterator[Advisory]:
    name = str(path)
    if kind == "osv":
        yield osv.parse_record(doc, name, path.parent.name)
    elif kind == "nvd":
        yield from nvd.parse_nvd(doc, name)
    elif kind == "alpine":
        yield from alpine.parse_secdb(doc, name, path.parent.name)
    else:
        yield from debian.parse_tracker(doc, name)


def _is_list_name(path: Path) -> bool:
    return path.suffix == ".list" or path.name == "list"


class _Reader:
    """Classifies files and yields their advisories, remembering per-feed snapshot info."""

    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        self.infos: dict[str, FeedInfo] = {}

    def _note(self, adv: Advisory, snapshot: str, url: str = "") -> None:
        info = self.infos.get(adv.feed)
        if info is None:
            info = self.infos[adv.feed] = FeedInfo(adv.feed, url or feed_url(adv.feed), snapshot)
        elif snapshot > info.snapshot:
            info.snapshot = snapshot

    def read_file(self, path: Path) -> Iterator[Advisory]:
        name = path.name
        lower = name.lower()
        if lower.endswith(".zip"):
            yield from self._read_zip(path)
            return
        if lower.endswith((".json", ".json.gz")):
            doc = load_json(read_bytes(path), str(path))
            kind = _json_kind(doc)
            if kind is None:
                self.summary.skipped.append(str(path))
                return
            yield from self._emit(_advisories_from_doc(kind, doc, path), path, doc)
            return
        if lower.endswith((".yaml", ".yml")):
            doc = alpine.load_document(read_bytes(path), str(path))
            if not alpine.looks_like_secdb(doc):
                self.summary.skipped.append(str(path))
                return
            yield from self._emit(alpine.parse_secdb(doc, str(path), path.parent.name), path, doc)
            return
        if _is_list_name(path):
            head = read_bytes(path)[:4096].decode("utf-8", errors="replace")
            if debian.looks_like_list(head):
                yield from self._emit(debian.read_list(path), path, None)
                return
        self.summary.skipped.append(str(path))

    def _emit(self, advisories: Iterable[Advisory], path: Path, doc: Any) -> Iterator[Advisory]:
        self.summary.files.append(str(path))
        snapshot = file_snapshot(path)
        url = alpine.secdb_url(path, doc) if doc is not None else ""
        for adv in advisories:
            self._note(adv, snapshot, url if adv.source == alpine.SOURCE else "")
            yield adv

    def _read_zip(self, path: Path) -> Iterator[Advisory]:
        default = path.parent.name if path.name == "all.zip" else path.stem
        snapshot = zip_snapshot(path)
        seen = False
        for member, data in zip_members(path):
            doc = load_json(data, member)
            if not osv.looks_like_osv(doc):
                raise InputError("zip member is not an OSV record", input_name=member)
            if not seen:
                self.summary.files.append(str(path))
                seen = True
            adv = osv.parse_record(doc, member, default)
            self._note(adv, snapshot)
            yield adv
        if not seen:
            self.summary.skipped.append(str(path))


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for fname in sorted(files):
            yield Path(root) / fname


# -- importing -------------------------------------------------------------------------------


def _import_into(conn: sqlite3.Connection, paths: Iterable[Path], summary: ImportSummary) -> None:
    store = Store(conn)
    reader = _Reader(summary)
    for path in paths:
        if not path.exists():
            raise NotFoundError("no such file or directory", input_name=str(path))
        for file in _walk(path):
            for adv in reader.read_file(file):
                store.add(adv)
    store.finish(reader.infos)
    summary.feeds = store.counts


def import_path(db: VulnDB, path: Path | str) -> ImportSummary:
    """Import one file or directory tree into an open, writable database, in one transaction."""
    if db.readonly:
        raise DatabaseError("opened read-only; cannot import", input_name=str(db.path))
    summary = ImportSummary(db=str(db.path))
    start = time.perf_counter()
    try:
        with db.conn:
            _import_into(db.conn, [Path(path)], summary)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"import failed ({exc})", input_name=str(db.path)) from None
    summary.seconds = time.perf_counter() - start
    return summary


def _tune(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = OFF")  # a private temp file: the rename is the commit
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -65536")


def import_paths(db_path: Path | str, paths: Iterable[Path | str], *, fresh: bool = False) -> ImportSummary:
    """Import into the database at ``db_path`` (created when missing, rebuilt when ``fresh``):
    build into a temporary copy, then atomically rename it over the old file."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=".tmp", dir=db_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    summary = ImportSummary(db=str(db_path))
    start = time.perf_counter()
    try:
        extend = db_path.is_file() and not fresh and _usable(db_path)
        if extend:
            shutil.copyfile(db_path, tmp)
            conn = sqlite3.connect(str(tmp))
        else:
            conn = VulnDB.create(tmp).conn
        try:
            _tune(conn)
            conn.execute("BEGIN")
            if extend and not migrate(conn):  # pragma: no cover - _usable checked the version
                raise DatabaseError("cannot migrate the database", input_name=str(db_path))
            _import_into(conn, [Path(p) for p in paths], summary)
            conn.commit()
        finally:
            conn.close()
        os.replace(tmp, db_path)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"import failed ({exc})", input_name=str(db_path)) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    summary.seconds = time.perf_counter() - start
    logger.info("imported %d feeds into %s in %.1fs", len(summary.feeds), db_path, summary.seconds)
    return summary


def _usable(db_path: Path) -> bool:
    """Whether the current DB can be extended (an older schema that :func:`migrate` upgrades
    included); a corrupt or foreign file is rebuilt."""
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
        if meta.get("format") == FORMAT and meta.get("schema_version") in MIGRATABLE:
            return True
        with VulnDB.open(db_path, readonly=True) as old:
            check_schema(old.conn, db_path)
    except sqlite3.DatabaseError as exc:
        logger.warning("%s: not a usable database (%s); building a new database", db_path, exc)
        return False
    except DatabaseError as exc:
        logger.warning("%s; building a new database", exc)
        return False
    return True
