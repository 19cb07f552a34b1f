"""Matching OS packages: deb (Debian tracker + DSA/DLA), apk (Alpine secdb), rpm (AlmaLinux OSV).

Version order oracles are the distributions' own tools where they run here: ``dpkg
--compare-versions`` for Debian and ``rpm.vercmp`` for RPM.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from garrison.model import OperatingSystem, Package, Severity, VulnMatch, VulnStatus
from garrison.vulndb.db import VulnDB
from garrison.vulndb.matcher import Matcher
from garrison.vulndb.versions import get_scheme

RELEASES = {"jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13"}


def dpkg_lt(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0


def rpm_vercmp(pairs: list[tuple[str, str]]) -> list[int]:
    lua = " ".join(f"print(rpm.vercmp('{a}', '{b}')) print(' ')" for a, b in pairs)
    out = subprocess.run(["rpm", "--eval", f"%{{lua: {lua}}}"], capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


def _ids(m: VulnMatch) -> set[str]:
    return {m.vulnerability.id, *m.vulnerability.aliases}


@pytest.fixture(scope="module")
def debian_matcher(debian_db: Path) -> Iterator[Matcher]:
    with VulnDB.open(debian_db) as db:
        yield Matcher(db)


def _dsa_fixes(advisories_dir: Path) -> list[tuple[str, str, str, str, str]]:
    """(advisory, cve, release, package, fixed) of DSA list lines for supported-era releases."""
    out = []
    text = (advisories_dir / "debian" / "DSA.list").read_text(encoding="utf-8")
    for block in re.split(r"\n(?=\[)", text):
        adv = block.split("] ", 1)[1].split()[0]
        cves = re.findall(r"CVE-\d+-\d+", block.split("\n", 2)[1] if "\n" in block else "")
        for release, pkg, version in re.findall(r"^\s+\[(\w+)\] - (\S+) (\S+)", block, re.M):
            if release in RELEASES and not version.startswith("<"):
                out.extend((adv, cve, release, pkg, version) for cve in cves)
    return out


def test_dsa_fixed_versions(debian_matcher: Matcher, advisories_dir: Path) -> None:
    fixes = _dsa_fixes(advisories_dir)[::40]
    assert len(fixes) > 40
    below_checked = at_checked = 0
    for adv, cve, release, pkg, fixed in fixes:
        os = OperatingSystem("debian", RELEASES[release], codename=release)
        below = fixed + "~"
        assert dpkg_lt(below, fixed)
        binary = Package(f"lib{pkg}-bin", below, "deb", source_name=pkg, source_version=below)
        hit = next((m for m in debian_matcher.match([binary], os) if cve in _ids(m)), None)
        assert hit is not None, (adv, cve, release, below)
        assert hit.matched_by == pkg and hit.installed_version == below
        assert hit.data_source in ("debian-dsa", "debian-dla", "debian-tracker")
        assert hit.status is VulnStatus.FIXED and hit.fixed_versions
        assert any(not dpkg_lt(f, fixed) for f in hit.fixed_versions) or fixed in hit.fixed_versions
        below_checked += 1
        at = Package(pkg, fixed, "deb", source_name=pkg)
        matched = [m for m in debian_matcher.match([at], os) if cve in _ids(m)]
        # matched at the fixed version only if another advisory names a later fix for it
        for m in matched:
            assert any(dpkg_lt(fixed, f) for f in m.fixed_versions), (adv, cve, m.fixed_versions)
        at_checked += 1
    assert below_checked == at_checked == len(fixes)


def test_dsa_aliases_and_urls(debian_matcher: Matcher, advisories_dir: Path) -> None:
    adv, cve, release, pkg, fixed = _dsa_fixes(advisories_dir)[0]
    os = OperatingSystem("debian", RELEASES[release])
    m = next(m for m in debian_matcher.match([Package(pkg, fixed + "~", "deb")], os) if m.vulnerability.id == cve)
    assert adv in m.vulnerability.aliases
    assert m.data_source_url == f"https://security-tracker.debian.org/tracker/{adv}"


@pytest.fixture(scope="module")
def tracker(advisories_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((advisories_dir / "debian" / "tracker-sample.json").read_text())
    return data


def test_tracker_statuses_reach_the_match(debian_matcher: Matcher, tracker: dict[str, Any]) -> None:
    checked = 0
    for pkg, cves in tracker.items():
        for cve, entry in cves.items():
            for codename, rel in (entry["releases"] or {}).items():
                if codename not in RELEASES:
                    continue
                os = OperatingSystem("debian", RELEASES[codename], codename=codename)
                installed = rel["repositories"].get(codename) or next(iter(rel["repositories"].values()))
                package = Package(pkg, installed, "deb", source_name=pkg)
                matches = [m for m in debian_matcher.match([package], os) if cve in _ids(m)]
                fixed = rel.get("fixed_version")
                if fixed in ("0", "<not-affected>"):
                    assert matches == [], (pkg, cve, codename)  # not affected, whatever DSAs say
                elif rel["status"] == "open":
                    assert len(matches) == 1
                    want = "end_of_life" if rel.get("urgency") == "end-of-life" else "affected"
                    assert str(matches[0].status) == want and matches[0].fixed_versions == ()
                    assert matches[0].data_source == "debian-tracker"
                elif dpkg_lt(installed, fixed):
                    assert len(matches) == 1 and matches[0].fixed_versions[0] == fixed
                else:
                    assert all(m.data_source != "debian-tracker" for m in matches)
                checked += 1
    assert checked >= 15


def test_tracker_wins_over_dsa_for_the_same_fix(debian_matcher: Matcher, tracker: dict[str, Any],
                                                 advisories_dir: Path) -> None:  # fmt: skip
    dsa = {(cve, release, pkg): (adv, fixed) for adv, cve, release, pkg, fixed in _dsa_fixes(advisories_dir)}
    overlaps = [(cve, rel, pkg) for pkg, cves in tracker.items() for cve, e in cves.items()
                for rel in (e["releases"] or {}) if (cve, rel, pkg) in dsa]  # fmt: skip
    assert overlaps, "the sample shares a fix with the DSA list"
    for cve, release, pkg in overlaps:
        adv, fixed = dsa[(cve, release, pkg)]
        os = OperatingSystem("debian", RELEASES[release])
        matches = [m for m in debian_matcher.match([Package(pkg, fixed + "~", "deb")], os) if cve in _ids(m)]
        assert len(matches) == 1
        assert matches[0].data_source == "debian-tracker" and matches[0].vulnerability.id == cve
        assert adv in matches[0].vulnerability.aliases


def test_ubuntu_and_unknown_os_do_not_use_debian_data(debian_matcher: Matcher, advisories_dir: Path) -> None:
    _adv, _cve, _release, pkg, fixed = _dsa_fixes(advisories_dir)[0]
    pkg_obj = Package(pkg, fixed + "~", "deb")
    assert debian_matcher.match([pkg_obj], OperatingSystem("ubuntu", "22.04")) == []
    assert debian_matcher.match([pkg_obj], None) == []
    assert debian_matcher.match([pkg_obj], OperatingSystem("debian", "99")) == []


# -- Alpine ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alpine_matcher(alpine_db: Path) -> Iterator[Matcher]:
    with VulnDB.open(alpine_db) as db:
        yield Matcher(db)


def test_alpine_secfixes(alpine_matcher: Matcher, advisories_dir: Path) -> None:
    apk = get_scheme("apk")
    doc = yaml.load((advisories_dir / "alpine" / "v3.11" / "main.yaml").read_bytes(), Loader=yaml.BaseLoader)
    os = OperatingSystem("alpine", "3.11.6")
    checked = 0
    for item in doc["packages"][::5]:
        name = item["pkg"]["name"]
        fixes = {v: [i.split()[0] for i in ids] for v, ids in (item["pkg"].get("secfixes") or {}).items()}
        versions = sorted((v for v in fixes if v != "0" and apk.valid(v)), key=lambda v: apk.key(v))
        for lower, higher in itertools.pairwise(versions):
            if apk.compare(lower, higher) >= 0:
                continue
            sub = Package(f"{name}-libs", lower, "apk", source_name=name)
            ids = set().union(*(_ids(m) for m in alpine_matcher.match([sub], os)))
            for cve in fixes[higher]:
                assert cve in ids, (name, lower, cve)
            checked += 1
        if versions:
            top = Package(name, versions[-1], "apk")
            ids = set().union(*(_ids(m) for m in alpine_matcher.match([top], os)))
            assert not ids & {c for v in versions for c in fixes[v]}
        for cve in fixes.get("0", []):
            assert all(cve not in _ids(m) for m in alpine_matcher.match([Package(name, "0.0.1-r0", "apk")], os))
    assert checked > 10
    assert alpine_matcher.match([Package("openssl", "1.0.0-r0", "apk")], OperatingSystem("alpine", "3.99.0")) == []


# -- AlmaLinux (rpm) ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def osv_matcher(osv_db: Path) -> Iterator[Matcher]:
    with VulnDB.open(osv_db) as db:
        yield Matcher(db)


@functools.cache
def _alma(advisories_dir: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(advisories_dir / "osv" / "AlmaLinux" / "all.zip") as zf:
        return [json.loads(zf.read(n)) for n in sorted(zf.namelist())]


def test_almalinux_rpm_ranges(osv_matcher: Matcher, advisories_dir: Path) -> None:
    cases = []
    urls: dict[str, list[str]] = {}
    for rec in _alma(advisories_dir)[::60]:
        fixes: dict[tuple[str, str], list[str]] = {}
        for aff in rec["affected"]:
            key = (aff["package"]["ecosystem"].split(":")[1], aff["package"]["name"])
            fixes.setdefault(key, []).append(aff["ranges"][0]["events"][1]["fixed"])
        for (major, name), fixed_all in list(fixes.items())[:3]:
            cases.append((rec["id"], major, name, fixed_all[0], fixed_all))
        urls[rec["id"]] = [r["url"] for r in rec["references"] if r["type"] == "ADVISORY"]
    low = "0.0.1-1.el9"
    below_order = rpm_vercmp([(low, c[3]) for c in cases])
    # module streams: one advisory may fix the same package at several versions
    later = {i: any(r < 0 for r in rpm_vercmp([(c[3], f) for f in c[4]])) for i, c in enumerate(cases)}
    assert len(cases) > 100
    for i, ((vid, major, name, fixed, _all), cmp) in enumerate(zip(cases, below_order, strict=True)):
        os = OperatingSystem("almalinux", f"{major}.3")
        epoch, _, rest = fixed.rpartition(":")
        at = Package(name, rest, "rpm", epoch=int(epoch) if epoch else None)
        assert (vid in {m.vulnerability.id for m in osv_matcher.match([at], os)}) == later[i], (vid, fixed)
        below = osv_matcher.match([Package(name, low, "rpm")], os)
        assert (vid in {m.vulnerability.id for m in below}) == (cmp < 0), (vid, fixed)
        if cmp < 0:
            m = next(m for m in below if m.vulnerability.id == vid)
            assert fixed in m.fixed_versions and m.data_source == "osv:AlmaLinux"
            assert m.data_source_url in (urls[vid] or [f"https://osv.dev/vulnerability/{vid}"])
    rocky = osv_matcher.match([Package(cases[0][2], low, "rpm")], OperatingSystem("rocky", f"{cases[0][1]}.1"))
    assert cases[0][0] in {m.vulnerability.id for m in rocky}


def test_rpm_epoch(osv_matcher: Matcher, advisories_dir: Path) -> None:
    with_epoch = [(r["id"], a) for r in _alma(advisories_dir) for a in r["affected"]
                  if re.match(r"[1-9]\d*:", a["ranges"][0]["events"][1]["fixed"])]  # fmt: skip
    assert with_epoch
    vid, aff = with_epoch[0]
    fixed = aff["ranges"][0]["events"][1]["fixed"]
    epoch, rest = fixed.split(":", 1)
    os = OperatingSystem("almalinux", aff["package"]["ecosystem"].split(":")[1])
    assert rpm_vercmp([(rest, fixed)]) == [-1]  # no epoch = epoch 0, below the fix
    no_epoch = osv_matcher.match([Package(aff["package"]["name"], rest, "rpm")], os)
    assert vid in {m.vulnerability.id for m in no_epoch}
    same = osv_matcher.match([Package(aff["package"]["name"], rest, "rpm", epoch=int(epoch))], os)
    assert vid not in {m.vulnerability.id for m in same}


def test_nvd_enriches_distro_advisories(osv_matcher: Matcher, advisories_dir: Path, assets_dir: Path) -> None:
    nvd = json.loads((assets_dir / "nvd" / "full-page.json").read_text())
    nvd_cves = {v["cve"]["id"]: v["cve"] for v in nvd["vulnerabilities"]}
    rec = next(r for r in _alma(advisories_dir) if set(r.get("related", [])) & set(nvd_cves))
    cve = sorted(set(rec["related"]) & set(nvd_cves))[0]
    aff = rec["affected"][0]
    os = OperatingSystem("almalinux", aff["package"]["ecosystem"].split(":")[1])
    m = next(m for m in osv_matcher.match([Package(aff["package"]["name"], "0.0.1-1", "rpm")], os)
             if m.vulnerability.id == rec["id"])  # fmt: skip
    assert cve in m.vulnerability.aliases
    metrics = [x for key in ("cvssMetricV40", "cvssMetricV31", "cvssMetricV30", "cvssMetricV2")
               for x in nvd_cves[cve]["metrics"].get(key, [])]  # fmt: skip
    primary = next(x for x in metrics if x["type"] == "Primary")  # NVD's published score, newest version
    scorer = "nvd" if primary["source"] == "nvd@nist.gov" else primary["source"]
    assert m.vulnerability.severity_source == scorer
    assert m.vulnerability.severity is Severity.parse(primary["cvssData"]["baseSeverity"])
    assert {x["cvssData"]["vectorString"] for x in metrics} <= {c.vector for c in m.vulnerability.cvss}
    cwes = {d["value"] for w in nvd_cves[cve].get("weaknesses", []) for d in w["description"]}
    assert {c for c in cwes if c.startswith("CWE-")} <= set(m.vulnerability.cwes)
