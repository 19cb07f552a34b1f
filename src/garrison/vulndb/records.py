"""Normalised advisory records: what every ingest module yields and the importer stores.

One :class:`Advisory` is one vulnerability as one feed describes it; its :class:`Affected`
entries say which (ecosystem, package) it touches and how (OSV-style ranges, explicit versions,
a distribution status). Ingest modules validate their input while building these, so the
importer and the database never see malformed data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: ``Affected.status`` for entries a source says are *not* affected (recorded, never matched).
NOT_AFFECTED = "not_affected"

#: Event kinds in an OSV range, in the order they sort when versions are equal.
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")

#: Range types that can be evaluated against a version (GIT needs the commit graph).
MATCHABLE_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})


@dataclass(slots=True)
class Range:
    """One OSV range: ``events`` are ``(kind, version)`` pairs, kind one of :data:`EVENT_KINDS`."""

    type: str
    events: list[tuple[str, str]]
    repo: str = ""

    def to_json(self) -> list[Any]:
        return [self.type, [list(e) for e in self.events], self.repo]


@dataclass(slots=True)
class Affected:
    """One affected package in one ecosystem, as one advisory describes it."""

    ecosystem: str  # PyPI, Go, Debian:12, Alpine:v3.18, AlmaLinux:9, ...
    package: str  # normalised package name (source package for distributions)
    ranges: list[Range] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    status: str = ""  # a garrison.model.VulnStatus value or NOT_AFFECTED; "" = derive from ranges
    severity: str = ""  # per-package severity word (Debian urgency), if any
    advisory: str = ""  # id of the advisory that said it (DSA-5380-1, ALSA-2023:1234, the record id)
    advisory_url: str = ""
    ecosystem_specific: dict[str, Any] | None = None

    @property
    def fixed(self) -> list[str]:
        """Every ``fixed`` version named in matchable ranges, in the order given."""
        out: list[str] = []
        for rng in self.ranges:
            if rng.type in MATCHABLE_RANGE_TYPES:
                out.extend(v for k, v in rng.events if k == "fixed" and v not in out)
        return out


@dataclass(frozen=True, slots=True)
class SeverityRecord:
    """A severity statement: ``kind`` is ``CVSS_V2``/``CVSS_V3``/``CVSS_V4`` (``value`` a vector)
    or ``text`` (``value`` a word such as ``HIGH``)."""

    kind: str
    value: str
    source: str  # who said it: nvd, ghsa, osv:PyPI, debian, a CNA e-mail, ...
    primary: bool = False  # NVD's published ("Primary") score for the CVE


@dataclass(slots=True)
class Advisory:
    """A vulnerability as one feed describes it."""

    id: str
    source: str  # data source label: osv:PyPI, debian-dsa, debian-tracker, alpine-secdb, nvd
    feed: str  # unit of replacement on re-import: osv:PyPI, alpine-secdb:v3.11/main, nvd, ...
    summary: str = ""
    details: str = ""
    published: str = ""
    modified: str = ""
    withdrawn: str = ""
    aliases: list[str] = field(default_factory=list)  # the same vulnerability under other ids
    related: list[str] = field(default_factory=list)  # ids it is linked to: a DSA's CVEs, an erratum's CVEs
    references: list[str] = field(default_factory=list)
    cwes: list[str] = field(default_factory=list)
    severities: list[SeverityRecord] = field(default_factory=list)
    affected: list[Affected] = field(default_factory=list)
    url: str = ""  # the advisory's own page
    counted: bool = True  # False for records derived from another (a DSA's per-CVE records)


@dataclass(slots=True)
class FeedInfo:
    """What an ingest module knows about a feed as a whole (written to the ``sources`` table)."""

    name: str
    url: str = ""
    snapshot: str = ""  # date of the snapshot (zip member times, file mtime, newest list entry)
