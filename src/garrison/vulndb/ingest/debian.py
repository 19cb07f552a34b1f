"""Debian security tracker data -> :class:`~garrison.vulndb.records.Advisory`.

Two inputs:

* the tracker's JSON export (``security-tracker.debian.org/tracker/data/json``):
  ``{source package: {CVE: {description, releases: {codename: {status, fixed_version, urgency,
  nodsa, nodsa_reason, repositories}}}}}``;
* the ``DSA.list`` / ``DLA.list`` text files of the tracker repository.

The list format is parsed by hand: it is a small line-oriented format of the Debian security
team's own (``[DD Mon YYYY] DSA-N-R package - title``, then indented ``{CVE ...}``,
``[release] - package version`` and ``NOTE:`` lines) with no published grammar or library.
Ecosystems are ``Debian:<major>`` (``Debian:sid`` for unstable); packages are *source* packages.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError
from garrison.model import VulnStatus
from garrison.vulndb.ecosystems import DEBIAN_RELEASES
from garrison.vulndb.ingest._common import as_dict, as_str, load_json, read_bytes
from garrison.vulndb.records import NOT_AFFECTED, Advisory, Affected, Range

logger = logging.getLogger(__name__)

TRACKER_URL = "https://security-tracker.debian.org/tracker/"
TRACKER_SOURCE = "debian-tracker"

_HEADER = re.compile(r"\[(\d{1,2}) ([A-Za-z]{3}) (\d{4})\] (D[SL]A-\d+(?:-\d+)?)\s*(.*)")
_RELEASE = re.compile(r"\[([a-z][a-z0-9-]*)\] - (\S+)\s+(\S+)(?:\s+(.*))?")
_TAG_STATUS = {
    "<not-affected>": NOT_AFFECTED,
    "<removed>": NOT_AFFECTED,
    "<unfixed>": str(VulnStatus.AFFECTED),
    "<end-of-life>": str(VulnStatus.END_OF_LIFE),
    "<no-dsa>": str(VulnStatus.NO_DSA),
    "<ignored>": str(VulnStatus.WILL_NOT_FIX),
    "<postponed>": str(VulnStatus.POSTPONED),
    "<undetermined>": str(VulnStatus.UNDER_INVESTIGATION),
}


def ecosystem_for(codename: str) -> str:
    """``Debian:<major>`` for a release codename; unknown codenames are kept as they are."""
    return f"Debian:{DEBIAN_RELEASES.get(codename.lower(), codename.lower())}"


def _affected(eco: str, pkg: str, fixed: str | None, status: str, advisory: str, severity: str = "") -> Affected:
    ranges = (
        [Range("ECOSYSTEM", [("introduced", "0"), ("fixed", fixed)])]
        if fixed
        else [Range("ECOSYSTEM", [("introduced", "0")])]
    )
    if status == NOT_AFFECTED:
        ranges = []
    return Affected(
        ecosystem=eco,
        package=pkg,
        ranges=ranges,
        status=status,
        severity=severity,
        advisory=advisory,
        advisory_url=TRACKER_URL + advisory,
    )


# -- tracker JSON ----------------------------------------------------------------------------


def looks_like_tracker(doc: Any) -> bool:
    """``{package: {CVE-id: {"releases": ...}}}`` (checked on the first entries only)."""
    if not isinstance(doc, dict) or not doc:
        return False
    for _pkg, cves in list(doc.items())[:5]:
        if not isinstance(cves, dict):
            return False
        for _cve, entry in list(cves.items())[:3]:
            if not isinstance(entry, dict) or "releases" not in entry:
                return False
    return True


def _tracker_status(rel: dict[str, Any], where: str, name: str) -> tuple[str, str | None, str]:
    """(status, fixed version, urgency) of one release entry."""
    status = as_str(rel.get("status"), f"{where}.status", name)
    fixed = as_str(rel.get("fixed_version"), f"{where}.fixed_version", name) or None
    urgency = as_str(rel.get("urgency"), f"{where}.urgency", name)
    if "nodsa" in rel:
        as_str(rel.get("nodsa"), f"{where}.nodsa", name)
    reason = as_str(rel.get("nodsa_reason"), f"{where}.nodsa_reason", name)
    if fixed in ("0", "<not-affected>"):
        return NOT_AFFECTED, None, urgency
    if status == "resolved" and fixed is None:
        return NOT_AFFECTED, None, urgency
    if urgency.rstrip("*") == "unimportant":
        return str(VulnStatus.UNIMPORTANT), fixed, urgency
    if status == "resolved":
        return str(VulnStatus.FIXED), fixed, urgency
    if urgency == "end-of-life":
        return str(VulnStatus.END_OF_LIFE), None, urgency
    if "nodsa" in rel or reason:
        if reason == "ignored":
            return str(VulnStatus.WILL_NOT_FIX), None, urgency
        if reason == "postponed":
            return str(VulnStatus.POSTPONED), None, urgency
        return str(VulnStatus.NO_DSA), None, urgency
    if status == "undetermined":
        return str(VulnStatus.UNDER_INVESTIGATION), None, urgency
    return str(VulnStatus.AFFECTED), None, urgency


def parse_tracker(doc: Any, name: str) -> Iterator[Advisory]:
    doc = as_dict(doc, "tracker export", name)
    for pkg, cves in doc.items():
        cves = as_dict(cves, f"{pkg}", name)
        for cve, entry in cves.items():
            where = f"{pkg}.{cve}"
            entry = as_dict(entry, where, name)
            releases = entry.get("releases")
            if isinstance(releases, list) and not releases:
                releases = {}
            releases = as_dict(releases, f"{where}.releases", name)
            adv = Advisory(
                id=cve,
                source=TRACKER_SOURCE,
                feed=TRACKER_SOURCE,
                details=as_str(entry.get("description"), f"{where}.description", name),
                url=TRACKER_URL + cve,
            )
            for codename, rel in releases.items():
                rel = as_dict(rel, f"{where}.releases.{codename}", name)
                status, fixed, urgency = _tracker_status(rel, f"{where}.releases.{codename}", name)
                adv.affected.append(_affected(ecosystem_for(codename), pkg, fixed, status, cve, urgency))
            yield adv


def read_tracker(path: Path) -> Iterator[Advisory]:
    yield from parse_tracker(load_json(read_bytes(path), str(path)), str(path))


# -- DSA / DLA lists -------------------------------------------------------------------------


def looks_like_list(head: str) -> bool:
    """Whether text starts like a DSA/DLA list (first non-blank line is an entry header)."""
    for line in head.splitlines():
        if line.strip():
            return _HEADER.fullmatch(line.rstrip()) is not None
    return False


def _date(day: str, month: str, year: str, where: str) -> str:
    try:
        return datetime.strptime(f"{day} {month} {year}", "%d %b %Y").strftime("%Y-%m-%d")
    except ValueError:
        raise InputError(f"bad date [{day} {month} {year}]", input_name=where) from None


class _Entry:
    __slots__ = ("cves", "date", "id", "releases", "title")

    def __init__(self, adv_id: str, date: str, title: str) -> None:
        self.id = adv_id
        self.date = date
        self.title = title
        self.cves: list[str] = []
        self.releases: list[tuple[str, str, str]] = []  # (codename, package, version-or-tag)


def _entries(text: str, name: str) -> Iterator[_Entry]:
    entry: _Entry | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        where = f"{name}:{lineno}"
        if not line.strip():
            continue
        if not raw[0].isspace():
            m = _HEADER.fullmatch(line)
            if m is None:
                raise InputError("expected an advisory header '[DD Mon YYYY] DSA-N-R ...'", input_name=where)
            if entry is not None:
                yield entry
            entry = _Entry(m.group(4), _date(m.group(1), m.group(2), m.group(3), where), m.group(5).strip())
            continue
        body = line.strip()
        if entry is None:
            raise InputError("indented line before the first advisory header", input_name=where)
        if body.startswith("NOTE:"):
            continue
        if body.startswith("{"):
            if not body.endswith("}"):
                raise InputError("unterminated '{...}' id list", input_name=where)
            entry.cves.extend(t for t in body[1:-1].split() if t not in entry.cves)
            continue
        m2 = _RELEASE.fullmatch(body)
        if m2 is None:
            raise InputError("expected '[release] - package version'", input_name=where)
        entry.releases.append((m2.group(1), m2.group(2), m2.group(3)))
    if entry is not None:
        yield entry


def parse_list(text: str, name: str, source: str) -> Iterator[Advisory]:
    """Advisories of a DSA/DLA list: per entry, the advisory itself (related: its CVEs) and one
    record per CVE holding an affected entry per release. An entry naming no CVE is its own
    vulnerability id. A DSA is linked to its CVEs, not an alias of them: one DSA fixes several."""
    for entry in _entries(text, name):
        title = entry.title.split(" - ", 1)[1].strip() if " - " in entry.title else entry.title
        own = Advisory(
            id=entry.id,
            source=source,
            feed=source,
            summary=title,
            published=entry.date,
            related=list(entry.cves),
            url=TRACKER_URL + entry.id,
        )
        targets = [
            Advisory(id=cve, source=source, feed=source, related=[entry.id], url=TRACKER_URL + cve, counted=False)
            for cve in entry.cves
        ] or [own]
        for codename, pkg, version in entry.releases:
            if version.startswith("<"):
                status = _TAG_STATUS.get(version)
                if status is None:
                    raise InputError(f"unknown release tag {version!r} in {entry.id}", input_name=name)
                fixed = None
            else:
                status, fixed = str(VulnStatus.FIXED), version
            for adv in targets:
                adv.affected.append(_affected(ecosystem_for(codename), pkg, fixed, status, entry.id))
        yield own
        if entry.cves:
            yield from targets


def list_source(path: Path, text: str) -> str:
    """``debian-dla`` for a DLA list, ``debian-dsa`` otherwise (by name, then by first header)."""
    stem = path.name.upper()
    if "DLA" in stem:
        return "debian-dla"
    if "DSA" in stem:
        return "debian-dsa"
    m = _HEADER.search(text[:4096])
    return "debian-dla" if m and m.group(4).startswith("DLA") else "debian-dsa"


def read_list(path: Path) -> Iterator[Advisory]:
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    yield from parse_list(text, str(path), list_source(path, text))
