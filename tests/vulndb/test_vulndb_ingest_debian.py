"""Debian ingest: the tracker JSON export (vunnel's real sample) and the real DSA/DLA lists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vulndb_fuzz import mutated_bytes, mutated_json

from garrison.core.errors import InputError
from garrison.model import VulnStatus
from garrison.vulndb.ingest import debian
from garrison.vulndb.records import NOT_AFFECTED, Advisory

CODENAMES = {"wheezy": "7", "jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12",
             "trixie": "13", "sid": "sid", "woody": "3.0", "sarge": "3.1", "etch": "4", "lenny": "5", "squeeze": "6"}  # fmt: skip


@pytest.fixture(scope="module")
def tracker(advisories_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((advisories_dir / "debian" / "tracker-sample.json").read_text())
    return data


def expected_status(rel: dict[str, Any]) -> str:
    """The status rules of the task, read straight off one release entry."""
    fixed = rel.get("fixed_version")
    urgency = rel.get("urgency", "")
    if fixed in ("0", "<not-affected>"):
        return NOT_AFFECTED
    if urgency.startswith("unimportant"):
        return "unimportant"
    if rel["status"] == "resolved":
        return "fixed"
    if urgency == "end-of-life":
        return "end_of_life"
    if rel.get("nodsa_reason") == "ignored":
        return "will_not_fix"
    if rel.get("nodsa_reason") == "postponed":
        return "postponed"
    if "nodsa" in rel:
        return "no-dsa"
    return "under_investigation" if rel["status"] == "undetermined" else "affected"


def test_tracker_entries_and_statuses(advisories_dir: Path, tracker: dict[str, Any]) -> None:
    advisories = list(debian.read_tracker(advisories_dir / "debian" / "tracker-sample.json"))
    assert len(advisories) == sum(len(cves) for cves in tracker.values())
    order = [(pkg, cve) for pkg, cves in tracker.items() for cve in cves]  # the export's own order
    seen = 0
    for adv, (pkg, cve) in zip(advisories, order, strict=True):
        assert adv.id == cve
        entry = tracker[pkg][cve]
        assert adv.details == entry.get("description", "")
        assert adv.feed == adv.source == "debian-tracker"
        releases = entry["releases"] or {}
        assert {a.ecosystem for a in adv.affected} == {f"Debian:{CODENAMES[c]}" for c in releases}
        for aff in adv.affected:
            codename = next(c for c in releases if f"Debian:{CODENAMES[c]}" == aff.ecosystem)
            rel = releases[codename]
            assert aff.package == pkg
            assert aff.status == expected_status(rel)
            assert aff.severity == rel.get("urgency", "")
            if aff.status == NOT_AFFECTED:
                assert aff.ranges == []
            elif rel.get("fixed_version"):
                assert aff.fixed == [rel["fixed_version"]]
            else:
                assert aff.fixed == [] and aff.ranges[0].events == [("introduced", "0")]
            seen += 1
    assert seen == sum(len(e["releases"] or {}) for cves in tracker.values() for e in cves.values())


def _independent_list_reading(text: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("["):
            entries.append({"id": line.split("] ", 1)[1].split()[0], "cves": [], "rel": []})
        elif line.strip().startswith("{"):
            entries[-1]["cves"] += line.strip().strip("{}").split()
        elif line.strip().startswith("[") and not line.strip().startswith("NOTE"):
            release, rest = line.strip()[1:].split("] - ", 1)
            pkg, version = rest.split()[:2]
            entries[-1]["rel"].append((release, pkg, version))
    return entries


@pytest.mark.parametrize("name", [pytest.param("DSA.list", id="dsa"), pytest.param("DLA.list", id="dla")])
def test_lists_match_an_independent_reading(advisories_dir: Path, name: str) -> None:
    path = advisories_dir / "debian" / name
    text = path.read_text(encoding="utf-8")
    entries = _independent_list_reading(text)
    advisories = list(debian.read_list(path))
    source = "debian-dsa" if name.startswith("DSA") else "debian-dla"
    assert all(a.source == source for a in advisories)
    counted = [a for a in advisories if a.counted]
    assert [a.id for a in counted] == [e["id"] for e in entries]
    by_cve: dict[str, list[tuple[str, str, str | None, str]]] = {}
    for adv in advisories:
        for aff in adv.affected:
            by_cve.setdefault(adv.id, []).append((aff.ecosystem, aff.package, (aff.fixed or [None])[0], aff.advisory))
    expected: dict[str, list[tuple[str, str, str | None, str]]] = {}
    for e in entries:
        for vid in e["cves"] or [e["id"]]:
            for release, pkg, version in e["rel"]:
                fixed = None if version.startswith("<") else version
                expected.setdefault(vid, []).append((f"Debian:{CODENAMES[release]}", pkg, fixed, e["id"]))
    assert by_cve == expected
    for adv in counted:
        entry = next(e for e in entries if e["id"] == adv.id)
        assert adv.related == entry["cves"] and adv.aliases == []


def test_not_affected_and_unfixed_tags(advisories_dir: Path) -> None:
    text = (advisories_dir / "debian" / "DSA.list").read_text(encoding="utf-8")
    tags = re.findall(r"^\s+\[(\w+)\] - (\S+) (<[a-z-]+>)", text, re.M)
    assert tags, "the DSA list has tagged release lines"
    statuses = {(a.ecosystem, a.package, a.status) for adv in debian.parse_list(text, "DSA.list", "debian-dsa")
                for a in adv.affected}  # fmt: skip
    want = {"<not-affected>": NOT_AFFECTED, "<unfixed>": str(VulnStatus.AFFECTED), "<end-of-life>": "end_of_life"}
    for release, pkg, tag in tags:
        assert (f"Debian:{CODENAMES[release]}", pkg, want[tag]) in statuses


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("garbage\n", "expected an advisory header", id="no-header"),
        pytest.param("\t{CVE-2020-1}\n", "before the first advisory header", id="orphan"),
        pytest.param("[32 Foo 2020] DSA-1-1 x - y\n", "expected an advisory header|bad date", id="bad-date"),
        pytest.param("[01 Jan 2020] DSA-1-1 x - y\n\t{CVE-1\n", "unterminated", id="unterminated"),
        pytest.param("[01 Jan 2020] DSA-1-1 x - y\n\t[bullseye] x\n", "release", id="bad-release"),
        pytest.param("[01 Jan 2020] DSA-1-1 x - y\n\t[bullseye] - x <weird>\n", "unknown release tag", id="tag"),
    ],
)
def test_malformed_lists(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment) as err:
        list(debian.parse_list(text, "DSA.list", "debian-dsa"))
    assert str(err.value).startswith("DSA.list")


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        pytest.param([], "must be an object", id="list"),
        pytest.param({"pkg": []}, "must be an object", id="pkg-list"),
        pytest.param({"pkg": {"CVE-1": {"releases": {"sid": {"status": 3}}}}}, "status must be a string", id="status"),
        pytest.param({"pkg": {"CVE-1": {"releases": "x"}}}, "releases must be an object", id="releases"),
    ],
)
def test_malformed_tracker(doc: Any, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        list(debian.parse_tracker(doc, "tracker.json"))


@pytest.fixture(scope="module")
def list_blobs(advisories_dir: Path) -> list[bytes]:
    text = (advisories_dir / "debian" / "DSA.list").read_bytes()
    return [text[:6000], (advisories_dir / "debian" / "DLA.list").read_bytes()[:6000]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_lists(list_blobs: list[bytes], data: Any) -> None:
    blob = data.draw(mutated_bytes(list_blobs))
    try:
        out = list(debian.parse_list(blob.decode("utf-8", errors="replace"), "DSA.list", "debian-dsa"))
    except InputError as exc:
        assert str(exc).startswith("DSA.list")
        return
    assert all(isinstance(a, Advisory) for a in out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_tracker(tracker: dict[str, Any], data: Any) -> None:
    doc = data.draw(mutated_json([tracker]))
    try:
        out = list(debian.parse_tracker(doc, "tracker.json"))
    except InputError:
        return
    assert all(isinstance(a, Advisory) for a in out)
