"""SemVer-based schemes: semver, npm (node-semver as the oracle), cargo, go and nuget."""

from __future__ import annotations

import random

import pytest
from version_oracles import gen_semver, node_semver, pairs

from garrison.vulndb.versions import InvalidVersion, get_scheme

SEMVER = get_scheme("semver")
NPM = get_scheme("npm")
CARGO = get_scheme("cargo")
GO = get_scheme("go")
NUGET = get_scheme("nuget")

#: SemVer 2.0.0 section 11 example, ascending
SPEC_ORDER = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
              "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1"]  # fmt: skip


@pytest.mark.parametrize("name", ["semver", "npm", "cargo", "go"])
def test_spec_precedence(name: str) -> None:
    scheme = get_scheme(name)
    keys = [scheme.key(v) for v in SPEC_ORDER]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert scheme.compare("1.0.0+build.1", "1.0.0+build.2") == 0


@pytest.mark.parametrize("bad", ["1.0", "01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", "1.0.0-a..b", "a.b.c"])
def test_semver_invalid(bad: str) -> None:
    for scheme in (SEMVER, CARGO):
        with pytest.raises(InvalidVersion):
            scheme.key(bad)


def test_npm_agrees_with_node_semver_on_comparisons() -> None:
    batch = pairs(gen_semver, 5, 400, NPM.valid)
    expected = node_semver([["cmp", a, b] for a, b in batch])
    got = [NPM.compare(a, b) for a, b in batch]
    wrong = [(a, b, g, e) for (a, b), g, e in zip(batch, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:10]
    assert {-1, 0, 1} <= set(got)


def _random_range(rng: random.Random) -> str:
    def partial() -> str:
        parts = [str(rng.choice([0, 1, 2])) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.2:
            parts[-1] = rng.choice(["x", "*", "X"])
        text = ".".join(parts)
        if len(parts) == 3 and parts[-1].isdigit() and rng.random() < 0.3:
            text += "-" + rng.choice(["alpha", "beta.1", "0", "rc.2"])
        return text

    def comparator_set() -> str:
        kind = rng.random()
        if kind < 0.15:
            return f"{partial()} - {partial()}"
        terms = []
        for _ in range(rng.randint(1, 2)):
            terms.append(rng.choice(["", "^", "~", ">", ">=", "<", "<=", "=", "~>"]) + partial())
        return " ".join(terms)

    return " || ".join(comparator_set() for _ in range(rng.randint(1, 2)))


def test_npm_ranges_agree_with_node_semver() -> None:
    rng = random.Random(11)
    cases = []
    for _ in range(600):
        v = gen_semver(rng).split("+")[0]
        cases.append((v, _random_range(rng)))
    cases += [("1.2.3", "^1.2"), ("1.2.3-beta.3", ">=1.2.3-beta.2 <1.3"), ("1.2.4-beta", ">=1.2.3-beta.2"),
              ("2.0.0-alpha", "^1.2.3"), ("1.0.0", ""), ("0.0.4", "^0.0.3"), ("3.0.0", ">2"), ("1.0.0", "<=1")]  # fmt: skip
    expected = node_semver([["sat", v, r] for v, r in cases])
    got = [NPM.satisfies(v, r) for v, r in cases]
    wrong = [(v, r, g, e) for (v, r), g, e in zip(cases, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:10]
    assert sum(got) > 50 and len(got) - sum(got) > 50


def test_npm_accepts_v_and_equals_prefix() -> None:
    assert NPM.compare("v1.2.3", "=1.2.3") == 0


@pytest.mark.parametrize(
    ("version", "req", "expected"),
    [
        ("1.2.3", "1.2", True), ("2.0.0", "1.2", False), ("0.2.5", "0.2.3", True), ("0.3.0", "^0.2.3", False),
        ("0.0.4", "^0.0.3", False), ("0.0.3", "^0.0.3", True), ("1.2.9", "~1.2.3", True), ("1.3.0", "~1.2.3", False),
        ("1.5.0", "1.*", True), ("2.0.0", "1.*", False), ("1.0.0", "*", True), ("1.0.0-rc1", "*", False),
        ("1.2.3-beta.3", ">=1.2.3-beta.2, <1.3", True), ("1.2.4-beta", ">=1.2.3-beta.2", False),
        ("1.4.0", ">= 1.2, < 1.5", True), ("1.5.0", ">= 1.2, < 1.5", False), ("1.2.0", "=1.2", True),
        ("1.3.0", "=1.2", False), ("2.0.0", ">1", True), ("1.9.0", ">1", False), ("1.9.9", "<=1.9", True),
    ],
)  # fmt: skip
def test_cargo_requirements(version: str, req: str, expected: bool) -> None:
    assert CARGO.satisfies(version, req) is expected


@pytest.mark.parametrize("bad", ["", ">=1.*", "1.*.3", "~1-beta", "1.2.3.4"])
def test_cargo_bad_requirement(bad: str) -> None:
    with pytest.raises(InvalidVersion):
        CARGO.satisfies("1.0.0", bad)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("v0.0.0-20191109021931-daa7c04131f5", "v0.0.1", -1),
        ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3", 1),
        ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4", -1),
        ("v2.0.0+incompatible", "2.0.0", 0),
        ("1.21.0-0", "1.21.0-rc.1", -1),
        ("go1.21rc2", "1.21.0", -1),
        ("go1.21rc2", "1.21.0-rc.2", 0),
        ("go1.20", "1.20.0", 0),
        ("go1.19beta1", "1.19.0-rc.1", -1),
        ("v1", "1.0.0", 0),
        ("v1.2", "1.2.0", 0),
    ],
)
def test_go(a: str, b: str, expected: int) -> None:
    assert GO.compare(a, b) == expected


@pytest.mark.parametrize("bad", ["1.2.3.4", "v1.2-pre", "go", "latest", "v01.2.3"])
def test_go_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion, match="go version"):
        GO.key(bad)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0", "1.0.0.0", 0), ("1.0.0-RC.1", "1.0.0-rc.1", 0), ("1.0.0.1", "1.0.0", 1), ("1.0.0-beta", "1.0.0", -1),
        ("1.0.0-alpha.2", "1.0.0-alpha.10", -1), ("1.01.0", "1.1.0", 0), ("1.0.0+meta", "1.0.0", 0),
    ],
)  # fmt: skip
def test_nuget(a: str, b: str, expected: int) -> None:
    assert NUGET.compare(a, b) == expected
