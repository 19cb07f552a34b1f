"""OSV JSON records (osv.dev exports, any ecosystem) -> :class:`~garrison.vulndb.records.Advisory`.

Reads one ``<ID>.json``, a directory tree of them, or an osv.dev ``all.zip``. The parser is
written by hand rather than validated with the OSV JSON Schema: real databases publish records
that fail the schema in harmless places (GIT ``fixed`` values that are not commit hashes) and must
still be imported, while anything that would break matching (wrong types, no id, events that
are not strings) is rejected with :class:`~garrison.core.errors.InputError` naming the record.
All range types are kept; only ECOSYSTEM and SEMVER ranges are matched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from garrison.core.errors import InputError
from garrison.vulndb.ecosystems import base_ecosystem, normalise_name
from garrison.vulndb.ingest._common import (
    as_dict,
    as_list,
    as_str,
    load_json,
    read_bytes,
    str_list,
    zip_members,
)
from garrison.vulndb.records import EVENT_KINDS, Advisory, Affected, Range, SeverityRecord

logger = logging.getLogger(__name__)

_CVSS_TYPES = ("CVSS_V2", "CVSS_V3", "CVSS_V4")


def looks_like_osv(doc: Any) -> bool:
    """Whether a decoded JSON document is an OSV record (used by the importer to sniff files)."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("id"), str)
        and ("affected" in doc or "modified" in doc)
        and "vulnerabilities" not in doc
    )


def feed_for(doc: dict[str, Any], default: str) -> str:
    affected = doc.get("affected")
    for aff in affected if isinstance(affected, list) else []:
        if isinstance(aff, dict) and isinstance(aff.get("package"), dict):
            eco = aff["package"].get("ecosystem")
            if isinstance(eco, str) and eco:
                return f"osv:{base_ecosystem(eco)}"
    return f"osv:{default}"


def _events(raw: Any, where: str, name: str) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    for i, ev in enumerate(as_list(raw, f"{where}.events", name)):
        ev = as_dict(ev, f"{where}.events[{i}]", name)
        found = False
        for kind in EVENT_KINDS:
            if kind in ev:
                events.append((kind, as_str(ev[kind], f"{where}.events[{i}].{kind}", name, required=True)))
                found = True
        if not found:
            raise InputError(f"{where}.events[{i}] has no introduced/fixed/last_affected/limit", input_name=name)
    return events


def _severities(raw: Any, where: str, source: str, name: str) -> list[SeverityRecord]:
    out: list[SeverityRecord] = []
    for i, sev in enumerate(as_list(raw, where, name)):
        sev = as_dict(sev, f"{where}[{i}]", name)
        kind = as_str(sev.get("type"), f"{where}[{i}].type", name, required=True)
        score = as_str(sev.get("score"), f"{where}[{i}].score", name, required=True)
        if kind in _CVSS_TYPES:
            out.append(SeverityRecord(kind, score, source))
        else:  # e.g. Ubuntu's priority words
            out.append(SeverityRecord("text", score, source))
    return out


def _advisory_url(doc: dict[str, Any], refs: list[tuple[str, str]]) -> str:
    vid: str = doc["id"]
    dbs = doc.get("database_specific")
    if isinstance(dbs, dict) and isinstance(dbs.get("url"), str) and dbs["url"].startswith("http"):
        return str(dbs["url"])
    tokens = {vid.lower(), vid.replace(":", "-").lower()}
    for kind, url in refs:
        if kind == "ADVISORY" and any(t in url.lower() for t in tokens):
            return url
    return f"https://osv.dev/vulnerability/{vid}"


def parse_record(doc: Any, name: str, default_feed: str = "unknown") -> Advisory:
    """One decoded OSV document as an Advisory; InputError (naming ``name``) when malformed."""
    doc = as_dict(doc, "record", name)
    vid = as_str(doc.get("id"), "id", name, required=True)
    feed = feed_for(doc, default_feed)
    refs: list[tuple[str, str]] = []
    for i, ref in enumerate(as_list(doc.get("references"), "references", name)):
        ref = as_dict(ref, f"references[{i}]", name)
        url = as_str(ref.get("url"), f"references[{i}].url", name)
        if url:
            refs.append((as_str(ref.get("type"), f"references[{i}].type", name), url))
    adv = Advisory(
        id=vid,
        source=feed,
        feed=feed,
        summary=as_str(doc.get("summary"), "summary", name),
        details=as_str(doc.get("details"), "details", name),
        published=as_str(doc.get("published"), "published", name),
        modified=as_str(doc.get("modified"), "modified", name),
        withdrawn=as_str(doc.get("withdrawn"), "withdrawn", name),
        aliases=[a for a in str_list(doc.get("aliases"), "aliases", name) if a != vid],
        references=[url for _, url in refs],
        severities=_severities(doc.get("severity"), "severity", feed, name),
    )
    adv.url = _advisory_url(doc, refs)
    dbs = doc.get("database_specific")
    if isinstance(dbs, dict):
        word = dbs.get("severity")
        if isinstance(word, str) and word:
            adv.severities.append(SeverityRecord("text", word, "ghsa" if vid.startswith("GHSA-") else feed))
        cwes = dbs.get("cwe_ids")
        if isinstance(cwes, list):
            adv.cwes = [c for c in cwes if isinstance(c, str)]
    related = str_list(doc.get("related"), "related", name)
    for i, aff in enumerate(as_list(doc.get("affected"), "affected", name)):
        where = f"affected[{i}]"
        aff = as_dict(aff, where, name)
        pkg = as_dict(aff.get("package", {}), f"{where}.package", name)
        eco = as_str(pkg.get("ecosystem"), f"{where}.package.ecosystem", name)
        pname = as_str(pkg.get("name"), f"{where}.package.name", name)
        ranges: list[Range] = []
        for j, rng in enumerate(as_list(aff.get("ranges"), f"{where}.ranges", name)):
            rwhere = f"{where}.ranges[{j}]"
            rng = as_dict(rng, rwhere, name)
            ranges.append(
                Range(
                    type=as_str(rng.get("type"), f"{rwhere}.type", name, required=True),
                    events=_events(rng.get("events"), rwhere, name),
                    repo=as_str(rng.get("repo"), f"{rwhere}.repo", name),
                )
            )
        versions = str_list(aff.get("versions"), f"{where}.versions", name)
        adv.severities.extend(_severities(aff.get("severity"), f"{where}.severity", feed, name))
        eco_specific = aff.get("ecosystem_specific")
        if eco_specific is not None and not isinstance(eco_specific, dict):
            raise InputError(f"{where}.ecosystem_specific must be an object", input_name=name)
        if not eco or not pname:
            continue  # GIT-only records may name no package; nothing to match by name
        adv.affected.append(
            Affected(
                ecosystem=eco,
                package=normalise_name(eco, pname),
                ranges=ranges,
                versions=versions,
                advisory=vid,
                advisory_url=adv.url,
                ecosystem_specific=eco_specific or None,
            )
        )
    adv.related = [r for r in related if r != vid and r not in adv.aliases]
    return adv


def parse_bytes(data: bytes | str, name: str, default_feed: str = "unknown") -> Advisory:
    return parse_record(load_json(data, name), name, default_feed)


def read_osv(path: Path) -> Iterator[Advisory]:
    """Every record in an OSV zip, a directory tree of ``*.json`` records, or one record file."""
    default = path.parent.name if path.name == "all.zip" else path.stem
    if path.is_dir():
        for file in sorted(path.rglob("*.json")):
            if file.is_file():
                yield parse_bytes(read_bytes(file), str(file), path.name)
    elif path.suffix == ".zip":
        for member, data in zip_members(path):
            yield parse_bytes(data, member, default)
    else:
        yield parse_bytes(read_bytes(path), str(path), path.parent.name or default)
