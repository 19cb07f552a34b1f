"""SQLite schema of the vulnerability database (one file, versioned in the ``meta`` table).

Every data row carries the ``feed`` it came from (``osv:PyPI``, ``debian-dsa``,
``alpine-secdb:v3.11/main``, ``nvd`` ...) so re-importing a feed replaces exactly its rows (feeds
are replaced rarely and the tables are small, so ``feed`` is not indexed). Alias links are stored
in both directions, so lookups only use ``aliases.vuln_id``.
Affected entries are keyed by (ecosystem, package) and hold their ranges pre-parsed as compact
JSON (``[[type, [[kind, version], ...], repo], ...]``) plus the fixed versions they name, so
matching never re-reads the advisories; events are ordered with the ecosystem's version scheme
when the ranges are compiled (at import since schema 3, see below).

``affected.listed`` (schema 2) holds the explicitly listed versions that the entry's ranges do not
already cover, computed at import with the ecosystem's version scheme
(:func:`garrison.vulndb.ranges.uncovered_versions`); the matcher reads it instead of ``versions``
(an OSV record can list hundreds of versions, and parsing them was a fifth of a cold match).
``versions`` keeps the full list. A schema-1 file is migrated in place by :func:`migrate` when
``garrison db import``/``db update`` extends it; scans refuse it with the command that fixes it.
A change to a version scheme's ordering must bump :data:`SCHEMA_VERSION` (``listed`` depends on it).

Schema 3 adds ``range_forms`` and ``profiles`` with ``affected.form`` and ``affected.profile``
pointing at them: the ranges compiled at import and the dictionary-encoded (source, status,
severity) of each entry (see :mod:`garrison.vulndb.forms`). :func:`migrate` brings schema-1 and
schema-2 files to this version in place; it looks at the columns a file has, not only at its
stamp, and recomputes every derived column.
"""

from __future__ import annotations

import sqlite3
from typing import Any, cast

#: Bump on any incompatible change; a DB of another version must be rebuilt.
SCHEMA_VERSION = 3

#: Schema versions :func:`migrate` brings to :data:`SCHEMA_VERSION` (the current one included).
MIGRATABLE = frozenset({"1", "2", str(SCHEMA_VERSION)})

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
    listed      TEXT NOT NULL DEFAULT '[]', -- of which those the ranges do not cover (what matching reads)
    fixed       TEXT NOT NULL DEFAULT '[]', -- fixed versions named by the ranges
    ecosystem_specific TEXT NOT NULL DEFAULT '',
    form        INTEGER NOT NULL DEFAULT 0, -- range_forms.id of the compiled ranges (0: ranges '[]')
    profile     INTEGER NOT NULL DEFAULT 0  -- profiles.id of its (source, status, severity)
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

#: Tables of schema 3 (also created by :func:`migrate`).
FORMS_DDL = """
CREATE TABLE IF NOT EXISTS range_forms (
    id     INTEGER PRIMARY KEY,
    scheme TEXT NOT NULL,   -- version scheme of the keys ('' when the ecosystem has none)
    ranges TEXT NOT NULL,   -- the affected.ranges text compiled
    form   BLOB             -- marshal of the compiled form (NULL when the scheme's keys are objects)
);                          -- (scheme, ranges) is unique: the import dedups them without an index

CREATE TABLE IF NOT EXISTS profiles (
    id       INTEGER PRIMARY KEY,
    source   TEXT NOT NULL,
    status   TEXT NOT NULL,
    severity TEXT NOT NULL,
    UNIQUE (source, status, severity)
);
"""

#: Tables whose rows belong to a feed (deleted when that feed is re-imported).
FEED_TABLES = ("vulnerabilities", "severities", "affected", "aliases")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create every table in an empty database and stamp the schema version."""
    conn.executescript(DDL + FORMS_DDL)
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [("format", FORMAT), ("schema_version", str(SCHEMA_VERSION))],
    )


def listed_versions(ecosystem: str, ranges: list[Any], versions: list[str], keys: dict[str, Any]) -> list[str]:
    """``affected.listed`` of one entry (``keys`` caches parsed versions per scheme across calls)."""
    if not versions:
        return []
    from garrison.vulndb.ecosystems import scheme_name
    from garrison.vulndb.ranges import uncovered_versions
    from garrison.vulndb.versions import InvalidVersion, get_scheme

    name = scheme_name(ecosystem)
    if name is None:
        return list(versions)
    cache = keys.get(name)
    if cache is None:
        try:
            scheme = get_scheme(name)
        except KeyError:
            return list(versions)
        cache = keys[name] = (scheme, {})
    scheme, parsed = cache[0], cast(dict[str, Any], cache[1])

    def key(text: str) -> Any:
        k = parsed.get(text, _UNSET)
        if k is _UNSET:
            try:
                k = scheme.key(text)
            except (InvalidVersion, TypeError, ValueError) as err:
                k = InvalidVersion(str(err))
            parsed[text] = k
        if isinstance(k, InvalidVersion):
            raise k
        return k

    return uncovered_versions(ranges, versions, key)


_UNSET = object()


def migrate(conn: sqlite3.Connection) -> bool:
    """Bring a schema-1 or schema-2 database to this version in place (inside the caller's
    transaction); False when its version is not one this code can migrate."""
    import json

    from garrison.vulndb.forms import FormWriter

    version = dict(conn.execute("SELECT key, value FROM meta").fetchall()).get("schema_version")
    if version == str(SCHEMA_VERSION):
        return True
    if version not in MIGRATABLE:
        return False
    columns = {row[1] for row in conn.execute("PRAGMA table_info(affected)")}
    if "listed" not in columns:
        conn.execute("ALTER TABLE affected ADD COLUMN listed TEXT NOT NULL DEFAULT '[]'")
    for column in ("form", "profile"):
        if column not in columns:
            conn.execute(f"ALTER TABLE affected ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
    for table in ("range_forms", "profiles"):  # derived data only: rebuilt from the rows below
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in FORMS_DDL.split(";"):  # not executescript: it would commit the caller's transaction
        if statement.strip():  # (no ";" in FORMS_DDL but between statements)
            conn.execute(statement)
    keys: dict[str, Any] = {}
    writer = FormWriter(conn)
    updates = []
    for rowid, ecosystem, package, vuln_id, source, status, severity, ranges, versions in conn.execute(
        "SELECT rowid, ecosystem, package, vuln_id, source, status, severity, ranges, versions FROM affected"
    ):
        listed = "[]"
        if versions != "[]":
            found = listed_versions(ecosystem, json.loads(ranges), json.loads(versions), keys)
            listed = json.dumps(found, separators=(",", ":"), ensure_ascii=False)
        form = writer.form(ecosystem, ranges, vuln_id, package)
        updates.append((listed, form, writer.profile(source, status, severity), rowid))
    writer.flush()
    conn.executemany("UPDATE affected SET listed = ?, form = ?, profile = ? WHERE rowid = ?", updates)
    writer.finish()
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    return True
