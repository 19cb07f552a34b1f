"""Maven ordering: ComparableVersion examples and Maven 3.8's own ComparableVersion as the oracle."""

from __future__ import annotations

import itertools
import random

import pytest
from version_oracles import _edit, gen_maven, maven_compare

from garrison.vulndb.versions import InvalidVersion, get_scheme

MAVEN = get_scheme("maven")

#: Maven's ComparableVersionTest lists (each ascending); in Maven 3.8 ``2-1 > 2.0.a`` and
#: ``2.0.a == 2.0.0.a`` (a qualifier after "." opens a list, as after "-"), so those are left out
QUALIFIER_ORDER = ["1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11", "1-rc",
                   "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1",
                   "1-1-snapshot", "1-1", "1-2", "1-123"]  # fmt: skip
NUMBER_ORDER = ["2.0", "2.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
                "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a",
                "11b", "11c", "11m"]  # fmt: skip


@pytest.mark.parametrize("order", [QUALIFIER_ORDER, NUMBER_ORDER], ids=["qualifiers", "numbers"])
def test_upstream_orderings(order: list[str]) -> None:
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            assert MAVEN.compare(a, b) == -1, (a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("1", "1.0"), ("1", "1.0.0"), ("1.0", "1.0.0"), ("1", "1-0"), ("1", "1.0-0"), ("1.0", "1.0-0"),
     ("1a", "1-a"), ("1a", "1.0-a"), ("1a", "1.0.0-a"), ("1.0a", "1-a"), ("1.0.0a", "1-a"), ("1x", "1-x"),
     ("1x", "1.0-x"), ("1.0x", "1-x"), ("1ga", "1"), ("1release", "1"), ("1final", "1"), ("1cr", "1rc"),
     ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"), ("1m3", "1-milestone-3"), ("1X", "1x"), ("1A", "1a")],
)  # fmt: skip
def test_upstream_equalities(a: str, b: str) -> None:
    assert MAVEN.compare(a, b) == 0
    assert MAVEN.key(a) == MAVEN.key(b) and hash(MAVEN.key(a)) == hash(MAVEN.key(b))


def test_invalid() -> None:
    with pytest.raises(InvalidVersion, match="maven version"):
        MAVEN.key("")


def test_agrees_with_maven() -> None:
    rng = random.Random(7)
    versions: list[str] = []
    while len(versions) < 500:
        v = gen_maven(rng)
        versions += [v, _edit(rng, v)] if rng.random() < 0.4 else [v]
    versions = [v for v in versions if v.strip() and MAVEN.valid(v)]
    expected = maven_compare(versions)
    got = [MAVEN.compare(a, b) for a, b in itertools.pairwise(versions)]
    wrong = [(a, b, g, e) for a, b, g, e in zip(versions, versions[1:], got, expected, strict=False) if g != e]
    assert not wrong, wrong[:10]
    assert len(expected) >= 300 and {-1, 0, 1} <= set(expected)
