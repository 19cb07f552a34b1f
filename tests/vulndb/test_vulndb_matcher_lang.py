"""Matching language packages (PyPI, Go, crates.io) against the real OSV snapshots.

Expected answers come from the records themselves: an independent, simple interval reading of
each range (pairs of introduced/fixed/last_affected bounds ordered with the ecosystem's version
scheme) plus the explicit ``versions`` lists.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from functools import cmp_to_key
from pathlib import Path
from typing import Any

import pytest

from garrison.model import Package, Severity, VulnMatch
from garrison.vulndb.db import VulnDB
from garrison.vulndb.ecosystems import normalise_name
from garrison.vulndb.matcher import Matcher
from garrison.vulndb.versions import VersionScheme, get_scheme

SCHEMES = {"PyPI": "pep440", "Go": "go", "crates.io": "cargo"}
PURL_TYPES = {"PyPI": "pypi", "Go": "golang", "crates.io": "cargo"}


@pytest.fixture(scope="module")
def matcher(osv_db: Path) -> Iterator[Matcher]:
    with VulnDB.open(osv_db) as db:
        yield Matcher(db)


def _records(advisories_dir: Path, eco: str) -> list[dict[str, Any]]:
    with zipfile.ZipFile(advisories_dir / "osv" / eco / "all.zip") as zf:
        return [json.loads(zf.read(n)) for n in sorted(zf.namelist())]


def _valid(scheme: VersionScheme, version: str) -> bool:
    return version == "0" or scheme.valid(version)


def affected_by_reading(scheme: VersionScheme, version: str, aff: dict[str, Any]) -> bool:
    """Independent reading: sort each range's bounds, pair them into intervals, test membership."""
    if version in aff.get("versions", []):
        return True
    for rng in aff.get("ranges", []):
        if rng["type"] not in ("ECOSYSTEM", "SEMVER"):
            continue
        events = [(k, v) for e in rng["events"] for k, v in e.items() if k != "limit"]

        def order(a: tuple[str, str], b: tuple[str, str]) -> int:
            if a[1] == "0" and a[0] == "introduced":
                return -1
            if b[1] == "0" and b[0] == "introduced":
                return 1
            return scheme.compare(a[1], b[1])

        start: str | None = None
        for kind, bound in sorted(events, key=cmp_to_key(order)):
            if kind == "introduced":
                start = start if start is not None else bound
                continue
            if start is None:
                continue
            above = start == "0" or scheme.compare(version, start) >= 0
            if kind == "fixed" and above and scheme.compare(version, bound) < 0:
                return True
            if kind == "last_affected" and above and scheme.compare(version, bound) <= 0:
                return True
            start = None
        if start is not None and (start == "0" or scheme.compare(version, start) >= 0):
            return True
    return False


def _package(eco: str, name: str, version: str, variant: int) -> Package:
    if eco == "Go":
        head, _, tail = name.rpartition("/")
        return Package(tail, "v" + version, "golang", namespace=head or None)
    if eco == "PyPI" and variant % 2:
        name = name.upper().replace("-", "_")  # PEP 503 normalisation must still find it
    return Package(name, version, PURL_TYPES[eco])


def _ids(m: VulnMatch) -> set[str]:
    return {m.vulnerability.id, *m.vulnerability.aliases}


def _cases(advisories_dir: Path, eco: str, step: int) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    scheme = get_scheme(SCHEMES[eco])
    cases = []
    for rec in _records(advisories_dir, eco)[::step]:
        if "withdrawn" in rec:
            continue
        for aff in rec["affected"]:
            candidates = [
                v for r in aff.get("ranges", []) if r["type"] != "GIT" for e in r["events"] for v in e.values()
            ]
            candidates += aff.get("versions", [])[:3]
            for version in dict.fromkeys(candidates):
                if version != "0" and "*" not in version and _valid(scheme, version):
                    cases.append((rec, aff, version))
    return cases


@pytest.mark.parametrize(("eco", "step"), [pytest.param("PyPI", 23, id="pypi"), pytest.param("Go", 41, id="go"),
                                           pytest.param("crates.io", 11, id="crates")])  # fmt: skip
def test_matches_agree_with_an_independent_reading(matcher: Matcher, advisories_dir: Path, eco: str, step: int) -> None:
    scheme = get_scheme(SCHEMES[eco])
    records = _records(advisories_dir, eco)
    by_package: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        if "withdrawn" not in rec:
            for aff in rec["affected"]:
                by_package.setdefault(normalise_name(eco, aff["package"]["name"]), []).append(rec)
    cases = _cases(advisories_dir, eco, step)
    assert len(cases) > 50
    positives = negatives = 0
    for i, (rec, aff, version) in enumerate(cases):
        pkg = _package(eco, aff["package"]["name"], version, i)
        matches = matcher.match([pkg])
        reported = set().union(*(_ids(m) for m in matches)) if matches else set()
        expected = affected_by_reading(scheme, version, aff)
        if expected:
            positives += 1
            assert rec["id"] in reported, (rec["id"], version)
            m = next(m for m in matches if rec["id"] in _ids(m))
            assert m.package is pkg and m.data_source == f"osv:{eco}"
            assert m.installed_version == version and m.matched_by == normalise_name(eco, aff["package"]["name"])
            assert m.data_source_url.startswith("https://")
        else:
            # only when no other record for this package shares an id with this one
            name = normalise_name(eco, aff["package"]["name"])
            ids = {rec["id"], *rec.get("aliases", [])}
            if all(r["id"] == rec["id"] or not ({r["id"], *r.get("aliases", [])} & ids) for r in by_package[name]):
                negatives += 1
                assert rec["id"] not in reported, (rec["id"], version)
    assert positives > 20 and negatives > 10


def test_fixed_version_and_range_text(matcher: Matcher, advisories_dir: Path) -> None:
    scheme = get_scheme("pep440")
    checked = 0
    for rec in _records(advisories_dir, "PyPI")[::7]:
        if "withdrawn" in rec or len(rec["affected"]) != 1:
            continue
        ranges = [r for r in rec["affected"][0].get("ranges", []) if r["type"] == "ECOSYSTEM"]
        if len(ranges) != 1 or len(ranges[0]["events"]) != 2:
            continue
        intro, fixed = ranges[0]["events"][0].get("introduced"), ranges[0]["events"][1].get("fixed")
        if intro is None or fixed is None or intro == "0" or not scheme.valid(intro) or not scheme.valid(fixed):
            continue
        pkg = Package(rec["affected"][0]["package"]["name"], intro, "pypi")
        m = next(m for m in matcher.match([pkg]) if m.vulnerability.id == rec["id"] or rec["id"] in _ids(m))
        if m.vulnerability.id == rec["id"]:
            assert m.matched_range == f">={intro}, <{fixed}"
            assert fixed in m.fixed_versions
            assert str(m.status) == "fixed"
            checked += 1
    assert checked > 20


def test_withdrawn_records_never_match(matcher: Matcher, advisories_dir: Path) -> None:
    checked = 0
    for eco in SCHEMES:
        scheme = get_scheme(SCHEMES[eco])
        for rec in _records(advisories_dir, eco):
            if "withdrawn" not in rec:
                continue
            for aff in rec["affected"]:
                versions = [v for r in aff.get("ranges", []) for e in r["events"] for k, v in e.items()
                            if k == "introduced" and v != "0" and scheme.valid(v)] + aff.get("versions", [])[:2]  # fmt: skip
                for version in versions:
                    matches = matcher.match([_package(eco, aff["package"]["name"], version, 0)])
                    assert all(m.vulnerability.id != rec["id"] for m in matches)
                    checked += 1
    assert checked > 5


def test_go_stdlib(matcher: Matcher, advisories_dir: Path) -> None:
    scheme = get_scheme("go")
    recs = [r for r in _records(advisories_dir, "Go") if any(a["package"]["name"] == "stdlib" for a in r["affected"])]
    assert recs
    checked = 0
    for rec in recs[::10]:
        aff = next(a for a in rec["affected"] if a["package"]["name"] == "stdlib")
        for rng in aff["ranges"]:
            events = [(k, v) for e in rng["events"] for k, v in e.items()]
            for (kind, intro), nxt in zip(events, [*events[1:], ("", "")], strict=True):
                version = intro.removesuffix("-0")  # "1.21.0-0": every 1.21 release, candidates included
                if kind != "introduced" or intro == "0" or not scheme.valid(version):
                    continue
                if nxt[0] == "fixed" and scheme.compare(version, nxt[1]) >= 0:
                    continue
                pkg = Package("stdlib", "v" + version, "golang", metadata={"go_version": "go" + version})
                ids = set().union(*(_ids(m) for m in matcher.match([pkg])))
                assert rec["id"] in ids, (rec["id"], version)
                checked += 1
    assert checked > 3


def test_one_match_per_vulnerability_and_package(matcher: Matcher, advisories_dir: Path) -> None:
    """De-duplication: no two matches of one package name the same id or alias."""
    pkgs = [Package(n, v, "pypi") for n, v in (("django", "1.11"), ("pillow", "6.0.0"), ("jinja2", "2.10"),
            ("requests", "2.19.0"), ("urllib3", "1.24.1"), ("tensorflow", "2.4.0"))]  # fmt: skip
    matches = matcher.match(pkgs)
    assert len(matches) > 30
    for pkg in pkgs:
        seen: set[str] = set()
        for m in (m for m in matches if m.package is pkg):
            ids = _ids(m)
            assert not (ids & seen), (pkg.name, ids & seen)
            seen |= ids


def test_vendor_cvss_is_the_severity(matcher: Matcher, advisories_dir: Path) -> None:
    every = {r["id"]: r for r in _records(advisories_dir, "crates.io")}
    recs = [r for r in every.values() if r.get("severity") and "withdrawn" not in r]
    checked = 0
    for rec in recs[::15]:
        aff = rec["affected"][0]
        intro = [e["introduced"] for r in aff["ranges"] for e in r["events"] if "introduced" in e]
        version = next((v for v in intro if v != "0" and get_scheme("cargo").valid(v)), None)
        if version is None:
            continue
        m = next((m for m in matcher.match([Package(aff["package"]["name"], version, "cargo")])
                  if m.vulnerability.id == rec["id"]), None)  # fmt: skip
        if m is None:
            continue
        group = [every[i] for i in _ids(m) if i in every]  # the record and any it was merged with
        vectors = {s["score"] for r in group for s in r.get("severity", [])}
        assert {c.vector for c in m.vulnerability.cvss if c.source == "osv:crates.io"} == vectors
        assert m.vulnerability.severity_source == "osv:crates.io"
        best = max(
            (c for c in m.vulnerability.cvss if c.source == "osv:crates.io"), key=lambda c: (float(c.version), c.score)
        )
        assert m.vulnerability.severity is Severity.from_cvss_score(best.score)
        checked += 1
    assert checked > 5
