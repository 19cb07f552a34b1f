"""CVSS scoring (with the ``cvss`` library) and the choice of one severity per match.

Severity preference, first that yields a known severity wins:

1. a CVSS vector from the match's own data source (the vendor: the distro, RustSec, ...);
2. a severity word from the match's own data source (Debian urgency, ``database_specific``);
3. NVD's published CVSS vector (the ``Primary`` metric: NVD's own score, or the CNA's when NVD
   has not scored the CVE);
4. any other CVSS vector (secondary CNA scores carried by NVD, other databases' vectors for an
   alias);
5. any other severity word (GHSA ``database_specific.severity`` ...);
6. none: ``Severity.UNKNOWN``.

Within a rank the newest CVSS version wins (4.0 > 3.1 > 3.0 > 2.0), then the highest score (an
erratum fixing several CVEs is as severe as its worst), then the order stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from cvss import CVSS2, CVSS3, CVSS4

from garrison.model import CVSS, Severity

logger = logging.getLogger(__name__)

NVD_SOURCE = "nvd"


def vector_version(kind: str, vector: str) -> str:
    """CVSS version of a vector: from its ``CVSS:x.y/`` prefix, else from the record kind."""
    if vector.startswith("CVSS:"):
        return vector[5:8]
    return {"CVSS_V2": "2.0", "CVSS_V3": "3.1", "CVSS_V4": "4.0"}.get(kind, "2.0")


def score_vector(kind: str, vector: str) -> tuple[str, float] | None:
    """``(version, base score)`` of a CVSS vector, or None when the vector is not valid CVSS."""
    vector = vector.strip()
    version = vector_version(kind, vector)
    try:
        if version.startswith("4"):
            return "4.0", float(CVSS4(vector).base_score)
        if version.startswith("3"):
            return version, float(CVSS3(vector).scores()[0])
        if version.startswith("2"):
            return "2.0", float(CVSS2(vector.strip("()")).scores()[0])
    except Exception as exc:  # the library raises several unrelated types on bad vectors
        logger.debug("ignoring invalid CVSS vector %r: %s", vector, exc)
        return None
    return None


def severity_of(version: str, score: float | None) -> Severity:
    """Qualitative rating: FIRST's table for v3/v4, NVD's v2 table (no CRITICAL) for v2."""
    if score is None:
        return Severity.UNKNOWN
    if version.startswith("2"):
        if score >= 7.0:
            return Severity.HIGH
        if score >= 4.0:
            return Severity.MEDIUM
        return Severity.LOW if score > 0 else Severity.UNKNOWN
    return Severity.from_cvss_score(score)


def severity_word(word: str) -> Severity:
    """A severity word from any source; Debian's ``**`` (derived-from-NVD) marks are dropped."""
    return Severity.parse(word.strip().rstrip("*").strip())


@dataclass(frozen=True, slots=True)
class SeverityRow:
    kind: str  # CVSS_V2 / CVSS_V3 / CVSS_V4 / text
    version: str
    vector: str  # or the word
    score: float | None
    source: str  # who scored it
    origin: str  # data source label of the feed the row came from
    primary: bool = False  # NVD's published (Primary) score


def _version_rank(version: str) -> float:
    try:
        return -float(version)
    except ValueError:
        return 0.0


def choose(rows: Iterable[SeverityRow], data_source: str, vendor_word: str = "") -> tuple[Severity, str]:
    """The severity of a match and who said it (see the module docstring for the order)."""
    best: tuple[int, float, float, int] | None = None
    chosen: tuple[Severity, str] = (Severity.UNKNOWN, "")
    candidates: list[tuple[int, float, float, Severity, str]] = []
    if vendor_word:
        candidates.append((1, 0.0, 0.0, severity_word(vendor_word), data_source))
    for row in rows:
        if row.kind == "text":
            sev = severity_word(row.vector)
            # GHSA's database_specific word is not a vendor score, even in GHSA's own records
            rank = 1 if row.origin == data_source and row.source != "ghsa" else 4
            candidates.append((rank, 0.0, -float(sev), sev, row.source))
            continue
        sev = severity_of(row.version, row.score)
        if row.origin == data_source:
            rank = 0
        elif row.origin == NVD_SOURCE and row.primary:
            rank = 2
        else:
            rank = 3
        candidates.append((rank, _version_rank(row.version), -(row.score or 0.0), sev, row.source))
    for i, (rank, vrank, neg_score, sev, source) in enumerate(candidates):
        if sev is Severity.UNKNOWN:
            continue
        key = (rank, vrank, neg_score, i)
        if best is None or key < best:
            best = key
            chosen = (sev, source)
    return chosen


def cvss_records(rows: Iterable[SeverityRow]) -> tuple[CVSS, ...]:
    """Every distinct CVSS vector as model objects (text rows left out)."""
    seen: set[tuple[str, str]] = set()
    out: list[CVSS] = []
    for row in rows:
        if row.kind == "text" or row.score is None or (row.vector, row.source) in seen:
            continue
        seen.add((row.vector, row.source))
        out.append(CVSS(version=row.version, vector=row.vector, score=row.score, source=row.source))
    return tuple(out)
