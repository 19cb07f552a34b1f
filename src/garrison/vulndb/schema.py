"""SQLite schema of the vulnerability database (one file, versioned in the ``meta`` table).

Every data row carries the ``feed`` it came from (``osv:PyPI``, ``debian-dsa``,
``alpine-secdb:v3.11/main``, ``nvd`` ...) so re-importing a feed replaces exactly its rows (feeds
are replaced rarely and the tables are small, so ``feed`` is not indexed). Alias links are stored
in both directions, so lookups only use ``aliases.vuln_id``.
Affected entries are keyed by (ecosystem, package) and hold their ranges pre-parsed as compact
JSON (``[[type, [[kind, version], ...], repo], ...]``) plus the fixed versions they name, so
matching never re-reads the advisories; the matcher orders events with the ecosystem's version
scheme when it compiles an entry.
"""

from __future__ import annotations

import sqlite3

#: Bump on any incompatible change; a DB of another version must be rebuilt.
SCHEMA_VERSION = 1

#: Value of ``meta.format`` that identifies a Garrison vulnerability database.
FORMAT = "garrison-vulndb"

DDL = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE sources (
    name         TEXT PRIMARY KEY,   -- feed
    label        TEXT NOT NULL,      -- data source label shown in matches
    url          TEXT NOT NULL DEFAULT '',
    imported_at  TEXT NOT NULL,
    records      INTEGER NOT NULL,   -- advisories read, withdrawn ones included
    withdrawn    INTEGER NOT NULL,
    affected     INTEGER NOT NULL,   -- affected entries stored
    not_affected INTEGER NOT NULL,   -- of which "not affected" statements
    newest       TEXT,               -- newest modified/published/advisory date among its records
    snapshot     TEXT                -- date of the snapshot the feed was read from
) WITHOUT ROWID;

CREATE TABLE vulnerabilities (
    id        TEXT NOT NULL,
    feed      TEXT NOT NULL,
    source    TEXT NOT NULL,
    summary   TEXT NOT NULL DEFAULT '',
    details   TEXT NOT NULL DEFAULT '',
    published TEXT NOT NULL DEFAULT '',
    modified  TEXT NOT NULL DEFAULT '',
    withdrawn TEXT NOT NULL DEFAULT '',
    refs      TEXT NOT NULL DEFAULT '[]',  -- JSON list of URLs
    cwes      TEXT NOT NULL DEFAULT '[]',  -- JSON list
    url       TEXT NOT NULL DEFAULT '',
    UNIQUE (id, feed)
);

CREATE TABLE severities (
    vuln_id TEXT NOT NULL,
    feed    TEXT NOT NULL,
    kind    TEXT NOT NULL,   -- CVSS_V2, CVSS_V3, CVSS_V4, text
    version TEXT NOT NULL,   -- 2.0, 3.0, 3.1, 4.0; '' for text
    vector  TEXT NOT NULL,   -- CVSS vector, or the severity word for text
    score   REAL,            -- base score computed from the vector
    source  TEXT NOT NULL,   -- who scored it: nvd, ghsa, osv:crates.io, a CNA, ...
    is_primary INTEGER NOT NULL DEFAULT 0,  -- NVD's published (Primary) score
    UNIQUE (vuln_id, feed, kind, vector, source)
);
CREATE INDEX severities_vuln ON severities (vuln_id);

CREATE TABLE affected (
    ecosystem   TEXT NOT NULL,
    package     TEXT NOT NULL,
    vuln_id     TEXT NOT NULL,
    feed        TEXT NOT NULL,
    source      TEXT NOT NULL,
    advisory    TEXT NOT NULL DEFAULT '',
    advisory_url TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL DEFAULT '',   -- VulnStatus value, not_affected, or '' (derive)
    severity    TEXT NOT NULL DEFAULT '',   -- per-package severity word
    ranges      TEXT NOT NULL DEFAULT '[]', -- [[type, [[kind, version], ...], repo], ...]
    versions    TEXT NOT NULL DEFAULT '[]', -- explicit affected versions
    fixed       TEXT NOT NULL DEFAULT '[]', -- fixed versions named by the ranges
    ecosystem_specific TEXT NOT NULL DEFAULT ''
);
CREATE INDEX affected_pkg ON affected (ecosystem, package);

CREATE TABLE aliases (
    vuln_id TEXT NOT NULL,
    alias   TEXT NOT NULL,
    feed    TEXT NOT NULL,
    kind    TEXT NOT NULL DEFAULT 'alias',  -- alias: the same vulnerability; related: linked ids
                                            -- (an advisory and the CVEs it fixes)
    PRIMARY KEY (vuln_id, alias, feed)
) WITHOUT ROWID;
"""

#: Tables whose rows belong to a feed (deleted when that feed is re-imported).
FEED_TABLES = ("vulnerabilities", "severities", "affected", "aliases")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table in an empty database and stamp the schema version."""
    conn.executescript(DDL)
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))],
    )
