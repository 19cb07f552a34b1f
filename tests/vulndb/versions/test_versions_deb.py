"""deb ordering: Debian policy examples, dpkg as the oracle, real versions from the tracker."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
from version_oracles import dpkg_compare, gen_deb, pairs

from garrison.vulndb.versions import InvalidVersion, get_scheme

DEB = get_scheme("deb")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param("1.0~rc1-1", "1.0-1", -1, id="tilde-before-release"),
        pytest.param("1.0~~", "1.0~~a", -1, id="policy-tilde-chain-1"),
        pytest.param("1.0~~a", "1.0~", -1, id="policy-tilde-chain-2"),
        pytest.param("1.0~", "1.0", -1, id="policy-tilde-chain-3"),
        pytest.param("1.0", "1.0a", -1, id="policy-tilde-chain-4"),
        pytest.param("1:0.1", "2.0", 1, id="epoch-wins"),
        pytest.param("1.0", "1.0-0", 0, id="missing-revision-is-0"),
        pytest.param("1.00", "1.0", 0, id="leading-zeros"),
        pytest.param("1.0a", "1.0a0", 0, id="absent-digits-are-0"),
        pytest.param("1.0a", "1.0+", -1, id="letters-before-non-letters"),
        pytest.param("1.2.3-1+deb12u1", "1.2.3-1", 1, id="security-update"),
        pytest.param("2.36-9+deb12u4", "2.36-9+deb12u10", -1, id="numeric-runs"),
        pytest.param("1:2.0-1", "1:2.0-1", 0, id="same"),
        pytest.param("0:1.0", "1.0", 0, id="zero-epoch"),
        pytest.param("1.0-a", "1.0-~", 1, id="revision-tilde"),
    ],
)
def test_known_orderings(a: str, b: str, expected: int) -> None:
    assert DEB.compare(a, b) == expected
    assert DEB.compare(b, a) == -expected


@pytest.mark.parametrize("bad", ["", "a:1.0", "1.0-", "1.0 1", "1:", "-1", "1.0_1", "1.0-1_2", "1.0\n"])
def test_invalid(bad: str) -> None:
    if bad == "1.0\n":  # dpkg strips surrounding whitespace
        assert DEB.valid(bad)
        return
    with pytest.raises(InvalidVersion, match="deb version"):
        DEB.key(bad)


@pytest.mark.parametrize("seed", [1, 2])
def test_agrees_with_dpkg(seed: int) -> None:
    batch = pairs(gen_deb, seed, 200, DEB.valid)
    expected = dpkg_compare(batch)
    assert len(expected) == len(batch)
    got = [DEB.compare(a, b) for a, b in batch]
    wrong = [(a, b, g, e) for (a, b), g, e in zip(batch, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:10]
    assert {-1, 0, 1} <= set(expected)


def test_real_advisory_versions_parse_and_sort_like_dpkg(advisories_dir: Path) -> None:
    debian = advisories_dir / "debian"
    versions: set[str] = set()
    for name in ("DSA.list", "DLA.list"):
        versions.update(re.findall(r"^\s+\[\w+\] - \S+ (\S+)", (debian / name).read_text(), re.M))
    _collect(json.loads((debian / "tracker-sample.json").read_text()), versions)
    versions -= {"<not-affected>", "<unfixed>", "<end-of-life>", "<ignored>", "<postponed>", "<removed>", "<no-dsa>"}
    versions = {v for v in versions if not v.startswith("<")}
    assert len(versions) > 1000
    invalid = [v for v in versions if not DEB.valid(v)]
    assert not invalid, invalid[:10]
    ordered = sorted(versions, key=DEB.key)
    step = max(1, len(ordered) // 300)
    sample = ordered[::step]
    neighbours = list(itertools.pairwise(sample))
    assert dpkg_compare(neighbours) == [DEB.compare(a, b) for a, b in neighbours]


def _collect(node: object, out: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "fixed_version" and isinstance(v, str) and v != "0":
                out.add(v)
            elif k == "repositories" and isinstance(v, dict):
                out.update(x for x in v.values() if isinstance(x, str))
            else:
                _collect(v, out)
    elif isinstance(node, list):
        for v in node:
            _collect(v, out)
