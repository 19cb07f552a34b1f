"""``garrison db status``: the database's age and, per feed, record counts and freshness."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 / ISO 8601 timestamp or date as an aware UTC datetime; None when unparseable."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str  # feed
    label: str  # data source label
    url: str
    imported_at: str
    records: int
    withdrawn: int
    affected: int
    not_affected: int
    newest: str | None
    snapshot: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "url": self.url,
            "imported_at": self.imported_at,
            "records": self.records,
            "withdrawn": self.withdrawn,
            "affected": self.affected,
            "not_affected": self.not_affected,
            "newest": self.newest,
            "snapshot": self.snapshot,
        }


@dataclass(slots=True)
class DBStatus:
    path: str
    schema_version: int
    built: str | None  # when the file was last written by an import or update
    sources: list[SourceStatus] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def age(self) -> timedelta | None:
        built = parse_time(self.built)
        return None if built is None else max(self.now - built, timedelta(0))

    @property
    def imported_at(self) -> str | None:
        return max((s.imported_at for s in self.sources), default=None)

    @property
    def newest(self) -> str | None:
        return max((s.newest for s in self.sources if s.newest), default=None)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.sources)

    def to_dict(self) -> dict[str, Any]:
        age = self.age
        return {
            "path": self.path,
            "schema_version": self.schema_version,
            "built": self.built,
            "imported_at": self.imported_at,
            "age": None if age is None else str(timedelta(seconds=int(age.total_seconds()))),
            "age_seconds": None if age is None else int(age.total_seconds()),
            "newest": self.newest,
            "records": self.records,
            "sources": [s.to_dict() for s in self.sources],
        }


def read_status(conn: sqlite3.Connection, path: Path) -> DBStatus:
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    rows = conn.execute(
        "SELECT name, label, url, imported_at, records, withdrawn, affected, not_affected, newest, snapshot "
        "FROM sources ORDER BY name"
    ).fetchall()
    return DBStatus(
        path=str(path),
        schema_version=int(meta.get("schema_version", "0")),
        built=meta.get("built"),
        sources=[SourceStatus(*row) for row in rows],
    )
