"""Per-layer analysis cache: an unchanged layer is never read twice.

The key is the layer's diff_id plus a fingerprint of every analyser that contributed (cataloger
names and versions, secret rules, this module's format version), so bumping a cataloger's
``version`` invalidates exactly the entries it could have changed. Entries live in one SQLite
file (atomic writes, safe for concurrent scans) as zlib-compressed JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import zlib
from pathlib import Path

from garrison.scan.analyze import LayerAnalysis

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    env = os.environ.get("GARRISON_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "garrison"


class LayerCache:
    """Get and put :class:`LayerAnalysis` by (diff_id, fingerprint). Failures degrade to misses."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or default_cache_dir()) / "layers.db"
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30)
                # WAL: a commit appends to the log without an fsync (a cache may lose its last
                # entries on power loss, never become corrupt), so caching five layers no
                # longer costs five synchronous disk flushes
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("CREATE TABLE IF NOT EXISTS layers (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
                db.commit()
                self._db = db
            except (OSError, sqlite3.Error) as err:
                logger.warning("layer cache %s unavailable: %s", self.path, err)
                return None
        return self._db

    @staticmethod
    def key(diff_id: str, fingerprint: str) -> str:
        raw = f"{FORMAT_VERSION}:{diff_id}:{fingerprint}"
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, diff_id: str, fingerprint: str) -> LayerAnalysis | None:
        db = self._conn()
        if db is None or not diff_id:
            return None
        try:
            row = db.execute("SELECT data FROM layers WHERE key = ?", (self.key(diff_id, fingerprint),)).fetchone()
            if row is None:
                return None
            return LayerAnalysis.from_dict(json.loads(zlib.decompress(row[0])))
        except (sqlite3.Error, zlib.error, ValueError, KeyError, TypeError) as err:
            logger.warning("ignoring unreadable cache entry for %s: %s", diff_id, err)
            return None

    def put(self, analysis: LayerAnalysis, fingerprint: str) -> None:
        db = self._conn()
        if db is None or not analysis.diff_id:
            return
        blob = zlib.compress(json.dumps(analysis.to_dict(), separators=(",", ":")).encode(), 6)
        try:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO layers (key, data) VALUES (?, ?)",
                    (self.key(analysis.diff_id, fingerprint), blob),
                )
        except sqlite3.Error as err:
            logger.warning("could not cache layer %s: %s", analysis.diff_id, err)

    def clear(self) -> int:
        db = self._conn()
        if db is None:
            return 0
        with db:
            count = db.execute("DELETE FROM layers").rowcount
        return int(count)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
