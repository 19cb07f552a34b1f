"""Writing advisories into a database: per-feed replacement, counts and CVSS scores.

:class:`Store` works inside the caller's transaction: the first time a feed is seen its old rows
are deleted, then rows are buffered and written in batches. :meth:`Store.finish` records each
feed's counts in ``sources`` and stamps ``meta.built``. Each affected row gets the id of its
compiled ranges and of its (source, status, severity) profile
(:class:`~garrison.vulndb.forms.FormWriter`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from garrison.vulndb.forms import FormWriter
from garrison.vulndb.ingest._common import real_time
from garrison.vulndb.records import NOT_AFFECTED, Advisory, FeedInfo
from garrison.vulndb.schema import FEED_TABLES, listed_versions
from garrison.vulndb.scoring import score_vector
from garrison.vulndb.status import utc_now

logger = logging.getLogger(__name__)

_BATCH = 5000


@dataclass(slots=True)
class FeedCounts:
    name: str
    label: str
    records: int = 0
    withdrawn: int = 0
    affected: int = 0
    not_affected: int = 0
    newest: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "records": self.records,
            "withdrawn": self.withdrawn,
            "affected": self.affected,
            "not_affected": self.not_affected,
            "newest": self.newest or None,
        }


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Store:
    """Buffered writer of advisories into an open (writable) connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.counts: dict[str, FeedCounts] = {}
        self._scores: dict[tuple[str, str], tuple[str, float] | None] = {}
        self._vulns: list[tuple[Any, ...]] = []
        self._sevs: list[tuple[Any, ...]] = []
        self._affected: list[tuple[Any, ...]] = []
        self._aliases: list[tuple[str, str, str, str]] = []
        self._keys: dict[str, Any] = {}  # parsed versions per scheme, for ``listed``
        self._forms = FormWriter(conn)

    def _feed(self, feed: str, label: str) -> FeedCounts:
        counts = self.counts.get(feed)
        if counts is None:
            for table in FEED_TABLES:
                self.conn.execute(f"DELETE FROM {table} WHERE feed = ?", (feed,))  # noqa: S608 - fixed names
            self.conn.execute("DELETE FROM sources WHERE name = ?", (feed,))
            counts = self.counts[feed] = FeedCounts(feed, label)
        return counts

    def _score(self, kind: str, vector: str) -> tuple[str, float] | None:
        key = (kind, vector)
        if key not in self._scores:
            self._scores[key] = score_vector(kind, vector)
        return self._scores[key]

    def add(self, adv: Advisory) -> None:
        counts = self._feed(adv.feed, adv.source)
        if adv.counted:
            counts.records += 1
        stamp = real_time(adv.modified) or real_time(adv.published)
        if stamp > counts.newest:
            counts.newest = stamp
        self._vulns.append(
            (
                adv.id,
                adv.feed,
                adv.source,
                adv.summary,
                adv.details,
                adv.published,
                adv.modified,
                adv.withdrawn,
                _dumps(adv.references),
                _dumps(adv.cwes),
                adv.url,
            )
        )
        if adv.withdrawn:
            if adv.counted:
                counts.withdrawn += 1
        else:
            self._add_live(adv, counts)
        if len(self._affected) + len(self._vulns) >= _BATCH:
            self.flush()

    def _add_live(self, adv: Advisory, counts: FeedCounts) -> None:
        for kind, others in (("alias", adv.aliases), ("related", adv.related)):
            for other in others:
                if other and other != adv.id:
                    self._aliases.append((adv.id, other, adv.feed, kind))
                    self._aliases.append((other, adv.id, adv.feed, kind))
        for sev in adv.severities:
            if sev.kind == "text":
                self._sevs.append((adv.id, adv.feed, "text", "", sev.value.strip(), None, sev.source, 0))
                continue
            scored = self._score(sev.kind, sev.value)
            if scored is None:
                continue
            self._sevs.append(
                (adv.id, adv.feed, sev.kind, scored[0], sev.value.strip(), scored[1], sev.source, int(sev.primary))
            )
        for aff in adv.affected:
            counts.affected += 1
            if aff.status == NOT_AFFECTED:
                counts.not_affected += 1
            ranges = [r.to_json() for r in aff.ranges]
            ranges_text = _dumps(ranges)
            self._affected.append(
                (
                    aff.ecosystem,
                    aff.package,
                    adv.id,
                    adv.feed,
                    adv.source,
                    aff.advisory,
                    aff.advisory_url,
                    aff.status,
                    aff.severity,
                    ranges_text,
                    _dumps(aff.versions),
                    _dumps(listed_versions(aff.ecosystem, ranges, list(aff.versions), self._keys)),
                    _dumps(aff.fixed),
                    _dumps(aff.ecosystem_specific) if aff.ecosystem_specific else "",
                    self._forms.form(aff.ecosystem, ranges_text, adv.id, aff.package),
                    self._forms.profile(adv.source, aff.status, aff.severity),
                )
            )

    def flush(self) -> None:
        c = self.conn
        if self._vulns:
            c.executemany(
                "INSERT INTO vulnerabilities (id, feed, source, summary, details, published, modified, withdrawn, "
                "refs, cwes, url) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id, feed) DO UPDATE SET "
                "summary = CASE WHEN summary = '' THEN excluded.summary ELSE summary END, "
                "details = CASE WHEN details = '' THEN excluded.details ELSE details END, "
                "published = CASE WHEN published = '' OR (excluded.published != '' AND excluded.published < published) "
                "THEN excluded.published ELSE published END, "
                "modified = CASE WHEN excluded.modified > modified THEN excluded.modified ELSE modified END",
                self._vulns,
            )
        if self._sevs:
            c.executemany("INSERT OR IGNORE INTO severities VALUES (?,?,?,?,?,?,?,?)", self._sevs)
        if self._affected:
            self._forms.flush()
            c.executemany(
                "INSERT INTO affected (ecosystem, package, vuln_id, feed, source, advisory, advisory_url, status, "
                "severity, ranges, versions, listed, fixed, ecosystem_specific, form, profile) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                self._affected,
            )
        if self._aliases:
            c.executemany("INSERT OR IGNORE INTO aliases (vuln_id, alias, feed, kind) VALUES (?,?,?,?)", self._aliases)
        self._vulns.clear()
        self._sevs.clear()
        self._affected.clear()
        self._aliases.clear()

    def finish(self, infos: dict[str, FeedInfo]) -> None:
        """Write buffered rows, one ``sources`` row per feed seen, and the build time."""
        self.flush()
        self._forms.finish()
        now = utc_now()
        for feed, counts in self.counts.items():
            info = infos.get(feed, FeedInfo(feed))
            self.conn.execute(
                "INSERT OR REPLACE INTO sources (name, label, url, imported_at, records, withdrawn, affected, "
                "not_affected, newest, snapshot) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    feed,
                    counts.label,
                    info.url,
                    now,
                    counts.records,
                    counts.withdrawn,
                    counts.affected,
                    counts.not_affected,
                    counts.newest or None,
                    info.snapshot or None,
                ),
            )
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('built', ?)", (now,))
