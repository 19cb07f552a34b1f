"""RubyGems ordering and requirements, with Ruby's Gem::Version as the oracle."""

from __future__ import annotations

import pytest
from version_oracles import gen_gem, pairs, ruby_compare

from garrison.vulndb.versions import InvalidVersion, get_scheme

GEM = get_scheme("gem")


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param("1.0", "1.0.0", 0, id="padding"),
        pytest.param("1.0.a", "1.0", -1, id="prerelease-first"),
        pytest.param("1.0.a", "1.0.b", -1, id="prerelease-order"),
        pytest.param("1.0.0-rc1", "1.0.0", -1, id="dash-is-pre"),
        pytest.param("1.0.a.1", "1.0.a", 1, id="pre-number"),
        pytest.param("1.a", "1.0.0.1", -1, id="string-below-zero"),
        pytest.param("1.8.2", "1.10", -1, id="numeric"),
        pytest.param("2.0.0.rc.1", "2.0.0.rc1", 0, id="segment-split"),
    ],
)
def test_known_orderings(a: str, b: str, expected: int) -> None:
    assert GEM.compare(a, b) == expected
    assert ruby_compare([(a, b)]) == [expected]


@pytest.mark.parametrize(
    ("version", "requirement", "expected"),
    [
        ("2.1.5", "~> 2.1", True),
        ("3.0", "~> 2.1", False),
        ("2.1.5", "~> 2.1.3", True),
        ("2.2.0", "~> 2.1.3", False),
        ("2.1.0.pre", "~> 2.1", False),
        ("1.5", ">= 1.0, < 2", True),
        ("1.5", "!= 1.5", False),
        ("1.5", "1.5.0", True),
    ],
)
def test_requirements(version: str, requirement: str, expected: bool) -> None:
    assert GEM.satisfies(version, requirement) is expected


@pytest.mark.parametrize("bad", ["1..2", "a", "1.0 beta", "-1", "1.0-"])
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion, match="gem version"):
        GEM.key(bad)


def test_agrees_with_ruby() -> None:
    batch = pairs(gen_gem, 3, 400, GEM.valid)
    expected = ruby_compare(batch)
    got = [GEM.compare(a, b) for a, b in batch]
    wrong = [(a, b, g, e) for (a, b), g, e in zip(batch, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:10]
    assert len(expected) == 400 and {-1, 0, 1} <= set(expected)
