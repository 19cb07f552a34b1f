"""Range forms (schema 3): the compiled ranges of each distinct (version scheme, ranges text),
computed at import so that cold matching decodes version keys instead of parsing versions.

``range_forms`` holds one row per distinct pair: the ranges text and, for schemes whose keys are
plain tuples, ints and strings (every scheme but ``pep440`` and ``maven``, whose keys are
objects), the :data:`~garrison.vulndb.ranges.Form` serialised with :mod:`marshal` (the standard
library's fastest decoder of exactly these types; JSON would turn tuples into lists and lose the
key types). ``affected.form`` points at the row (0: the entry has no ranges). Distro feeds repeat a
few ranges over thousands of entries, so there are about a fifth as many forms as entries.

``affected.profile`` dictionary-encodes what else matching reads of an entry, its (source,
status, severity), into a small integer (``profiles``): a database has a few dozen distinct
triples, and the Python strings SQLite returns are most of what reading an entry costs.

A stored form is only as good as the version scheme that built it, so import also records one
digest per scheme of the keys of :data:`PROBE_VERSIONS` (``meta.range_keys``, a CRC: it guards
against a changed key layout, not against a forged file); a matcher whose
scheme gives other keys compiles that scheme's ranges from their text instead (and says so).
A change to a scheme's *ordering* that keeps its key layout must still bump the schema version.
"""

from __future__ import annotations

import json
import logging
import marshal
import sqlite3
import zlib
from typing import Any

from garrison.vulndb.ecosystems import scheme_name
from garrison.vulndb.ranges import Form, compile_ranges, form_of
from garrison.vulndb.versions import InvalidVersion, VersionScheme, get_scheme, schemes

logger = logging.getLogger(__name__)

#: versions whose keys fingerprint a scheme's key layout (those a scheme rejects count as None)
PROBE_VERSIONS = (
    "0",
    "1",
    "1.0",
    "1.2.3",
    "10.0.0-rc.1+build.5",
    "2:1.2.3-4ubuntu1~18.04",
    "1.2.3-r4",
    "1.2.3_rc1-r0",
    "3:1.2.3-4.el9_1",
    "1.0~beta1-2",
    "1.0a1.post2.dev3",
    "v1.2.3",
    "go1.21rc2",
    "1.2.3-SNAPSHOT",
    "2024.01.02",
    "1.2.3a",
)

_META_KEY = "range_keys"


def encode_form(form: Form) -> bytes | None:
    """``form`` as ``marshal`` bytes, or None when its keys are not plain values."""
    try:
        return marshal.dumps(form)
    except ValueError:  # an object key (packaging's Version, MavenKey)
        return None


def decode_form(blob: bytes) -> Form:
    """The form :func:`encode_form` stored (the database is trusted: it is written by import)."""
    form: Form = marshal.loads(blob)  # noqa: S302 - our own file, written by encode_form
    return form


def probe_digest(scheme: VersionScheme) -> str:
    """Fingerprint of the keys ``scheme`` gives :data:`PROBE_VERSIONS`; "" when they are objects."""
    keys: list[Any] = []
    for text in PROBE_VERSIONS:
        try:
            keys.append(scheme.key(text))
        except (InvalidVersion, TypeError, ValueError):
            keys.append(None)
    try:
        blob = marshal.dumps(keys)
    except ValueError:
        return ""
    return f"{zlib.crc32(blob):08x}-{len(blob):x}"  # detects a changed key layout, not an attack


def parse_digests(text: str | None) -> dict[str, str]:
    """The digests :meth:`FormWriter.finish` stored (``meta.range_keys``) by scheme name."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


class FormWriter:
    """Assigns ``affected.form`` and ``affected.profile`` ids while rows are written, inserting
    each new form and profile once (the maps of an existing database are read first)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.forms: dict[tuple[str, str], int] = {
            (scheme, text): fid for fid, scheme, text in conn.execute("SELECT id, scheme, ranges FROM range_forms")
        }
        self.profiles: dict[tuple[str, str, str], int] = {
            (source, status, severity): pid
            for pid, source, status, severity in conn.execute("SELECT id, source, status, severity FROM profiles")
        }
        self._next_form = max(self.forms.values(), default=0) + 1
        self._next_profile = max(self.profiles.values(), default=0) + 1
        self._new_forms: list[tuple[int, str, str, bytes | None]] = []
        self._new_profiles: list[tuple[int, str, str, str]] = []
        self._schemes: dict[str, tuple[str, VersionScheme | None]] = {}  # by ecosystem
        self._refresh_stale()

    def _refresh_stale(self) -> None:
        """Recompile the stored forms of every scheme whose keys changed since they were stored
        (:meth:`finish` stamps the current digests, which would otherwise vouch for them)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (_META_KEY,)).fetchone()
        stored = parse_digests(row[0] if row else None)
        for name in sorted({scheme for scheme, _text in self.forms if scheme}):
            try:
                scheme = get_scheme(name)
            except KeyError:
                continue
            if stored.get(name, "") == probe_digest(scheme):
                continue
            logger.info("recompiling the stored %s ranges: the scheme's keys changed", name)
            rows = self.conn.execute("SELECT id, ranges FROM range_forms WHERE scheme = ?", (name,)).fetchall()
            self.conn.executemany(
                "UPDATE range_forms SET form = ? WHERE id = ?",
                [(encode_form(form_of(compile_ranges(json.loads(t), scheme.key, f"range form {i}"))), i) for i, t in rows],
            )

    def _scheme(self, ecosystem: str) -> tuple[str, VersionScheme | None]:
        found = self._schemes.get(ecosystem)
        if found is None:
            name = scheme_name(ecosystem) or ""
            try:
                found = self._schemes[ecosystem] = (name, get_scheme(name) if name else None)
            except KeyError:
                found = self._schemes[ecosystem] = (name, None)
        return found

    def form(self, ecosystem: str, ranges_text: str, vuln_id: str, package: str) -> int:
        """The id of the form of ``ranges_text`` in ``ecosystem``'s scheme (0 for no ranges);
        ``vuln_id`` and ``package`` name the entry in the log of a range that does not parse."""
        if ranges_text == "[]":
            return 0
        name, scheme = self._scheme(ecosystem)
        fid = self.forms.get((name, ranges_text))
        if fid is None:
            blob = None
            if scheme is not None:
                where = f"{vuln_id} {ecosystem}/{package}"
                blob = encode_form(form_of(compile_ranges(json.loads(ranges_text), scheme.key, where)))
            fid = self.forms[(name, ranges_text)] = self._next_form
            self._next_form += 1
            self._new_forms.append((fid, name, ranges_text, blob))
        return fid

    def profile(self, source: str, status: str, severity: str) -> int:
        key = (source, status, severity)
        pid = self.profiles.get(key)
        if pid is None:
            pid = self.profiles[key] = self._next_profile
            self._next_profile += 1
            self._new_profiles.append((pid, source, status, severity))
        return pid

    def flush(self) -> None:
        """Insert the forms and profiles made since the last flush (before the rows naming them)."""
        if self._new_forms:
            self.conn.executemany("INSERT INTO range_forms (id, scheme, ranges, form) VALUES (?,?,?,?)", self._new_forms)
            self._new_forms.clear()
        if self._new_profiles:
            self.conn.executemany(
                "INSERT INTO profiles (id, source, status, severity) VALUES (?,?,?,?)", self._new_profiles
            )
            self._new_profiles.clear()

    def finish(self) -> None:
        """Flush, drop forms no entry names any more (a re-imported feed's old ranges) and record
        the probe digests of the schemes."""
        self.flush()
        self.conn.execute("DELETE FROM range_forms WHERE id NOT IN (SELECT form FROM affected)")
        digests = {name: probe_digest(get_scheme(name)) for name in schemes()}
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (_META_KEY, json.dumps({k: v for k, v in digests.items() if v}, sort_keys=True)),
        )
