"""Properties every scheme must have: a total order on keys, equal keys iff compare == 0 (with
equal hashes), and only InvalidVersion on bad input (fuzzed text and mutated real versions)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from version_oracles import gen_deb, gen_gem, gen_maven, gen_rpm, gen_semver

from garrison.vulndb.versions import InvalidVersion, get_scheme, schemes


def _gen_apk(rng: random.Random) -> str:
    out = ".".join(rng.choice(["0", "1", "2", "10", "01", "00"]) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.2:
        out += rng.choice("abz")
    for _ in range(rng.randint(0, 2)):
        out += (
            "_"
            + rng.choice(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"])
            + rng.choice(["", "1", "2"])
        )
    if rng.random() < 0.5:
        out += "-r" + str(rng.randint(0, 3))
    return out


def _gen_pep440(rng: random.Random) -> str:
    out = ".".join(str(rng.randint(0, 3)) for _ in range(rng.randint(1, 4)))
    out += rng.choice(["", "", "a1", "b2", "rc1", ".post1", ".dev0", "a1.dev1", "+local.1"])
    return rng.choice(["", "", "1!"]) + out


def _gen_go(rng: random.Random) -> str:
    base = rng.choice(["v", ""]) + gen_semver(rng)
    return rng.choice(
        [base, base, "go1.21rc2", "go1.20", "1.21", "v0.0.0-20191109021931-daa7c04131f5", "v2.0.0+incompatible"]
    )


def _gen_nuget(rng: random.Random) -> str:
    out = ".".join(str(rng.choice([0, 1, 2, 10])) for _ in range(rng.randint(1, 4)))
    return out + rng.choice(["", "", "-alpha", "-Alpha.1", "-rc.2", "-beta+meta"])


def _gen_composer(rng: random.Random) -> str:
    out = ".".join(str(rng.choice([0, 1, 2, 10])) for _ in range(rng.randint(1, 4)))
    return (
        rng.choice(["", "v"])
        + out
        + rng.choice(["", "", "-dev", "-alpha1", "-beta2", "-RC1", "-p1", "-patch2", "-stable"])
    )


def _gen_generic(rng: random.Random) -> str:
    return "".join(rng.choice(["1", "2", "10", ".", "-", "a", "B", "rc"]) for _ in range(rng.randint(1, 6)))


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "deb": gen_deb,
    "rpm": gen_rpm,
    "apk": _gen_apk,
    "pep440": _gen_pep440,
    "semver": gen_semver,
    "npm": gen_semver,
    "cargo": gen_semver,
    "go": _gen_go,
    "maven": gen_maven,
    "gem": gen_gem,
    "composer": _gen_composer,
    "nuget": _gen_nuget,
    "generic": _gen_generic,
}


def test_every_scheme_is_registered_and_generated() -> None:
    assert set(schemes()) == set(GENERATORS)


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


@pytest.mark.parametrize("name", sorted(GENERATORS))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rnd=st.randoms(use_true_random=False))
def test_total_order_on_random_triples(name: str, rnd: random.Random) -> None:
    scheme = get_scheme(name)
    gen = GENERATORS[name]
    a, b, c = gen(rnd), gen(rnd), gen(rnd)
    ka, kb, kc = scheme.key(a), scheme.key(b), scheme.key(c)
    assert scheme.compare(a, b) == -scheme.compare(b, a)
    assert scheme.compare(a, a) == 0 and ka == scheme.key(a)
    for x, y, kx, ky in ((a, b, ka, kb), (b, c, kb, kc), (a, c, ka, kc)):
        cmp = scheme.compare(x, y)
        assert (kx == ky) == (cmp == 0), (x, y)
        assert (kx < ky) == (cmp < 0) and (kx > ky) == (cmp > 0), (x, y)
        if kx == ky:
            assert hash(kx) == hash(ky)
    if ka <= kb and kb <= kc:
        assert ka <= kc, (a, b, c)
    if ka == kb and kb == kc:
        assert ka == kc


@pytest.mark.parametrize("name", sorted(GENERATORS))
@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=30))
def test_arbitrary_text_parses_or_raises_invalid_version(name: str, text: str) -> None:
    scheme = get_scheme(name)
    try:
        key = scheme.key(text)
    except InvalidVersion as exc:
        assert "\n" not in str(exc)
        assert name != "generic" or text == ""
        return
    hash(key)
    assert scheme.compare(text, text) == 0


@pytest.mark.parametrize("name", sorted(GENERATORS))
@settings(max_examples=100, deadline=None)
@given(
    rnd=st.randoms(use_true_random=False),
    cut=st.integers(0, 40),
    junk=st.sampled_from(["", "-", ".", "_", "~", "^", ":", "+", "x", " ", "\x00", "é", "--", "..", "v"]),
)
def test_mutated_versions_parse_or_raise_invalid_version(name: str, rnd: random.Random, cut: int, junk: str) -> None:
    scheme = get_scheme(name)
    real = GENERATORS[name](rnd)
    text = real[:cut] + junk + real[cut:]
    try:
        scheme.key(text)
    except InvalidVersion:
        pass
    try:
        scheme.key(real[:cut])
    except InvalidVersion:
        pass
