"""rpm ordering: rpmvercmp examples (tilde, caret, alnum segments) and rpm's Lua vercmp as the oracle."""

from __future__ import annotations

import itertools
import json
import zipfile
from pathlib import Path

import pytest
from version_oracles import gen_rpm, pairs, rpm_compare

from garrison.vulndb.versions import InvalidVersion, get_scheme

RPM = get_scheme("rpm")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param("1.0", "1.0", 0, id="equal"),
        pytest.param("1.0", "2.0", -1, id="numeric"),
        pytest.param("2.0.1", "2.0", 1, id="more-segments"),
        pytest.param("2.0.1a", "2.0.1", 1, id="trailing-letters"),
        pytest.param("5.5p1", "5.5p10", -1, id="letter-number"),
        pytest.param("10xyz", "10.1xyz", -1, id="separator-counts"),
        pytest.param("xyz10", "xyz10.1", -1, id="letters-first"),
        pytest.param("1.0010", "1.9", 1, id="leading-zeros"),
        pytest.param("1.05", "1.5", 0, id="leading-zeros-equal"),
        pytest.param("1.0", "1", 1, id="extra-zero-segment"),
        pytest.param("2.0", "2_0", 0, id="separators-equal"),
        pytest.param("1.0~rc1", "1.0", -1, id="tilde"),
        pytest.param("1.0~rc1", "1.0~rc2", -1, id="tilde-tilde"),
        pytest.param("1.0~rc1~git123", "1.0~rc1", -1, id="double-tilde"),
        pytest.param("1.0^", "1.0", 1, id="caret-after-end"),
        pytest.param("1.0^git1", "1.0.1", -1, id="caret-before-more"),
        pytest.param("1.0^git1", "1.0^git2", -1, id="caret-caret"),
        pytest.param("1.0^git1~pre", "1.0^git1", -1, id="caret-tilde"),
        pytest.param("a", "1", -1, id="digits-beat-letters"),
        pytest.param("1:1.0-1", "2.0-1", 1, id="epoch"),
        pytest.param("1.0-1.el9", "1.0-1.el9_2", -1, id="release"),
        pytest.param("1.0", "1.0-1", -1, id="missing-release-first"),
    ],
)
def test_known_orderings(a: str, b: str, expected: int) -> None:
    assert RPM.compare(a, b) == expected
    assert RPM.compare(b, a) == -expected


@pytest.mark.parametrize("bad", ["", "x:1.0", "1.0 -1", ":-1", "-1"])
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion, match="rpm version"):
        RPM.key(bad)


def test_known_orderings_agree_with_rpm() -> None:
    cases = [("1.0~rc1", "1.0"), ("1.0^", "1.0"), ("1.0^git1", "1.0.1"), ("a", "1"), ("1.0", "1.0-1"), ("1:1.0", "2.0")]
    assert rpm_compare(cases) == [RPM.compare(a, b) for a, b in cases]


@pytest.mark.parametrize("seed", [1, 2])
def test_agrees_with_rpm_vercmp(seed: int) -> None:
    batch = pairs(gen_rpm, seed, 250, RPM.valid)
    expected = rpm_compare(batch)
    assert len(expected) == len(batch)
    got = [RPM.compare(a, b) for a, b in batch]
    wrong = [(a, b, g, e) for (a, b), g, e in zip(batch, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:10]
    assert {-1, 0, 1} <= set(expected)


def test_almalinux_advisory_versions_sort_like_rpm(advisories_dir: Path) -> None:
    versions: set[str] = set()
    with zipfile.ZipFile(advisories_dir / "osv" / "AlmaLinux" / "all.zip") as zf:
        for name in zf.namelist()[:400]:
            for aff in json.loads(zf.read(name)).get("affected", []):
                for rng in aff.get("ranges", []):
                    versions.update(v for e in rng["events"] for v in e.values() if v != "0")
    assert len(versions) > 100
    assert all(RPM.valid(v) for v in versions)
    ordered = sorted(versions, key=RPM.key)
    neighbours = list(itertools.pairwise(ordered))
    assert rpm_compare(neighbours) == [RPM.compare(a, b) for a, b in neighbours]
